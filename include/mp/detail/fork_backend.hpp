// mp/detail/fork_backend.hpp - the parent side of the fork backend: schedules
// task messages onto per-worker channels, reads results on one thread, and
// turns a worker's death into WorkerLostError for the task it was running.
//
// The backend seam (what basic_pool needs from any backend, see pool.hpp):
//   Backend(const BackendOptions&)       start the workers
//   unsigned size() const
//   void submit(n, EncodeRef, shared_ptr<Sink>, index)
//                                        queue one task message of n bytes;
//                                        the sink gets exactly one on_result
//                                        or on_error, on the result thread
//   bool running()                       submissions accepted?
//   void close(); void join(); void terminate();
//
// Bookkeeping (all under mu_): per worker a FIFO of in-flight tasks, in the
// order their messages entered its channel; a worker answers in that order,
// so each result message pops the front. Beyond a window of in-flight tasks
// per worker, messages wait in a parent-side pending deque. When the spawner
// reports a death: the results already sent are delivered, the task the
// worker had begun fails with WorkerLostError, the tasks it had not begun go
// back to the front of the pending deque, and a replacement is spawned.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <sys/wait.h>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mp/detail/pool_layout.hpp>
#include <mp/detail/spawner.hpp>
#include <mp/detail/task.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// What every backend is built from.
struct BackendOptions {
  unsigned processes = 1;
  unsigned maxtasksperchild = 0;        // 0: unlimited
  unsigned window = 64;                 // in-flight tasks per worker
  std::size_t channel_capacity = 8u << 20;
  std::vector<std::byte> initializer;   // a task message, or empty
};

/// Thrown by submit on a closed or terminated pool.
class PoolNotRunning : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

class ForkBackend {
public:
  explicit ForkBackend(const BackendOptions& o)
      : opt_(o), seg_(o.processes, o.channel_capacity), workers_(o.processes) {
    for (unsigned i = 0; i < o.processes; ++i) {
      workers_[i].tasks = seg_.task_channel(i);
      workers_[i].results = seg_.result_channel(i);
    }
    auto [pid, fd] = start_spawner(seg_, [this](unsigned i) {
      return worker_main(seg_, i, opt_.initializer, opt_.maxtasksperchild);
    });
    spawner_pid_ = pid;
    sock_ = fd;
    for (unsigned i = 0; i < o.processes; ++i) send(spawner_command(SpawnerOp::spawn, i));
    thread_ = std::thread([this] { result_loop(); });
  }

  ForkBackend(const ForkBackend&) = delete;
  ForkBackend& operator=(const ForkBackend&) = delete;
  ~ForkBackend() { terminate(); }

  [[nodiscard]] unsigned size() const noexcept { return opt_.processes; }

  /// Queues one task message. Does not block on workers (only on mu_).
  /// Throws PoolNotRunning when closed.
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
    std::lock_guard lock(mu_);
    if (closed_) throw PoolNotRunning("mp::Pool is not running: it was closed or terminated");
    if (pending_.empty()) {
      const int i = choose();
      if (i >= 0 && n <= workers_[static_cast<unsigned>(i)].tasks.max_record()) {
        Worker& w = workers_[static_cast<unsigned>(i)];
        if (w.tasks.try_write(n, enc)) {
          w.inflight.push_back({std::move(sink), index});
          ++w.sent;
          return;
        }
      }
    }
    Pending p{std::vector<std::byte>(n), std::move(sink), index};
    enc(p.bytes.data());
    pending_.push_back(std::move(p));
    pump();
  }

  /// Whether submissions are accepted (not closed, terminated or broken).
  bool running() {
    std::lock_guard lock(mu_);
    return !closed_;
  }

  /// No more submissions; running and queued tasks go on. Never blocks.
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }

  /// Waits for every queued task, then lets the workers exit and reaps them.
  /// Requires close() first (std::logic_error otherwise). Blocks.
  void join() {
    std::unique_lock lock(mu_);
    if (!closed_) throw std::logic_error("mp::Pool::join: call close() or terminate() first");
    if (joined_) return;
    idle_cv_.wait(lock, [&] { return terminated_ || outstanding() == 0; });
    if (terminated_) return;
    stopping_ = true;
    for (unsigned i = 0; i < size(); ++i) {
      seg_.slot(i).stop.store(1, std::memory_order_release);
      workers_[i].tasks.data_bell().ring();
    }
    idle_cv_.wait(lock, [&] { return all_dead(); });
    lock.unlock();
    shutdown(SpawnerOp::exit);
  }

  /// Kills every worker now; tasks not finished fail with mp::ClosedError.
  /// Blocks only while the spawner reaps (milliseconds). Idempotent.
  void terminate() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      if (joined_) return;
      terminated_ = true;
    }
    idle_cv_.notify_all();
    shutdown(SpawnerOp::kill);
    fail_everything();
  }

