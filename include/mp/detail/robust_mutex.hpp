// mp/detail/robust_mutex.hpp - a process-shared lock that survives its owner.
//
// Boost.Interprocess's mutex stays locked for ever when its owner dies (1.74)
// or becomes unusable (1.78+). This wraps a POSIX robust, process-shared
// pthread mutex: when the owner dies, the kernel hands the lock to the next
// locker with EOWNERDEAD; that locker repairs the guarded data and marks the
// mutex consistent, and everyone carries on.
#pragma once

#include <cerrno>
#include <pthread.h>

#include <mp/detail/syscall.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// How a lock attempt ended.
enum class LockStatus {
  acquired,    ///< locked; the previous owner unlocked normally
  owner_died,  ///< locked, but the previous owner died holding it: repair, then mark_consistent()
  busy,        ///< not locked: held by someone else (try_lock) or the deadline passed
};

/// A robust mutex that lives in shared memory (construct it in place with
/// init(), never copy it). Safe across threads and processes.
class RobustMutex {
public:
  /// Initialises the mutex in place. Call once, by the segment's creator,
  /// before any other process maps it. Throws std::system_error.
  void init() {
    pthread_mutexattr_t attr;
    check(pthread_mutexattr_init(&attr), "pthread_mutexattr_init");
    check(pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED), "pthread_mutexattr_setpshared");
    check(pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST), "pthread_mutexattr_setrobust");
    int r = pthread_mutex_init(&m_, &attr);
    pthread_mutexattr_destroy(&attr);
    check(r, "pthread_mutex_init");
  }

  /// Blocks until locked. Returns acquired or owner_died. Throws OwnerDeadError
  /// if an earlier recoverer unlocked without mark_consistent().
  LockStatus lock() { return status(pthread_mutex_lock(&m_), "pthread_mutex_lock"); }

  /// Blocks until locked or the deadline passes (then returns busy).
  LockStatus lock_until(Clock::time_point deadline) {
    if (deadline == Clock::time_point::max()) return lock();
    timespec ts = to_timespec(deadline);
    return status(pthread_mutex_clocklock(&m_, CLOCK_MONOTONIC, &ts), "pthread_mutex_clocklock");
  }

  /// Never blocks: acquired, owner_died, or busy.
  LockStatus try_lock() { return status(pthread_mutex_trylock(&m_), "pthread_mutex_trylock"); }

  /// After owner_died and the repair of the guarded data: the mutex is usable again.
  void mark_consistent() { check(pthread_mutex_consistent(&m_), "pthread_mutex_consistent"); }

  /// Unlocks. Must be called by the thread that locked it.
  void unlock() noexcept { pthread_mutex_unlock(&m_); }

  /// Unlocks if the calling thread holds the mutex and returns true; returns
  /// false and changes nothing otherwise (a robust mutex checks its owner).
  [[nodiscard]] bool unlock_if_owner() noexcept { return pthread_mutex_unlock(&m_) == 0; }

  /// Locks, runs repair() if the previous owner died holding the lock, and
  /// marks the mutex consistent again. Blocks; returns whether repair ran.
  template <class Repair>
  bool lock_and_repair(Repair&& repair) {
    if (lock() == LockStatus::acquired) return false;
    repair_or_unlock(repair);
    return true;
  }

  /// As lock_and_repair, with a deadline; returns busy when it passed.
  template <class Repair>
  LockStatus lock_until_and_repair(Clock::time_point deadline, Repair&& repair) {
    LockStatus s = lock_until(deadline);
    if (s == LockStatus::owner_died) repair_or_unlock(repair);
    return s;
  }

private:
  template <class Repair>
  void repair_or_unlock(Repair& repair) {
    try {
      repair();
    } catch (...) {
      mark_consistent();
      unlock();
      throw;
    }
    mark_consistent();
  }

  static void check(int r, const char* call) {
    if (r != 0) throw_system_error(call, r);
  }

  static LockStatus status(int r, const char* call) {
    switch (r) {
      case 0: return LockStatus::acquired;
      case EOWNERDEAD: return LockStatus::owner_died;
      case EBUSY: case ETIMEDOUT: return LockStatus::busy;
      case ENOTRECOVERABLE:
        throw OwnerDeadError("mp: a process died holding a lock and it was not repaired; "
                             "the lock is permanently unusable");
      default: throw_system_error(call, r);
    }
  }

  pthread_mutex_t m_;
};

/// RAII holder of a RobustMutex: locks (repairing with `repair` if needed) and
/// unlocks at scope exit.
class RobustLock {
public:
  template <class Repair>
  RobustLock(RobustMutex& m, Repair&& repair) : m_(m) { m_.lock_and_repair(repair); }
  RobustLock(const RobustLock&) = delete;
  RobustLock& operator=(const RobustLock&) = delete;
  ~RobustLock() { m_.unlock(); }

private:
  RobustMutex& m_;
};

}  // namespace mp::detail
