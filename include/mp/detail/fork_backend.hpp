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
// per worker (at least BackendOptions::window, more for short tasks: about
// 1 ms of queued work), messages wait in a parent-side pending deque.
//
// Scheduling: a task goes to the idle worker that went idle last (it is the
// one most likely still spinning for work, so no ~60 us wakeup), else to the
// least loaded. Results are read by the result thread, or by a thread
// waiting in AsyncResult::get (ResultReader, a WaitHelper): while such a
// waiter spins, the result thread stands back (no third spinning thread on
// two cores), and results whose sinks have callbacks are left to it. When the spawner
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
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mp/detail/pool_layout.hpp>
#include <mp/detail/pool_reader.hpp>
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

/// The most tasks one worker may have in flight (short tasks).
inline constexpr std::int64_t max_window = 8192;

class ForkBackend {
public:
  explicit ForkBackend(const BackendOptions& o)
      : opt_(o), seg_(o.processes, o.channel_capacity), workers_(o.processes) {
    for (unsigned i = 0; i < o.processes; ++i) {
      workers_[i].tasks = seg_.task_channel(i);
      workers_[i].results = seg_.result_channel(i);
      workers_[i].slot = &seg_.slot(i);
    }
    auto [pid, fd] = start_spawner(seg_, [this](unsigned i) {
      return worker_main(seg_, i, opt_.initializer, opt_.maxtasksperchild);
    });
    spawner_pid_ = pid;
    sock_ = fd;
    for (unsigned i = 0; i < o.processes; ++i) send(spawner_command(SpawnerOp::spawn, i));
    reader_ = std::make_shared<ResultReader>([this] { return help_drain(); });
    thread_ = std::thread([this] { result_loop(); });
  }

  ForkBackend(const ForkBackend&) = delete;
  ForkBackend& operator=(const ForkBackend&) = delete;
  ~ForkBackend() { terminate(); }

  [[nodiscard]] unsigned size() const noexcept { return opt_.processes; }

