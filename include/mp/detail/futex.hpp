// mp/detail/futex.hpp - process-shared futex wait/wake on a 32-bit atomic.
//
// The word must live in memory shared by the processes that wait on it (a
// MAP_SHARED mapping), so these use the shared (not FUTEX_PRIVATE) operations.
#pragma once

#include <atomic>
#include <cstdint>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mp/detail/syscall.hpp>

namespace mp::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && std::atomic<std::uint32_t>::is_always_lock_free,
              "mp needs a lock-free 32-bit atomic to use as a futex word.");

/// Sleeps while *word == expected, until woken or the deadline passes.
/// Returns false only when the deadline passed; true on a wake, a changed
/// value or a signal (callers re-check their condition in a loop anyway).
/// Blocks; safe across threads and processes.
inline bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       Clock::time_point deadline = Clock::time_point::max()) {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (deadline != Clock::time_point::max()) {
    if (Clock::now() >= deadline) return false;
    ts = to_timespec(deadline);
    tsp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a retry
  // after a spurious wake never stretches the total wait.
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word),
                     FUTEX_WAIT_BITSET, expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (r == 0) return true;
  switch (errno) {
    case EAGAIN: case EINTR: return true;
    case ETIMEDOUT: return false;
    default: throw_system_error("futex(FUTEX_WAIT_BITSET)");
  }
}

/// Wakes up to n waiters sleeping on word. Never blocks; safe anywhere.
inline void futex_wake(std::atomic<std::uint32_t>& word, int n = 1) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

/// Wakes every waiter sleeping on word.
inline void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  futex_wake(word, 0x7fffffff);
}

/// A pause instruction for spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace mp::detail