private:
  struct InFlight {
    std::shared_ptr<Sink> sink;
    std::size_t index;
  };
  struct Pending {
    std::vector<std::byte> bytes;
    std::shared_ptr<Sink> sink;
    std::size_t index;
    std::size_t written = 0;  // bytes already in a channel, while streaming
  };
  struct Worker {
    Channel tasks, results;
    std::deque<InFlight> inflight;
    std::optional<Pending> streaming;  // a fragmented message half written
    unsigned sent = 0;                 // tasks sent to the current process
    std::uint64_t answered = 0;        // results received from it
    bool dead = false;                 // reported dead, replacement not asked yet
    bool want_space = false;
    std::atomic<bool> want_space_flag{false};  // want_space, for the lock-free wait check
  };

  std::size_t outstanding() const {
    std::size_t n = pending_.size();
    for (const auto& w : workers_) n += w.inflight.size();
    return n;
  }
  bool all_dead() const {
    return std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.dead; });
  }

  void send(std::uint32_t cmd) {
    const ssize_t n = retry_eintr([&] { return ::write(sock_, &cmd, sizeof cmd); });
    if (n != static_cast<ssize_t>(sizeof cmd)) throw_system_error("write(spawner socket)");
  }

  /// The schedulable worker with the fewest tasks in flight, or -1.
  int choose() const {
    int best = -1;
    std::size_t best_n = opt_.window;
    for (unsigned i = 0; i < workers_.size(); ++i) {
      const Worker& w = workers_[i];
      if (w.dead || w.streaming || w.want_space) continue;
      if (opt_.maxtasksperchild != 0 && w.sent >= opt_.maxtasksperchild) continue;
      if (w.inflight.size() < best_n) {
        best = static_cast<int>(i);
        best_n = w.inflight.size();
      }
    }
    return best;
  }

  /// Moves pending messages into channels while there is room (under mu_).
  void pump() {
    for (auto& w : workers_)
      if (w.streaming) stream(w);
    while (!pending_.empty()) {
      const int i = choose();
      if (i < 0) return;
      Worker& w = workers_[static_cast<unsigned>(i)];
      Pending& p = pending_.front();
      if (p.bytes.size() > w.tasks.max_record()) {
        w.inflight.push_back({p.sink, p.index});
        ++w.sent;
        w.streaming = std::move(p);
        pending_.pop_front();
        stream(w);
        continue;
      }
      auto copy = [&](std::byte* out) { std::memcpy(out, p.bytes.data(), p.bytes.size()); };
      if (!try_write_or_want(w, p.bytes.size(), copy)) continue;
      w.inflight.push_back({std::move(p.sink), p.index});
      ++w.sent;
      pending_.pop_front();
    }
  }

  template <class Enc>
  bool try_write_or_want(Worker& w, std::size_t n, Enc& enc) {
    if (w.tasks.try_write(n, enc)) return true;
    w.want_space = true;
    w.want_space_flag.store(true, std::memory_order_relaxed);
    w.tasks.ctl().wants_space.store(1, std::memory_order_seq_cst);
    if (w.tasks.try_write(n, enc)) {
      w.want_space = false;
      return true;
    }
    return false;
  }

  void stream(Worker& w) {
    Pending& p = *w.streaming;
    p.written = w.tasks.try_write_fragments(p.bytes, p.written);
    if (p.written == p.bytes.size()) {
      w.streaming.reset();
      return;
    }
    w.want_space = true;
    w.want_space_flag.store(true, std::memory_order_relaxed);
    w.tasks.ctl().wants_space.store(1, std::memory_order_seq_cst);
  }

  // ---- the result thread -------------------------------------------------

  void result_loop() {
    for (;;) {
      bool did = drain_results();
      const std::uint32_t ev = seg_.ctl().events.load(std::memory_order_acquire);
      if (ev != events_seen_) {
        events_seen_ = ev;
        handle_events();
        did = true;
      }
      {
        std::lock_guard lock(mu_);
        if (quit_) return;
        for (auto& w : workers_) {
          if (w.want_space && w.tasks.ctl().wants_space.load(std::memory_order_acquire) == 0) {
            w.want_space = false;
            w.want_space_flag.store(false, std::memory_order_relaxed);
            did = true;
          }
        }
        if (did && (!pending_.empty() || any_streaming())) pump();
      }
      if (!did) wait_for_work();
    }
  }

  bool any_streaming() const {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.streaming.has_value(); });
  }

  void wait_for_work() {
    seg_.ctl().doorbell.wait(
        [&] {
          if (quit_flag_.load(std::memory_order_acquire)) return true;
          if (seg_.ctl().events.load(std::memory_order_acquire) != events_seen_) return true;
          for (auto& w : workers_) {
            if (!w.results.empty()) return true;
            if (w.want_space_flag.load(std::memory_order_relaxed) &&
                w.tasks.ctl().wants_space.load(std::memory_order_acquire) == 0)
              return true;
          }
          return false;
        },
        parent_spin_ns);
  }

  bool drain_results() {
    bool did = false;
    for (unsigned i = 0; i < workers_.size(); ++i) {
      while (workers_[i].results.try_read([&](std::span<const std::byte> m) { deliver(i, m); })) did = true;
    }
    return did;
  }

  void deliver(unsigned i, std::span<const std::byte> msg) {
    InFlight e;
    {
      std::lock_guard lock(mu_);
      Worker& w = workers_[i];
      if (w.inflight.empty()) return;  // a result nobody asked for: ignore
      e = std::move(w.inflight.front());
      w.inflight.pop_front();
      ++w.answered;
      if (closed_) idle_cv_.notify_all();
    }
    e.sink->on_result(e.index, msg);
  }

  void handle_events() {
    for (unsigned i = 0; i < workers_.size(); ++i) {
      const auto st = static_cast<SlotState>(seg_.slot(i).state.load(std::memory_order_acquire));
      bool seen;
      {
        std::lock_guard lock(mu_);
        seen = workers_[i].dead;
      }
      if (st == SlotState::dead && !seen) handle_death(i);
    }
  }

  /// A worker is gone (reaped by the spawner): deliver what it sent, fail
  /// the task it had begun, requeue the rest, start a replacement.
  void handle_death(unsigned i) {
    Worker& w = workers_[i];
    WorkerSlot& slot = seg_.slot(i);
    while (w.results.try_read([&](std::span<const std::byte> m) { deliver(i, m); })) {
    }
    const pid_t pid = slot.pid.load();
    const int status = slot.status.load();
    std::vector<InFlight> lost;
    {
      std::lock_guard lock(mu_);
      w.dead = true;
      if (slot.started.load() > w.answered && !w.inflight.empty()) {
        lost.push_back(std::move(w.inflight.front()));
        w.inflight.pop_front();
      }
      requeue_unstarted(w, lost);
      w.tasks.reset();
      w.results.reset();
      w.sent = 0;
      w.answered = 0;
      w.want_space = false;
      w.want_space_flag.store(false);
      slot.started.store(0);
      slot.stop.store(stopping_ ? 1 : 0);
      if (WIFEXITED(status) && WEXITSTATUS(status) == initializer_failed_exit) broken(lost);
      if (!terminated_ && !broken_ && !(stopping_ && outstanding() == 0)) {
        slot.state.store(static_cast<std::uint32_t>(SlotState::spawning));
        w.dead = false;
        send(spawner_command(SpawnerOp::spawn, i));
      }
      idle_cv_.notify_all();
      pump();
    }
    const auto err = std::make_exception_ptr(WorkerLostError(pid, describe_exit(pid, status)));
    for (auto& e : lost) e.sink->on_error(e.index, err);
  }

  /// Puts the dead worker's unstarted tasks back at the front of pending_.
  void requeue_unstarted(Worker& w, std::vector<InFlight>& lost) {
    std::deque<Pending> back;
    std::size_t from_ring = w.inflight.size() - (w.streaming ? 1 : 0);
    auto msgs = w.tasks.drain_messages();
    const std::size_t have = std::min(from_ring, msgs.size());
    for (std::size_t k = 0; k < from_ring; ++k) {
      InFlight& e = w.inflight[k];
      if (k + have < from_ring) {  // its bytes are gone: cannot re-run it
        lost.push_back(std::move(e));
        continue;
      }
      back.push_back({std::move(msgs[msgs.size() - from_ring + k]), std::move(e.sink), e.index});
    }
    if (w.streaming) {
      w.streaming->written = 0;
      back.push_back(std::move(*w.streaming));
      w.streaming.reset();
    }
    w.inflight.clear();
    pending_.insert(pending_.begin(), std::make_move_iterator(back.begin()), std::make_move_iterator(back.end()));
  }

  /// The initializer failed: the pool cannot run tasks; fail them all.
  void broken(std::vector<InFlight>& lost) {
    broken_ = true;
    closed_ = true;
    for (auto& p : pending_) lost.push_back({std::move(p.sink), p.index});
    pending_.clear();
    for (auto& w : workers_) {
      for (auto& e : w.inflight) lost.push_back(std::move(e));
      w.inflight.clear();
    }
  }

  // ---- shutdown ------------------------------------------------------------

  void shutdown(SpawnerOp op) {
    if (spawner_pid_ > 0) {
      try {
        send(spawner_command(op));
      } catch (...) {
      }
      int st = 0;
      while (::waitpid(spawner_pid_, &st, 0) < 0 && errno == EINTR) {
      }
      spawner_pid_ = -1;
      unregister_pool_fd(sock_);
      ::close(sock_);
    }
    {
      std::lock_guard lock(mu_);
      quit_ = true;
      joined_ = true;
    }
    quit_flag_.store(true, std::memory_order_seq_cst);
    seg_.ctl().doorbell.ring();
    if (thread_.joinable()) thread_.join();
  }

  void fail_everything() {
    std::vector<InFlight> lost;
    {
      std::lock_guard lock(mu_);
      for (auto& w : workers_) {
        for (auto& e : w.inflight) lost.push_back(std::move(e));
        w.inflight.clear();
        w.streaming.reset();
      }
      for (auto& p : pending_) lost.push_back({std::move(p.sink), p.index});
      pending_.clear();
    }
    const auto err = std::make_exception_ptr(
        ClosedError("mp::Pool was terminated before this task finished; its result will never come"));
    for (auto& e : lost) e.sink->on_error(e.index, err);
  }

  BackendOptions opt_;
  PoolSegment seg_;
  std::vector<Worker> workers_;
  std::deque<Pending> pending_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  bool closed_ = false, stopping_ = false, terminated_ = false, joined_ = false, broken_ = false;
  bool quit_ = false;  // the result thread should end (guarded by mu_)
  std::atomic<bool> quit_flag_{false};
  pid_t spawner_pid_ = -1;
  int sock_ = -1;
  std::uint32_t events_seen_ = 0;
  std::thread thread_;
};

}  // namespace mp::detail
