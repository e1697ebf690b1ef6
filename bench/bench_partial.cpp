// bench/bench_partial.cpp - what state bound with mp::partial costs: it
// travels once per map chunk (and once per apply_async call), never once per
// item. A 1 MiB std::vector made after the pool is bound to a map of 10^4
// items, beside the same map with nothing bound.
//
//   cmake --preset release && cmake --build build/release --target bench_partial -j2
//   build/release/bench/bench_partial --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <mp/pool.hpp>

#include <cstddef>
#include <cstdint>
#include <ranges>
#include <string>
#include <vector>

namespace {

constexpr int items = 10'000;

long pick(const std::vector<int>& big, int i) { return big[static_cast<std::size_t>(i) % big.size()] + i; }
long plus_one(int i) { return static_cast<long>(i) + 1; }

mp::Pool& pool() {
  static mp::Pool p(2);
  return p;
}

// range(0) chunks per map (0: the default chunksize); the bound vector is 1 MiB.
void BM_map_partial_1MiB(benchmark::State& state) {
  const std::vector<int> big(std::size_t{1} << 18, 1);
  const auto chunks = static_cast<std::size_t>(state.range(0));
  const std::size_t cs = chunks == 0 ? 0 : (items + chunks - 1) / chunks;
  for (auto _ : state) benchmark::DoNotOptimize(pool().map(mp::partial(pick, big), std::views::iota(0, items), cs));
  state.SetItemsProcessed(state.iterations() * items);
  state.SetLabel(chunks == 0 ? "default chunksize" : std::to_string(chunks) + " chunks");
}
BENCHMARK(BM_map_partial_1MiB)->Arg(0)->Arg(1)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_map_nothing_bound(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(pool().map(plus_one, std::views::iota(0, items)));
  state.SetItemsProcessed(state.iterations() * items);
}
BENCHMARK(BM_map_nothing_bound)->Unit(benchmark::kMillisecond)->UseRealTime();

// One apply_async per call carries the whole bound vector.
void BM_apply_partial_1MiB(benchmark::State& state) {
  const std::vector<int> big(std::size_t{1} << 18, 1);
  for (auto _ : state) benchmark::DoNotOptimize(pool().apply(mp::partial(pick, big), 7));
}
BENCHMARK(BM_apply_partial_1MiB)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
