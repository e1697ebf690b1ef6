// mp/detail/pool_layout.hpp - the fork backend's one anonymous segment, mapped
// before any fork, and the loop a worker process runs in it.
//
//   0          +--------------------------------------------------+
//              | SegmentHeader (magic, version, size)             |
//   64         +--------------------------------------------------+
//              | PoolCtl: doorbell (the parent's result thread     |
//              |   sleeps on it), events (bumped by the spawner)   |
//   64 + 192   +--------------------------------------------------+
//              | WorkerSlot[n], one cache line each: pid, state,   |
//              |   wait status, stop, tasks started               |
//   slots_end  +--------------------------------------------------+
//              | worker 0: task channel   (parent -> worker)       |
//              |           result channel (worker -> parent)       |
//              | worker 1: ...                                     |
//              +--------------------------------------------------+
//
// Nothing is shared between two workers: a dying worker can damage only its
// own slot and two channels, which the parent resets before a replacement
// starts.
#pragma once

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <sys/prctl.h>
#include <unistd.h>
#include <vector>

#include <mp/detail/config.hpp>
#include <mp/detail/pool_channel.hpp>
#include <mp/detail/shm.hpp>
#include <mp/detail/task.hpp>

namespace mp::detail {

inline constexpr std::uint64_t pool_magic = 0x6d70'506f'6f6c'0001ULL;  // "mpPool" v1
inline constexpr std::uint32_t pool_layout_version = 1;

struct alignas(cache_line) PoolCtl {
  alignas(cache_line) Bell doorbell;                      // rung by workers and the spawner
  alignas(cache_line) std::atomic<std::uint32_t> events;  // bumped by the spawner on spawn/death
  alignas(cache_line) std::atomic<std::uint32_t> spare;
};

enum class SlotState : std::uint32_t { spawning = 0, alive = 1, dead = 2 };

struct alignas(cache_line) WorkerSlot {
  std::atomic<std::int32_t> pid{0};
  std::atomic<std::uint32_t> state{0};   // SlotState, written by the spawner (alive, dead) and parent (spawning)
  std::atomic<std::int32_t> status{0};   // waitpid status once dead
  std::atomic<std::uint32_t> stop{0};    // parent: exit once the task channel is empty
  std::atomic<std::uint64_t> started{0}; // tasks the current worker has begun (read whole)
};

/// Offsets of everything in the pool segment.
struct PoolLayout {
  unsigned workers = 0;
  std::size_t capacity = 0;  // bytes of data in each channel

  static constexpr std::size_t ctl_offset = segment_data_offset;
  [[nodiscard]] std::size_t slot_offset(unsigned i) const noexcept {
    return ctl_offset + sizeof(PoolCtl) + i * sizeof(WorkerSlot);
  }
  [[nodiscard]] std::size_t channel_offset(unsigned i, bool result) const noexcept {
    const std::size_t first = align_up(slot_offset(workers), 4096);
    return first + (2 * i + (result ? 1 : 0)) * align_up(channel_bytes(capacity), 4096);
  }
  [[nodiscard]] std::size_t total() const noexcept { return channel_offset(workers, false); }
};

/// The pool segment mapped in this process, with typed accessors.
class PoolSegment {
public:
  PoolSegment(unsigned workers, std::size_t capacity) : layout_{workers, capacity} {
    seg_ = Segment::anonymous(layout_.total());
    new (seg_.at<PoolCtl>(PoolLayout::ctl_offset)) PoolCtl();
    for (unsigned i = 0; i < workers; ++i) {
      new (seg_.at<WorkerSlot>(layout_.slot_offset(i))) WorkerSlot();
      Channel::init(seg_.base() + layout_.channel_offset(i, false));
      Channel::init(seg_.base() + layout_.channel_offset(i, true));
    }
    seg_.publish(pool_magic, pool_layout_version);
  }

  [[nodiscard]] PoolCtl& ctl() const noexcept { return *seg_.at<PoolCtl>(PoolLayout::ctl_offset); }
  [[nodiscard]] WorkerSlot& slot(unsigned i) const noexcept { return *seg_.at<WorkerSlot>(layout_.slot_offset(i)); }
  /// The task channel of worker i (its consumer rings nothing; its producer
  /// rings the channel's own bell, which the worker sleeps on).
  [[nodiscard]] Channel task_channel(unsigned i) const noexcept {
    Channel c(seg_.base() + layout_.channel_offset(i, false), layout_.capacity, nullptr);
    c.space_bell_ = &ctl().doorbell;
    return c;
  }
  /// The result channel of worker i: its producer rings the parent's doorbell.
  [[nodiscard]] Channel result_channel(unsigned i) const noexcept {
    return Channel(seg_.base() + layout_.channel_offset(i, true), layout_.capacity, &ctl().doorbell);
  }
  [[nodiscard]] unsigned workers() const noexcept { return layout_.workers; }

private:
  PoolLayout layout_;
  Segment seg_;
};

/// How long a waiter spins before it sleeps on a futex (ns).
inline constexpr std::int64_t worker_spin_ns = 50'000;
inline constexpr std::int64_t parent_spin_ns = 30'000;

/// A worker's ResultOut: the result channel, blocking while it is full.
class ChannelOut final : public ResultOut {
public:
  explicit ChannelOut(Channel& ch) noexcept : ch_(ch) {}
  void write(std::size_t n, EncodeRef enc) override { ch_.write(n, enc, worker_spin_ns); }

private:
  Channel& ch_;
};

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

/// The worker loop: run the initializer, then read tasks until told to stop
/// or maxtasks is reached. Returns the exit code. Runs in the worker process.
inline int worker_main(const PoolSegment& seg, unsigned i, std::span<const std::byte> initializer,
                       unsigned maxtasks) {
  WorkerSlot& slot = seg.slot(i);
  Channel tasks = seg.task_channel(i);
  Channel results = seg.result_channel(i);
  if (!initializer.empty()) {
    NullOut null;
    run_task(initializer, null);
    if (null.failed) return initializer_failed_exit;
  }
  ChannelOut out(results);
  unsigned done = 0;
  auto run = [&](std::span<const std::byte> msg) {
    slot.started.fetch_add(1, std::memory_order_seq_cst);
    run_task(msg, out);
  };
  for (;;) {
    if (tasks.try_read(run)) {
      if (maxtasks != 0 && ++done >= maxtasks) break;
      continue;
    }
    if (slot.stop.load(std::memory_order_acquire) != 0 && tasks.empty()) break;
    tasks.wait_data([&] { return slot.stop.load(std::memory_order_acquire) != 0; }, worker_spin_ns);
  }
  return 0;
}

}  // namespace mp::detail
