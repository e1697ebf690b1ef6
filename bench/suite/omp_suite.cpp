// bench/suite/omp_suite.cpp - OpenMP (GCC's libgomp, 2 threads) on the suite's
// map-shaped workloads. Its own process: libgomp is not fork-safe (GCC PR
// 60035) and its idle threads spin, which would take a core from a pool.
#include "harness.hpp"

#include <omp.h>

#include <string>
#include <vector>

namespace {

using bench::emit;
using bench::median_seconds;

template <class T, class F>
std::vector<int> omp_map(F f, const std::vector<T>& in) {
  std::vector<int> out(in.size());
  const long n = static_cast<long>(in.size());
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = f(in[static_cast<std::size_t>(i)]);
  return out;
}


}  // namespace

int main() {
  omp_set_num_threads(2);
  const int iters50 = bench::spin_iters_for_us(50);
  const double start = bench::now_s();
#pragma omp parallel
  { __asm__ volatile("" ::: "memory"); }
  emit("pool_start", "openmp", (bench::now_s() - start) * 1e3, "ms");
  const auto in = bench::iota_ints(bench::size(10'000'000));
  emit("map_1e7", "openmp", static_cast<double>(in.size()) / median_seconds([&] { omp_map(bench::identity, in); }),
       "items/s");
  bench::rowcount_cases([](const std::string& id, const auto& data, auto count) {
    emit(id, "openmp", median_seconds([&] { omp_map(count, data); }) * 1e3, "ms");
  });
  const std::vector<int> work(bench::size(4'000), iters50);
  emit("cpu_kernel", "openmp", median_seconds([&] { omp_map(bench::spin, work); }) * 1e3, "ms");
  bench::break_even("openmp", [](const std::vector<int>& w) { omp_map(bench::spin, w); });
}
