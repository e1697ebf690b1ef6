// examples/mpi_rowcount.cpp - the row count (examples/rowcount.cpp) over MPI:
// the same Pool calls, with mp::MpiPool spreading the rows over the ranks of
// an MPI job.
//
//   mpirun -np 4 ./mpi_rowcount [--rows N] [--processes P]
//
// Ranks 1..N-1 serve inside the pool's constructor (each with a local fork
// pool of P workers) and exit there; everything after it runs on rank 0,
// which checks every answer against a serial count and exits non-zero when
// one differs.
#include <mp/mpi.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using Row = std::array<int, 5>;

int howmany_within_range(Row row, int minimum, int maximum) {
  return static_cast<int>(std::count_if(row.begin(), row.end(), [&](int n) { return minimum <= n && n <= maximum; }));
}

int howmany_4_to_8(Row row) { return howmany_within_range(row, 4, 8); }

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// The value of `--name N` in argv, or `fallback`.
unsigned long flag(int argc, char** argv, const char* name, unsigned long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::strtoul(argv[i + 1], nullptr, 10);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const auto t0 = std::chrono::steady_clock::now();
  mp::PoolOptions po;
  po.processes = static_cast<unsigned>(flag(argc, argv, "--processes", 1));
  mp::MpiPool pool(po);  // ranks 1..N-1 never return from here
  std::printf("MpiPool of %u workers (%zu worker ranks), up in %.1f ms\n", pool.size(), pool.pids().size() / po.processes,
              ms_since(t0));

  std::vector<Row> rows(flag(argc, argv, "--rows", 200'000));
  std::mt19937 gen(100);
  std::uniform_int_distribution<int> dist(0, 9);
  for (auto& r : rows)
    for (int& v : r) v = dist(gen);
  std::vector<int> serial;
  for (const Row& r : rows) serial.push_back(howmany_within_range(r, 4, 8));

  bool ok = true;
  auto report = [&](const char* name, std::vector<int> got, std::chrono::steady_clock::time_point t, bool sort) {
    std::vector<int> want = serial;
    if (sort) {
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
    }
    const bool same = got == want;
    ok = ok && same;
    std::printf("| %s | %.2f ms | %s |\n", name, ms_since(t), same ? "= serial" : "WRONG");
  };

  auto t = std::chrono::steady_clock::now();
  report("map", pool.map(howmany_4_to_8, rows), t, false);

  t = std::chrono::steady_clock::now();
  std::vector<std::tuple<Row, int, int>> args;
  for (const Row& r : rows) args.emplace_back(r, 4, 8);
  report("starmap", pool.starmap(howmany_within_range, args), t, false);

  t = std::chrono::steady_clock::now();
  std::vector<int> unordered;
  for (int v : pool.imap_unordered(howmany_4_to_8, rows, 1000)) unordered.push_back(v);
  report("imap_unordered", unordered, t, true);

  t = std::chrono::steady_clock::now();
  std::vector<mp::AsyncResult<int>> futures;
  for (const Row& r : rows) futures.push_back(pool.apply_async(howmany_within_range, r, 4, 8));
  std::vector<int> one_by_one;
  for (auto& f : futures) one_by_one.push_back(f.get());
  report("apply_async", one_by_one, t, false);

  return ok ? 0 : 1;  // the pool's destructor stops the worker ranks; they exit 0
}
