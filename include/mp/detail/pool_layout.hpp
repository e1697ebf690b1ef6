// mp/detail/pool_layout.hpp - the fork backend's one anonymous segment, mapped
// before any fork, and the loop a worker process runs in it.
//
//   0          +--------------------------------------------------+
//              | SegmentHeader (magic, version, size)             |
//   64         +--------------------------------------------------+
//              | PoolCtl: doorbell (a Doorbell the parent's result |
//              |   thread sleeps on; every result channel rings    |
//              |   it), events (bumped by the spawner), the        |
//              |   spawner epoch                                   |
//   64 + 192   +--------------------------------------------------+
//              | WorkerSlot[n], two cache lines each: pid, state,  |
//              |   wait status, wants_space, tasks started, when   |
//              |   the current task began (for timeouts); the     |
//              |   worker's life lock (a robust mutex)             |
//   slots_end  +--------------------------------------------------+
//   (4 KiB     | worker 0: task channel   (parent -> worker)       |
//    aligned)  |           result channel (worker -> parent)       |
//              | worker 1: ...     (each a detail::SpscChannel,    |
//              |                    4 KiB aligned)                 |
//              +--------------------------------------------------+
//
// Nothing is shared between two workers: a dying worker can damage only its
// own slot and two channels, which the parent re-creates before a
// replacement starts. The segment is mapped lazily: pages of a channel are
// only touched as messages pass, so a pool costs no memset.
//
// Task channel messages (parent -> worker):
//   a task message (task.hpp; starts with a FunctionId, never empty);
//   a part: PartHeader {part_magic, total, offset} + bytes, for a task
//     message too large to sit in the ring whole; the parent writes parts
//     as space frees, the worker reassembles them (never blocking the
//     parent on a busy worker);
//   an empty message: exit (join's stop).
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <cstdint>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <mp/detail/config.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shm.hpp>
#include <mp/detail/spsc.hpp>
#include <mp/detail/task.hpp>

namespace mp::detail {

inline constexpr std::uint64_t pool_magic = 0x6d70'506f'6f6c'0004ULL;  // "mpPool" v4
inline constexpr std::uint32_t pool_layout_version = 4;

struct alignas(cache_line) PoolCtl {
  alignas(cache_line) Doorbell doorbell;                  // rung by result channels and the spawner
  alignas(cache_line) std::atomic<std::uint32_t> events;  // bumped by the spawner on spawn/death
  // Which spawner may start workers: the parent bumps it when a spawner
  // died, before it looks whether that spawner's workers are gone. A worker
  // whose spawner's epoch is older exits before it touches anything.
  alignas(cache_line) std::atomic<std::uint32_t> epoch;
};

enum class SlotState : std::uint32_t { spawning = 0, alive = 1, dead = 2 };

struct alignas(cache_line) WorkerSlot {
  std::atomic<std::int32_t> pid{0};
  std::atomic<std::uint32_t> state{0};        // SlotState, written by the spawner (alive, dead) and parent (spawning)
  std::atomic<std::int32_t> status{0};        // waitpid status once dead
  std::atomic<std::uint32_t> wants_space{0};  // parent: ring my doorbell when you free task-channel space
  std::atomic<std::uint64_t> started{0};      // tasks the current worker has begun (read whole)
  std::atomic<std::uint32_t> used{0};         // the worker began user code (initializer or task)
  std::atomic<std::uint32_t> task_ns{0xffffffffu};  // worker: its recent time per task (ns, smoothed)
  std::atomic<std::int64_t> task_start{0};    // worker: steady_clock ns when it began its current task
  // Held by the slot's worker process for its whole life: when a spawner
  // dies (so nobody reaps its workers for the parent), the parent takes it
  // to know the worker can no longer touch the slot or its channels.
  alignas(cache_line) RobustMutex life;
};
static_assert(sizeof(WorkerSlot) == 2 * cache_line);

/// WorkerSlot::task_ns before the worker measured anything.
inline constexpr std::uint32_t task_ns_unknown = 0xffffffffu;

/// The header of one part of a task message too large for the ring.
struct PartHeader {
  std::uint64_t magic;   // part_magic: never the first word of a FunctionId (a path hash)
  std::uint64_t total;   // bytes of the whole task message
  std::uint64_t offset;  // where this part's bytes go in it
};
inline constexpr std::uint64_t part_magic = 0xffff'7472'6170'706dULL;  // "mppart" + 0xffff

/// Whether msg is a part (rather than a whole task message).
inline bool is_part(std::span<const std::byte> msg) noexcept {
  std::uint64_t m = 0;
  if (msg.size() < sizeof(PartHeader)) return false;
  std::memcpy(&m, msg.data(), sizeof m);
  return m == part_magic;
}

/// Offsets of everything in the pool segment.
struct PoolLayout {
  unsigned workers = 0;
  std::size_t capacity = 0;  // bytes of data in each channel (a power of two)

