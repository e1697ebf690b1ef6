// tests/fork_helpers.hpp - forking safely inside a Catch2 test.
//
// A forked child inherits Catch's signal handlers and, if it returned, would go
// on to run the remaining tests. fork_child() resets every handler to SIG_DFL,
// runs the body, and always ends the child with _exit(). The parent checks the
// status that wait_child() returns.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <sys/wait.h>
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

}  // namespace mp_test
