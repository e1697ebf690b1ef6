// mp/detail/spawner.hpp - the pool's spawners: single-threaded processes
// forked when the pool is constructed (before the pool starts any thread).
// The active one forks every worker, reaps them and reports, as Python's
// forkserver does; the standby one waits to take over when the active one
// dies.
//
// So no worker is ever forked from a parent that runs threads (the pool's
// result thread, the user's threads started later): a replacement after a
// crash or maxtasksperchild comes from the same clean image, and so does a
// new standby (a spawner makes it with clone(CLONE_PARENT), so that every
// spawner is a child of the pool's process, which reaps it).
//
// Protocol. Parent -> spawner, on a socketpair: 4-byte commands
//   spawn(slot) | kill (SIGKILL every worker, reap them, then exit) | join
//   (the workers were told to stop: SIGKILL those that never ran user code,
//   wait for the others, then exit; so the parent only waits for the
//   spawner) | kill_worker(slot) (SIGKILL that worker: a task timeout or
//   cancel; the spawner alone knows which process is in the slot, so no pid
//   reused by another process is ever signalled) | new_standby (make a
//   standby spawner and answer with its pid and socket) | take_over (sent
//   to the standby: make a new standby, answer as new_standby, then act as
//   the spawner); EOF (the parent is gone) means kill.
// Spawner -> parent, through the shared segment: after fork it stores the
// slot's pid and state=alive (the worker stores them too, first thing);
// after reaping, the wait status and state=dead; each time it bumps
// PoolCtl::events and rings the parent's doorbell. Answers to new_standby
// and take_over come back on the socket (SpawnerReply + the socket's fd).
//
// Output. The spawner also forwards its workers' stdout and stderr to its
// own fds 1 and 2 (the parent's) in whole lines (output_forwarder.hpp).
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
// pool down. The active spawner dies on its own (SIGKILL, OOM): its workers
// die by PDEATHSIG; the parent reaps it, takes each slot's life lock (so
// those workers are gone), and has the standby take over (spawners.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sched.h>
#include <functional>
#include <string>
#include <stdio_ext.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <mp/detail/output_forwarder.hpp>
#include <mp/detail/pool_layout.hpp>
#include <mp/detail/syscall.hpp>

