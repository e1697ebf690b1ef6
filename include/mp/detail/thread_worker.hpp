// mp/detail/thread_worker.hpp - the worker threads of ThreadBackend
// (thread_backend.hpp): the options they refuse, the initializer, the loop
// that takes queued task messages, runs them and delivers their results,
// and the end of the threads.
#pragma once

#include <mp/detail/thread_backend.hpp>

namespace mp::detail {

/// o with processes == 0 replaced by hardware_concurrency() (at least 1);
/// std::invalid_argument naming a field a thread cannot honour.
inline BackendOptions ThreadBackend::checked(BackendOptions o) {
  const auto refuse = [](const char* field, const char* why) {
    throw std::invalid_argument(std::string("mp::PoolOptions::") + field + " cannot be honoured by mp::ThreadPool: " +
                                why + "; leave it at its default, or use mp::Pool");
  };
  if (o.task_timeout != Clock::duration::zero())
    refuse("task_timeout", "a thread running a task cannot be killed, only a process can");
  if (o.memory_limit != 0) refuse("memory_limit", "threads share one address space, which has one limit");
  if (o.retries != 0)
    refuse("retries", "a thread is never lost alone: a task that crashes ends the whole process, pool included");
  if (o.maxtasksperchild != 0)
    refuse("maxtasksperchild", "replacing a worker releases what its tasks leaked only when it is a process");
  if (o.factor != BackendOptions{}.factor)
    refuse("factor", "its default size is std::thread::hardware_concurrency(); set processes instead");
  if (o.processes == 0) o.processes = std::max(1u, std::thread::hardware_concurrency());
  return o;
}

/// Runs the initializer message in this thread; records its exception.
/// Returns whether it succeeded (true when there is none).
inline bool ThreadBackend::run_initializer() {
  if (opt_.initializer.empty()) return true;
  BufferOut out(SIZE_MAX);
  run_task(opt_.initializer, out);
  std::exception_ptr err;
  try {
    Reader r(out.bytes());
    std::uint64_t index = 0;
    if (read_status(r, err, index)) return true;
  } catch (...) {
    err = std::current_exception();
  }
  std::lock_guard lock(mu_);
  if (init_error_ == nullptr) init_error_ = err;
  return false;
}

/// A worker thread: the initializer, then queued tasks until the pool ends.
inline void ThreadBackend::work() {
  current_pool() = this;
  const bool ok = run_initializer();
  {
    std::lock_guard lock(mu_);
    ++started_;
  }
  cv_.notify_all();  // the constructor waits for every thread's initializer
  if (!ok) return;
  BufferOut out(opt_.max_result_bytes);
  Queued q;
  while (next(q)) {
    run_task(q.bytes, out);
    q.sink->on_result(q.index, out.bytes());
    finished(q);
  }
}

/// Takes the next queued message into q (spinning briefly for one, then
/// sleeping); false once the pool ends and nothing is queued.
inline bool ThreadBackend::next(Queued& q) {
  spin_until([&] { return queued_.load(std::memory_order_acquire) != 0; }, SpinBudget{worker_spin_time});
  std::unique_lock lock(mu_);
  for (;;) {
    if (!queue_.empty()) {
      q = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
      ++busy_;
      return true;
    }
    if (phase() != Phase::running && phase() != Phase::closed) return false;
    ++sleeping_;
    cv_.wait(lock);
    --sleeping_;
  }
}

/// After a task's result was delivered: its buffer is kept for reuse, and
/// join/terminate learn that it ended.
inline void ThreadBackend::finished(Queued& q) {
  q.sink.reset();
  constexpr std::size_t keep_bytes = std::size_t{16} << 20;
  std::unique_lock lock(mu_);
  if (q.bytes.capacity() <= keep_bytes && spare_.size() < 2 * threads_.size() + 8) spare_.push_back(std::move(q.bytes));
  q.bytes = {};
  const bool wake = --busy_ == 0 && phase() != Phase::running;
  lock.unlock();
  if (wake) idle_cv_.notify_all();
}

/// A buffer of n bytes for a task message, reused when one is spare.
inline std::vector<std::byte> ThreadBackend::take_buffer(std::size_t n) {
  std::vector<std::byte> b;
  {
    std::lock_guard lock(mu_);
    if (!spare_.empty()) {
      b = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  b.resize(n);
  return b;
}

/// Ends the threads (they finish what is queued unless the pool was
/// terminated) and joins them. The calling thread, if it is one of them,
/// is detached instead.
inline void ThreadBackend::end_threads() {
  std::lock_guard end(end_mu_);
  {
    std::lock_guard lock(mu_);
    if (phase() == Phase::ended) return;
    if (phase() == Phase::running || phase() == Phase::closed) phase_ = next_phase(phase_, Phase::terminated);
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (!t.joinable()) continue;
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
  {
    std::lock_guard lock(mu_);
    phase_ = next_phase(phase_, Phase::ended);
  }
  helper_->detach();
}

}  // namespace mp::detail
