// mp/detail/fork_faults.hpp - the fork backend's fault handling: a worker's
// death (deliver what it sent, fail or retry the task it ran, requeue the
// rest, ask for a replacement), task timeouts and cancels (doom: the
// spawner kills that worker), and a spawner's death (heal: the standby takes
// over; without one the pool is broken).
//
// Definitions of ForkBackend's fault members; fork_backend.hpp declares them
// and includes this file after the class (include fork_backend.hpp, not
// this file).
#pragma once

namespace mp::detail {

/// Has the spawner kill worker i for task e, which then fails with err
/// (under mu_). Returns whether the command went out.
inline bool ForkBackend::doom(unsigned i, const InFlight& e, std::exception_ptr err) {
  try {
    send(spawner_command(SpawnerOp::kill_worker, i));
  } catch (...) {
    return false;
  }
  workers_[i].doom = Doom{e.sink, e.index, std::move(err)};
  return true;
}

/// A task with a per-call time limit d was submitted: from now on the
/// result thread looks for tasks past their limits at least every
/// timeout_check_step(d); rings it so the first look is not late.
inline void ForkBackend::note_time_limit(Clock::duration d) {
  Clock::rep cur = min_call_limit_.load(std::memory_order_relaxed);
  while ((cur == 0 || d.count() < cur) && !min_call_limit_.compare_exchange_weak(cur, d.count())) {
  }
  if (cur == 0) seg_.ctl().doorbell.notify_always();
}

/// How often the result thread looks for tasks past a limit (0: never,
/// no limit was ever set).
inline Clock::duration ForkBackend::timeout_step() const noexcept {
  const Clock::duration call(min_call_limit_.load(std::memory_order_relaxed));
  const Clock::duration pool = opt_.task_timeout;
  if (call == Clock::duration::zero() && pool == Clock::duration::zero()) return Clock::duration::zero();
  if (call == Clock::duration::zero()) return timeout_check_step(pool);
  if (pool == Clock::duration::zero()) return timeout_check_step(call);
  return timeout_check_step(std::min(call, pool));
}

/// Kills the workers whose running task passed its limit: the call's
/// (mp::time_limit) if it has one, else opt_.task_timeout. Runs every
/// timeout_step (never when no limit was set).
inline void ForkBackend::check_timeouts() {
  const Clock::duration step = timeout_step();
  if (step == Clock::duration::zero()) return;
  const Clock::time_point now = Clock::now();
  if (next_timeout_check_ != Clock::time_point::max() && now < next_timeout_check_) return;
  next_timeout_check_ = now + step;
  std::lock_guard lock(mu_);
  for (unsigned i = 0; i < workers_.size(); ++i) {
    const InFlight* e = workers_[i].running();
    if (e == nullptr) continue;
    const Clock::duration limit = e->sink->time_limit() > Clock::duration::zero() ? e->sink->time_limit()
                                                                                  : opt_.task_timeout;
    if (limit > Clock::duration::zero() && workers_[i].ran_longer(now, limit))
      doom(i, *e, timeout_error(limit, workers_[i].slot->pid.load()));
  }
}

inline void ForkBackend::handle_events() {
  for (unsigned i = 0; i < workers_.size(); ++i) {
    const auto st = static_cast<SlotState>(seg_.slot(i).state.load(std::memory_order_acquire));
    auto seen = [&] {
      std::lock_guard lock(mu_);
      return workers_[i].dead;
    };
    if (st == SlotState::dead && !seen()) handle_death(i);
  }
}

/// The error of every task of a pool whose worker's initializer threw.
inline constexpr const char* initializer_failed_why =
    "mp::Pool is broken: a worker's initializer threw (its message is on stderr), so no task can run";

/// A worker is gone (reaped by the spawner): deliver what it sent, fail
/// the task it had begun, requeue the rest, start a replacement.
/// `after` ends the sentence of the WorkerLostError of the task it ran.
/// After terminate() it does nothing: every unfinished task fails with
/// ClosedError (fail_everything).
inline void ForkBackend::handle_death(unsigned i, const std::string& after) {
  WorkerLedger& w = workers_[i];
  WorkerSlot& slot = seg_.slot(i);
  {
    std::lock_guard lock(mu_);
    if (phase() == Phase::terminated || phase() == Phase::ended) return;
  }
  try {
    while (w.results.try_recv_batch([&](std::span<const std::byte> m) { deliver(i, m, true); }, 64) != 0) {
    }
  } catch (const DecodeError&) {  // the rest of its results are lost: the tasks fail below
  }
  const pid_t pid = slot.pid.load();
  const int status = slot.status.load();
  const bool init_failed = WIFEXITED(status) && WEXITSTATUS(status) == initializer_failed_exit;
  std::vector<InFlight> lost;
  std::vector<std::pair<InFlight, std::exception_ptr>> doomed;
  {
    std::lock_guard lock(mu_);
    w.dead = true;
    if (slot.started.load() > w.answered && !w.inflight.empty()) w.take_running(opt_.retries, lost, doomed, retry_);
    requeue(w.take_unstarted(lost));
    w.reset(seg_, i);
    if (init_failed) broken(lost, initializer_failed_why);
    if (phase() == Phase::running || phase() == Phase::closed) {
      slot.state.store(static_cast<std::uint32_t>(SlotState::spawning));  // before the spawner stores alive
      w.dead = false;
      try {
        send(spawner_command(SpawnerOp::spawn, i));
      } catch (...) {  // the spawner is gone: check_spawner breaks the pool
        slot.state.store(static_cast<std::uint32_t>(SlotState::dead));
        w.dead = true;
      }
    }
    idle_cv_.notify_all();
    pump();
  }
  const auto err = std::make_exception_ptr(
      WorkerLostError(pid, init_failed ? initializer_failed_why : describe_exit(pid, status, after)));
  for (auto& e : lost) e.sink->on_error(e.index, err);
  for (auto& [e, why] : doomed) e.sink->on_error(e.index, why);
}

/// Puts a dead worker's tasks to run again at the front of pending_: its
/// retried running task first, then its unstarted ones (under mu_).
inline void ForkBackend::requeue(std::deque<Pending> back) {
  for (auto it = retry_.rbegin(); it != retry_.rend(); ++it) back.push_front(std::move(*it));
  retry_.clear();
  pending_.insert(pending_.begin(), std::make_move_iterator(back.begin()), std::make_move_iterator(back.end()));
}

/// Every task not answered yet, taken out of the bookkeeping (under mu_).
inline void ForkBackend::take_all(std::vector<InFlight>& lost) {
  for (auto& w : workers_) {
    for (auto& e : w.inflight) lost.push_back(std::move(e));
    w.inflight.clear();
    w.streaming.reset();
  }
  for (auto& p : pending_) lost.push_back({std::move(p.sink), p.index, nullptr});
  pending_.clear();
}

/// The pool cannot run tasks (an initializer failed, or the spawner
/// died): fail them all; later submissions throw `why` (under mu_). A pool
/// already shutting down stays in its phase.
inline void ForkBackend::broken(std::vector<InFlight>& lost, std::string why) {
  if (phase_may_go(phase(), Phase::broken)) set_phase(Phase::broken);
  broken_why_ = std::move(why);
  take_all(lost);
}

/// Looks (every spawner_check_period, while idle) whether a spawner died.
/// The standby: the active one makes another. The active one: heal().
inline void ForkBackend::check_spawner() {
  const Clock::time_point now = Clock::now();
  if (now < spawner_check_due()) return;
  {
    std::lock_guard lock(mu_);
    last_spawner_check_ = now;
    if (phase() != Phase::running && phase() != Phase::closed) return;
    if (!spawners_.active_died()) {
      spawners_.renew_standby();
      return;
    }
  }
  heal();
}

/// The active spawner died, and its workers with it (PDEATHSIG): what
/// they sent is delivered, the standby takes over (spawners.hpp), and each
/// slot's loss is handled as a worker's death: the running task fails
/// with WorkerLostError, the rest run on the replacement. Without a
/// standby the pool is broken: every task fails, submissions throw.
inline void ForkBackend::heal() {
  reader_->lock();
  drain_results(true);
  std::vector<InFlight> lost;
  std::string why;
  pid_t dead = 0;
  bool no_standby = false;
  {
    std::lock_guard lock(mu_);
    if (phase() != Phase::running && phase() != Phase::closed) return reader_->unlock();
    dead = spawners_.active_pid();
    const std::string how = spawners_.bury_active();
    mark_all_dead();
    const std::string standby = spawners_.promote();
    why = "the pool's spawner process " + std::to_string(dead) + " died (" + how + ")";
    no_standby = !standby.empty();
    if (no_standby) {
      why = "mp::Pool: " + why + " and " + standby + "; no process is left that can make workers, so the pool is broken";
      broken(lost, why);
      for (auto& w : workers_) w.dead = true;
    }
    idle_cv_.notify_all();
  }
  if (!no_standby) {
    for (unsigned i = 0; i < workers_.size(); ++i)
      handle_death(i, " while running this task: " + why + " and took its workers along; the pool made a new one");
  }
  reader_->unlock();
  const auto err = std::make_exception_ptr(WorkerLostError(dead, why));
  for (auto& e : lost) e.sink->on_error(e.index, err);
}

/// When the result thread next looks at the spawners. With tasks out, a
/// death must fail or heal them soon; an idle pool (nobody waits) looks
/// 10x less often, so it costs next to no CPU.
inline Clock::time_point ForkBackend::spawner_check_due() const {
  std::lock_guard lock(mu_);
  return last_spawner_check_ + (outstanding() == 0 ? spawner_idle_check_period : spawner_check_period);
}

/// After the active spawner died: every slot whose worker it had not
/// reported dead is dead now (killed with it). Under mu_.
inline void ForkBackend::mark_all_dead() {
  for (unsigned i = 0; i < workers_.size(); ++i) {
    WorkerSlot& slot = seg_.slot(i);
    if (slot.state.load() == static_cast<std::uint32_t>(SlotState::dead)) continue;
    slot.status.store(SIGKILL);  // a wait status: killed by SIGKILL
    slot.state.store(static_cast<std::uint32_t>(SlotState::dead), std::memory_order_release);
  }
}

}  // namespace mp::detail
