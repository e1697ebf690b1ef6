// mp/lock.hpp - mp::Lock and mp::RLock: process-shared locks that survive
// their owner's death (Python's multiprocessing.Lock and RLock).
//
// Each lock lives in its own anonymous shared segment, mapped when the lock is
// constructed: create it BEFORE starting the Process or Pool that uses it.
// Copies of the handle refer to the same lock.
//
// Owner death: when a process (or thread) dies holding the lock, the next
// acquire() makes the lock usable again, releases it and throws
// mp::OwnerDeadError naming the dead pid. What the lock guarded may be half
// updated; the caller decides how to repair it. The acquire after that one
// succeeds normally. No acquire ever waits for a dead owner.
//
//   Lock layout (after the 64-byte SegmentHeader):
//   +--------------------------------------------+
//   | RobustMutex (pthread, robust, pshared) 40 B |
//   | owner_pid   i32  last process to acquire   |
//   +--------------------------------------------+
//   RLock adds: owner_tid i32 (0 = free), count u32 (recursion depth).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <sys/types.h>

#include <mp/detail/compiled.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shared_object.hpp>
#include <mp/errors.hpp>

namespace mp {
namespace detail {

struct LockLayout {
  RobustMutex m;
  std::atomic<pid_t> owner_pid;
};

struct RLockLayout {
  RobustMutex m;
  std::atomic<pid_t> owner_pid;
  std::atomic<pid_t> owner_tid;  // 0 when free
  std::uint32_t count;           // written only by the owner
};

inline constexpr std::uint64_t lock_magic = 0x6d702d4c6f636b31;   // "mp-Lock1"
inline constexpr std::uint64_t rlock_magic = 0x6d702d524c6f6b31;  // "mp-RLok1"

[[noreturn]] inline void throw_owner_dead(const char* kind, pid_t pid) {
  throw OwnerDeadError(std::string("mp::") + kind + ": process " + std::to_string(pid) +
                       " (or one of its threads) died holding the lock; the lock is usable again, "
                       "but what it guarded may be inconsistent");
}

}  // namespace detail

/// A non-recursive lock shared by processes (and threads). Owned by the thread
/// that acquired it: only that thread may release it.
class Lock {
public:
  /// Creates an unlocked lock in a new shared segment. Throws mp::Error if
  /// shared memory cannot be mapped.
  Lock();

  /// Blocks until acquired. Throws mp::OwnerDeadError (lock NOT held) if the
  /// previous owner died holding it. Safe across threads and processes.
  void acquire() { take(s_->m.lock()); }

  /// Blocks at most `timeout`; returns whether the lock was acquired. A zero
  /// or negative timeout only tries. Throws as acquire().
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    if (timeout <= timeout.zero()) return try_lock();
    return take(s_->m.lock_until(detail::deadline_after(timeout)));
  }

  /// Releases. Never blocks. Throws std::logic_error if this thread does not
  /// hold the lock (Python raises ValueError).
  void release();

  /// Never blocks; returns whether the lock was acquired. Throws as acquire().
  bool try_lock() { return take(s_->m.try_lock()); }
  /// acquire(), for std::lock_guard / std::unique_lock.
  void lock() { acquire(); }
  /// release(), for std::lock_guard / std::unique_lock.
  void unlock() { release(); }

private:
  bool take(detail::LockStatus st);

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  Lock(detail::HandleTag, detail::SharedObject<detail::LockLayout> h0) : s_(std::move(h0)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(s_); }

  detail::SharedObject<detail::LockLayout> s_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED Lock::Lock()
    : s_(detail::SharedObject<detail::LockLayout>::make(detail::lock_magic, 1, 0,
                                                    [](detail::LockLayout& l) { l.m.init(); })) {}

MP_COMPILED void Lock::release() {
  if (!s_->m.unlock_if_owner())
    throw std::logic_error("mp::Lock::release(): this thread does not hold the lock");
}

MP_COMPILED bool Lock::take(detail::LockStatus st) {
  if (st == detail::LockStatus::busy) return false;
  if (st == detail::LockStatus::owner_died) {
    pid_t dead = s_->owner_pid.load(std::memory_order_relaxed);
    s_->m.mark_consistent();
    s_->m.unlock();
    detail::throw_owner_dead("Lock", dead);
  }
  s_->owner_pid.store(detail::self_pid(), std::memory_order_relaxed);
  return true;
}

#endif  // MP_DEFINE_COMPILED

/// A recursive lock shared by processes: the owning thread may acquire it
/// again; it is free after as many releases as acquires.
class RLock {
public:
  /// Creates an unlocked RLock in a new shared segment. Throws mp::Error.
  RLock();

  /// Blocks until acquired (at once if this thread owns it). Throws
  /// mp::OwnerDeadError (lock NOT held) if the previous owner died holding it.
  /// Safe across threads and processes.
  void acquire() {
    if (reenter()) return;
    take(s_->m.lock());
  }

  /// Blocks at most `timeout`; returns whether acquired. Throws as acquire().
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    if (reenter()) return true;
    if (timeout <= timeout.zero()) return take(s_->m.try_lock());
    return take(s_->m.lock_until(detail::deadline_after(timeout)));
  }

  /// Undoes one acquire. Never blocks. Throws std::logic_error if this thread
  /// does not own the lock.
  void release();

  /// Never blocks; returns whether acquired. Throws as acquire().
  bool try_lock() { return reenter() || take(s_->m.try_lock()); }
  /// acquire(), for std::lock_guard / std::unique_lock.
  void lock() { acquire(); }
  /// release(), for std::lock_guard / std::unique_lock.
  void unlock() { release(); }

private:
  bool reenter();

  bool take(detail::LockStatus st);

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  RLock(detail::HandleTag, detail::SharedObject<detail::RLockLayout> h0) : s_(std::move(h0)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(s_); }

  detail::SharedObject<detail::RLockLayout> s_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED RLock::RLock()
    : s_(detail::SharedObject<detail::RLockLayout>::make(detail::rlock_magic, 1, 0,
                                                    [](detail::RLockLayout& l) { l.m.init(); })) {}

MP_COMPILED void RLock::release() {
  detail::RLockLayout& l = *s_;
  if (l.owner_tid.load(std::memory_order_relaxed) != detail::self_tid())
    throw std::logic_error("mp::RLock::release(): this thread does not own the lock");
  if (--l.count > 0) return;
  l.owner_tid.store(0, std::memory_order_relaxed);
  l.m.unlock();
}

MP_COMPILED bool RLock::reenter() {
  detail::RLockLayout& l = *s_;
  if (l.owner_tid.load(std::memory_order_relaxed) != detail::self_tid()) return false;
  ++l.count;
  return true;
}

MP_COMPILED bool RLock::take(detail::LockStatus st) {
  detail::RLockLayout& l = *s_;
  if (st == detail::LockStatus::busy) return false;
  if (st == detail::LockStatus::owner_died) {
    pid_t dead = l.owner_pid.load(std::memory_order_relaxed);
    l.owner_tid.store(0, std::memory_order_relaxed);
    l.count = 0;
    l.m.mark_consistent();
    l.m.unlock();
    detail::throw_owner_dead("RLock", dead);
  }
  l.owner_pid.store(detail::self_pid(), std::memory_order_relaxed);
  l.owner_tid.store(detail::self_tid(), std::memory_order_relaxed);
  l.count = 1;
  return true;
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp
