// mp/detail/futex.hpp - process-shared futex wait/wake on a 32-bit atomic.
//
// The word must live in memory shared by the processes that wait on it (a
// MAP_SHARED mapping), so these use the shared (not FUTEX_PRIVATE) operations.
#pragma once

#include <atomic>
#include <chrono>
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

/// The longest a sleeper stays in one futex wait before it looks at the
/// word again by itself. A waker is two steps, change the word then
/// FUTEX_WAKE; one killed between them (kill -9 has no respect for that
/// window) leaves its sleepers asleep on a word that has changed, and no
/// other process may ever wake them. Looking again bounds that to one
/// period, for one wakeup per period per sleeper (a few µs of CPU a second).
inline constexpr std::chrono::seconds lost_wake_recheck{1};

/// futex_wait in slices of at most lost_wake_recheck. Returns false only
/// when the deadline passed; true otherwise, including at the end of a
/// slice: the caller looks at its condition (the word) and waits again.
inline bool futex_wait_rechecking(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                                  Clock::time_point deadline = Clock::time_point::max()) {
  const Clock::time_point slice_end = Clock::now() + lost_wake_recheck;
  if (slice_end >= deadline) return futex_wait(word, expected, deadline);
  futex_wait(word, expected, slice_end);
  return true;
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
