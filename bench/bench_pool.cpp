// bench/bench_pool.cpp - the Pool targets, one benchmark per row.
// Python's multiprocessing peer: bench/python_pool.py prints the same rows.
//
//   cmake --preset release && cmake --build build/release --target bench_pool -j2
//   build/release/bench/bench_pool --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   python3 bench/python_pool.py
#include <benchmark/benchmark.h>

#include <mp/pool.hpp>

#include "../tests/fork_helpers.hpp"  // children_of

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <random>
#include <string>
#include <thread>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

int identity(int x) { return x; }

using Row = std::array<int, 5>;
int count_row(Row row) {
  int c = 0;
  for (int v : row) c += (4 <= v && v <= 8) ? 1 : 0;
  return c;
}

mp::Pool& shared_pool() {
  static mp::Pool pool(2);
  return pool;
}

// apply_async of a trivial task, 2 workers: tasks/s (target >= 1 M/s).
void BM_apply_async_throughput(benchmark::State& state) {
  auto& pool = shared_pool();
  const int n = 200'000;
  std::vector<mp::AsyncResult<int>> rs;
  rs.reserve(n);
  for (auto _ : state) {
    rs.clear();
    for (int i = 0; i < n; ++i) rs.push_back(pool.apply_async(identity, i));
    for (auto& r : rs) benchmark::DoNotOptimize(r.get());
  }
  state.counters["tasks_per_s"] = benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()),
                                                     benchmark::Counter::kIsRate);
}
BENCHMARK(BM_apply_async_throughput)->Unit(benchmark::kMillisecond)->UseRealTime();

// Synchronous apply round trip, unpinned: median us (target <= 20 us).
void BM_apply_round_trip(benchmark::State& state) {
  auto& pool = shared_pool();
  std::vector<double> us;
  for (auto _ : state) {
    const auto t = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(pool.apply(identity, 1));
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
  }
  std::sort(us.begin(), us.end());
  state.counters["median_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
}
BENCHMARK(BM_apply_round_trip)->Unit(benchmark::kMicrosecond)->UseRealTime()->Iterations(20'000);

// map of 10^7 ints with results: items/s (target >= 100 M/s).
void BM_map_1e7(benchmark::State& state) {
  auto& pool = shared_pool();
  std::vector<int> in(10'000'000);
  for (int i = 0; i < static_cast<int>(in.size()); ++i) in[static_cast<std::size_t>(i)] = i;
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(identity, in));
  state.counters["items_per_s"] = benchmark::Counter(1e7 * static_cast<double>(state.iterations()),
                                                     benchmark::Counter::kIsRate);
}
BENCHMARK(BM_map_1e7)->Unit(benchmark::kMillisecond)->UseRealTime();

// Row-counting map, 200,000 rows (target <= 5 ms).
void BM_rowcount_map(benchmark::State& state) {
  auto& pool = shared_pool();
  std::mt19937 gen(100);
  std::uniform_int_distribution<int> dist(0, 9);
  std::vector<Row> data(200'000);
  for (auto& r : data)
    for (int& v : r) v = dist(gen);
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(count_row, data));
}
BENCHMARK(BM_rowcount_map)->Unit(benchmark::kMillisecond)->UseRealTime();

// A pool of 2, created and torn down (target <= 2 ms).
void BM_pool_create_teardown(benchmark::State& state) {
  for (auto _ : state) {
    mp::Pool pool(2);
    benchmark::DoNotOptimize(pool.size());
  }
}
BENCHMARK(BM_pool_create_teardown)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same with one apply: every worker is forked and joined (a pool closed
// before its spawner ran forks no worker at all, which the row above sees).
void BM_pool_create_apply_teardown(benchmark::State& state) {
  for (auto _ : state) {
    mp::Pool pool(2);
    benchmark::DoNotOptimize(pool.apply(identity, 1));
  }
}
BENCHMARK(BM_pool_create_apply_teardown)->Unit(benchmark::kMillisecond)->UseRealTime();

// The floor under the rows above: fork this process, _exit, waitpid. A pool's
// teardown must wait for new processes to be scheduled once; on a loaded
// machine a new task waits about one scheduler slice (~4 ms here), so read
// create+teardown against this row of the same run.
void BM_fork_exit_wait_floor(benchmark::State& state) {
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
}
BENCHMARK(BM_fork_exit_wait_floor)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Nanoseconds on a CPU of this process's descendants (/proc/<pid>/schedstat,
/// exact, where /proc/<pid>/stat counts 10 ms ticks).
double descendant_cpu_ns(pid_t root) {
  std::vector<pid_t> family{root};
  for (bool grew = true; grew;) {
    grew = false;
    for (pid_t p : std::vector<pid_t>(family))
      for (pid_t c : mp_test::children_of(p))
        if (std::count(family.begin(), family.end(), c) == 0) {
          family.push_back(c);
          grew = true;
        }
  }
  double total = 0;
  for (std::size_t i = 1; i < family.size(); ++i) {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(family[i]) + "/schedstat").c_str(), "r");
    if (f == nullptr) continue;
    unsigned long long ns = 0;
    if (std::fscanf(f, "%llu", &ns) == 1) total += static_cast<double>(ns);
    std::fclose(f);
  }
  return total;
}

// Idle pool: CPU its processes use over 3 s of idleness, in % of one CPU
// (target 0%). The parent's share is its result thread's spawner check.
void BM_idle_pool_cpu(benchmark::State& state) {
  constexpr double secs = 3;
  for (auto _ : state) {
    mp::Pool pool(2);
    pool.apply(identity, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past every spin
    const double w0 = descendant_cpu_ns(::getpid());
    rusage r0{}, r1{};
    ::getrusage(RUSAGE_SELF, &r0);
    std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    ::getrusage(RUSAGE_SELF, &r1);  // before the /proc scan, which is not the pool's
    const double w1 = descendant_cpu_ns(::getpid());
    auto us = [](const rusage& r) {
      return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 +
             static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
    };
    state.counters["parent_cpu_pct"] = (us(r1) - us(r0)) / (secs * 1e4);
    state.counters["worker_cpu_pct"] = (w1 - w0) / (secs * 1e7);
  }
}
BENCHMARK(BM_idle_pool_cpu)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