  static constexpr std::size_t ctl_offset = segment_data_offset;
  [[nodiscard]] std::size_t slot_offset(unsigned i) const noexcept {
    return ctl_offset + sizeof(PoolCtl) + i * sizeof(WorkerSlot);
  }
  [[nodiscard]] std::size_t channel_offset(unsigned i, bool result) const noexcept {
    const std::size_t first = align_up(slot_offset(workers), 4096);
    return first + (2 * i + (result ? 1 : 0)) * align_up(SpscChannel::bytes_needed(capacity), 4096);
  }
  [[nodiscard]] std::size_t total() const noexcept { return channel_offset(workers, false); }
};

/// The pool segment mapped in this process, with typed accessors.
class PoolSegment {
public:
  PoolSegment(unsigned workers, std::size_t capacity) : layout_{workers, Ring::round_capacity(capacity)} {
    seg_ = Segment::anonymous(layout_.total());
    new (seg_.at<PoolCtl>(PoolLayout::ctl_offset)) PoolCtl();
    ctl().doorbell.init();
    for (unsigned i = 0; i < workers; ++i) {
      new (seg_.at<WorkerSlot>(layout_.slot_offset(i))) WorkerSlot();
      slot(i).life.init();
      create_channels(i);
    }
    seg_.publish(pool_magic, pool_layout_version);
  }

  [[nodiscard]] PoolCtl& ctl() const noexcept { return *seg_.at<PoolCtl>(PoolLayout::ctl_offset); }
  [[nodiscard]] WorkerSlot& slot(unsigned i) const noexcept { return *seg_.at<WorkerSlot>(layout_.slot_offset(i)); }

  /// (Re-)creates worker i's two channels, empty. Only while no worker
  /// process uses them (before the spawn, or after the worker was reaped).
  void create_channels(unsigned i) const {
    SpscChannel::create(seg_.base(), layout_.channel_offset(i, false), layout_.capacity);
    SpscChannel::create(seg_.base(), layout_.channel_offset(i, true), layout_.capacity, PoolLayout::ctl_offset);
  }
  /// A view of worker i's task channel (the worker sleeps on its own word).
  [[nodiscard]] SpscChannel task_channel(unsigned i) const {
    return SpscChannel::attach(seg_.base(), layout_.channel_offset(i, false));
  }
  /// A view of worker i's result channel (its producer rings the doorbell).
  [[nodiscard]] SpscChannel result_channel(unsigned i) const {
    return SpscChannel::attach(seg_.base(), layout_.channel_offset(i, true));
  }
  [[nodiscard]] unsigned workers() const noexcept { return layout_.workers; }

