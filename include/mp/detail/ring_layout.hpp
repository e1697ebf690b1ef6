// mp/detail/ring_layout.hpp - the shared-memory layout of a byte ring, its
// frame header, and the wait/wake protocol (spin briefly, then futex).
//
// A ring lives at a byte offset X (a multiple of cache_line) inside a segment
// whose owner is someone else (a Queue's own segment, or the pool's segment
// holding many rings). Only offsets are stored; every process adds its own
// mapping address.
//
//   X +   0  +----------------------------------------------------------+
//            | line 0, fixed after init: magic, capacity (2^k bytes),    |
//            |   doorbell offset from the segment base (0 = none)        |
//   X +  64  | line 1, writer's: head (bytes published, monotonic u64),  |
//            |   written (complete messages published), repair log       |
//            |   (w_commit_head, w_commit_written), w_in_message          |
//   X + 128  | line 2, reader's: tail (bytes consumed, monotonic u64),   |
//            |   read (complete messages consumed), repair log            |
//   X + 192  | line 3: data_word (futex the reader sleeps on), waiters   |
//   X + 256  | line 4: space_word (futex the writer sleeps on), waiters  |
//   X + 320  +----------------------------------------------------------+
//            | data: capacity bytes; a position p lives at p & (cap-1)   |
//            +----------------------------------------------------------+
//
// Frames are 8-byte aligned and never straddle the end of the data area:
//
//   +--------------+--------------------------------+------------------+
//   | len u32      | type u8 | check (24 bits)      | payload (len B), |
//   |              |                                | padded to 8      |
//   +--------------+--------------------------------+------------------+
//
// check = hash(len, type, position of the frame) >> 40. Because the
// position (a 64-bit byte count that never repeats) is part of it, a stale
// frame from an earlier lap or a corrupt header fails the check and is never
// trusted. Types: WHOLE (a message in one frame), FIRST/MIDDLE/LAST (the
// fragments of a message larger than the ring; FIRST's payload starts with
// the message's total size as u64), PAD (fills to the end of the data area;
// the next frame starts at 0), ABORT (discard the partial message).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <mp/detail/config.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/spin.hpp>
#include <mp/detail/syscall.hpp>

