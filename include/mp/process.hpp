// mp/process.hpp - mp::Process: run a callable in a forked child process
// (Python's multiprocessing.Process), plus current_process(),
// parent_process() and active_children().
//
//   mp::Value<int> hits(0);                       // made before start(): shared
//   mp::Process p([](mp::Value<int> v, int n) { v.store(n); }, hits, 42);
//   p.start();
//   p.join();                                     // p.exitcode() == 0, hits.load() == 42
//
// The target and its arguments are stored by value (decayed, as std::thread
// does; pass std::ref for a reference) and reach the child through fork(), so
// nothing is serialized. Like Python, start() drops the parent's copy of the
// target and its arguments, so an object moved into a Process (a Pipe end, for
// instance) is closed in the parent after start().
//
// Exit codes follow Python: 0 when the target returns; 1 when it throws (the
// child prints "Process <name>: <type>: <what>" to stderr, as Python prints a
// traceback); -N when signal N killed the child.
//
// Destructor: a started child that is still running is joined (waited for),
// as Python joins non-daemon children at exit and as std::jthread joins; a
// daemon child is sent SIGTERM first. No zombie is left behind.
//
// Fork caveat: fork() copies only the calling thread. Start processes before
// starting threads, or make sure no other thread holds a lock (malloc's,
// iostreams', your own) the child will need.
#pragma once

#include <mp/detail/compiled.hpp>  // first: MP_DEFINE_COMPILED selects includes below

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>
#if MP_DEFINE_COMPILED
#include <iostream>
#endif

#include <mp/detail/shared_object.hpp>
#include <mp/detail/syscall.hpp>
#include <mp/detail/wire_error.hpp>

namespace mp {

/// A name and a pid: what current_process(), parent_process() and
/// active_children() return.
class ProcessInfo {
public:
  ProcessInfo(std::string name, pid_t pid) : name_(std::move(name)), pid_(pid) {}
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

private:
  std::string name_;
  pid_t pid_;
};

namespace detail {

/// What the parent knows about one child. Guarded by m.
struct ProcessState {
  std::mutex m;
  std::string name;
  pid_t pid = 0;      // 0 until started
  pid_t creator = 0;  // the process that forked it: the only one that may wait for it
  int pidfd = -1;     // readable when the child exits (Linux >= 5.3), else -1
  std::optional<int> exitcode;

  ProcessState() = default;
  ProcessState(const ProcessState&) = delete;
  ProcessState& operator=(const ProcessState&) = delete;
  ~ProcessState() {
    if (pidfd >= 0) ::close(pidfd);
  }

  /// Reaps the child if it has exited (never blocks); returns whether it has.
  /// Caller holds m.
  bool poll_locked() {
    if (exitcode) return true;
    int status = 0;
    pid_t r = retry_eintr([&] { return ::waitpid(pid, &status, WNOHANG); });
    if (r == 0) return false;
    if (r < 0) throw_system_error("waitpid (is SIGCHLD ignored, or was the child reaped elsewhere?)");
    exitcode = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    if (pidfd >= 0) ::close(pidfd);
    pidfd = -1;
    return true;
  }
};

/// This process's identity and the children it started. Replaced (not
/// reset: another thread may have held its mutex at fork) in each child.
struct Runtime {
  std::mutex m;
  std::string name = "MainProcess";
  std::vector<unsigned> identity;  // empty in the main process; (1, 2) for "Process-1:2"
  unsigned counter = 0;
  std::optional<ProcessInfo> parent;
  std::vector<std::weak_ptr<ProcessState>> children;
};

MP_COMPILED Runtime*& runtime();

struct TargetBase {
  virtual ~TargetBase() = default;
  virtual void run() = 0;
};

template <class F, class... A>
struct Target final : TargetBase {
  template <class G, class... B>
  explicit Target(G&& g, B&&... b) : f(std::forward<G>(g)), args(std::forward<B>(b)...) {}
  void run() override {
    std::apply([this](A&... a) { std::invoke(std::move(f), std::move(a)...); }, args);
  }
  F f;
  std::tuple<A...> args;
};

/// In a child whose target threw: prints "Process <name>: <type>: <what>".
MP_COMPILED void report_exception(const std::string& name) noexcept;

MP_COMPILED void flush_std_streams() noexcept;

MP_COMPILED int pidfd_open(pid_t pid) noexcept;

#if MP_DEFINE_COMPILED

MP_COMPILED Runtime*& runtime() {
  static Runtime* r = new Runtime();  // reachable for ever: never freed, never reported
  return r;
}

MP_COMPILED void report_exception(const std::string& name) noexcept {
  try {
    const WireError e = describe_current_exception();
    std::fprintf(stderr, "Process %s: %s: %s\n", name.c_str(), e.type_name.c_str(), e.what.c_str());
  } catch (...) {
    std::fputs("Process: the target threw, and reporting it failed\n", stderr);
  }
}

MP_COMPILED void flush_std_streams() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
  } catch (...) {
  }
  std::fflush(nullptr);
}

MP_COMPILED int pidfd_open(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

#endif  // MP_DEFINE_COMPILED

}  // namespace detail

/// A child process running a callable. Move-only. All members are safe to
/// call from several threads, except start() racing with other calls.
class Process {
public:
  /// Stores f and a copy of args (decayed; std::ref for references) and names
  /// the process "Process-N" (N counts this process's Process objects, from
  /// 1; a child's children are "Process-N:M"). Does not start it.
  template <class F, class... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Process>)
  explicit Process(F&& f, Args&&... args) : state_(std::make_shared<detail::ProcessState>()) {
    static_assert(std::is_invocable_v<std::decay_t<F>&&, std::decay_t<Args>&&...>,
                  "mp::Process: the target cannot be called with these arguments (they are stored by value; "
                  "wrap an argument in std::ref to pass a reference).");
    target_ = std::make_unique<detail::Target<std::decay_t<F>, std::decay_t<Args>...>>(
        std::forward<F>(f), std::forward<Args>(args)...);
    detail::Runtime& rt = *detail::runtime();
    std::lock_guard g(rt.m);
    identity_ = rt.identity;
    identity_.push_back(++rt.counter);
    state_->name = "Process";
    for (std::size_t i = 0; i < identity_.size(); ++i) {
      state_->name.push_back(i == 0 ? '-' : ':');
      state_->name.append(std::to_string(identity_[i]));
    }
  }

  Process(Process&&) noexcept = default;
  Process& operator=(Process&& o) noexcept {
    if (this != &o) {
      finish();
      state_ = std::move(o.state_);
      target_ = std::move(o.target_);
      identity_ = std::move(o.identity_);
      daemon_ = o.daemon_;
    }
    return *this;
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Joins a running child (SIGTERM first if daemon). Never throws.
  ~Process() { finish(); }

  /// The name ("Process-1" unless set). Never blocks.
  [[nodiscard]] std::string name() const {
    std::lock_guard g(state_->m);
    return state_->name;
  }
  /// Renames the process; the child sees the name current at start().
  void name(std::string n) {
    std::lock_guard g(state_->m);
    state_->name = std::move(n);
  }
  /// Whether the process is a daemon: the destructor terminates it instead of
  /// waiting for it to finish by itself.
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  /// Sets the daemon flag; throws std::logic_error after start().
  void daemon(bool d) {
    if (pid() != 0) throw std::logic_error("mp::Process::daemon(bool): the process has already started");
    daemon_ = d;
  }

  /// Forks the child, which runs the target and exits. Does not wait for it.
  /// Throws std::logic_error if already started, std::system_error if fork fails.
  void start();

  /// Blocks until the child exits and reaps it. Throws std::logic_error if
  /// not started or not this process's child.
  void join() { join_until(detail::Clock::time_point::max()); }

  /// Blocks at most `timeout`; returns whether the child has exited.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::deadline_after(timeout));
  }

  /// Whether the child has started and not yet exited (reaps it if it has).
  /// Never blocks.
  [[nodiscard]] bool is_alive() {
    if (pid() == 0) return false;
    std::lock_guard g(state_->m);
    return !state_->poll_locked();
  }

  /// nullopt while not started or running; 0 after a normal exit, 1 if the
  /// target threw, the exit status it passed to _exit, or -N if signal N
  /// killed it. Never blocks.
  [[nodiscard]] std::optional<int> exitcode() {
    if (pid() == 0) return std::nullopt;
    std::lock_guard g(state_->m);
    state_->poll_locked();
    return state_->exitcode;
  }

  /// The child's pid; 0 before start(). Never blocks.
  [[nodiscard]] pid_t pid() const noexcept {
    if (!state_) return 0;
    std::lock_guard g(state_->m);
    return state_->pid;
  }

  /// Sends SIGTERM (does nothing if the child has exited). Does not wait:
  /// join() after. Throws std::logic_error if not started.
  void terminate() { signal(SIGTERM, "terminate"); }
  /// Sends SIGKILL (does nothing if the child has exited). Does not wait.
  void kill() { signal(SIGKILL, "kill"); }

private:
  [[noreturn]] void run_child() noexcept;

  /// Whether this process started the child (so may signal and reap it).
  [[nodiscard]] bool started_here() const noexcept {
    if (!state_) return false;
    std::lock_guard g(state_->m);
    return state_->pid != 0 && state_->creator == detail::self_pid();
  }

  void check_child(const char* what) const;

  bool join_until(detail::Clock::time_point deadline);

  void signal(int sig, const char* what);

  void finish() noexcept;

  std::shared_ptr<detail::ProcessState> state_;
  std::unique_ptr<detail::TargetBase> target_;
  std::vector<unsigned> identity_;
  bool daemon_ = false;
};

