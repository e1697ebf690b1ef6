// mp/detail/mpi_backend.hpp - rank 0's side of an MpiPool: the backend seam
// (backend.hpp) over MPI ranks.
//
// submit() frames the task message (a batch of one frame, mpi_wire.hpp) on the
// caller's thread and queues it. One thread at a time makes MPI calls (it
// holds role_): a background thread (the MPI thread, mpi_thread.hpp) hands
// queued tasks to the rank with the fewest in flight (at most window *
// processes each), sends cancels, receives results and delivers them to
// their sinks (so `then` callbacks run on it), and at the end sends each
// rank stop (join) or kill (terminate). It polls as MpiPacer says; once
// that says sleep and no task is out, it sleeps on a condition variable
// until a submission, join or terminate. A caller spinning in
// AsyncResult::get does those polls itself (help(), through MpiHelper)
// while the MPI thread stands back on a futex (1 ms at most), so a round
// trip needs no hand-off between threads on rank 0; results whose sinks
// have callbacks it leaves to the MPI thread.
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
#include <mp/detail/futex.hpp>
#include <mp/detail/mpi_env.hpp>
#include <mp/detail/mpi_wire.hpp>
#include <mp/detail/mpi_worker.hpp>
#include <mp/detail/pool_phase.hpp>
#include <mp/detail/worker_ledger.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

class MpiBackend;

/// What a future of an MpiPool task calls while it waits (help: make the
/// MPI thread's polls itself) and to cancel it. Outlives the backend
/// (futures may), so the backend detaches it when it ends.
class MpiHelper final : public CancelHelper<MpiBackend> {
public:
  using CancelHelper<MpiBackend>::CancelHelper;
  bool help() noexcept override;
  /// Whether a waiter is spinning (the MPI thread then stands back).
  [[nodiscard]] bool helping() const noexcept { return active_.load(std::memory_order_seq_cst) != 0; }
  /// The futex word the MPI thread sleeps on while standing back.
  std::atomic<std::uint32_t>& active_word() noexcept { return active_; }
};

class MpiBackend {
public:
  /// Shared-memory objects and inherited captures cannot reach other ranks.
  static constexpr bool shares_memory = false;

  /// Starts the pool on this rank (mpi_start). On a worker rank serves tasks
  /// and never returns. Throws std::invalid_argument for an option MPI
  /// cannot honour, what mpi_start throws on rank 0.
  explicit MpiBackend(const BackendOptions& o)
      : opt_(checked(o)), world_(mpi_start()), sender_(world_.comm, &buffers_), receiver_(world_.comm) {
    if (world_.rank != 0) MpiWorkerRank(world_, opt_).serve();
    inflight_per_rank_.assign(static_cast<std::size_t>(world_.size), 0);
    helper_ = std::make_shared<MpiHelper>(this);
    thread_ = std::thread([this] { run(); });
    thread_id_ = thread_.get_id();
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
    std::vector<std::byte> bytes = mpi_framed(0, n, enc, &buffers_);
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
    futex_wake_all(helper_->active_word());
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
    futex_wake_all(helper_->active_word());
    idle_cv_.notify_all();
    if (std::this_thread::get_id() != thread_.get_id() && thread_.joinable()) thread_.join();
  }

  /// A waiting caller's turn at the MPI thread's polling (MpiHelper): sends
  /// queued tasks and delivers the results that are in, unless another
  /// thread makes MPI calls now; results whose sinks have callbacks are left
  /// to the MPI thread. Returns whether it did anything. Never blocks.
  bool help() noexcept {
    if (std::this_thread::get_id() == thread_id_) return false;  // a callback: role_ is held
    std::unique_lock role(role_, std::try_to_lock);
    if (!role.owns_lock() || mpi_closed_ || fault_) return false;
    try {
      return poll(false);
    } catch (...) {
      fault_ = std::current_exception();  // the MPI thread breaks the pool
      futex_wake_all(helper_->active_word());
      return false;
    }
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

  std::size_t outstanding() const { return pending_.size() + inflight_.size() + deferring_; }

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

  // ---- the MPI thread: mpi_thread.hpp ----------------------------------------
  void run();
  void loop();
  bool poll(bool on_thread);
  void stand_back();
  void end(std::unique_lock<std::mutex>& lock);
  bool run_deferred();
  bool dispatch(MpiSender& sender);
  void deliver(int src, int tag, std::span<const std::byte> batch, bool on_thread);
  void deliver_one(int src, std::span<const std::byte> m, bool on_thread);

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
  // role_: held by the one thread making MPI calls (the MPI thread, or a
  // waiter in help()); taken before mu_.
  std::mutex role_;
  MpiBufferPool buffers_;  // of task frames
  MpiSender sender_;      // under role_
  MpiReceiver receiver_;  // under role_
  bool mpi_closed_ = false;    // under role_: the communicator is freed
  std::exception_ptr fault_;   // under role_: what a waiter's MPI call threw
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Pending> pending_;
  std::unordered_map<std::uint64_t, InFlight> inflight_;
  std::vector<std::size_t> inflight_per_rank_;  // index: rank (0 unused)
  std::vector<Cancel> cancels_;
  std::vector<std::pair<InFlight, std::vector<std::byte>>> deferred_;  // results for the MPI thread (callbacks)
  std::size_t deferring_ = 0;  // results deferred and not yet delivered
  std::uint64_t next_seq_ = 0;
  Phase phase_ = Phase::running;  // under mu_
  bool sleeping_ = false;
  std::string broken_why_;  // why the pool is broken ("" if it never was; under mu_)
  std::thread thread_;
  std::thread::id thread_id_;  // thread_'s, kept: join() clears thread_'s
};

inline bool MpiHelper::help() noexcept {
  std::unique_lock lock(mu_, std::try_to_lock);
  return lock.owns_lock() && backend_ != nullptr && backend_->help();
}

}  // namespace mp::detail

#include <mp/detail/mpi_thread.hpp>
