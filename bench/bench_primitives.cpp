// bench_primitives - costs of mp's locks and of waking another process.
//
//   cmake --preset release && cmake --build build/release --target bench_primitives -j2
//   build/release/bench/bench_primitives --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Targets: Lock acquire+release without contention <= 50 ns. Event
// set-to-wake latency between two processes, reported beside a Pipe
// ping-pong measured in the same run: the pair's round trip is two wakes,
// so the one-way latency is half of each round-trip time. Arg 0 pins both
// processes to one CPU, arg 1 to two different CPUs (when there are two).
#include <benchmark/benchmark.h>

#include <mutex>
#include <sched.h>

#include <mp/event.hpp>
#include <mp/lock.hpp>
#include <mp/pipe.hpp>
#include <mp/process.hpp>
#include <mp/semaphore.hpp>
#include <mp/sharedctypes.hpp>

namespace {

void BM_LockAcquireRelease(benchmark::State& state) {
  mp::Lock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_LockAcquireRelease);

void BM_LockGuard(benchmark::State& state) {
  mp::Lock lock;
  for (auto _ : state) {
    std::lock_guard g(lock);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_LockGuard);

void BM_RLockAcquireRelease(benchmark::State& state) {
  mp::RLock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_RLockAcquireRelease);

void BM_SemaphoreAcquireRelease(benchmark::State& state) {
  mp::Semaphore s(1);
  for (auto _ : state) {
    s.acquire();
    s.release();
  }
}
BENCHMARK(BM_SemaphoreAcquireRelease);

void BM_ValueIncrementUnderLock(benchmark::State& state) {
  mp::Value<long> v(0);
  for (auto _ : state) {
    std::lock_guard g(v.get_lock());
    ++v.value();
  }
  benchmark::DoNotOptimize(v.value());
}
BENCHMARK(BM_ValueIncrementUnderLock);

/// Pins the calling process to CPU `cpu` of the allowed set (no-op if absent).
void pin_to(int nth) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  int seen = 0;
  for (std::size_t c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (seen++ == nth || c == CPU_SETSIZE - 1) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
}

/// Restores the process's affinity to what it was at construction.
struct AffinityGuard {
  cpu_set_t saved{};
  AffinityGuard() { sched_getaffinity(0, sizeof saved, &saved); }
  ~AffinityGuard() { sched_setaffinity(0, sizeof saved, &saved); }
};

void BM_EventPingPong(benchmark::State& state) {
  AffinityGuard restore;
  const int other_cpu = static_cast<int>(state.range(0));
  mp::Event ping, pong, stop;
  mp::Process echo([&] {
    pin_to(other_cpu);
    for (;;) {
      ping.wait();
      ping.clear();
      if (stop.is_set()) return;
      pong.set();
    }
  });
  echo.start();
  pin_to(0);
  for (auto _ : state) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  stop.set();
  ping.set();
  echo.join();
  state.counters["one_way_ns"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_EventPingPong)->Arg(0)->Arg(1)->UseRealTime();

void BM_PipePingPong(benchmark::State& state) {
  AffinityGuard restore;
  const int other_cpu = static_cast<int>(state.range(0));
  auto ends = mp::Pipe<int>();
  mp::Connection<int>& mine = ends.first;
  mp::Process echo(
      [other_cpu, &mine](mp::Connection<int> c) {
        mine.close();  // the child's copy of the parent's end, or it never sees EOF
        pin_to(other_cpu);
        try {
          for (;;) c.send(c.recv());
        } catch (const mp::ClosedError&) {
        }
      },
      std::move(ends.second));
  echo.start();
  pin_to(0);
  int x = 0;
  for (auto _ : state) {
    mine.send(x);
    x = mine.recv();
  }
  mine.close();
  echo.join();
  state.counters["one_way_ns"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PipePingPong)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
