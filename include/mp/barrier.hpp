// mp/barrier.hpp - mp::Barrier: n processes wait until all have arrived
// (Python's multiprocessing.Barrier).
//
// The barrier lives in its own anonymous shared segment, mapped at
// construction: create it BEFORE starting the Process or Pool that uses it.
// Copies of the handle refer to the same barrier.
//
// Breaking: abort(), reset() while processes wait, or a wait(timeout) that
// runs out makes every current waiter throw mp::BrokenBarrierError; after
// abort() or a timeout, later waits throw too until reset(). A process that
// dies inside the barrier's short critical section breaks it as well. A
// party that dies before it arrives cannot be told apart from a slow one:
// the others wait, as in Python; use wait(timeout) when that can happen.
//
//   layout (after the 64-byte SegmentHeader):
//   +----------------------------------------------------------------+
//   | RobustMutex m        guards count and the transitions of state  |
//   | state u32 atomic     generation << 1 | broken bit; futex word   |
//   | parties u32 | count u32 (arrived in this generation)           |
//   | ends[16] u32 atomic  ends[g % 16] = g << 1 | 1 if generation g   |
//   |                      completed, g << 1 if it was broken         |
//   +----------------------------------------------------------------+
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <mp/detail/compiled.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shared_object.hpp>
#include <mp/errors.hpp>

namespace mp {
namespace detail {

struct BarrierLayout {
  static constexpr std::uint32_t ring = 16;
  RobustMutex m;
  std::atomic<std::uint32_t> state;
  std::uint32_t parties;
  std::uint32_t count;
  std::atomic<std::uint32_t> ends[ring];
};

inline constexpr std::uint64_t barrier_magic = 0x6d702d4261727231;  // "mp-Barr1"

/// The last arrival's writes (under the lock): records generation `gen` as
/// completed for its waiters and opens the next one. The caller then wakes
/// the waiters; this is all a last arriver killed before that wake leaves.
inline void complete_generation(BarrierLayout& l, std::uint32_t gen) {
  l.ends[gen % l.ring].store((gen << 1) | 1u);
  l.count = 0;
  l.state.store((gen + 1) << 1);
}

}  // namespace detail

/// A barrier for a fixed number of parties, shared by processes.
class Barrier {
public:
  /// Creates a barrier for `parties` (at least 1) in a new shared segment.
  /// Throws std::invalid_argument for 0, mp::Error if memory cannot be mapped.
  explicit Barrier(std::uint32_t parties) : s_(make(parties)) {}

  /// Blocks until `parties` processes have called wait(); returns this
  /// caller's arrival index, 0 .. parties-1 (as Python). Throws
  /// mp::BrokenBarrierError if the barrier is or becomes broken. Safe across
  /// threads and processes.
  std::uint32_t wait() { return wait_until(detail::Clock::time_point::max()); }

  /// As wait(), for at most `timeout`; when it runs out the barrier is broken
  /// (as in Python) and this throws mp::BrokenBarrierError.
  template <class Rep, class Period>
  std::uint32_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  /// Breaks the barrier: current and later waiters throw BrokenBarrierError
  /// until reset(). Never blocks beyond a short critical section.
  void abort();

  /// Returns the barrier to its empty, unbroken state; processes waiting now
  /// throw BrokenBarrierError. Never blocks beyond a short critical section.
  void reset();

  /// The number of parties. Never blocks.
  [[nodiscard]] std::uint32_t parties() const noexcept { return s_->parties; }

  /// How many are waiting now (a snapshot). Never blocks.
  [[nodiscard]] std::uint32_t n_waiting() const noexcept {
    return (s_->state.load() & 1u) != 0 ? 0 : s_->count;
  }
  /// Whether the barrier is broken. Never blocks.
  [[nodiscard]] bool broken() const noexcept { return (s_->state.load() & 1u) != 0; }

private:
  static detail::SharedObject<detail::BarrierLayout> make(std::uint32_t parties);

