// mp/detail/mpi_backend.hpp - rank 0's side of an MpiPool: the backend seam
// (backend.hpp) over MPI ranks.
//
// submit() frames the task message (a batch of one frame, mpi_wire.hpp) on the
// caller's thread and queues it; one background thread makes every MPI
// call: it hands queued tasks to the rank with the fewest in flight (at most
// window * processes each), sends cancels, receives results and delivers
// them to their sinks (so `then` callbacks run on it), and at the end sends
// each rank stop (join) or kill (terminate). It polls as MpiPacer says;
// once that says sleep and no task is out, it sleeps on a condition
// variable until a submission, join or terminate.
//
// Faults come back from the worker ranks as result messages (pool errors,
// protocol.hpp). A failing MPI call (a rank lost, if the MPI library
// reports it instead of ending the job) fails every unfinished task with
// WorkerLostError and breaks the pool; later submissions throw
// PoolNotRunning saying why.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <mp/detail/backend.hpp>
#include <mp/detail/cancel_helper.hpp>
#include <mp/detail/mpi_env.hpp>
#include <mp/detail/mpi_wire.hpp>
#include <mp/detail/mpi_worker.hpp>
#include <mp/detail/pool_phase.hpp>
#include <mp/detail/worker_ledger.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

class MpiBackend;

/// What a future of an MpiPool task calls to cancel it.
using MpiHelper = CancelHelper<MpiBackend>;

class MpiBackend {
public:
  /// Shared-memory objects and inherited captures cannot reach other ranks.
  static constexpr bool shares_memory = false;

  /// Starts the pool on this rank (mpi_start). On a worker rank serves tasks
  /// and never returns. Throws std::invalid_argument for an option MPI
  /// cannot honour, what mpi_start throws on rank 0.
  explicit MpiBackend(const BackendOptions& o) : opt_(checked(o)), world_(mpi_start()) {
    if (world_.rank != 0) MpiWorkerRank(world_, opt_).serve();
    inflight_per_rank_.assign(static_cast<std::size_t>(world_.size), 0);
    helper_ = std::make_shared<MpiHelper>(this);
    thread_ = std::thread([this] { run(); });
  }

  MpiBackend(const MpiBackend&) = delete;
  MpiBackend& operator=(const MpiBackend&) = delete;

  /// Kills what still runs, then finalizes MPI if the pool initialized it.
  ~MpiBackend() {
    terminate();
    helper_->detach();
    if (world_.owns_mpi) MPI_Finalize();
  }

  /// Worker slots: processes per worker rank, times the worker ranks.
  [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(world_.size - 1) * opt_.processes; }

  /// The pid (on its own host) of the MPI process of the rank serving slot i.
  [[nodiscard]] pid_t worker_pid(unsigned i) const noexcept {
    return world_.pids[1 + i / opt_.processes];
  }

  /// The rank serving slot i and its host (MPI_Get_processor_name).
  [[nodiscard]] int worker_rank(unsigned i) const noexcept { return static_cast<int>(1 + i / opt_.processes); }
  [[nodiscard]] const std::string& host(int rank) const { return world_.hosts.at(static_cast<std::size_t>(rank)); }

