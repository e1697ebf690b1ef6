// mp/detail/thread_backend.hpp - the backend seam (backend.hpp) over threads
// of this process: mp::ThreadPool's transport.
//
// submit() encodes the task message (task.hpp's bytes, as for every backend)
// into a buffer and queues it; N worker threads take messages in FIFO order,
// run each with run_task, and hand the result message to the task's sink on
// the same thread, so `then` callbacks run on a worker thread. No shared
// memory, no ring, no cross-process futex: a queue under one mutex, and a
// worker spins briefly (worker_spin_time) for the next message before it
// sleeps on a condition variable.
//
// What threads cannot do, and so this backend does not: kill a running task
// (terminate() and cancel(true) let it finish), cap its time or memory, or
// survive its crash (a SIGSEGV in a task ends the process).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mp/detail/backend.hpp>
#include <mp/detail/cancel_helper.hpp>
#include <mp/detail/pool_phase.hpp>
#include <mp/detail/spin.hpp>
#include <mp/detail/protocol.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

class ThreadBackend;

/// A worker thread's ResultOut: the result message in a buffer the thread
/// reuses. A value above max_bytes is refused with std::length_error, which
/// the trampoline writes instead as the task's error (as a fork worker does);
/// error messages are never refused, whatever their size.
class BufferOut final : public ResultOut {
public:
  explicit BufferOut(std::size_t max_bytes) noexcept : max_(max_bytes) {}
  void write(std::size_t n, EncodeRef enc) override {
    if (n > max_) {
      throw std::length_error("mp::ThreadPool: a task's result is " + std::to_string(n) +
                              " bytes encoded, more than PoolOptions::max_result_bytes (" + std::to_string(max_) +
                              "); raise that limit or return less");
    }
    write_error(n, enc);
  }
  void write_error(std::size_t n, EncodeRef enc) override {
    buf_.resize(n);
    enc(buf_.data());
  }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return buf_; }

private:
  std::vector<std::byte> buf_;
  std::size_t max_;
};

/// What a future of a ThreadPool task calls to cancel it.
using ThreadHelper = CancelHelper<ThreadBackend>;

class ThreadBackend {
public:
  /// The workers are threads of this process: shared objects and
  /// mp::inherited captures may be task arguments.
  static constexpr bool shares_memory = true;