  /// For tests: the first header byte of the next unread frame of worker
  /// i's result channel (nullptr when nothing is there). Flipping it makes
  /// that frame corrupt, as a stray write would.
  [[nodiscard]] std::byte* next_result_frame(unsigned i) const noexcept {
    const std::size_t off = layout_.channel_offset(i, true);
    const auto* h = std::launder(reinterpret_cast<const RingHeader*>(seg_.base() + off));
    const std::uint64_t tail = h->tail.load(std::memory_order_acquire);
    if (h->head.load(std::memory_order_acquire) == tail) return nullptr;
    return seg_.base() + off + Ring::header_bytes + (tail & (h->capacity - 1));
  }
  /// For tests: waits until `deadline` for worker i's next result frame and
  /// flips a bit of its header check, if it is a one-frame message. The
  /// caller holds the reading role. Returns whether it did.
  bool corrupt_next_result(unsigned i, Clock::time_point deadline) const {
    std::byte* b = nullptr;
    while ((b = next_result_frame(i)) == nullptr && Clock::now() < deadline) std::this_thread::yield();
    const bool whole = b != nullptr && b[4] == std::byte{static_cast<std::uint8_t>(FrameType::whole)};
    if (whole) b[5] ^= std::byte{0x5a};
    return whole;
  }

private:
  PoolLayout layout_;
  Segment seg_;
};

/// How long a worker spins for its next task before it sleeps on a futex
/// (ns), counted from the end of its last task; an idle pool sleeps.
inline constexpr std::int64_t worker_spin_ns = 100'000;
/// How long the result thread spins for results before it sleeps.
inline constexpr std::int64_t parent_spin_ns = 30'000;

/// Spinning waiters yield the CPU after this long: if the peer they wait
/// for was placed on the same core (other jobs hold the other one), it runs
/// now rather than after a time slice. A round trip between two cores takes
/// ~2 us, so a waiter whose peer runs elsewhere rarely gets here.
inline constexpr std::chrono::nanoseconds spin_before_yield{3'000};

/// Spins until ready() or spin_ns passed, yielding now and then after
/// spin_before_yield; returns ready().
template <class Ready>
bool spin_for(std::int64_t spin_ns, Ready&& ready) {
  if (ready()) return true;
  const auto start = Clock::now();
  const auto stop = start + std::chrono::nanoseconds(spin_ns);
  for (Clock::time_point now = start; now < stop; now = Clock::now()) {
    for (int i = 0; i < 32; ++i) {
      cpu_relax();
      if (ready()) return true;
    }
    if (now - start > spin_before_yield) std::this_thread::yield();
  }
  return ready();
}

/// A worker's ResultOut: the result channel, blocking while it is full.
/// A result above max_bytes is refused with std::length_error, which the
/// trampoline sends back instead (small) as the task's error.
class ChannelOut final : public ResultOut {
public:
  ChannelOut(SpscChannel& ch, std::size_t max_bytes) noexcept : ch_(ch), max_(max_bytes) {}
  void write(std::size_t n, EncodeRef enc) override {
    if (n > max_) {
      throw std::length_error("mp::Pool: a task's result is " + std::to_string(n) +
                              " bytes encoded, more than PoolOptions::max_result_bytes (" + std::to_string(max_) +
                              "); raise that limit or return less");
    }
    ch_.send(n, enc);
  }

private:
  SpscChannel& ch_;
  std::size_t max_;
};

/// What a worker applies to itself after fork.
struct WorkerLimits {
  unsigned maxtasks = 0;             // 0: unlimited
  std::size_t memory = 0;            // RLIMIT_AS in bytes; 0: none
  std::size_t max_result = SIZE_MAX; // bytes of one encoded result
  bool timed = false;                // record when each task begins (task_timeout is set)
};

/// Caps this process's address space (RLIMIT_AS) at `bytes` (0: leaves it).
inline void apply_memory_limit(std::size_t bytes) noexcept {
  if (bytes == 0) return;
  rlimit lim{};
  ::getrlimit(RLIMIT_AS, &lim);
  lim.rlim_cur = static_cast<rlim_t>(bytes);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_cur > lim.rlim_max) lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_AS, &lim);
}

/// Discards a result (the initializer's).
class NullOut final : public ResultOut {
public:
  void write(std::size_t n, EncodeRef enc) override {
    std::vector<std::byte> buf(n);
    enc(buf.data());
    if (n > 0 && buf[0] != std::byte{0}) failed = true;
  }
  bool failed = false;
};

/// Exit code of a worker whose initializer threw.
inline constexpr int initializer_failed_exit = 70;

/// A worker's reading side: whole task messages from the task channel,
/// parts reassembled; an empty message means stop.
class TaskReader {
public:
  TaskReader(SpscChannel& tasks, WorkerSlot& slot, ResultOut& out) : tasks_(tasks), slot_(slot), out_(out) {}