  /// Queues one task message. Never blocks on ranks (only on mu_). Throws
  /// PoolNotRunning when closed. Thread-safe.
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
    sink->use_helper(helper_);
    std::vector<std::byte> bytes = mpi_framed(0, n, enc);
    std::lock_guard lock(mu_);
    if (phase_ != Phase::running) throw PoolNotRunning(why_locked());
    const std::uint64_t seq = next_seq_++;
    std::memcpy(bytes.data() + 8, &seq, 8);
    pending_.push_back({std::move(bytes), std::move(sink), index, seq});
    if (sleeping_) cv_.notify_one();
  }

  /// Why submissions are refused: closed, terminated or broken (which and why).
  std::string why_not_running() {
    std::lock_guard lock(mu_);
    return why_locked();
  }

  /// Whether submissions are accepted (not closed, terminated or broken).
  bool running() {
    std::lock_guard lock(mu_);
    return phase_ == Phase::running;
  }

  /// No more submissions; queued and running tasks go on. Never blocks.
  void close() {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::running) set_phase(Phase::closed);
  }

  /// Waits for every task, then stops the worker ranks (they finalize and
  /// exit). Requires close() first; not from a callback (std::logic_error).
  void join() { join_until(Clock::time_point::max()); }

  /// join() that returns false, stopping nothing, when tasks are still
  /// outstanding at the deadline (join may be called again).
  bool join_until(Clock::time_point deadline) {
    if (std::this_thread::get_id() == thread_.get_id())
      throw std::logic_error("mp::MpiPool::join: not from a callback, which runs on the pool's MPI thread");
    {
      std::unique_lock lock(mu_);
      if (phase_ == Phase::running) throw std::logic_error("mp::Pool::join: call close() or terminate() first");
      const auto idle = [&] { return ranks_done() || outstanding() == 0; };
      if (deadline == Clock::time_point::max()) {
        idle_cv_.wait(lock, idle);
      } else if (!idle_cv_.wait_until(lock, deadline, idle)) {
        return false;
      }
      if (phase_ == Phase::closed || phase_ == Phase::broken || phase_ == Phase::stopping) set_phase(Phase::stopping);
      cv_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
    return true;
  }

  /// Fails every unfinished task with ClosedError and has the worker ranks
  /// kill their local pools and exit. Idempotent; thread-safe.
  void terminate() {
    {
      std::lock_guard lock(mu_);
      if (phase_ != Phase::ended) set_phase(Phase::terminated);
      cv_.notify_one();
    }
    idle_cv_.notify_all();
    if (std::this_thread::get_id() != thread_.get_id() && thread_.joinable()) thread_.join();
  }

  /// Cancels sink s's tasks not sent yet (CancelledError) and asks the ranks
  /// running its others to cancel them there (not begun; with `running`,
  /// also the one running, by killing its local worker). Returns whether
  /// it cancelled or asked to cancel any.
  bool cancel(const Sink* s, bool running) {
    std::vector<Pending> removed;
    bool asked = false;
    {
      std::lock_guard lock(mu_);
      if (ranks_done()) return false;
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->sink.get() == s) {
          removed.push_back(std::move(*it));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
      for (const auto& [seq, e] : inflight_) {
        if (e.sink.get() != s) continue;
        cancels_.push_back({e.rank, seq, running});
        asked = true;
      }
      if (asked) cv_.notify_one();
      if (phase_ != Phase::running) idle_cv_.notify_all();
    }
    const auto err = cancelled_error(false);
    for (auto& p : removed) p.sink->on_error(p.index, err);
    return !removed.empty() || asked;
  }

private:
  struct Pending {
    std::vector<std::byte> bytes;
    std::shared_ptr<Sink> sink;
    std::size_t index;
    std::uint64_t seq;
  };
  struct InFlight {
    std::shared_ptr<Sink> sink;
    std::size_t index;
    int rank;
  };
  struct Cancel {
    int rank;
    std::uint64_t seq;
    bool running;
  };

  static BackendOptions checked(BackendOptions o) {
    if (o.factor != BackendOptions{}.factor)
      throw std::invalid_argument(
          "mp::PoolOptions::factor has no meaning for mp::MpiPool: set processes, the size of each worker rank's "
          "local pool");
    if (o.processes == 0) o.processes = 1;
    o.window = std::max(1u, o.window);
    return o;
  }

  std::size_t outstanding() const { return pending_.size() + inflight_.size(); }

  // ---- lifecycle (pool_phase.hpp) -----------------------------------------------

  /// Moves to phase `to` (under mu_); std::logic_error if it may not go there.
  void set_phase(Phase to) { phase_ = next_phase(phase_, to); }
  /// Whether the ranks are no longer served: terminate() was called, the
  /// ranks were sent stop or kill, or MPI failed (under mu_).
  [[nodiscard]] bool ranks_done() const noexcept {
    return phase_ == Phase::terminated || phase_ == Phase::ended || phase_ == Phase::broken;
  }
  /// The sentence PoolNotRunning carries (under mu_).
  [[nodiscard]] std::string why_locked() const { return broken_why_.empty() ? std::string(not_running) : broken_why_; }

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      broken(std::string("mp::MpiPool is broken: ") + e.what());
    }
    std::vector<InFlight> lost;
    {
      std::lock_guard lock(mu_);
      take_all(lost);
    }
    const auto err = std::make_exception_ptr(
        ClosedError("mp::Pool was terminated before this task finished; its result will never come"));
    for (auto& e : lost) e.sink->on_error(e.index, err);
    MPI_Comm_free(&world_.comm);
  }

  void loop() {
    MpiSender sender(world_.comm);
    MpiReceiver receiver(world_.comm);
    MpiPacer pacer;
    auto on_msg = [&](int src, int tag, std::span<const std::byte> m) { deliver(src, tag, m); };
    for (;;) {
      bool did = dispatch(sender);
      for (int i = 0; i < 64 && receiver.poll(on_msg); ++i) did = true;
      did = sender.progress() || did;
      std::unique_lock lock(mu_);
      if (phase_ == Phase::terminated || (phase_ == Phase::stopping && outstanding() == 0)) {
        const int tag = phase_ == Phase::terminated ? mpi_kill : mpi_stop;
        set_phase(Phase::ended);
        lock.unlock();
        for (int r = 1; r < world_.size; ++r) sender.send(r, tag, {});
        sender.drain();
        idle_cv_.notify_all();
        return;
      }
      if (did || !cancels_.empty()) {
        pacer.next(true, true);
        continue;
      }
      const auto sleep = pacer.next(false, !inflight_.empty());
      if (sleep == Clock::duration::zero()) continue;
      sleeping_ = true;
      if (inflight_.empty() && pending_.empty() && sender.idle()) {  // nothing can arrive: sleep until told
        cv_.wait(lock, [&] { return !pending_.empty() || phase_ == Phase::terminated || phase_ == Phase::stopping; });
      } else {
        cv_.wait_for(lock, sleep);
      }
      sleeping_ = false;
    }
  }

  /// Sends queued tasks to ranks with room, and queued cancels.
  bool dispatch(MpiSender& sender) {
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
  void deliver(int src, int tag, std::span<const std::byte> batch) {
    if (tag != mpi_result) throw DecodeError("mp::MpiPool: a worker rank sent a message mp does not know");
    for_each_frame(batch, [&](std::span<const std::byte> m) { deliver_one(src, m); });
  }

  /// One result frame: u64 seq | result message, to its sink.
  void deliver_one(int src, std::span<const std::byte> m) {
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
      if (phase_ != Phase::running) idle_cv_.notify_all();
    }
    e.sink->on_result(e.index, m.subspan(8));
  }

  /// Every unfinished task, taken out of the bookkeeping (under mu_).
  void take_all(std::vector<InFlight>& lost) {
    for (auto& [seq, e] : inflight_) lost.push_back(std::move(e));
    inflight_.clear();
    for (auto& p : pending_) lost.push_back({std::move(p.sink), p.index, 0});
    pending_.clear();
    std::fill(inflight_per_rank_.begin(), inflight_per_rank_.end(), 0);
  }

  /// MPI failed: every unfinished task fails with WorkerLostError saying why.
  void broken(std::string why) {
    std::vector<InFlight> lost;
    {
      std::lock_guard lock(mu_);
      // Shutting down already: the ranks are no longer served either way.
      set_phase(phase_ == Phase::running || phase_ == Phase::closed ? Phase::broken : Phase::ended);
      broken_why_ = why;
      take_all(lost);
    }
    idle_cv_.notify_all();
    const auto err = std::make_exception_ptr(WorkerLostError(0, why));
    for (auto& e : lost) e.sink->on_error(e.index, err);
  }

  BackendOptions opt_;
  MpiWorld world_;
  std::shared_ptr<MpiHelper> helper_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Pending> pending_;
  std::unordered_map<std::uint64_t, InFlight> inflight_;
  std::vector<std::size_t> inflight_per_rank_;  // index: rank (0 unused)
  std::vector<Cancel> cancels_;
  std::uint64_t next_seq_ = 0;
  Phase phase_ = Phase::running;  // under mu_
  bool sleeping_ = false;
  std::string broken_why_;  // why the pool is broken ("" if it never was; under mu_)
  std::thread thread_;
};

}  // namespace mp::detail