namespace mp::detail {

enum class SpawnerOp : std::uint32_t { spawn = 1, kill = 3, join = 4, kill_worker = 5, new_standby = 6, take_over = 7 };

/// A spawner's answer to new_standby / take_over: the new standby's pid
/// (-1 when it could not be made: err is then its errno). Its socket's fd
/// travels with it (SCM_RIGHTS).
struct SpawnerReply {
  std::int32_t pid = -1;
  std::int32_t err = 0;
};

/// "SIGKILL", "signal 64": a signal's name.
inline std::string signal_name(int sig) {
  const char* name = ::sigabbrev_np(sig);
  return name != nullptr ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

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

/// fork() whose child is the caller's sibling (CLONE_PARENT): the pool's
/// process is its parent and reaps it. For a single-threaded caller only:
/// the child does not run fork handlers.
inline pid_t fork_sibling() noexcept {
  return static_cast<pid_t>(::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

class Spawner {
public:
  using WorkerMain = std::function<int(unsigned slot)>;

  Spawner(const PoolSegment& seg, int sock, WorkerMain main, pid_t parent)
      : seg_(seg), sock_(sock), main_(std::move(main)), parent_(parent) {}

  /// The standby's loop: waits for take_over, then makes its own successor
  /// and runs as the spawner. Never returns: ends the process with _exit.
  [[noreturn]] void stand_by() {
    std::signal(SIGINT, SIG_IGN);
    for (;;) {
      if (::getppid() != parent_) ::_exit(0);
      pollfd p{sock_, POLLIN, 0};
      const int r = ::poll(&p, 1, spawner_parent_check_ms);
      if (r < 0 && errno != EINTR) ::_exit(0);
      if (r <= 0) continue;
      std::uint32_t cmd = 0;
      const ssize_t n = retry_eintr([&] { return ::recv(sock_, &cmd, sizeof cmd, MSG_WAITALL); });
      if (n != sizeof cmd || static_cast<SpawnerOp>(cmd >> 24) != SpawnerOp::take_over) ::_exit(0);
      make_successor();
      run();
    }
  }

  /// The spawner's loop. Never returns: ends the process with _exit.
  [[noreturn]] void run() {
    std::signal(SIGINT, SIG_IGN);
    if (::getppid() != parent_) ::_exit(0);
    epoch_ = seg_.ctl().epoch.load(std::memory_order_seq_cst);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    std::signal(SIGCHLD, SIG_DFL);
    sfd_ = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    block_sigpipe();
    pids_.assign(seg_.workers(), 0);
    std::vector<pollfd> fds;
    for (;;) {
      fds.assign({{sock_, POLLIN, 0}, {sfd_, POLLIN, 0}});
      const int r = poll_with_output(fds, spawner_parent_check_ms);
      if (r < 0 && errno != EINTR) kill_all_and_exit();
      if (::getppid() != parent_) kill_all_and_exit();  // reparented: the parent process is gone
      if (r <= 0) continue;
      if (fds[1].revents != 0) reap(false);
      if (fds[0].revents != 0) command();
    }
  }

private:
  /// poll() on `fds` and the workers' output pipes, which it then serves
  /// (also on a timeout, for partial lines). Returns poll's result.
  int poll_with_output(std::vector<pollfd>& fds, int timeout_ms) {
    const std::size_t own = fds.size();
    const int timeout = out_.add_pollfds(fds, timeout_ms);
    const int r = ::poll(fds.data(), fds.size(), timeout);
    if (r >= 0) out_.on_ready(fds.data() + own, fds.size() - own);
    fds.resize(own);
    return r;
  }

  /// A write to a parent's stdout whose reader is gone fails with EPIPE
  /// instead of killing the spawner (workers unblock it again).
  static void block_sigpipe() noexcept {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    ::sigprocmask(SIG_BLOCK, &pipe, nullptr);
  }

  /// Reads every command that is there. Spawns and kill_worker run in the
  /// order sent (a kill_worker sent before a spawn of the same slot meant
  /// the old worker), unless the batch also ends the pool (kill/join):
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
      if (op == SpawnerOp::kill || op == SpawnerOp::join) last = op;
    }
    if (last == SpawnerOp::kill) kill_all_and_exit();
    if (last == SpawnerOp::join) join_and_exit();
    for (std::size_t k = 0; k < count; ++k) {
      const auto op = static_cast<SpawnerOp>(cmds[k] >> 24);
      const unsigned slot = cmds[k] & 0xffffffu;
      if (op == SpawnerOp::new_standby) make_successor();
      if (slot >= pids_.size()) continue;
      if (op == SpawnerOp::spawn) spawn(slot);
      if (op == SpawnerOp::kill_worker && pids_[slot] > 0) ::kill(pids_[slot], SIGKILL);
    }
  }

  /// Makes a standby spawner (a sibling: the pool's process is its parent)
  /// and sends the parent its pid and the parent's end of its socket.
  void make_successor() {
    SpawnerReply rep;
    int sv[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      rep.err = errno;
      send_reply(rep, -1);
      return;
    }
    const pid_t pid = fork_sibling();
    if (pid == 0) {
      ::close(sock_);
      if (sfd_ >= 0) ::close(sfd_);
      ::close(sv[0]);
      out_.close_all();
      Spawner(seg_, sv[1], main_, parent_).stand_by();
    }
    ::close(sv[1]);
    rep.pid = pid;
    rep.err = pid < 0 ? errno : 0;
    send_reply(rep, pid > 0 ? sv[0] : -1);
    ::close(sv[0]);
  }

  void send_reply(const SpawnerReply& rep, int fd) const noexcept {
    iovec iov{const_cast<SpawnerReply*>(&rep), sizeof rep};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
      msg.msg_control = ctl;
      msg.msg_controllen = sizeof ctl;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    (void)retry_eintr([&] { return ::sendmsg(sock_, &msg, MSG_NOSIGNAL); });
  }

  /// A worker that never ran user code (no initializer, no task) has nothing
  /// to flush: kill it rather than wait for it to be scheduled, read its stop
  /// message and exit. Wait for the others, forwarding their output (a
  /// worker blocked on a full output pipe could not exit otherwise).
  [[noreturn]] void join_and_exit() {
    for (unsigned i = 0; i < pids_.size(); ++i)
      if (pids_[i] > 0 && seg_.slot(i).used.load(std::memory_order_acquire) == 0) ::kill(pids_[i], SIGKILL);
    std::vector<pollfd> fds;
    while (std::any_of(pids_.begin(), pids_.end(), [](pid_t p) { return p > 0; })) {
      fds.assign({{sfd_, POLLIN, 0}});
      const int r = poll_with_output(fds, spawner_parent_check_ms);
      if (r < 0 && errno != EINTR) break;
      if (::getppid() != parent_) kill_all_and_exit();
      if (r > 0 && fds[0].revents != 0) reap(false);
    }
    reap(true);
    out_.finish();
    ::_exit(0);
  }

  void spawn(unsigned i) {
    const pid_t me = ::getpid();
    out_.open();
    const pid_t pid = ::fork();
    if (pid == 0) worker_child(i, me);
    out_.after_fork();
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

  /// The new worker process: dies with this spawner, holds the slot's life
  /// lock, and starts only if this spawner is still the pool's (epoch).
  [[noreturn]] void worker_child(unsigned i, pid_t spawner) {
    ::close(sock_);
    ::close(sfd_);
    out_.become_worker();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!bind_to_parent(spawner)) ::_exit(0);
    int code = 1;
    try {
      WorkerSlot& s = seg_.slot(i);
      if (s.life.lock() == LockStatus::owner_died) s.life.mark_consistent();
      if (seg_.ctl().epoch.load(std::memory_order_seq_cst) != epoch_) ::_exit(0);
      s.pid.store(::getpid(), std::memory_order_relaxed);
      s.state.store(static_cast<std::uint32_t>(SlotState::alive), std::memory_order_release);
      code = main_(i);
    } catch (...) {
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
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
    out_.finish();
    ::_exit(0);
  }

  const PoolSegment& seg_;
  int sock_;
  int sfd_ = -1;
  WorkerMain main_;
  pid_t parent_;
  std::uint32_t epoch_ = 0;
  std::vector<pid_t> pids_;
  OutputForwarder out_;
};

/// Forks a spawner (standby: one that waits to take over). Returns its pid
/// and the parent's end of its control socket. Call before the pool starts
/// any thread. Throws std::system_error.
inline std::pair<pid_t, int> start_spawner(const PoolSegment& seg, Spawner::WorkerMain main, bool standby) {
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
      Spawner sp(seg, sv[1], std::move(main), parent);
      if (standby) sp.stand_by();
      sp.run();
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(sv[1]);
  register_pool_fd(sv[0]);
  return {pid, sv[0]};
}

}  // namespace mp::detail