namespace mp::detail {

// ---- frames ------------------------------------------------------------------

enum class FrameType : std::uint8_t { whole = 1, first = 2, middle = 3, last = 4, pad = 5, abort = 6 };

struct FrameHeader {
  std::uint32_t len;  ///< payload bytes (without header or padding)
  std::uint32_t tag;  ///< type in the low 8 bits, check in the high 24
};
static_assert(sizeof(FrameHeader) == 8);

inline constexpr std::size_t frame_align = 8;

/// Bytes a frame with `len` payload bytes occupies in the ring.
constexpr std::uint64_t frame_bytes(std::uint64_t len) noexcept {
  return sizeof(FrameHeader) + align_up(len, frame_align);
}

/// The 24-bit check of a frame header at ring position pos.
constexpr std::uint32_t frame_check(std::uint32_t len, FrameType type, std::uint64_t pos) noexcept {
  std::uint64_t x = pos * 0x9E3779B97F4A7C15ull + ((std::uint64_t{len} << 8) | static_cast<std::uint8_t>(type)) +
                    0x6d70'7269'6e67ull;  // "mpring"
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return static_cast<std::uint32_t>(x >> 40);
}

constexpr FrameHeader make_frame(std::uint32_t len, FrameType type, std::uint64_t pos) noexcept {
  return FrameHeader{len, static_cast<std::uint32_t>(static_cast<std::uint8_t>(type)) | (frame_check(len, type, pos) << 8)};
}

constexpr FrameType frame_type(const FrameHeader& h) noexcept { return static_cast<FrameType>(h.tag & 0xffu); }

// ---- the control block -------------------------------------------------------

inline constexpr std::uint64_t ring_magic = 0x676e6972'5f706d00ull;  // "\0mp_ring"

struct RingHeader {
  // line 0: fixed after init
  alignas(cache_line) std::uint64_t magic;
  std::uint64_t capacity;
  std::uint64_t doorbell;  ///< offset of a Doorbell from the segment base; 0 = none
  // line 1: written by the (current) writer only
  alignas(cache_line) std::atomic<std::uint64_t> head;
  std::atomic<std::uint64_t> written;
  std::atomic<std::uint64_t> w_commit_head;     ///< head a message-completing publish stores...
  std::atomic<std::uint64_t> w_commit_written;  ///< ...and `written` after it (repair log)
  std::atomic<std::uint32_t> w_in_message;      ///< 1: fragments published, LAST not yet: ABORT owed
  // line 2: written by the (current) reader only
  alignas(cache_line) std::atomic<std::uint64_t> tail;
  std::atomic<std::uint64_t> read;
  std::atomic<std::uint64_t> r_commit_tail;
  std::atomic<std::uint64_t> r_commit_read;
  // line 3: the reader sleeps here; the writer wakes it
  alignas(cache_line) std::atomic<std::uint32_t> data_word;
  std::atomic<std::uint32_t> data_waiters;
  // line 4: the writer sleeps here (space, or a queue's maxsize); the reader wakes it
  alignas(cache_line) std::atomic<std::uint32_t> space_word;
  std::atomic<std::uint32_t> space_waiters;
};
static_assert(sizeof(RingHeader) == 5 * cache_line);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// ---- waiting -----------------------------------------------------------------


/// The `sleeper` word's value for a sleeper that saw `word` == seen: never 0
/// (0 means nobody registered), and different for every value of `word` a
/// notifier could have bumped past (wraps after 2^31 wakes).
constexpr std::uint32_t sleep_ticket(std::uint32_t seen) noexcept { return (seen << 1) | 1u; }

/// Waits until ready() is true (returns true) or the deadline passes (returns
/// false): spins for ring_spin_time (spin.hpp), then sleeps on `word`.
///
/// `sleeper` holds 0 or the ticket of the last sleeper to register (see
/// sleep_ticket): a sleeper stores it before its last check of ready(); a
/// notifier that finds a ticket bumps `word`, wakes everyone sleeping there,
/// and only then clears the ticket if it is still the one it found. So the
/// fast path (nobody asleep) makes no system call, a burst of publishes while
/// the sleeper is being woken costs one wake, not one per publish (which
/// matters when both share one core), and a notifier killed at any point of
/// wake_if_waiting leaves the ticket set, so the next notifier still wakes
/// the sleeper (a notifier that cleared the ticket before waking and died in
/// between would lose that wake for good). A notifier killed between
/// publishing and waking may have no successor (the queue's last producer,
/// or a consumer that emptied the ring): the next one to take its robust lock
/// wakes for it (repair_reader/repair_writer), and the sleeper looks at
/// ready() by itself once per lost_wake_recheck (futex.hpp) in any case. A
/// sleeper that died or timed out leaves at most one needless wake behind.
template <class Ready>
bool spin_then_wait(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeper, Ready&& ready,
                    Clock::time_point deadline) {
  if (spin_until(ready, {ring_spin_time, deadline, false})) return true;
  for (;;) {
    if (ready()) return true;
    if (Clock::now() >= deadline) return false;
    const std::uint32_t seen = word.load(std::memory_order_acquire);
    sleeper.store(sleep_ticket(seen), std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!ready()) futex_wait_rechecking(word, seen, deadline);
  }
}

/// The notifier's half of spin_then_wait. Tests (TestAccess) run it up to a
/// step, to check that a notifier killed after that step still leaves the
/// sleeper to the next one.
class Notifier {
public:
  /// After publishing (and a seq_cst fence): if a sleeper registered, bumps
  /// the word, wakes every sleeper, then withdraws the ticket it found (a
  /// sleeper that registered since keeps its own). A notifier killed
  /// between any two of these steps loses no wake: see spin_then_wait.
  static void wake_if_waiting(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeper) noexcept {
    run(word, sleeper, Step::all);
  }

private:
  friend struct TestAccess;
  enum class Step { look, bump, bump_and_wake, all };

  static void run(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeper, Step upto) noexcept {
    std::uint32_t ticket = sleeper.load(std::memory_order_relaxed);
    if (upto == Step::look || ticket == 0) return;
    word.fetch_add(1, std::memory_order_seq_cst);
    if (upto == Step::bump) return;
    futex_wake_all(word);
    if (upto == Step::bump_and_wake) return;
    sleeper.compare_exchange_strong(ticket, 0, std::memory_order_seq_cst, std::memory_order_relaxed);
  }
};

/// Notifier::wake_if_waiting.
inline void wake_if_waiting(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeper) noexcept {
  Notifier::wake_if_waiting(word, sleeper);
}

/// A shared "something is ready" bell, so one consumer can sleep on many
/// channels at once. Lives in shared memory (init() in place, one per cache
/// line); rings refer to it by its offset from the segment base and ring it
/// after every publish. Safe across threads and processes.
struct alignas(cache_line) Doorbell {
  std::atomic<std::uint32_t> seq;
  std::atomic<std::uint32_t> waiters;  ///< sleeper ticket (see spin_then_wait)

  /// Initialises in place. Call once, before any ring that refers to it is used.
  void init() noexcept {
    seq.store(0, std::memory_order_relaxed);
    waiters.store(0, std::memory_order_release);
  }

  /// Wakes the sleepers if there are any; no system call otherwise. Never
  /// blocks. Rings call this after each publish.
  void notify() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_if_waiting(seq, waiters);
  }

  /// Wakes every sleeper unconditionally (e.g. to make a result thread look
  /// at a shutdown flag). Never blocks.
  void notify_always() noexcept {
    seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(seq);
  }

  /// Blocks until ready() returns true (then true) or the deadline passes
  /// (then false). ready() is called repeatedly (e.g. "does any of my
  /// channels have data?"); spins briefly, then sleeps without using CPU.
  template <class Ready>
  bool wait(Ready&& ready, Clock::time_point deadline = Clock::time_point::max()) {
    return spin_then_wait(seq, waiters, ready, deadline);
  }
};
static_assert(sizeof(Doorbell) == cache_line);

}  // namespace mp::detail
