// mp/event.hpp - mp::Event: a flag processes wait on (Python's
// multiprocessing.Event).
//
// The event lives in its own anonymous shared segment, mapped at construction:
// create it BEFORE starting the Process or Pool that uses it. Copies of the
// handle refer to the same event. An Event has no owner, so a dying process
// cannot leave it in a bad state.
//
// wait() spins briefly (a set() from another core is usually seen within a
// few microseconds) and then sleeps on a futex; set() makes the futex call
// only when someone sleeps.
//
//   layout (after the 64-byte SegmentHeader):
//   +------------------------------------------+
//   | flag    u32 atomic  0 or 1; the futex word |
//   | waiters u32 atomic  processes asleep       |
//   +------------------------------------------+
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <mp/detail/futex.hpp>
#include <mp/detail/shared_object.hpp>

namespace mp {
namespace detail {

struct EventLayout {
  std::atomic<std::uint32_t> flag;
  std::atomic<std::uint32_t> waiters;
};

inline constexpr std::uint64_t event_magic = 0x6d702d4576656e31;  // "mp-Even1"

}  // namespace detail

/// A shared flag: set() raises it and wakes every waiter, clear() lowers it,
/// wait() blocks while it is down.
class Event {
public:
  /// Spin iterations wait() tries before it sleeps (about 2-5 µs).
  static constexpr int spin_iterations = 2000;

  /// Creates a cleared event in a new shared segment. Throws mp::Error if
  /// shared memory cannot be mapped.
  Event() : s_(detail::SharedObject<detail::EventLayout>::make(detail::event_magic, 1, 0, [](auto&) {})) {}

  /// Whether the flag is set now. Never blocks; safe across threads and processes.
  [[nodiscard]] bool is_set() const noexcept { return s_->flag.load(std::memory_order_acquire) != 0; }

  /// Sets the flag and wakes every waiter. Never blocks; safe everywhere.
  void set() noexcept {
    detail::EventLayout& l = *s_;
    l.flag.store(1);  // seq_cst: pairs with the waiter's waiters.fetch_add
    if (l.waiters.load() != 0) detail::futex_wake_all(l.flag);
  }

  /// Lowers the flag. Never blocks; safe everywhere.
  void clear() noexcept { s_->flag.store(0); }

  /// Blocks until the flag is set. Throws std::system_error only if the
  /// futex call fails. Safe across threads and processes.
  void wait() { wait_until(detail::Clock::time_point::max()); }

  /// Blocks at most `timeout`; returns whether the flag is set.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

private:
  bool wait_until(detail::Clock::time_point deadline) {
    detail::EventLayout& l = *s_;
    for (int i = 0; i < spin_iterations; ++i) {
      if (is_set()) return true;
      detail::cpu_relax();
    }
    for (;;) {
      l.waiters.fetch_add(1);
      bool in_time = l.flag.load() != 0 || detail::futex_wait(l.flag, 0, deadline);
      l.waiters.fetch_sub(1);
      if (is_set()) return true;
      if (!in_time) return false;
    }
  }

  detail::SharedObject<detail::EventLayout> s_;
};

}  // namespace mp