  /// With m held: marks the current generation broken.
  static void break_locked(detail::BarrierLayout& l);

  /// On a timeout: breaks the barrier if it is still in state `mine` (not
  /// completed meanwhile). Returns whether it did.
  static bool break_if_still(detail::BarrierLayout& l, std::uint32_t mine);

  [[noreturn]] static void throw_broken(const char* why) {
    throw BrokenBarrierError(std::string("mp::Barrier: ") + why);
  }

  std::uint32_t wait_until(detail::Clock::time_point deadline);

  std::uint32_t await(detail::BarrierLayout& l, std::uint32_t mine, std::uint32_t index,
                      detail::Clock::time_point deadline) {
    while (l.state.load() == mine) {
      if (!detail::futex_wait_rechecking(l.state, mine, deadline) && break_if_still(l, mine))
        throw_broken("wait() timed out; the barrier is now broken");
    }
    if (generation_completed(l, mine >> 1)) return index;
    throw_broken("the barrier was aborted or reset while this process waited");
  }

  static bool generation_completed(detail::BarrierLayout& l, std::uint32_t gen) {
    std::uint32_t e = l.ends[gen % l.ring].load();
    if ((e >> 1) != (gen & 0x7fffffffu)) return true;  // overwritten 16 generations later: it went on
    return (e & 1u) != 0;
  }

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  friend struct detail::TestAccess;    // tests reach its shared layout
  Barrier(detail::HandleTag, detail::SharedObject<detail::BarrierLayout> h0) : s_(std::move(h0)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(s_); }

  detail::SharedObject<detail::BarrierLayout> s_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED void Barrier::abort() {
  detail::BarrierLayout& l = *s_;
  {
    detail::RobustLock g(l.m, [&] { break_locked(l); });
    break_locked(l);
  }
  detail::futex_wake_all(l.state);
}

MP_COMPILED void Barrier::reset() {
  detail::BarrierLayout& l = *s_;
  {
    detail::RobustLock g(l.m, [&] { break_locked(l); });
    std::uint32_t gen = l.state.load() >> 1;
    if (l.count != 0) l.ends[gen % l.ring].store(gen << 1);
    l.count = 0;
    l.state.store((gen + 1) << 1);
  }
  detail::futex_wake_all(l.state);
}

MP_COMPILED detail::SharedObject<detail::BarrierLayout> Barrier::make(std::uint32_t parties) {
  if (parties == 0) throw std::invalid_argument("mp::Barrier: parties must be at least 1");
  return detail::SharedObject<detail::BarrierLayout>::make(detail::barrier_magic, 1, 0,
                                                           [&](detail::BarrierLayout& l) {
                                                             l.m.init();
                                                             l.parties = parties;
                                                           });
}

MP_COMPILED void Barrier::break_locked(detail::BarrierLayout& l) {
  std::uint32_t st = l.state.load();
  l.ends[(st >> 1) % l.ring].store((st >> 1) << 1);
  l.count = 0;
  l.state.store(st | 1u);
}

MP_COMPILED bool Barrier::break_if_still(detail::BarrierLayout& l, std::uint32_t mine) {
  {
    detail::RobustLock g(l.m, [&] { break_locked(l); });
    if (l.state.load() != mine) return false;
    break_locked(l);
  }
  detail::futex_wake_all(l.state);
  return true;
}

MP_COMPILED std::uint32_t Barrier::wait_until(detail::Clock::time_point deadline) {
  detail::BarrierLayout& l = *s_;
  std::uint32_t mine = 0;
  std::uint32_t index = 0;
  {
    detail::RobustLock g(l.m, [&] { break_locked(l); });
    mine = l.state.load();
    if ((mine & 1u) != 0) throw_broken("the barrier is broken (aborted or timed out); call reset() first");
    index = l.count++;
    if (l.count == l.parties) {
      detail::complete_generation(l, mine >> 1);
      detail::futex_wake_all(l.state);
      return index;
    }
  }
  return await(l, mine, index, deadline);
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp
