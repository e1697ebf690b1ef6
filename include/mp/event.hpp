// mp/event.hpp - mp::Event: a flag processes wait on (Python's
// multiprocessing.Event).
//
// The event lives in its own anonymous shared segment, mapped at construction:
// create it BEFORE starting the Process or Pool that uses it. Copies of the
// handle refer to the same event. An Event has no owner, so a dying process
// cannot leave it in a bad state.
//
// wait() spins for up to 2 µs (MP_EVENT_SPIN_NS) when the process may run on
// more than one CPU -- a set() from another core is then seen in about a
// microsecond, where a futex wake costs tens on a VM -- and then sleeps on a
// futex; set() makes the futex call only when someone sleeps.
//
//   layout (after the 64-byte SegmentHeader):
//   +------------------------------------------+
//   | flag    u32 atomic  0 or 1; the futex word |
//   | waiters u32 atomic  processes asleep       |
//   +------------------------------------------+
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <sched.h>

#include <mp/detail/compiled.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/shared_object.hpp>

#ifndef MP_EVENT_SPIN_NS
#define MP_EVENT_SPIN_NS 2000
#endif

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
  /// How long wait() spins before it sleeps: a set() from another core is
  /// usually seen within a microsecond, while a futex wake there costs tens.
  static constexpr std::chrono::nanoseconds spin_time{MP_EVENT_SPIN_NS};

  /// Creates a cleared event in a new shared segment. Throws mp::Error if
  /// shared memory cannot be mapped.
  Event();

  /// Whether the flag is set now. Never blocks; safe across threads and processes.
  [[nodiscard]] bool is_set() const noexcept { return s_->flag.load(std::memory_order_acquire) != 0; }

  /// Sets the flag and wakes every waiter. Never blocks; safe everywhere.
  void set() noexcept;

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
  bool wait_until(detail::Clock::time_point deadline);

  /// Whether this process may run on more than one CPU (a syscall, ~0.1 µs).
  static bool may_run_elsewhere() noexcept {
    cpu_set_t set;
    return ::sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) > 1;
  }

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  friend struct detail::TestAccess;    // tests reach its shared layout
  Event(detail::HandleTag, detail::SharedObject<detail::EventLayout> h0) : s_(std::move(h0)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(s_); }

  detail::SharedObject<detail::EventLayout> s_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED Event::Event()
    : s_(detail::SharedObject<detail::EventLayout>::make(detail::event_magic, 1, 0, [](auto&) {})) {}

MP_COMPILED void Event::set() noexcept {
  detail::EventLayout& l = *s_;
  l.flag.store(1);  // seq_cst: pairs with the waiter's waiters.fetch_add
  if (l.waiters.load() != 0) detail::futex_wake_all(l.flag);
}

MP_COMPILED bool Event::wait_until(detail::Clock::time_point deadline) {
  detail::EventLayout& l = *s_;
  if (is_set()) return true;
  // Spinning helps only if the setter can run on another CPU meanwhile.
  const auto spin = may_run_elsewhere() ? spin_time : spin_time.zero();
  const auto spin_until = std::min(deadline, detail::Clock::now() + spin);
  do {
    for (int i = 0; i < 16; ++i) {
      if (is_set()) return true;
      detail::cpu_relax();
    }
  } while (detail::Clock::now() < spin_until);
  for (;;) {
    l.waiters.fetch_add(1);
    bool in_time = l.flag.load() != 0 || detail::futex_wait_rechecking(l.flag, 0, deadline);
    l.waiters.fetch_sub(1);
    if (is_set()) return true;
    if (!in_time) return false;
  }
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp
