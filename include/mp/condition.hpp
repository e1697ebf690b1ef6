// mp/condition.hpp - mp::Condition: a condition variable shared by processes
// (Python's multiprocessing.Condition).
//
// A Condition is an mp::Lock plus a sequence word in its own anonymous shared
// segment, mapped at construction: create it BEFORE starting the Process or
// Pool that uses it. Copies of the handle refer to the same condition.
// Python's Condition defaults to an RLock; mp's uses an mp::Lock (its own, or
// one you pass in).
//
// wait() reads the sequence, releases the lock, sleeps until notify() bumps
// the sequence, then re-acquires the lock. Like std::condition_variable, a
// waiter may wake spuriously, and notify(n) may wake more than n waiters:
// those about to sleep, and, within a second, every waiter that slept
// through a notify (sleepers look at the sequence once a second, so a
// notify() killed between its bump and its wake strands nobody). Loop on a
// predicate (wait_for does).
//
//   layout (after the 64-byte SegmentHeader):
//   +------------------------------------------+
//   | seq     u32 atomic  bumped by each notify |
//   | waiters u32 atomic  processes asleep      |
//   +------------------------------------------+
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

#include <mp/detail/compiled.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/shared_object.hpp>
#include <mp/lock.hpp>

namespace mp {
namespace detail {

struct ConditionLayout {
  std::atomic<std::uint32_t> seq;
  std::atomic<std::uint32_t> waiters;
};

inline constexpr std::uint64_t condition_magic = 0x6d702d436f6e6431;  // "mp-Cond1"

}  // namespace detail

/// A condition variable shared by processes, bound to an mp::Lock.
class Condition {
public:
  /// Creates a condition with its own new Lock. Throws mp::Error.
  Condition() : Condition(Lock{}) {}

  /// Creates a condition that uses `lock` (a handle: the same shared lock).
  explicit Condition(Lock lock);

  /// The lock this condition uses.
  [[nodiscard]] Lock& get_lock() noexcept { return lock_; }

  /// Lock::acquire() of the underlying lock (blocks; may throw OwnerDeadError).
  void acquire() { lock_.acquire(); }
  /// Lock::acquire(timeout) of the underlying lock.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_.acquire(timeout);
  }
  /// Lock::release() of the underlying lock.
  void release() { lock_.release(); }
  /// For std::lock_guard / std::unique_lock on the condition itself.
  void lock() { lock_.lock(); }
  void unlock() { lock_.unlock(); }
  bool try_lock() { return lock_.try_lock(); }

  /// With the lock held: releases it, blocks until notified (or spuriously
  /// woken), re-acquires it. Throws std::logic_error if the lock is not held
  /// by this thread, mp::OwnerDeadError if re-acquiring finds a dead owner
  /// (the lock is then NOT held). Safe across threads and processes.
  void wait() { wait_until(detail::Clock::time_point::max()); }

  /// As wait(), for at most `timeout`; returns false if the time ran out.
  /// The lock is held again on return either way.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  /// With the lock held: waits until pred() is true (checked under the lock).
  template <class Pred>
  void wait_for(Pred pred) {
    static_assert(std::is_invocable_r_v<bool, Pred&>,
                  "Condition::wait_for needs a predicate callable with no arguments that returns bool.");
    while (!pred()) wait();
  }

  /// As wait_for(pred), for at most `timeout`; returns pred()'s last value.
  template <class Pred, class Rep, class Period>
  bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) {
    static_assert(std::is_invocable_r_v<bool, Pred&>,
                  "Condition::wait_for needs a predicate callable with no arguments that returns bool.");
    auto deadline = detail::deadline_after(timeout);
    while (!pred()) {
      if (!wait_until(deadline)) return pred();
    }
    return true;
  }

  /// Wakes up to n waiters (possibly more, see above). Never blocks; the lock
  /// need not be held. Safe across threads and processes.
  void notify(int n = 1) noexcept;

  /// Wakes every waiter. Never blocks.
  void notify_all() noexcept { notify(0x7fffffff); }

private:
  bool wait_until(detail::Clock::time_point deadline);

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  friend struct detail::TestAccess;    // tests reach its shared layout
  Condition(detail::HandleTag, Lock h0, detail::SharedObject<detail::ConditionLayout> h1) : lock_(std::move(h0)), s_(std::move(h1)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(lock_, s_); }

  Lock lock_;
  detail::SharedObject<detail::ConditionLayout> s_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED Condition::Condition(Lock lock)
    : lock_(std::move(lock)),
      s_(detail::SharedObject<detail::ConditionLayout>::make(detail::condition_magic, 1, 0, [](auto&) {})) {}

MP_COMPILED void Condition::notify(int n) noexcept {
  detail::ConditionLayout& l = *s_;
  l.seq.fetch_add(1);  // seq_cst: pairs with the waiter's waiters.fetch_add
  if (l.waiters.load() != 0) detail::futex_wake(l.seq, n);
}

MP_COMPILED bool Condition::wait_until(detail::Clock::time_point deadline) {
  detail::ConditionLayout& l = *s_;
  std::uint32_t seen = l.seq.load();
  lock_.release();  // throws std::logic_error if not held: nothing changed yet
  l.waiters.fetch_add(1);
  bool in_time = true;
  try {  // until a notify() bumped seq (or the deadline): a slice's end or EINTR is not one
    while (in_time && l.seq.load() == seen) in_time = detail::futex_wait_rechecking(l.seq, seen, deadline);
  } catch (const std::system_error&) {
    l.waiters.fetch_sub(1);
    lock_.acquire();
    throw;
  }
  l.waiters.fetch_sub(1);
  lock_.acquire();
  return in_time;
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp
