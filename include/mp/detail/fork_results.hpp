// mp/detail/fork_results.hpp - the fork backend's result thread: reads the
// workers' result channels (or stands back while a waiter reads them, see
// ResultReader), hands each result to its sink, runs the callbacks a waiter
// left to it, and sleeps on the pool's doorbell when there is nothing to do.
//
// Definitions of ForkBackend's result-thread members; fork_backend.hpp
// declares them and includes this file after the class (include
// fork_backend.hpp, not this file).
#pragma once

namespace mp::detail {

inline void ForkBackend::result_loop() {
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
    check_timeouts();
    if (after_results(did)) return;
    if (did) continue;
    check_spawner();
    if (reader_->helping()) {  // a waiter reads results: stand back, look again in 1 ms
      auto& word = reader_->active_word();
      const std::uint32_t v = word.load(std::memory_order_acquire);
      if (v != 0 && !ended()) futex_wait(word, v, Clock::now() + std::chrono::milliseconds(1));
      continue;
    }
    wait_for_work();
  }
}

/// After reading results: notices freed task-channel space and moves
/// pending tasks on. Returns true when the result thread should end.
inline bool ForkBackend::after_results(bool did) {
  std::lock_guard lock(mu_);
  if (phase() == Phase::ended) return true;
  for (auto& w : workers_) {
    if (w.want_space && w.slot->wants_space.load(std::memory_order_acquire) == 0) {
      w.want_space = false;
      w.want_space_flag.store(false, std::memory_order_relaxed);
      did = true;
    }
  }
  if (did && (!pending_.empty() || any_streaming() || phase() == Phase::stopping)) pump();
  return false;
}

/// Results a helping waiter left to this thread (their sinks have callbacks).
inline bool ForkBackend::run_deferred() {
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

inline bool ForkBackend::any_streaming() const {
  return std::any_of(workers_.begin(), workers_.end(), [](const WorkerLedger& w) { return w.streaming.has_value(); });
}

inline void ForkBackend::wait_for_work() {
  // Sleeping past the busy check period (the pool was idle): submit()
  // clears idle_wait_ and rings, so a spawner death is seen in time.
  const Clock::time_point due = spawner_check_due();
  const bool long_wait = due - Clock::now() > spawner_check_period;
  idle_wait_.store(long_wait, std::memory_order_seq_cst);
  auto ready = [&] {
    if (ended()) return true;
    if (long_wait && !idle_wait_.load(std::memory_order_acquire)) return true;
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
  // After a wait that timed out with nothing to do, spinning is waste.
  if (!idle_timeout_ && spin_until(ready, {parent_spin_time})) return;
  idle_timeout_ = !seg_.ctl().doorbell.wait(ready, std::min(next_timeout_check_, due));
  idle_wait_.store(false, std::memory_order_relaxed);
}

/// Delivers every result that is there; a corrupt one fails its task.
inline bool ForkBackend::drain_results(bool on_thread) {
  bool did = false;
  std::vector<InFlight> batch;
  for (unsigned i = 0; i < workers_.size(); ++i) {
    for (;;) {
      std::size_t used = 0;
      take_answered_batch(i, on_thread, batch);
      try {
        auto on_msg = [&](std::span<const std::byte> m) {
          if (used == batch.size()) return deliver(i, m, on_thread);
          InFlight& e = batch[used++];
          e.sink->on_result(e.index, m);
        };
        const std::size_t got = workers_[i].results.try_recv_batch(on_msg, std::max<std::size_t>(batch.size(), 64));
        return_unused(i, batch, used);
        if (got == 0) break;
      } catch (const DecodeError&) {  // the channel dropped that message and resynchronised
        if (used < batch.size()) {
          batch[used].sink->on_error(batch[used].index, std::current_exception());
          ++used;
          return_unused(i, batch, used);
        } else {
          deliver_error(i, std::current_exception());
        }
      }
      did = true;
    }
  }
  return did;
}

/// Takes, under one lock, the in-flight entries of worker i's results that
/// are complete in its channel (up to 64): their tasks are done, so they are
/// answered. Off the result thread, none (a sink with callbacks must be
/// deferred: deliver() decides per result).
inline void ForkBackend::take_answered_batch(unsigned i, bool on_thread, std::vector<InFlight>& batch) {
  batch.clear();
  if (!on_thread) return;
  const std::size_t n = std::min<std::uint64_t>(workers_[i].results.pending(), 64);
  if (n < 2) return;  // one result: deliver() takes it
  std::lock_guard lock(mu_);
  WorkerLedger& w = workers_[i];
  while (batch.size() < n && !w.inflight.empty()) batch.push_back(w.take_answered(idle_clock_));
  if (phase() != Phase::running) idle_cv_.notify_all();
}

/// Puts the entries of `batch` from `used` on back at the front of worker
/// i's in-flight list (their results were not read this time).
inline void ForkBackend::return_unused(unsigned i, std::vector<InFlight>& batch, std::size_t used) {
  if (used >= batch.size()) return;
  std::lock_guard lock(mu_);
  WorkerLedger& w = workers_[i];
  for (std::size_t k = batch.size(); k > used; --k) {
    w.inflight.push_front(std::move(batch[k - 1]));
    --w.answered;
  }
  batch.resize(used);
}

inline void ForkBackend::deliver_error(unsigned i, std::exception_ptr e) {
  InFlight x;
  {
    std::lock_guard lock(mu_);
    WorkerLedger& w = workers_[i];
    if (w.inflight.empty()) return;
    x = w.take_answered(idle_clock_);
    if (phase() != Phase::running) idle_cv_.notify_all();
  }
  x.sink->on_error(x.index, e);
}

/// What a waiter does while it spins (ResultReader::help): read results.
inline bool ForkBackend::help_drain() {
  const bool did = drain_results(false);
  if (did) {
    std::lock_guard lock(mu_);
    if (!pending_.empty() || any_streaming()) pump();
  }
  return did;
}

/// Hands one result to its sink; off the result thread, a sink with
/// callbacks gets it later from the result thread (a copy is kept).
inline void ForkBackend::deliver(unsigned i, std::span<const std::byte> msg, bool on_thread) {
  InFlight e;
  {
    std::lock_guard lock(mu_);
    WorkerLedger& w = workers_[i];
    if (w.inflight.empty()) return;  // a result nobody asked for: ignore
    e = w.take_answered(idle_clock_);
    if (phase() != Phase::running) idle_cv_.notify_all();
    if (!on_thread && e.sink->has_callbacks()) {
      deferred_.emplace_back(std::move(e), std::vector<std::byte>(msg.begin(), msg.end()));
      deferred_flag_.store(true, std::memory_order_seq_cst);
      seg_.ctl().doorbell.notify();  // the result thread may sleep on it, not on the helpers
      return;
    }
  }
  e.sink->on_result(e.index, msg);
}

}  // namespace mp::detail