#if MP_DEFINE_COMPILED

MP_COMPILED void Process::start() {
  if (!state_ || pid() != 0 || !target_) throw std::logic_error("mp::Process::start(): cannot start a process twice");
  detail::flush_std_streams();  // or buffered output would be printed twice
  pid_t pid = ::fork();
  if (pid < 0) detail::throw_system_error("fork");
  if (pid == 0) run_child();
  {
    std::lock_guard g(state_->m);
    state_->pid = pid;
    state_->creator = detail::self_pid();
    state_->pidfd = detail::pidfd_open(pid);
  }
  detail::Runtime& rt = *detail::runtime();
  {
    std::lock_guard g(rt.m);
    std::erase_if(rt.children, [](const auto& w) { return w.expired(); });
    rt.children.push_back(state_);
  }
  target_.reset();  // as Python: the parent's copy of the target and its arguments goes
}

MP_COMPILED void Process::run_child() noexcept {
  auto* rt = new detail::Runtime();
  const detail::Runtime& old = *detail::runtime();
  rt->name = state_->name;
  rt->identity = identity_;
  rt->parent.emplace(old.name, ::getppid());
  detail::runtime() = rt;  // the old one may be locked by a thread fork did not copy
  int code = 0;
  try {
    target_->run();
  } catch (...) {
    detail::report_exception(rt->name);
    code = 1;
  }
  detail::flush_std_streams();
  ::_exit(code);
}

MP_COMPILED void Process::check_child(const char* what) const {
  if (pid() == 0) throw std::logic_error(std::string("mp::Process::") + what + "(): the process was not started");
  if (!started_here())
    throw std::logic_error(std::string("mp::Process::") + what + "(): can only be used by the process that started it");
}

MP_COMPILED bool Process::join_until(detail::Clock::time_point deadline) {
  check_child("join");
  auto backoff = std::chrono::microseconds(100);
  for (;;) {
    int fd = -1;
    {
      std::lock_guard g(state_->m);
      if (state_->poll_locked()) return true;
      fd = state_->pidfd;
    }
    auto now = detail::Clock::now();
    if (now >= deadline) return false;
    auto left = deadline - now;
    if (fd >= 0 && left > std::chrono::hours(24)) left = std::chrono::hours(24);
    if (fd >= 0) {
      // Another thread may reap and close fd meanwhile; then ppoll returns at once (POLLNVAL).
      pollfd p{fd, POLLIN, 0};
      const timespec ts = detail::relative_timespec(left);
      ::ppoll(&p, 1, &ts, nullptr);
    } else {
      std::this_thread::sleep_for(std::min<detail::Clock::duration>(backoff, left));
      backoff = std::min(backoff * 2, std::chrono::microseconds(10'000));
    }
  }
}

MP_COMPILED void Process::signal(int sig, const char* what) {
  check_child(what);
  std::lock_guard g(state_->m);
  if (state_->poll_locked()) return;  // reaped: the pid may belong to someone else now
  if (::kill(state_->pid, sig) != 0 && errno != ESRCH) detail::throw_system_error("kill");
}

MP_COMPILED void Process::finish() noexcept {
  if (!started_here()) return;
  try {
    if (daemon_) terminate();
    join();
  } catch (...) {
  }
}

#endif  // MP_DEFINE_COMPILED

/// The calling process: its name ("MainProcess" in the main process, the
/// Process's name in a child) and pid. Never blocks; thread-safe.
MP_COMPILED ProcessInfo current_process();

/// The process that started this one, or nullopt in the main process.
/// Never blocks; thread-safe.
MP_COMPILED std::optional<ProcessInfo> parent_process();

/// The live children this process started (as Python, finished ones are
/// reaped on the way). Never blocks; thread-safe.
MP_COMPILED std::vector<ProcessInfo> active_children();

#if MP_DEFINE_COMPILED

MP_COMPILED ProcessInfo current_process() {
  detail::Runtime& rt = *detail::runtime();
  std::lock_guard g(rt.m);
  return ProcessInfo(rt.name, detail::self_pid());
}

MP_COMPILED std::optional<ProcessInfo> parent_process() {
  detail::Runtime& rt = *detail::runtime();
  std::lock_guard g(rt.m);
  return rt.parent;
}

MP_COMPILED std::vector<ProcessInfo> active_children() {
  detail::Runtime& rt = *detail::runtime();
  std::lock_guard g(rt.m);
  std::vector<ProcessInfo> out;
  std::erase_if(rt.children, [&](const std::weak_ptr<detail::ProcessState>& w) {
    std::shared_ptr<detail::ProcessState> s = w.lock();
    if (!s) return true;
    std::lock_guard sg(s->m);
    if (s->poll_locked()) return true;
    out.emplace_back(s->name, s->pid);
    return false;
  });
  return out;
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp
