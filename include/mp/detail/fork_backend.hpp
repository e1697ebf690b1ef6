// mp/detail/fork_backend.hpp - the parent side of the fork backend: schedules
// task messages onto per-worker channels, reads results on one thread, and
// turns a worker's death into WorkerLostError for the task it was running.
//
// It implements the backend seam described in backend.hpp. This file holds
// the class, scheduling and shutdown; the result thread's members are in
// fork_results.hpp, fault handling in fork_faults.hpp.
//
// Bookkeeping (under mu_): per worker a FIFO of in-flight tasks (a WorkerLedger,
// worker_ledger.hpp); beyond a window per worker (at least
// BackendOptions::window, about 1 ms of work for short tasks) messages wait
// in a parent-side pending deque. A task goes to the idle worker that went
// idle last (likely still spinning: no ~60 us wakeup), else the least
// loaded. Results are read by the result thread, or by a thread waiting in
// AsyncResult::get (ResultReader): while it spins the result thread stands
// back, and results whose sinks have callbacks are left to the thread.
//
// Faults. A death the spawner reports: the results sent are delivered, the
// task begun fails with WorkerLostError (or runs again, up to retries), the
// unstarted ones go back to the front of the pending deque, a replacement
// is spawned. A task past task_timeout, or cancel(true): the spawner is told
// to kill that slot's worker (kill_worker), and the death is then reported
// as TaskTimeoutError / CancelledError. The spawner's own death (checked
// every 100 ms while tasks are out, every second while the pool is idle):
// the standby spawner takes over and the lost workers are handled as
// deaths; with no standby left every task fails and the pool is broken.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
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

#include <mp/cpu_count.hpp>
#include <mp/detail/backend.hpp>
#include <mp/detail/pool_layout.hpp>
#include <mp/detail/pool_phase.hpp>
#include <mp/detail/pool_reader.hpp>
#include <mp/detail/spin.hpp>
#include <mp/detail/worker_ledger.hpp>
#include <mp/detail/worker_process.hpp>
#include <mp/detail/spawners.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

class ForkBackend {
public:
  /// Workers inherit the parent's memory: shared objects may be task arguments.
  static constexpr bool shares_memory = true;
  /// It kills a task past its sink's time_limit() (mp::time_limit).
  static constexpr bool per_call_time_limits = true;

  explicit ForkBackend(const BackendOptions& o)
      : opt_(resolved(o)),
        seg_(opt_.processes, o.channel_capacity),
        workers_(WorkerLedger::for_slots(seg_, opt_.processes)),
        spawners_(seg_, [this](unsigned i) {
          return worker_main(seg_, i, opt_.initializer,
                             WorkerLimits{opt_.maxtasksperchild, opt_.memory_limit, opt_.max_result_bytes});
        }) {
    for (unsigned i = 0; i < opt_.processes; ++i) send(spawner_command(SpawnerOp::spawn, i));
    last_spawner_check_ = Clock::now();
    reader_ = std::make_shared<ResultReader>([this] { return help_drain(); },
                                             [this](const Sink* s, bool running) { return cancel(s, running); });
    thread_ = std::thread([this] { result_loop(); });
  }

  ForkBackend(const ForkBackend&) = delete;
  ForkBackend& operator=(const ForkBackend&) = delete;
  ~ForkBackend() {
    terminate();
    if (thread_.joinable()) {  // terminate() ran on the result thread (a callback)
      thread_.join();
      reader_->detach();
    }
  }

  [[nodiscard]] unsigned size() const noexcept { return opt_.processes; }

