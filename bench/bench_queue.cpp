// bench_queue: mp::Queue and the SPSC channel between two processes, and
// Python's multiprocessing.Queue measured the same way in the same run.
//
//   cmake --preset release && cmake --build build/release --target bench_queue -j2
//   build/release/bench/bench_queue --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Each benchmark forks one consumer process that lives for the whole run. An
// iteration sends a batch of messages and waits for the consumer's ack, so
// the time covers delivery, not just enqueueing. Unpinned, except
// BM_Spsc_1to1_u64/1 and /2 and BM_Shm_floor_1to1 (see there): whether the
// two processes share a core changes the SPSC figure several times over.
// BM_Python_Queue_1to1 runs bench/python_queue.py (multiprocessing.Queue,
// 1 producer -> 1 consumer, 200k ints) and reports its rate the same way.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <sched.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <mp/detail/shm.hpp>
#include <mp/detail/spsc.hpp>
#include <mp/queue.hpp>

namespace {

using mp::detail::Clock;
using mp::detail::Segment;
using mp::detail::SpscChannel;

template <class Body>
pid_t fork_consumer(Body body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  return pid;
}

void reap(benchmark::State& state, pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("consumer process failed");
}

// mp::Queue<int>, 1 producer process -> 1 consumer process, small ints.
void BM_Queue_1to1_ints(benchmark::State& state) {
  const int batch = 1'000'000;
  mp::Queue<int> q;
  mp::Queue<int> ack;
  pid_t pid = fork_consumer([&] {
    long sum = 0;
    for (int n = 0;;) {
      const int v = q.get();
      if (v < 0) break;
      sum += v;
      if (++n == batch) {
        ack.put(static_cast<int>(sum & 0xffff));
        n = 0;
      }
    }
  });
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) q.put(i);
    benchmark::DoNotOptimize(ack.get());
  }
  q.put(-1);
  reap(state, pid);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_Queue_1to1_ints)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Places the producer (this process, for the benchmark's duration) and the
/// consumer it forks: mode 0 leaves both to the scheduler, 1 puts them on
/// CPUs 0 and 1, 2 both on CPU 0.
class Pinning {
public:
  explicit Pinning(std::int64_t mode) : mode_(mode) {
    ::sched_getaffinity(0, sizeof saved_, &saved_);
    if (mode_ != 0) to_cpu(0);
  }
  ~Pinning() {
    if (mode_ != 0) ::sched_setaffinity(0, sizeof saved_, &saved_);
  }
  Pinning(const Pinning&) = delete;
  Pinning& operator=(const Pinning&) = delete;
  void consumer() const {
    if (mode_ != 0) to_cpu(mode_ == 1 ? 1u : 0u);
  }

private:
  static void to_cpu(std::size_t cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof set, &set);
  }
  std::int64_t mode_;
  cpu_set_t saved_{};
};

struct ChannelPair {
  explicit ChannelPair(std::size_t cap)
      : seg(Segment::anonymous(64 + 2 * SpscChannel::bytes_needed(cap) + 64)),
        data(SpscChannel::create(seg.base(), 64, cap)),
        back(SpscChannel::create(seg.base(), 64 + SpscChannel::bytes_needed(cap), cap)),
        consumer_cpu(::new (static_cast<void*>(seg.base() + 64 + 2 * SpscChannel::bytes_needed(cap)))
                         std::atomic<int>(-1)) {}
  Segment seg;
  SpscChannel data, back;
  std::atomic<int>* consumer_cpu;  ///< where the consumer last ran (sampled)
};

void send_u64(SpscChannel& ch, std::uint64_t v) {
  ch.send(sizeof v, [&](std::byte* d) { std::memcpy(d, &v, sizeof v); });
}

