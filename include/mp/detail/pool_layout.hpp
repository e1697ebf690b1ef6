// mp/detail/pool_layout.hpp - the fork backend's one anonymous segment, mapped
// before any fork: its layout, and the task channel's message framing. The
// worker process that runs in it is in worker_process.hpp.
//
//   0          +--------------------------------------------------+
//              | SegmentHeader (magic, version, size)             |
//   64         +--------------------------------------------------+
//              | PoolCtl: doorbell (a Doorbell the parent's result |
//              |   thread sleeps on; every result channel rings    |
//              |   it), events (bumped by the spawner), the        |
//              |   spawner epoch                                   |
//   64 + 192   +--------------------------------------------------+
//              | WorkerSlot[n], three cache lines each: pid,       |
//              |   state, wait status, wants_space, tasks started, |
//              |   when the current task began (for timeouts); the |
//              |   worker's life lock (a robust mutex); the items  |
//              |   of its running chunk it finished (mp::progress: |
//              |   item_counter.hpp), alone on its line            |
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
//   a task message (protocol.hpp; starts with a FunctionId, never empty);
//   a part: PartHeader {part_magic, total, offset} + bytes, for a task
//     message too large to sit in the ring whole; the parent writes parts
//     as space frees, the worker reassembles them (never blocking the
//     parent on a busy worker);
//   an empty message: exit (join's stop).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <thread>

#include <mp/detail/config.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shm.hpp>
#include <mp/detail/spsc.hpp>

namespace mp::detail {

inline constexpr std::uint64_t pool_magic = 0x6d70'506f'6f6c'0005ULL;  // "mpPool" v5
inline constexpr std::uint32_t pool_layout_version = 5;

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
  // Worker: (task number << 32) | items of that chunk finished, relaxed
  // stores after each item; on its own line, so the stores never slow the
  // parent's reads of the fields above.
  alignas(cache_line) std::atomic<std::uint64_t> items{0};
};
static_assert(sizeof(WorkerSlot) == 3 * cache_line);

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
  /// Its reader always reads, so its writes prefer the ring's warm start.
  [[nodiscard]] SpscChannel task_channel(unsigned i) const {
    SpscChannel ch = SpscChannel::attach(seg_.base(), layout_.channel_offset(i, false));
    ch.prefer_warm_start();
    return ch;
  }
  /// A view of worker i's result channel (its producer rings the doorbell).
  /// Its reader always reads, so its writes prefer the ring's warm start.
  [[nodiscard]] SpscChannel result_channel(unsigned i) const {
    SpscChannel ch = SpscChannel::attach(seg_.base(), layout_.channel_offset(i, true));
    ch.prefer_warm_start();
    return ch;
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

}  // namespace mp::detail