  /// The spawner's pid (-1 once it was reaped). For tests and diagnostics.
  [[nodiscard]] pid_t spawner_pid() const noexcept { return spawner_pid_; }
  /// Worker i's current pid, 0 while it is being forked. Never blocks.
  [[nodiscard]] pid_t worker_pid(unsigned i) const noexcept {
    const WorkerSlot& s = seg_.slot(i);
    return s.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::alive) ? s.pid.load() : 0;
  }

  /// Queues one task message. Does not block on workers (only on mu_).
  /// Throws PoolNotRunning when closed.
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
    sink->use_helper(reader_);
    std::lock_guard lock(mu_);
    if (closed_) throw PoolNotRunning("mp::Pool is not running: it was closed or terminated");
    if (pending_.empty()) {
      const int i = choose();
      if (i >= 0 && n <= whole_limit()) {
        Worker& w = workers_[static_cast<unsigned>(i)];
        if (try_send(w.tasks, n, enc)) {
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
    pump();  // sends each worker its stop message
    lock.unlock();
    shutdown(SpawnerOp::join);  // the spawner exits once every worker did
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
    SpscChannel tasks, results;
    WorkerSlot* slot = nullptr;
    std::deque<InFlight> inflight;
    std::optional<Pending> streaming;  // a fragmented message half written
    unsigned sent = 0;                 // tasks sent to the current process
    std::uint64_t answered = 0;        // results received from it
    bool dead = false;                 // reported dead, replacement not asked yet
    bool want_space = false;
    bool stop_sent = false;            // join's empty message is in the channel
    std::uint64_t idle_since = 0;      // idle_clock_ when its last task was answered
    std::atomic<bool> want_space_flag{false};  // want_space, for the lock-free wait check
  };

  /// Task messages up to this size go whole; larger ones in parts.
  [[nodiscard]] std::size_t whole_limit() const noexcept { return workers_[0].tasks.capacity() / 2; }
  [[nodiscard]] std::size_t part_limit() const noexcept { return workers_[0].tasks.capacity() / 8; }

  /// Sends one message if it fits now; never blocks.
  template <class Enc>
  static bool try_send(SpscChannel& ch, std::size_t n, Enc& enc) {
    return ch.send(n, enc, Clock::time_point::min());
  }

  std::size_t outstanding() const {
    std::size_t n = pending_.size() + deferred_.size();
    for (const auto& w : workers_) n += w.inflight.size();
    return n;
  }

  void send(std::uint32_t cmd) {
    const ssize_t n = retry_eintr([&] { return ::write(sock_, &cmd, sizeof cmd); });
    if (n != static_cast<ssize_t>(sizeof cmd)) throw_system_error("write(spawner socket)");
  }

  /// The idle worker that went idle last (likely still spinning), else the
  /// one with the fewest tasks in flight below its window; -1 if none.
  int choose() const {
    int best = -1, idle = -1;
    std::size_t best_n = std::numeric_limits<std::size_t>::max();
    for (unsigned i = 0; i < workers_.size(); ++i) {
      const Worker& w = workers_[i];
      if (w.dead || w.streaming || w.want_space) continue;
      if (opt_.maxtasksperchild != 0 && w.sent >= opt_.maxtasksperchild) continue;
      if (w.inflight.empty() && (idle < 0 || w.idle_since > workers_[static_cast<unsigned>(idle)].idle_since))
        idle = static_cast<int>(i);
      if (w.inflight.size() < window(w) && w.inflight.size() < best_n) {
        best = static_cast<int>(i);
        best_n = w.inflight.size();
      }
    }
    return idle >= 0 ? idle : best;
  }

  /// Tasks worker w may have in flight: opt_.window, or ~1 ms of its work
  /// when its tasks are short (it measures them: WorkerSlot::task_ns).
  std::size_t window(const Worker& w) const noexcept {
    const std::int64_t ns = std::max<std::uint32_t>(1, w.slot->task_ns.load(std::memory_order_relaxed));
    return std::max<std::size_t>(opt_.window, static_cast<std::size_t>(std::min(max_window, 1'000'000 / ns)));
  }

  /// Notes when a worker ran out of tasks (under mu_).
  void measure(Worker& w) {
    if (w.inflight.empty()) w.idle_since = ++idle_clock_;
  }

  /// Moves pending messages into channels while there is room (under mu_).
  void pump() {
    for (auto& w : workers_) {
      if (w.streaming) stream(w);
      if (stopping_ && !w.stop_sent && !w.dead && w.inflight.empty()) send_stop(w);
    }
    while (!pending_.empty()) {
      const int i = choose();
      if (i < 0) return;
      Worker& w = workers_[static_cast<unsigned>(i)];
      Pending& p = pending_.front();
      if (p.bytes.size() > whole_limit()) {
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

  /// Writes now, or asks the worker to ring the doorbell when it frees space
  /// (and tries once more: it may have freed it in between).
  template <class Enc>
  bool try_write_or_want(Worker& w, std::size_t n, Enc& enc) {
    if (try_send(w.tasks, n, enc)) return true;
    want_space(w);
    if (try_send(w.tasks, n, enc)) {
      w.want_space = false;
      return true;
    }
    return false;
  }

  void want_space(Worker& w) {
    w.want_space = true;
    w.want_space_flag.store(true, std::memory_order_relaxed);
    w.slot->wants_space.store(1, std::memory_order_seq_cst);
  }

  void send_stop(Worker& w) {
    auto none = [](std::byte*) {};
    if (try_write_or_want(w, 0, none)) w.stop_sent = true;
  }

  /// Writes the parts of a streaming message while they fit.
  void stream(Worker& w) {
    Pending& p = *w.streaming;
    while (p.written < p.bytes.size()) {
      const std::size_t len = std::min(part_limit(), p.bytes.size() - p.written);
      auto enc = [&](std::byte* out) {
        const PartHeader h{part_magic, p.bytes.size(), p.written};
        std::memcpy(out, &h, sizeof h);
        std::memcpy(out + sizeof h, p.bytes.data() + p.written, len);
      };
      if (!try_write_or_want(w, sizeof(PartHeader) + len, enc)) return;
      p.written += len;
    }
    w.streaming.reset();
  }

  // ---- the result thread -------------------------------------------------

  void result_loop() {
    for (;;) {
      reader_->lock();
      bool did = drain_results(true);
      const std::uint32_t ev = seg_.ctl().events.load(std::memory_order_acquire);
      if (ev != events_seen_) {
        events_seen_ = ev;
        handle_events();
        did = true;
      }
      did = run_deferred() || did;
      reader_->unlock();
      if (after_results(did)) return;
      if (did) continue;
      if (reader_->helping()) {  // a waiter reads results: stand back, look again in 1 ms
        auto& word = reader_->active_word();
        const std::uint32_t v = word.load(std::memory_order_acquire);
        if (v != 0 && !quit_flag_.load(std::memory_order_acquire)) futex_wait(word, v, Clock::now() + std::chrono::milliseconds(1));
        continue;
      }
      wait_for_work();
    }
  }

  /// After reading results: notices freed task-channel space and moves
  /// pending tasks on. Returns true when the result thread should end.
  bool after_results(bool did) {
    std::lock_guard lock(mu_);
    if (quit_) return true;
    for (auto& w : workers_) {
      if (w.want_space && w.slot->wants_space.load(std::memory_order_acquire) == 0) {
        w.want_space = false;
        w.want_space_flag.store(false, std::memory_order_relaxed);
        did = true;
      }
    }
    if (did && (!pending_.empty() || any_streaming() || stopping_)) pump();
    return false;
  }

  /// Results a helping waiter left to this thread (their sinks have callbacks).
  bool run_deferred() {
    std::vector<std::pair<InFlight, std::vector<std::byte>>> d;
    {
      std::lock_guard lock(mu_);
      if (deferred_.empty()) return false;
      d.swap(deferred_);
      deferred_flag_.store(false, std::memory_order_relaxed);
    }
    for (auto& [e, bytes] : d) e.sink->on_result(e.index, bytes);
    idle_cv_.notify_all();  // join() counts deferred results as outstanding
    return true;
  }

  bool any_streaming() const {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.streaming.has_value(); });
  }

  void wait_for_work() {
    auto ready = [&] {
      if (quit_flag_.load(std::memory_order_acquire)) return true;
      if (deferred_flag_.load(std::memory_order_acquire)) return true;
      if (seg_.ctl().events.load(std::memory_order_acquire) != events_seen_) return true;
      for (auto& w : workers_) {
        if (w.results.readable()) return true;
        if (w.want_space_flag.load(std::memory_order_relaxed) &&
            w.slot->wants_space.load(std::memory_order_acquire) == 0)
          return true;
      }
      return false;
    };
    if (spin_for(parent_spin_ns, ready)) return;
    seg_.ctl().doorbell.wait(ready);
  }

  /// Delivers every result that is there; a corrupt one fails its task.
  bool drain_results(bool on_thread) {
    bool did = false;
    for (unsigned i = 0; i < workers_.size(); ++i) {
      for (;;) {
        try {
          auto on_msg = [&](std::span<const std::byte> m) { deliver(i, m, on_thread); };
          if (workers_[i].results.try_recv_batch(on_msg, 64) == 0) break;
        } catch (const DecodeError&) {  // the channel dropped that message and resynchronised
          deliver_error(i, std::current_exception());
        }
        did = true;
      }
    }
    return did;
  }

  void deliver_error(unsigned i, std::exception_ptr e) {
    InFlight x;
    {
      std::lock_guard lock(mu_);
      Worker& w = workers_[i];
      if (w.inflight.empty()) return;
      x = std::move(w.inflight.front());
      w.inflight.pop_front();
      ++w.answered;
      measure(w);
      if (closed_) idle_cv_.notify_all();
    }
    x.sink->on_error(x.index, e);
  }

  /// What a waiter does while it spins (ResultReader::help): read results.
  bool help_drain() {
    const bool did = drain_results(false);
    if (did) {
      std::lock_guard lock(mu_);
      if (!pending_.empty() || any_streaming()) pump();
    }
    return did;
  }

  /// Hands one result to its sink; off the result thread, a sink with
  /// callbacks gets it later from the result thread (a copy is kept).
  void deliver(unsigned i, std::span<const std::byte> msg, bool on_thread) {
    InFlight e;
    {
      std::lock_guard lock(mu_);
      Worker& w = workers_[i];
      if (w.inflight.empty()) return;  // a result nobody asked for: ignore
      e = std::move(w.inflight.front());
      w.inflight.pop_front();
      ++w.answered;
      measure(w);
      if (closed_) idle_cv_.notify_all();
      if (!on_thread && e.sink->has_callbacks()) {
        deferred_.emplace_back(std::move(e), std::vector<std::byte>(msg.begin(), msg.end()));
        deferred_flag_.store(true, std::memory_order_seq_cst);
        seg_.ctl().doorbell.notify();  // the result thread may sleep on it, not on the helpers
        return;
      }
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
    try {
      while (w.results.try_recv_batch([&](std::span<const std::byte> m) { deliver(i, m, true); }, 64) != 0) {
      }
    } catch (const DecodeError&) {  // the rest of its results are lost: the tasks fail below
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
      recycle(i);
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

  /// Fresh channels and slot for worker i's replacement (under mu_).
  void recycle(unsigned i) {
    Worker& w = workers_[i];
    WorkerSlot& slot = seg_.slot(i);
    seg_.create_channels(i);
    w.tasks = seg_.task_channel(i);
    w.results = seg_.result_channel(i);
    w.sent = 0;
    w.answered = 0;
    w.want_space = false;
    w.stop_sent = false;
    w.want_space_flag.store(false);
    slot.started.store(0);
    slot.used.store(0);
    slot.task_ns.store(task_ns_unknown);
    slot.wants_space.store(0);
  }

  /// Puts the dead worker's unstarted tasks back at the front of pending_.
  void requeue_unstarted(Worker& w, std::vector<InFlight>& lost) {
    std::deque<Pending> back;
    std::size_t from_ring = w.inflight.size() - (w.streaming ? 1 : 0);
    auto msgs = read_back_tasks(w.tasks);
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
    seg_.ctl().doorbell.notify_always();
    futex_wake_all(reader_->active_word());
    if (thread_.joinable()) thread_.join();
    reader_->detach();
  }

  void fail_everything() {
    std::vector<InFlight> lost;
    run_deferred();  // results a waiter left for the (now ended) result thread
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
  std::uint64_t idle_clock_ = 0;
  std::vector<std::pair<InFlight, std::vector<std::byte>>> deferred_;
  std::atomic<bool> deferred_flag_{false};  // deferred_ is not empty (lock-free check)
  std::shared_ptr<ResultReader> reader_;
  std::thread thread_;
};


}  // namespace mp::detail