// The lock-free SPSC channel, 8-byte messages, consumer reading in batches.
// Arg: 0 unpinned (where the scheduler puts them: on a loaded 2-core VM
// often one core); 1 producer on CPU 0, consumer on CPU 1 (side by side:
// the cache lines move between the cores); 2 both on CPU 0 (they take
// turns, each sleeping while the other runs). Counter same_core: the share
// of samples (one per 64Ki messages) in which they ran on the same core.
void BM_Spsc_1to1_u64(benchmark::State& state) {
  const std::uint64_t batch = 4'000'000;
  ChannelPair p(1 << 18);
  const Pinning pin(state.range(0));
  pid_t pid = fork_consumer([&] {
    pin.consumer();
    std::uint64_t n = 0, sum = 0;
    bool stop = false;
    while (!stop) {
      p.data.recv_batch([&](std::span<const std::byte> m) {
        std::uint64_t v;
        std::memcpy(&v, m.data(), sizeof v);
        if (v == ~std::uint64_t{0}) stop = true;
        sum += v;
        if ((++n & 0xffff) == 0) p.consumer_cpu->store(::sched_getcpu(), std::memory_order_relaxed);
        if (n == batch) {
          send_u64(p.back, sum);
          n = 0;
        }
      }, 256);
    }
  });
  std::int64_t same = 0, samples = 0;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < batch; ++i) {
      send_u64(p.data, i);
      if ((i & 0xffff) == 0xffff) {
        same += ::sched_getcpu() == p.consumer_cpu->load(std::memory_order_relaxed) ? 1 : 0;
        ++samples;
      }
    }
    p.back.recv([](std::span<const std::byte> m) { benchmark::DoNotOptimize(m.data()); });
  }
  send_u64(p.data, ~std::uint64_t{0});
  reap(state, pid);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.counters["same_core"] = samples != 0 ? static_cast<double>(same) / static_cast<double>(samples) : 0.0;
}
BENCHMARK(BM_Spsc_1to1_u64)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The floor under BM_Spsc_1to1_u64 on this machine: no frames, no channel,
// just what any 1 -> 1 shared-memory queue that publishes each message with
// a full barrier (as the ring must, for its sleeper handshake) pays. The
// producer stores a u64 into a 16-byte slot of a 256 KiB array, then
// head.exchange (seq_cst) and a relaxed load of a "sleeper" word, per
// message; the consumer reads head, sums the slots up to it and stores tail
// (exchange) once per look. Arg 0: the consumer looks at head continuously;
// arg 1: at most once per SpscChannel::poll_gap, as recv_batch does. The
// two processes are on CPUs 0 and 1 (Pinning 1): side by side, as the
// floor of BM_Spsc_1to1_u64/1.
struct alignas(64) FloorShm {
  static constexpr std::uint64_t slots = 1 << 14;
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};
  alignas(64) std::atomic<std::uint64_t> sleeper{0};
  alignas(64) std::uint64_t slot[slots][2];
};

