// mp/detail/spawner.hpp - the pool's spawner: a single-threaded process forked
// when the pool is constructed (before the pool starts any thread), which
// forks every worker, reaps them and reports, as Python's forkserver does.
//
// So no worker is ever forked from a parent that runs threads (the pool's
// result thread, the user's threads started later): a replacement after a
// crash or maxtasksperchild comes from the same clean image.
//
// Protocol. Parent -> spawner, on a socketpair: 4-byte commands
//   spawn(slot) | exit (return at once) | kill (SIGKILL every worker, reap
//   them, then exit) | join (the workers were told to stop: SIGKILL those
//   that never ran user code, wait for the others, then exit; so the parent
//   only waits for the spawner) | kill_worker(slot) (SIGKILL that worker: a
//   task timeout or cancel; the spawner alone knows which process is in
//   the slot, so no pid reused by another process is ever signalled); EOF
//   (the parent is gone) means kill.
// Spawner -> parent, through the shared segment: after fork it stores the
// slot's pid and state=alive; after reaping, the wait status and state=dead;
// each time it bumps PoolCtl::events and rings the parent's doorbell.
//
// Deaths. The parent process dies: its end of the control socket closes
// (only the parent process holds it: it is close-on-exec, and children forked
// for other pools close it), so the spawner sees EOF, SIGKILLs and reaps its
// workers and exits. Not PR_SET_PDEATHSIG: that fires when the *thread* that
// forked the spawner exits, and a pool may be built in a short-lived thread.
// As a backstop (a child the parent forked later may keep a copy of the
// socket), the spawner also checks getppid() once a second. Workers do use
// PR_SET_PDEATHSIG(SIGKILL) against the spawner, which is single-threaded.
// Both ignore SIGINT, so Ctrl-C reaches only the parent, which then tears the
// pool down. The spawner dies on its own (SIGKILL, OOM): its workers die by
// PDEATHSIG, and the parent sees the control socket hang up (SpawnerLink::
// hung_up, checked every spawner_check_period, or spawner_idle_check_period
// while no task is out) and breaks the pool.
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <stdio_ext.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <mp/detail/pool_layout.hpp>
#include <mp/detail/syscall.hpp>

namespace mp::detail {

enum class SpawnerOp : std::uint32_t { spawn = 1, exit = 2, kill = 3, join = 4, kill_worker = 5 };

inline std::uint32_t spawner_command(SpawnerOp op, unsigned slot = 0) noexcept {
  return static_cast<std::uint32_t>(op) << 24 | (slot & 0xffffffu);
}

/// The control sockets of every live pool in this process, so that a child
/// forked for one pool closes the others' (else a pool's spawner would not
/// see EOF when its parent closes it). Lock-free: read in forked children.
inline std::array<std::atomic<int>, 64>& pool_fds() {
  static std::array<std::atomic<int>, 64> fds{};
  return fds;
}
inline void register_pool_fd(int fd) noexcept {
  for (auto& a : pool_fds()) {
    int expected = 0;
    if (a.compare_exchange_strong(expected, fd + 1)) return;
  }
}
inline void unregister_pool_fd(int fd) noexcept {
  for (auto& a : pool_fds()) {
    int expected = fd + 1;
    if (a.compare_exchange_strong(expected, 0)) return;
  }
}
inline void close_other_pool_fds(int keep) noexcept {
  for (auto& a : pool_fds()) {
    const int v = a.load() - 1;
    if (v >= 0 && v != keep) ::close(v);
  }
}

/// Makes this process die with its parent (which must be single-threaded:
/// the signal follows the forking thread) and ignore Ctrl-C. Returns false
/// when the parent is already gone (the caller should _exit).
inline bool bind_to_parent(pid_t expected_parent) noexcept {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::signal(SIGINT, SIG_IGN);
  return ::getppid() == expected_parent;
}

/// How often the spawner checks getppid() besides watching its socket (ms).
inline constexpr int spawner_parent_check_ms = 1000;
/// How often the parent's result thread, when it has nothing to read, looks
/// whether the spawner died: while tasks are outstanding, and while none are.
inline constexpr std::chrono::milliseconds spawner_check_period{100};
inline constexpr std::chrono::milliseconds spawner_idle_check_period{1000};

class Spawner {
public:
  using WorkerMain = std::function<int(unsigned slot)>;

  Spawner(const PoolSegment& seg, int sock, WorkerMain main) : seg_(seg), sock_(sock), main_(std::move(main)) {}