  /// Starts the threads and waits until each ran the initializer. Throws
  /// std::invalid_argument for an option threads cannot honour, the
  /// initializer's exception if it threw in a thread (the threads are
  /// stopped first), std::system_error if a thread cannot be started.
  explicit ThreadBackend(const BackendOptions& o) : opt_(checked(o)) {
    helper_ = std::make_shared<ThreadHelper>(this);
    try {
      for (unsigned i = 0; i < opt_.processes; ++i) threads_.emplace_back([this] { work(); });
    } catch (...) {
      end_threads();
      throw;
    }
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return started_ == threads_.size(); });
    if (init_error_ == nullptr) return;
    lock.unlock();
    end_threads();
    std::rethrow_exception(init_error_);
  }

  ThreadBackend(const ThreadBackend&) = delete;
  ThreadBackend& operator=(const ThreadBackend&) = delete;

  /// terminate(), then joins the threads (not from a callback of this pool).
  ~ThreadBackend() {
    terminate();
    end_threads();
  }

  [[nodiscard]] unsigned size() const noexcept { return opt_.processes; }

  /// Not available: a ThreadPool has no worker processes (pool.pids()).
  template <class Never = void>
  pid_t worker_pid(unsigned) const noexcept {
    return no_worker_processes<Never>();
  }

  /// Queues one task message. Never blocks on the workers (only on mu_).
  /// Throws PoolNotRunning when closed or terminated. Thread-safe.
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
    sink->use_helper(helper_);
    Queued q{take_buffer(n), std::move(sink), index};
    enc(q.bytes.data());
    std::unique_lock lock(mu_);
    if (phase() != Phase::running) {
      lock.unlock();
      throw PoolNotRunning(not_running);
    }
    queue_.push_back(std::move(q));
    queued_.store(queue_.size(), std::memory_order_release);
    if (sleeping_ != 0) {
      lock.unlock();
      cv_.notify_one();
    }
  }

  std::string why_not_running() const { return not_running; }

  /// Whether submissions are accepted (not closed or terminated).
  bool running() {
    std::lock_guard lock(mu_);
    return phase() == Phase::running;
  }

  /// No more submissions; running and queued tasks go on. Never blocks.
  void close() {
    std::lock_guard lock(mu_);
    if (phase() == Phase::running) phase_ = next_phase(phase_, Phase::closed);
  }

  /// Waits for every queued and running task, then ends the threads.
  /// Requires close() first; not from a callback (std::logic_error). Blocks.
  void join() { join_until(Clock::time_point::max()); }

  /// join() that returns false, ending nothing, when tasks are still
  /// outstanding at the deadline.
  bool join_until(Clock::time_point deadline) {
    if (on_worker())
      throw std::logic_error(
          "mp::ThreadPool::join: called from a task or a then() callback, which runs on one of the pool's threads; "
          "join would wait for that thread itself (call close() or terminate() there, and join() from another "
          "thread)");
    std::unique_lock lock(mu_);
    if (phase() == Phase::running) throw std::logic_error("mp::Pool::join: call close() or terminate() first");
    const auto idle = [&] { return queue_.empty() && busy_ == 0; };
    if (!idle_cv_.wait_until(lock, deadline, idle)) return false;
    if (phase() == Phase::closed) phase_ = next_phase(phase_, Phase::stopping);
    lock.unlock();
    end_threads();
    return true;
  }

  /// Queued tasks fail with ClosedError at once; running ones cannot be
  /// stopped: they finish and deliver their results, and terminate returns
  /// once they did (at once when called on a pool thread, which cannot wait
  /// for itself). Idempotent; thread-safe.
  void terminate() {
    std::deque<Queued> dropped;
    {
      std::lock_guard lock(mu_);
      if (phase() == Phase::ended) return;
      phase_ = next_phase(phase_, Phase::terminated);
      dropped.swap(queue_);
      queued_.store(0, std::memory_order_release);
    }
    cv_.notify_all();
    idle_cv_.notify_all();
    const auto err = std::make_exception_ptr(
        ClosedError("mp::ThreadPool was terminated before this task started; it will never run"));
    for (auto& q : dropped) q.sink->on_error(q.index, err);
    if (on_worker()) return;
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return busy_ == 0; });
  }

  /// Cancels sink s's queued tasks (they fail with CancelledError). A task
  /// already running cannot be stopped: `running` changes nothing, it runs
  /// to its end. Returns whether it cancelled any.
  bool cancel(const Sink* s, bool running) {
    (void)running;
    std::vector<Queued> removed;
    {
      std::lock_guard lock(mu_);
      const auto keep = std::stable_partition(queue_.begin(), queue_.end(),
                                              [&](const Queued& q) { return q.sink.get() != s; });
      std::move(keep, queue_.end(), std::back_inserter(removed));
      queue_.erase(keep, queue_.end());
      queued_.store(queue_.size(), std::memory_order_release);
    }
    idle_cv_.notify_all();
    const auto err = std::make_exception_ptr(CancelledError("mp::ThreadPool: this task was cancelled before it started"));
    for (auto& q : removed) q.sink->on_error(q.index, err);
    return !removed.empty();
  }

private:

  struct Queued {
    std::vector<std::byte> bytes;
    std::shared_ptr<Sink> sink;
    std::size_t index = 0;
  };

  static BackendOptions checked(BackendOptions o);
  [[nodiscard]] Phase phase() const noexcept { return phase_; }
  /// Whether the calling thread is one of this pool's threads.
  [[nodiscard]] bool on_worker() const noexcept { return current_pool() == this; }
  /// The ThreadBackend whose worker the calling thread is (nullptr: none).
  static const ThreadBackend*& current_pool() noexcept {
    thread_local const ThreadBackend* pool = nullptr;
    return pool;
  }
  void work();
  bool run_initializer();
  bool next(Queued& q);
  void finished(Queued& q);
  std::vector<std::byte> take_buffer(std::size_t n);
  void end_threads();

  BackendOptions opt_;
  std::shared_ptr<ThreadHelper> helper_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // workers: a message is queued, or the pool ends
  std::condition_variable idle_cv_;  // join/terminate: a task finished or was dropped
  std::deque<Queued> queue_;
  std::atomic<std::size_t> queued_{0};  // queue_.size(), read lock-free by spinning workers
  std::vector<std::vector<std::byte>> spare_;  // message buffers to reuse (under mu_)
  std::size_t busy_ = 0;                       // tasks running now (under mu_)
  std::size_t sleeping_ = 0;                   // workers waiting on cv_ (under mu_)
  std::size_t started_ = 0;                    // threads past their initializer (under mu_)
  std::exception_ptr init_error_;              // the first initializer's exception (under mu_)
  Phase phase_ = Phase::running;               // under mu_
  std::vector<std::thread> threads_;
  std::mutex end_mu_;  // one caller joins the threads
};

}  // namespace mp::detail

#include <mp/detail/thread_worker.hpp>
