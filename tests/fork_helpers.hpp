// tests/fork_helpers.hpp - forking safely inside a Catch2 test.
//
// A forked child inherits Catch's signal handlers and, if it returned, would go
// on to run the remaining tests. fork_child() resets every handler to SIG_DFL,
// runs the body, and always ends the child with _exit(). The parent checks the
// status that wait_child() returns.
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace mp_test {

inline void reset_child_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) std::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

/// Forks; the child runs body() (returning its exit code, or 98 if it throws)
/// and ends with _exit. Returns the child's pid in the parent.
template <class Body>
pid_t fork_child(Body&& body) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    reset_child_signals();
    int code = 98;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  return pid;
}

/// Waits for pid and returns its raw status (retries on EINTR).
inline int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid failed");
  }
  return status;
}

/// Waits up to `limit` for pid; returns its raw status, or -1 after killing
/// (SIGKILL) and reaping it when it had not ended by then.
template <class Duration>
int wait_child_within(pid_t pid, Duration limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) throw std::runtime_error("waitpid failed");
    ::usleep(1000);
  }
  ::kill(pid, SIGKILL);
  wait_child(pid);
  return -1;
}

inline bool exited_with(int status, int code) {
  return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

inline bool killed_by(int status, int sig) {
  return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

/// Number of open file descriptors of this process (for leak checks).
inline int open_fd_count() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) ++n;
  }
  return n;
}

/// Pids whose parent is `ppid`, zombies included (from /proc/<pid>/stat).
inline std::vector<pid_t> children_of(pid_t ppid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) continue;
    char buf[512] = {};
    const std::size_t got = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[got] = '\0';
    int parent = 0;
    char state = '?';
    const char* rp = std::strrchr(buf, ')');  // comm may hold spaces and parentheses
    if (rp != nullptr && std::sscanf(rp + 1, " %c %d", &state, &parent) == 2 && parent == ppid)
      out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

/// The names in /dev/shm now (every process's: other tests may add some).
inline std::set<std::string> dev_shm_names() {
  std::set<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) out.insert(e->d_name);
    ::closedir(d);
  }
  return out;
}

}  // namespace mp_test