  /// The spawner's loop. Never returns: ends the process with _exit.
  [[noreturn]] void run(pid_t parent) {
    std::signal(SIGINT, SIG_IGN);
    if (::getppid() != parent) ::_exit(0);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    std::signal(SIGCHLD, SIG_DFL);
    sfd_ = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    pids_.assign(seg_.workers(), 0);
    for (;;) {
      pollfd fds[2] = {{sock_, POLLIN, 0}, {sfd_, POLLIN, 0}};
      const int r = ::poll(fds, 2, spawner_parent_check_ms);
      if (r < 0 && errno != EINTR) kill_all_and_exit();
      if (::getppid() != parent) kill_all_and_exit();  // reparented: the parent process is gone
      if (r <= 0) continue;
      if (fds[1].revents != 0) reap(false);
      if (fds[0].revents != 0) command();
    }
  }

private:
  /// Reads every command that is there. Spawns and kill_worker run in the
  /// order sent (a kill_worker sent before a spawn of the same slot meant
  /// the old worker), unless the batch also ends the pool (exit/kill/join):
  /// then forking workers only to kill them at once is skipped (a pool
  /// closed right after it was made costs one process, not three).
  void command() {
    std::uint32_t cmds[64];
    std::size_t got = 0;
    do {
      const ssize_t n = retry_eintr([&] {
        return ::read(sock_, reinterpret_cast<char*>(cmds) + got, sizeof cmds - got);
      });
      if (n <= 0) kill_all_and_exit();  // EOF: the parent is gone
      got += static_cast<std::size_t>(n);
    } while (got % sizeof cmds[0] != 0);
    const std::size_t count = got / sizeof cmds[0];
    SpawnerOp last = SpawnerOp::spawn;  // the last command that ends the spawner, if any
    for (std::size_t k = 0; k < count; ++k) {
      const auto op = static_cast<SpawnerOp>(cmds[k] >> 24);
      if (op == SpawnerOp::exit || op == SpawnerOp::kill || op == SpawnerOp::join) last = op;
    }
    if (last == SpawnerOp::exit) ::_exit(0);
    if (last == SpawnerOp::kill) kill_all_and_exit();
    if (last == SpawnerOp::join) join_and_exit();
    for (std::size_t k = 0; k < count; ++k) {
      const auto op = static_cast<SpawnerOp>(cmds[k] >> 24);
      const unsigned slot = cmds[k] & 0xffffffu;
      if (slot >= pids_.size()) continue;
      if (op == SpawnerOp::spawn) spawn(slot);
      if (op == SpawnerOp::kill_worker && pids_[slot] > 0) ::kill(pids_[slot], SIGKILL);
    }
  }

  /// A worker that never ran user code (no initializer, no task) has nothing
  /// to flush: kill it rather than wait for it to be scheduled, read its stop
  /// message and exit. Wait for the others.
  [[noreturn]] void join_and_exit() {
    for (unsigned i = 0; i < pids_.size(); ++i)
      if (pids_[i] > 0 && seg_.slot(i).used.load(std::memory_order_acquire) == 0) ::kill(pids_[i], SIGKILL);
    reap(true);
    ::_exit(0);
  }

  void spawn(unsigned i) {
    const pid_t me = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(sock_);
      ::close(sfd_);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (!bind_to_parent(me)) ::_exit(0);
      int code = 1;
      try {
        code = main_(i);
      } catch (...) {
        code = 1;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    WorkerSlot& s = seg_.slot(i);
    if (pid < 0) {  // report as a death: the parent fails the tasks, retries
      s.status.store(W_EXITCODE(127, 0));
      s.state.store(static_cast<std::uint32_t>(SlotState::dead), std::memory_order_release);
    } else {
      pids_[i] = pid;
      s.pid.store(pid, std::memory_order_relaxed);
      s.state.store(static_cast<std::uint32_t>(SlotState::alive), std::memory_order_release);
    }
    notify();
  }

  void reap(bool block) {
    signalfd_siginfo info;
    while (::read(sfd_, &info, sizeof info) > 0) {
    }
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
      if (pid <= 0) {
        if (pid < 0 && errno == EINTR) continue;
        return;
      }
      for (unsigned i = 0; i < pids_.size(); ++i) {
        if (pids_[i] != pid) continue;
        pids_[i] = 0;
        WorkerSlot& s = seg_.slot(i);
        s.status.store(status, std::memory_order_relaxed);
        s.state.store(static_cast<std::uint32_t>(SlotState::dead), std::memory_order_release);
      }
      notify();
    }
  }