  /// The active spawner's pid (-1 once it was reaped). For tests and diagnostics.
  [[nodiscard]] pid_t spawner_pid() const {
    std::lock_guard lock(mu_);
    return spawners_.active_pid();
  }
  /// The standby spawner's pid (-1 when there is none). For tests and diagnostics.
  [[nodiscard]] pid_t standby_pid() const {
    std::lock_guard lock(mu_);
    return spawners_.standby_pid();
  }
  /// Worker i's current pid, 0 while it is being forked. Never blocks.
  [[nodiscard]] pid_t worker_pid(unsigned i) const noexcept {
    const WorkerSlot& s = seg_.slot(i);
    return s.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::alive) ? s.pid.load() : 0;
  }

  /// Queues one task message. Does not block on workers (only on mu_).
  /// Throws PoolNotRunning when closed.
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
    sink->use_helper(reader_);
    if (sink->time_limit() > Clock::duration::zero()) note_time_limit(sink->time_limit());
    if (idle_wait_.load(std::memory_order_relaxed) && idle_wait_.exchange(false)) seg_.ctl().doorbell.notify();
    std::lock_guard lock(mu_);
    if (phase() != Phase::running) throw PoolNotRunning(why_locked());
    if (pending_.empty() && opt_.retries == 0) {  // with retries, keep a copy: go through pending_
      const int i = choose();
      if (i >= 0 && n <= whole_limit()) {
        WorkerLedger& w = workers_[static_cast<unsigned>(i)];
        if (WorkerLedger::try_send(w.tasks, n, enc)) {
          w.inflight.push_back({std::move(sink), index, nullptr});
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

  /// The items finished inside the chunks of sink s that workers run now
  /// (their item words, item_counter.hpp). Blocks only on the pool's lock.
  std::size_t running_items(const Sink* s) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& w : workers_) {
      const std::uint64_t started = w.slot->started.load(std::memory_order_seq_cst);
      const InFlight* e = w.running();
      if (e != nullptr && e->sink.get() == s) n += items_of(w.slot->items.load(std::memory_order_relaxed), started);
    }
    return n;
  }

  /// Why submissions are refused: closed, terminated or broken (which and why).
  std::string why_not_running() {
    std::lock_guard lock(mu_);
    return why_locked();
  }

  /// Whether submissions are accepted (not closed, terminated or broken).
  bool running() {
    std::lock_guard lock(mu_);
    return phase() == Phase::running;
  }

  /// No more submissions; running and queued tasks go on. Never blocks.
  void close() {
    std::lock_guard lock(mu_);
    if (phase() == Phase::running) set_phase(Phase::closed);
  }

  /// Waits for every queued task, then lets the workers exit and reaps them.
  /// Requires close() first (std::logic_error otherwise). Blocks.
  void join() { join_until(Clock::time_point::max()); }

  /// join() that returns false, joining nothing, when tasks are still
  /// outstanding at the deadline. The workers' exit after the last task is
  /// not timed (it takes milliseconds).
  bool join_until(Clock::time_point deadline) {
    if (std::this_thread::get_id() == thread_.get_id())
      throw std::logic_error(
          "mp::Pool::join: called from a then() callback, which runs on the pool's result thread; join would wait "
          "for that thread itself (call close() or terminate() there, and join() from another thread)");
    std::unique_lock lock(mu_);
    if (phase() == Phase::running) throw std::logic_error("mp::Pool::join: call close() or terminate() first");
    auto killed = [&] { return phase() == Phase::terminated || phase() == Phase::ended; };
    if (killed()) return true;
    const auto idle = [&] { return killed() || outstanding() == 0; };
    if (deadline == Clock::time_point::max()) {
      idle_cv_.wait(lock, idle);
    } else if (!idle_cv_.wait_until(lock, deadline, idle)) {
      return false;
    }
    if (killed()) return true;
    set_phase(Phase::stopping);
    pump();  // sends each worker its stop message
    lock.unlock();
    shutdown(SpawnerOp::join);  // the spawner exits once every worker did
    return true;
  }

  /// Kills every worker now; tasks not finished fail with mp::ClosedError.
  /// Blocks only while the spawner reaps (milliseconds). Idempotent.
  void terminate() {
    {
      std::lock_guard lock(mu_);
      if (phase() == Phase::ended) return;
      set_phase(Phase::terminated);
    }
    idle_cv_.notify_all();
    shutdown(SpawnerOp::kill);
    fail_everything();
  }

  /// Cancels sink s's tasks still waiting in the parent (they fail with
  /// CancelledError); with `running`, also kills the worker running one of
  /// them (replaced; that task fails with CancelledError). A task already in
  /// a worker's channel but not begun stays. Returns whether it cancelled
  /// any. Runs with the reading role held (ResultReader::cancel), so no
  /// result of s is delivered meanwhile.
  bool cancel(const Sink* s, bool running) {
    std::vector<Pending> removed;
    bool killed = false;
    {
      std::lock_guard lock(mu_);
      if (phase() == Phase::terminated || phase() == Phase::ended) return false;
      removed = take_pending_of(pending_, s);
      for (unsigned i = 0; running && i < workers_.size(); ++i) {
        const InFlight* e = workers_[i].running();
        if (e != nullptr && e->sink.get() == s) killed = doom(i, *e, cancelled_error(true)) || killed;
      }
      if (phase() != Phase::running) idle_cv_.notify_all();
    }
    const auto err = cancelled_error(false);
    for (auto& p : removed) p.sink->on_error(p.index, err);
    return !removed.empty() || killed;
  }

private:
  friend struct TestAccess;  // tests corrupt a result frame (seg_, reader_)

  /// o with processes == 0 replaced by max(1, round(cpu_count() * factor)).
  static BackendOptions resolved(BackendOptions o) {
    if (o.processes == 0) o.processes = static_cast<unsigned>(std::max(1.0, std::round(cpu_count() * o.factor)));
    return o;
  }

  // ---- scheduling ---------------------------------------------------------------

  /// Task messages up to this size go whole; larger ones in parts.
  [[nodiscard]] std::size_t whole_limit() const noexcept { return workers_[0].tasks.capacity() / 2; }
  [[nodiscard]] std::size_t part_limit() const noexcept { return workers_[0].tasks.capacity() / 8; }

  std::size_t outstanding() const {
    std::size_t n = pending_.size() + deferred_.size();
    for (const auto& w : workers_) n += w.inflight.size();
    return n;
  }

  void send(std::uint32_t cmd) { spawners_.send(cmd); }

  /// The idle worker that went idle last (likely still spinning), else the
  /// one with the fewest tasks in flight below its window; -1 if none.
  int choose() const {
    int best = -1, idle = -1;
    std::size_t best_n = std::numeric_limits<std::size_t>::max();
    for (unsigned i = 0; i < workers_.size(); ++i) {
      const WorkerLedger& w = workers_[i];
      if (w.dead || w.streaming || w.want_space) continue;
      if (opt_.maxtasksperchild != 0 && w.sent >= opt_.maxtasksperchild) continue;
      if (w.inflight.empty() && (idle < 0 || w.idle_since > workers_[static_cast<unsigned>(idle)].idle_since))
        idle = static_cast<int>(i);
      if (w.inflight.size() < w.window(opt_.window) && w.inflight.size() < best_n) {
        best = static_cast<int>(i);
        best_n = w.inflight.size();
      }
    }
    return idle >= 0 ? idle : best;
  }

  /// Moves pending messages into channels while there is room (under mu_).
  void pump() {
    for (auto& w : workers_) {
      if (w.streaming) w.stream(part_limit());
      if (phase() == Phase::stopping && !w.stop_sent && !w.dead && w.inflight.empty()) w.send_stop();
    }
    while (!pending_.empty()) {
      const int i = choose();
      if (i < 0) return;
      WorkerLedger& w = workers_[static_cast<unsigned>(i)];
      Pending& p = pending_.front();
      if (p.bytes.size() > whole_limit()) {
        w.inflight.push_back({p.sink, p.index, p.copy_if(opt_.retries != 0)});
        ++w.sent;
        w.streaming = std::move(p);
        pending_.pop_front();
        w.stream(part_limit());
        continue;
      }
      auto copy = [&](std::byte* out) { std::memcpy(out, p.bytes.data(), p.bytes.size()); };
      if (!w.try_write_or_want(p.bytes.size(), copy)) continue;
      w.inflight.push_back({std::move(p.sink), p.index, p.copy_if(opt_.retries != 0)});
      ++w.sent;
      pending_.pop_front();
    }
  }

  // ---- the result thread: fork_results.hpp ------------------------------------
  void result_loop();
  bool after_results(bool did);
  bool run_deferred();
  bool any_streaming() const;
  void wait_for_work();
  bool drain_results(bool on_thread);
  void take_answered_batch(unsigned i, bool on_thread, std::vector<InFlight>& batch);
  void return_unused(unsigned i, std::vector<InFlight>& batch, std::size_t used);
  void deliver_error(unsigned i, std::exception_ptr e);
  bool help_drain();
  void deliver(unsigned i, std::span<const std::byte> msg, bool on_thread);

  // ---- faults: fork_faults.hpp ----------------------------------------------------
  bool doom(unsigned i, const InFlight& e, std::exception_ptr err);
  void note_time_limit(Clock::duration d);
  Clock::duration timeout_step() const noexcept;
  void check_timeouts();
  void handle_events();
  void handle_death(unsigned i, const std::string& after = " while running this task");
  void requeue(std::deque<Pending> back);
  void take_all(std::vector<InFlight>& lost);
  void broken(std::vector<InFlight>& lost, std::string why);
  void check_spawner();
  void heal();
  Clock::time_point spawner_check_due() const;
  void mark_all_dead();

  // ---- lifecycle (pool_phase.hpp) -----------------------------------------------

  /// The phase; read under mu_, or lock-free by the result thread (ended?).
  [[nodiscard]] Phase phase() const noexcept { return phase_.load(std::memory_order_relaxed); }
  /// Moves to phase `to` (under mu_); std::logic_error if it may not go there.
  void set_phase(Phase to) { phase_.store(next_phase(phase(), to), std::memory_order_seq_cst); }
  /// Whether the result thread should end. Never blocks.
  [[nodiscard]] bool ended() const noexcept { return phase_.load(std::memory_order_acquire) == Phase::ended; }
  /// The sentence PoolNotRunning carries (under mu_).
  [[nodiscard]] std::string why_locked() const { return broken_why_.empty() ? std::string(not_running) : broken_why_; }

  // ---- shutdown ------------------------------------------------------------

  /// Ends the spawners (op: kill or join) and the result thread. Called in
  /// phase stopping or terminated, so the spawners' exit is no death.
  void shutdown(SpawnerOp op) {
    spawners_.end(op);
    {
      std::lock_guard lock(mu_);
      spawners_.close();
      set_phase(Phase::ended);
    }
    seg_.ctl().doorbell.notify_always();
    futex_wake_all(reader_->active_word());
    // From a callback on the result thread: it ends when the callback
    // returns; the destructor joins it.
    if (std::this_thread::get_id() == thread_.get_id()) return;
    if (thread_.joinable()) thread_.join();
    reader_->detach();
  }

  void fail_everything() {
    std::vector<InFlight> lost;
    run_deferred();  // results a waiter left for the (now ended) result thread
    {
      std::lock_guard lock(mu_);
      take_all(lost);
    }
    const auto err = std::make_exception_ptr(
        ClosedError("mp::Pool was terminated before this task finished; its result will never come"));
    for (auto& e : lost) e.sink->on_error(e.index, err);
  }

  BackendOptions opt_;
  PoolSegment seg_;
  std::deque<WorkerLedger> workers_;
  std::deque<Pending> pending_;
  std::vector<Pending> retry_;  // a dead worker's task to run again (handle_death, under mu_)
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::atomic<Phase> phase_{Phase::running};  // written under mu_; atomic for the result thread's ended()
  std::string broken_why_;                      // why the pool is broken ("" if it never was; under mu_)
  Spawners spawners_;
  std::uint32_t events_seen_ = 0;
  std::uint64_t idle_clock_ = 0;
  // Result thread only: when it next looks for timeouts / a dead spawner.
  Clock::time_point next_timeout_check_ = Clock::time_point::max(), last_spawner_check_;
  bool idle_timeout_ = false;  ///< the result thread's last wait timed out
  /// The shortest per-call time limit submitted so far (ns; 0: none yet).
  std::atomic<Clock::rep> min_call_limit_{0};
  std::atomic<bool> idle_wait_{false};  ///< the result thread sleeps as long as an idle pool does
  std::vector<std::pair<InFlight, std::vector<std::byte>>> deferred_;
  std::atomic<bool> deferred_flag_{false};  // deferred_ is not empty (lock-free check)
  std::shared_ptr<ResultReader> reader_;
  std::thread thread_;
};

}  // namespace mp::detail

#include <mp/detail/fork_faults.hpp>
#include <mp/detail/fork_results.hpp>