  /// Runs the tasks that arrive (blocking for at least one), at most `max`.
  /// Returns the tasks run; sets stop() when told to exit.
  std::size_t run_some(std::size_t max) {
    std::size_t ran = 0;
    Clock::time_point first{};
    auto on_msg = [&](std::span<const std::byte> msg) {
      if (ran == 0) first = Clock::now();
      if (msg.empty()) {
        stop_ = true;
      } else if (!is_part(msg)) {
        run(msg);
        ++ran;
      } else if (add_part(msg)) {
        run(buf_);
        ++ran;
        buf_.clear();
      }
    };
    spin_for(worker_spin_ns, [&] { return tasks_.readable(); });
    try {
      tasks_.recv_batch(on_msg, max);
    } catch (...) {  // a corrupt frame: that task is lost, answer it so results stay in order
      slot_.started.fetch_add(1, std::memory_order_seq_cst);
      write_current_error(out_, 0);
      ++ran;
    }
    if (ran != 0) note_time(first, ran);
    if (slot_.wants_space.load(std::memory_order_seq_cst) != 0) {
      slot_.wants_space.store(0, std::memory_order_relaxed);
      doorbell_->notify();
    }
    return ran;
  }
  [[nodiscard]] bool stop() const noexcept { return stop_; }
  Doorbell* doorbell_ = nullptr;
  bool timed_ = false;  // record task_start (only the timeout check reads it)

private:
  void run(std::span<const std::byte> msg) {
    slot_.used.store(1, std::memory_order_relaxed);
    if (timed_) slot_.task_start.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    slot_.started.fetch_add(1, std::memory_order_seq_cst);
    run_task(msg, out_);
  }
  /// Publishes the smoothed time per task (the parent sizes its window by it).
  void note_time(Clock::time_point first, std::size_t ran) noexcept {
    const auto per = static_cast<std::uint64_t>((Clock::now() - first).count()) / ran;
    const std::uint32_t old = slot_.task_ns.load(std::memory_order_relaxed);
    const std::uint64_t avg = old == task_ns_unknown ? per : (3 * std::uint64_t{old} + per) / 4;
    slot_.task_ns.store(static_cast<std::uint32_t>(std::min<std::uint64_t>(avg, task_ns_unknown - 1)),
                        std::memory_order_relaxed);
  }

  /// Appends a part; true when the message is complete.
  bool add_part(std::span<const std::byte> msg) {
    PartHeader h;
    std::memcpy(&h, msg.data(), sizeof h);
    if (h.offset == 0) {
      buf_.clear();
      buf_.reserve(static_cast<std::size_t>(h.total));
    }
    if (h.offset != buf_.size()) return false;  // the start of this message was lost
    buf_.insert(buf_.end(), msg.begin() + sizeof h, msg.end());
    return buf_.size() == h.total;
  }

  SpscChannel& tasks_;
  WorkerSlot& slot_;
  ResultOut& out_;
  std::vector<std::byte> buf_;
  bool stop_ = false;
};

/// The worker loop: run the initializer, then read tasks until told to stop
/// or maxtasks is reached. Returns the exit code. Runs in the worker process.
inline int worker_main(const PoolSegment& seg, unsigned i, std::span<const std::byte> initializer,
                       const WorkerLimits& limits) {
  apply_memory_limit(limits.memory);
  const unsigned maxtasks = limits.maxtasks;
  WorkerSlot& slot = seg.slot(i);
  SpscChannel tasks = seg.task_channel(i);
  SpscChannel results = seg.result_channel(i);
  if (!initializer.empty()) {
    slot.used.store(1, std::memory_order_seq_cst);
    NullOut null;
    run_task(initializer, null);
    if (null.failed) return initializer_failed_exit;
  }
  ChannelOut out(results, limits.max_result);
  TaskReader reader(tasks, slot, out);
  reader.doorbell_ = &seg.ctl().doorbell;
  reader.timed_ = limits.timed;
  std::size_t done = 0;
  while (!reader.stop()) {
    const std::size_t max = maxtasks != 0 ? maxtasks - done : 256;
    done += reader.run_some(max);
    if (maxtasks != 0 && done >= maxtasks) break;
  }
  return 0;
}

}  // namespace mp::detail
