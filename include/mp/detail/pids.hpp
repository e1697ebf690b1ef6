// mp/detail/pids.hpp - this process's pid and this thread's tid, cached
// (refreshed in a forked child), and whether a pid names a live process.
#pragma once

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

namespace mp::detail {

/// getpid() and gettid() without a system call per use: glibc caches
/// neither, and a Lock records its owner on every acquire. A pthread_atfork
/// handler refreshes both in the child (whose only thread is the forker).
struct SelfIds {
  std::atomic<pid_t> pid{::getpid()};
  static inline thread_local pid_t tid = 0;

  SelfIds() { ::pthread_atfork(nullptr, nullptr, &SelfIds::after_fork_in_child); }
  static SelfIds& instance() noexcept {
    static SelfIds ids;
    return ids;
  }
  static void after_fork_in_child() noexcept {
    instance().pid.store(::getpid(), std::memory_order_relaxed);
    tid = ::gettid();
  }
};

/// This process's pid, cached. Never blocks; thread-safe.
inline pid_t self_pid() noexcept { return SelfIds::instance().pid.load(std::memory_order_relaxed); }

/// This thread's kernel tid (unique among live threads of every process), cached.
inline pid_t self_tid() noexcept {
  (void)SelfIds::instance();  // registers the fork handler before the first cache
  if (SelfIds::tid == 0) SelfIds::tid = ::gettid();
  return SelfIds::tid;
}

/// True while `pid` names a process that has not exited: false for a pid that
/// does not exist and for a zombie (exited, not yet reaped), whose units or
/// locks will never be released. Never blocks; never throws.
inline bool pid_alive(pid_t pid) noexcept {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return true;  // no /proc: trust kill()
  // Format: "pid (comm) S ..."; comm may hold spaces and ')', so find the last ')'.
  char buf[512];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = nullptr;
  for (const char* p = buf; *p != '\0'; ++p)
    if (*p == ')') close = p;
  if (close == nullptr || close[1] == '\0' || close[2] == '\0') return true;
  return close[2] != 'Z' && close[2] != 'X';
}

}  // namespace mp::detail