constexpr std::uint64_t floor_stop = ~std::uint64_t{0};  // head value that ends the consumer
constexpr std::chrono::nanoseconds floor_gap{1'000};      // as SpscChannel::poll_gap

void floor_consumer(FloorShm& s, bool paced) {
  std::uint64_t t = 0, sum = 0;
  for (;;) {
    const std::uint64_t h = s.head.load(std::memory_order_acquire);
    if (h == floor_stop) break;
    if (h == t) {
      mp::detail::cpu_relax();
      continue;
    }
    for (; t < h; ++t) sum += s.slot[t % FloorShm::slots][0];
    s.tail.exchange(t, std::memory_order_seq_cst);
    if (paced) {
      const auto until = Clock::now() + floor_gap;
      while (Clock::now() < until) mp::detail::cpu_relax();
    }
  }
  benchmark::DoNotOptimize(sum);
}

void BM_Shm_floor_1to1(benchmark::State& state) {
  const std::uint64_t batch = 4'000'000;
  Segment seg = Segment::anonymous(64 + sizeof(FloorShm));
  auto* s = ::new (static_cast<void*>(seg.base() + 64)) FloorShm;
  const Pinning pin(1);
  pid_t pid = fork_consumer([&] {
    pin.consumer();
    floor_consumer(*s, state.range(0) != 0);
  });
  std::uint64_t i = 0, cached_tail = 0, sink = 0;
  for (auto _ : state) {
    for (const std::uint64_t end = i + batch; i < end; ++i) {
      while (i - cached_tail >= FloorShm::slots - 1) cached_tail = s->tail.load(std::memory_order_acquire);
      s->slot[i % FloorShm::slots][0] = i;
      s->head.exchange(i + 1, std::memory_order_seq_cst);
      sink += s->sleeper.load(std::memory_order_relaxed);
    }
    while (s->tail.load(std::memory_order_acquire) != i) mp::detail::cpu_relax();  // delivered
  }
  benchmark::DoNotOptimize(sink);
  s->head.store(floor_stop, std::memory_order_release);
  reap(state, pid);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}
BENCHMARK(BM_Shm_floor_1to1)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// One 1 MiB message at a time through mp::Queue<std::vector<std::byte>>
// (ring of 4 MiB, so the message is one frame encoded in place; arg 1 uses
// a 1 MiB ring, where it is fragmented).
void BM_Queue_1MiB(benchmark::State& state) {
  const int batch = 64;
  const std::size_t size = std::size_t{1} << 20;
  mp::QueueOptions o;
  o.capacity = state.range(0) == 0 ? std::size_t{4} << 20 : std::size_t{1} << 20;
  mp::Queue<std::vector<std::byte>> q(o);
  mp::Queue<int> ack;
  pid_t pid = fork_consumer([&] {
    for (int n = 0;;) {
      auto v = q.get();
      if (v.empty()) break;
      benchmark::DoNotOptimize(v.data());
      if (++n == batch) {
        ack.put(1);
        n = 0;
      }
    }
  });
  const std::vector<std::byte> msg(size, std::byte{7});
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) q.put(msg);
    benchmark::DoNotOptimize(ack.get());
  }
  q.put({});
  reap(state, pid);
  state.SetBytesProcessed(state.iterations() * batch * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_Queue_1MiB)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same 1 MiB messages through the raw SPSC channel (4 MiB ring).
void BM_Spsc_1MiB(benchmark::State& state) {
  const int batch = 64;
  const std::size_t size = std::size_t{1} << 20;
  ChannelPair p(std::size_t{4} << 20);
  pid_t pid = fork_consumer([&] {
    std::vector<std::byte> out(size);
    for (int n = 0;;) {
      std::size_t got = 0;
      p.data.recv([&](std::span<const std::byte> m) {
        got = m.size();
        if (got != 0) std::memcpy(out.data(), m.data(), got);
      });
      if (got == 0) break;
      if (++n == batch) {
        send_u64(p.back, 1);
        n = 0;
      }
    }
  });
  const std::vector<std::byte> msg(size, std::byte{7});
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) p.data.send_bytes(msg);
    p.back.recv([](std::span<const std::byte>) {});
  }
  p.data.send_bytes({});
  reap(state, pid);
  state.SetBytesProcessed(state.iterations() * batch * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_Spsc_1MiB)->Unit(benchmark::kMillisecond)->UseRealTime();

// Python's multiprocessing.Queue, 1 -> 1, 200k ints (bench/python_queue.py),
// measured in this run so the ratio is taken on the same noisy machine.
void BM_Python_Queue_1to1(benchmark::State& state) {
  const auto script = std::filesystem::path(__FILE__).parent_path() / "python_queue.py";
  const std::string cmd = "python3 '" + script.string() + "' --seconds 200000";
  double total_s = 0;
  for (auto _ : state) {
    FILE* f = ::popen(cmd.c_str(), "r");
    double s = 0;
    if (f == nullptr || std::fscanf(f, "%lf", &s) != 1 || s <= 0) {
      if (f != nullptr) ::pclose(f);
      state.SkipWithError("python3 bench/python_queue.py did not run");
      return;
    }
    ::pclose(f);
    state.SetIterationTime(s);
    total_s += s;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 200'000);
}
BENCHMARK(BM_Python_Queue_1to1)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
