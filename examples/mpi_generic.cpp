// examples/mpi_generic.cpp - one piece of generic code, templated on the pool
// type, run on mp::Pool (forked workers on this machine) and on mp::MpiPool
// (the ranks of an MPI job) alike.
//
//   mpirun -np 3 ./mpi_generic
//
// Ranks 1.. serve the MpiPool and exit inside its constructor; rank 0 runs
// count_primes on both pools and checks that they agree with a serial count.
#include <mp/mpi.hpp>
#include <mp/pool.hpp>

#include <cstdio>
#include <numeric>
#include <ranges>
#include <vector>

bool is_prime(int n) {
  if (n < 2) return false;
  for (int d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

int primes_in_block(int block) {  // [block * 1000, block * 1000 + 1000)
  int count = 0;
  for (int n = block * 1000; n < block * 1000 + 1000; ++n) count += is_prime(n) ? 1 : 0;
  return count;
}

/// The number of primes below blocks * 1000, on any mp pool.
template <class Pool>
int count_primes(Pool& pool, int blocks) {
  const std::vector<int> per_block = pool.map(primes_in_block, std::views::iota(0, blocks));
  auto first = pool.apply_async(primes_in_block, 0);
  if (first.get() != per_block[0]) return -1;
  return std::accumulate(per_block.begin(), per_block.end(), 0);
}

int main() {
  mp::MpiPool over_mpi;  // first: the worker ranks stay in here
  mp::Pool local(2);     // rank 0 only; forking after MPI_Init is fine, its workers never call MPI

  int serial = 0;
  for (int b = 0; b < 200; ++b) serial += primes_in_block(b);
  const int a = count_primes(local, 200);
  const int b = count_primes(over_mpi, 200);
  std::printf("primes below 200000: serial %d, mp::Pool %d, mp::MpiPool %d\n", serial, a, b);
  return a == serial && b == serial ? 0 : 1;
}
