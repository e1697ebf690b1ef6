// mp/detail/mpi_thread.hpp - rank 0's MPI thread: polls the worker ranks
// (or stands back while a waiting caller polls in its place, see
// MpiBackend::help), hands tasks out, delivers results, runs the callbacks
// a waiter left to it, and at the end sends each rank stop or kill.
//
// Definitions of MpiBackend's MPI-thread members; mpi_backend.hpp declares
// them and includes this file after the class (include mpi_backend.hpp, not
// this file).
#pragma once

namespace mp::detail {

inline void MpiBackend::run() {
  try {
    loop();
  } catch (const std::exception& e) {
    broken(std::string("mp::MpiPool is broken: ") + e.what());
  }
  run_deferred();
  std::vector<InFlight> lost;
  {
    std::lock_guard lock(mu_);
    take_all(lost);
  }
  const auto err = std::make_exception_ptr(
      ClosedError("mp::Pool was terminated before this task finished; its result will never come"));
  for (auto& e : lost) e.sink->on_error(e.index, err);
  std::lock_guard role(role_);
  mpi_closed_ = true;
  MPI_Comm_free(&world_.comm);
}

inline void MpiBackend::loop() {
  MpiPacer pacer;
  for (;;) {
    bool did = false, sender_idle = false;
    {
      std::lock_guard role(role_);
      if (fault_) std::rethrow_exception(fault_);
      did = poll(true);
      sender_idle = sender_.idle();
    }
    did = run_deferred() || did;
    std::unique_lock lock(mu_);
    if (phase_ == Phase::terminated || (phase_ == Phase::stopping && outstanding() == 0)) return end(lock);
    if (did || !cancels_.empty()) {
      pacer.next(true, true);
      continue;
    }
    if (helper_->helping()) {  // a waiter polls: stand back, look again in 1 ms
      lock.unlock();
      stand_back();
      continue;
    }
    const auto sleep = pacer.next(false, !inflight_.empty());
    if (sleep == Clock::duration::zero()) continue;
    sleeping_ = true;
    if (inflight_.empty() && pending_.empty() && deferring_ == 0 && sender_idle) {  // nothing can arrive
      cv_.wait(lock, [&] {
        return !pending_.empty() || !inflight_.empty() || deferring_ != 0 || phase_ == Phase::terminated ||
               phase_ == Phase::stopping;
      });
    } else {
      cv_.wait_for(lock, sleep);
    }
    sleeping_ = false;
  }
}

/// One round of polling (under role_): sends what is queued, delivers
/// what came in (on_thread: this is the MPI thread).
inline bool MpiBackend::poll(bool on_thread) {
  bool did = dispatch(sender_);
  auto on_msg = [&](int src, int tag, std::span<const std::byte> m) { deliver(src, tag, m, on_thread); };
  for (int i = 0; i < 64 && receiver_.poll(on_msg); ++i) did = true;
  return sender_.progress() || did;
}

/// The MPI thread sleeps while a waiter polls in its place, at most 1 ms
/// (a waiter that leaves without its result, a deferred result and
/// terminate wake it at once).
inline void MpiBackend::stand_back() {
  auto& word = helper_->active_word();
  const std::uint32_t v = word.load(std::memory_order_acquire);
  if (v != 0) futex_wait(word, v, Clock::now() + std::chrono::milliseconds(1));
}

/// Sends each rank stop (join) or kill (terminate); the MPI thread ends.
inline void MpiBackend::end(std::unique_lock<std::mutex>& lock) {
  const int tag = phase_ == Phase::terminated ? mpi_kill : mpi_stop;
  set_phase(Phase::ended);
  lock.unlock();
  {
    std::lock_guard role(role_);
    for (int r = 1; r < world_.size; ++r) sender_.send(r, tag, {});
    sender_.drain();
  }
  idle_cv_.notify_all();
}

/// Results a waiter left to the MPI thread (their sinks have callbacks).
inline bool MpiBackend::run_deferred() {
  std::vector<std::pair<InFlight, std::vector<std::byte>>> d;
  {
    std::lock_guard lock(mu_);
    if (deferred_.empty()) return false;
    d.swap(deferred_);
  }
  for (auto& [e, bytes] : d) e.sink->on_result(e.index, bytes);
  {
    std::lock_guard lock(mu_);
    deferring_ -= d.size();
  }
  idle_cv_.notify_all();
  return true;
}

/// Sends queued tasks to ranks with room, and queued cancels.
inline bool MpiBackend::dispatch(MpiSender& sender) {
  std::vector<MpiBatch> out(static_cast<std::size_t>(world_.size));
  bool sent = false;
  std::vector<Cancel> cancels;
  {
    std::lock_guard lock(mu_);
    cancels.swap(cancels_);
    const std::size_t window = std::size_t{opt_.window} * opt_.processes;
    while (!pending_.empty()) {
      const auto best = std::min_element(inflight_per_rank_.begin() + 1, inflight_per_rank_.end());
      if (*best >= window) break;
      const int r = static_cast<int>(best - inflight_per_rank_.begin());
      Pending& p = pending_.front();
      inflight_.emplace(p.seq, InFlight{std::move(p.sink), p.index, r});
      ++*best;
      out[static_cast<std::size_t>(r)].add(std::move(p.bytes));
      sent = true;
      pending_.pop_front();
    }
    if (sent && sleeping_) cv_.notify_one();  // a waiter sent them: results are due
  }
  for (int r = 1; r < world_.size; ++r)
    for (auto& m : out[static_cast<std::size_t>(r)].take()) sender.send(r, mpi_task, std::move(m));
  for (const auto& c : cancels) {
    std::vector<std::byte> m(9);
    std::memcpy(m.data(), &c.seq, 8);
    m[8] = std::byte{c.running ? std::uint8_t{1} : std::uint8_t{0}};
    sender.send(c.rank, mpi_cancel, std::move(m));
  }
  return sent || !cancels.empty();
}

/// A message from a worker rank: a batch of results and faults.
inline void MpiBackend::deliver(int src, int tag, std::span<const std::byte> batch, bool on_thread) {
  if (tag != mpi_result) throw DecodeError("mp::MpiPool: a worker rank sent a message mp does not know");
  for_each_frame(batch, [&](std::span<const std::byte> m) { deliver_one(src, m, on_thread); });
}

/// One result frame: u64 seq | result message, to its sink.
/// Off the MPI thread, a sink with callbacks gets it later from that
/// thread (a copy is kept).
inline void MpiBackend::deliver_one(int src, std::span<const std::byte> m, bool on_thread) {
  if (m.size() < 8) throw DecodeError("mp::MpiPool: a result frame is shorter than its sequence number");
  std::uint64_t seq = 0;
  std::memcpy(&seq, m.data(), 8);
  InFlight e;
  {
    std::lock_guard lock(mu_);
    auto it = inflight_.find(seq);
    if (it == inflight_.end()) return;  // failed already (terminate)
    e = std::move(it->second);
    inflight_.erase(it);
    --inflight_per_rank_[static_cast<std::size_t>(src)];
    if (!on_thread && e.sink->has_callbacks()) {
      deferred_.emplace_back(std::move(e), std::vector<std::byte>(m.begin() + 8, m.end()));
      ++deferring_;
      if (sleeping_) cv_.notify_one();
      futex_wake_all(helper_->active_word());
      return;
    }
    if (phase_ != Phase::running) idle_cv_.notify_all();
  }
  e.sink->on_result(e.index, m.subspan(8));
}

}  // namespace mp::detail