  void notify() noexcept {
    seg_.ctl().events.fetch_add(1, std::memory_order_seq_cst);
    seg_.ctl().doorbell.notify();
  }

  [[noreturn]] void kill_all_and_exit() {
    for (pid_t p : pids_)
      if (p > 0) ::kill(p, SIGKILL);
    reap(true);
    ::_exit(0);
  }

  const PoolSegment& seg_;
  int sock_;
  int sfd_ = -1;
  WorkerMain main_;
  std::vector<pid_t> pids_;
};

/// Forks the spawner. Returns its pid and the parent's end of the control
/// socket. Call before the pool starts any thread. Throws std::system_error.
inline std::pair<pid_t, int> start_spawner(const PoolSegment& seg, Spawner::WorkerMain main) {
  int sv[2];
  checked("socketpair", [&] { return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv); });
  const pid_t parent = ::getpid();
  std::fflush(stdout);  // so the parent's pending output comes out once, in order
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    throw_system_error("fork", err);
  }
  if (pid == 0) {
    ::close(sv[0]);
    close_other_pool_fds(sv[1]);
    // What the parent had buffered in stdio is the parent's to print: a
    // worker's exit flush would print it again, once per worker.
    ::__fpurge(stdout);
    ::__fpurge(stderr);
    try {
      Spawner(seg, sv[1], std::move(main)).run(parent);
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(sv[1]);
  register_pool_fd(sv[0]);
  return {pid, sv[0]};
}

/// The parent's end of the spawner: its pid and the control socket. Used
/// under the backend's lock, except reap().
class SpawnerLink {
public:
  SpawnerLink() = default;
  SpawnerLink(pid_t pid, int sock) noexcept : pid_(pid), sock_(sock) {}

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool open() const noexcept { return sock_ >= 0; }

  /// Sends one command. Throws std::system_error naming the call; a gone
  /// spawner gives EPIPE, never SIGPIPE.
  void send(std::uint32_t cmd) const {
    const ssize_t n = retry_eintr([&] { return ::send(sock_, &cmd, sizeof cmd, MSG_NOSIGNAL); });
    if (n != static_cast<ssize_t>(sizeof cmd)) throw_system_error("send(spawner socket)");
  }

  /// Whether the spawner's end closed: it exited (it never writes, and
  /// only it holds that end). Never blocks.
  [[nodiscard]] bool hung_up() const noexcept {
    pollfd p{sock_, POLLIN, 0};
    return sock_ >= 0 && ::poll(&p, 1, 0) > 0 && p.revents != 0;
  }

  /// How the spawner ended ("killed by SIGKILL", "exited with status 1"),
  /// once hung_up(). Leaves it to reap(); waits at most ~1 s for it to end.
  [[nodiscard]] std::string how_it_ended() const {
    siginfo_t info{};
    for (int i = 0; i < 1000; ++i) {
      info.si_pid = 0;
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno != EINTR)
        break;
      if (info.si_pid == pid_) {
        if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
        const char* name = ::sigabbrev_np(info.si_status);
        return std::string("killed by ") + (name ? std::string("SIG") + name : "signal " + std::to_string(info.si_status));
      }
      ::usleep(1000);
    }
    return "closed its control socket";
  }

  /// The error message of a pool whose spawner ended on its own.
  [[nodiscard]] std::string death_message() const {
    return "mp::Pool: the pool's spawner process " + std::to_string(pid_) + " died (" + how_it_ended() +
           "); the pool cannot make workers and is broken";
  }

  /// Waits for the spawner to exit and reaps it. Blocks.
  void reap() noexcept {
    int st = 0;
    if (pid_ > 0) {
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = -1;
  }

  /// Closes the parent's end.
  void close() noexcept {
    if (sock_ < 0) return;
    unregister_pool_fd(sock_);
    ::close(sock_);
    sock_ = -1;
  }

private:
  pid_t pid_ = -1;
  int sock_ = -1;
};

/// What a worker's wait status means, as a sentence.
inline std::string describe_exit(pid_t pid, int status) {
  std::string who = "mp::Pool worker " + std::to_string(pid);
  if (WIFSIGNALED(status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(status));
    return who + " was killed by " + (name ? std::string("SIG") + name : "signal " + std::to_string(WTERMSIG(status))) +
           " while running this task";
  }
  if (WIFEXITED(status)) {
    return who + " exited with status " + std::to_string(WEXITSTATUS(status)) + " while running this task";
  }
  return who + " was lost while running this task";
}

}  // namespace mp::detail
