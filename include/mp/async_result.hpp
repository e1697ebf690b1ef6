// mp/async_result.hpp - mp::AsyncResult<T>, the future a Pool hands out
// (Python's multiprocessing.pool.AsyncResult).
//
// The shared state is a futex word (0 pending, 1 value, 2 error) that the
// pool's result thread sets once, the value or exception, and callbacks
// registered with then(). Waiting spins ~100 us, meanwhile reading the
// pool's result channels itself (so a quick task's result needs no thread
// wakeup), then sleeps on the word.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/detail/futex.hpp>
#include <mp/detail/spin.hpp>
#include <mp/detail/task.hpp>
#include <mp/errors.hpp>

namespace mp {
namespace detail {


/// The part of a result state that does not depend on T.
class StateBase : public Sink {
public:
  static constexpr std::uint32_t pending = 0, has_value = 1, has_error = 2;

  [[nodiscard]] bool ready() const noexcept { return status_.load(std::memory_order_acquire) != pending; }

  /// Waits until ready or the deadline; returns ready(). Spins first, reading
  /// the backend's results itself (WaitHelper), then sleeps on the word.
  bool wait_until(Clock::time_point deadline) const {
    if (ready()) return true;
    spin(deadline);
    if (ready()) return true;
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    while (!ready()) {
      if (!futex_wait(status_, pending, deadline) && !ready()) break;
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return ready();
  }

  /// Asks the pool to cancel this task (every unstarted chunk of a map);
  /// see AsyncResult::cancel. True again once it returned true.
  bool cancel(bool running) {
    if (cancelled_.load(std::memory_order_acquire)) return true;
    if (ready() || helper_ == nullptr) return false;
    if (!helper_->cancel(this, running)) return false;
    cancelled_.store(true, std::memory_order_release);
    // With running: the worker is killed; the state fails now, not once
    // the rest of a map's chunks ended.
    if (running) fail(std::make_exception_ptr(CancelledError("mp::AsyncResult::cancel: the task was cancelled")));
    return true;
  }

  /// Fails the state with e if it has not ended yet (else nothing).
  void fail(std::exception_ptr e) noexcept {
    if (!claim()) return;
    error_ = std::move(e);
    finish(has_error);
  }

  void on_error(std::size_t, std::exception_ptr e) noexcept override { fail(std::move(e)); }
  [[nodiscard]] bool has_callbacks() const noexcept override { return has_cb_.load(std::memory_order_acquire); }
  void use_helper(const std::shared_ptr<WaitHelper>& h) noexcept override { helper_ = h; }

  /// Runs cb now if ready, else stores it to run on completion.
  void add_callback(std::function<void()> cb) {
    if (status_.load(std::memory_order_seq_cst) == pending) {
      {
        std::lock_guard lock(cb_mu_);
        callbacks_.push_back(std::move(cb));
        has_cb_.store(true, std::memory_order_seq_cst);
      }
      // finish() checks has_cb_ after storing the status: one of us sees the other.
      if (status_.load(std::memory_order_seq_cst) != pending) run_callbacks();
      return;
    }
    cb();
  }

  [[nodiscard]] std::uint32_t status() const noexcept { return status_.load(std::memory_order_acquire); }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }

protected:
  /// True for the one caller that may set the value or the error.
  bool claim() noexcept { return !claimed_.exchange(true, std::memory_order_acq_rel); }

  void finish(std::uint32_t st) noexcept {
    status_.store(st, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) futex_wake_all(status_);
    if (has_cb_.load(std::memory_order_seq_cst)) run_callbacks();  // no lock when there are none
  }

  mutable std::atomic<std::uint32_t> status_{pending};
  mutable std::atomic<std::uint32_t> waiters_{0};
  std::exception_ptr error_;

private:
  /// Spins until ready, wait_spin_time or the deadline, helping the backend.
  void spin(Clock::time_point deadline) const {
    const auto start = Clock::now();
    const auto stop = std::min(deadline, start + wait_spin_time);
    WaitHelper* h = helper_.get();
    if (h != nullptr) h->enter();
    for (unsigned i = 1; !ready(); ++i) {
      if (h != nullptr) h->help();
      cpu_relax();
      if ((i & 15u) != 0) continue;
      const auto now = Clock::now();
      if (now >= stop) break;
      if (now - start > spin_before_yield) std::this_thread::yield();
    }
    if (h != nullptr) h->leave(!ready());
  }

  /// Runs (once) the callbacks registered so far.
  void run_callbacks() noexcept {
    std::vector<std::function<void()>> cbs;
    {
      std::lock_guard lock(cb_mu_);
      cbs.swap(callbacks_);
    }
    for (auto& cb : cbs) {
      try {
        cb();
      } catch (...) {  // a throwing callback must not kill the result thread
      }
    }
  }

  std::atomic<bool> has_cb_{false};
  std::atomic<bool> claimed_{false};    ///< the value or error is being set
  std::atomic<bool> cancelled_{false};  ///< a cancel() succeeded
  std::mutex cb_mu_;
  std::vector<std::function<void()>> callbacks_;
  std::shared_ptr<WaitHelper> helper_;
};

/// The state of an AsyncResult<T>: the value once it is set.
template <class T>
class ResultState : public StateBase {
public:
  void set_value(T v) noexcept {
    if (!claim()) return;
    value_.emplace(std::move(v));
    finish(has_value);
  }
  T& value() noexcept { return *value_; }

  /// apply's result message: decode T (or the error).
  void on_result(std::size_t, std::span<const std::byte> msg) noexcept override {
    try {
      Reader r(msg);
      std::exception_ptr err;
      std::uint64_t idx = 0;
      if (!read_status(r, err, idx)) return fail(err);
      T v = r.read<T>();
      r.expect_end();
      set_value(std::move(v));
    } catch (...) {
      fail(std::current_exception());
    }
  }

private:
  std::optional<T> value_;
};

template <>
class ResultState<void> : public StateBase {
public:
  void set_value() noexcept {
    if (claim()) finish(has_value);
  }
  void on_result(std::size_t, std::span<const std::byte> msg) noexcept override {
    try {
      Reader r(msg);
      std::exception_ptr err;
      std::uint64_t idx = 0;
      if (!read_status(r, err, idx)) return fail(err);
      r.expect_end();
      set_value();
    } catch (...) {
      fail(std::current_exception());
    }
  }
};

}  // namespace detail

/// The result of a task submitted with Pool::apply_async, map_async or
/// starmap_async. Cheap to copy (copies share the state). Every member is
/// safe to call from several threads at once; not usable across processes.
template <class T>
class AsyncResult {
public:
  AsyncResult() = default;
  explicit AsyncResult(std::shared_ptr<detail::ResultState<T>> st) noexcept : st_(std::move(st)) {}

  /// Blocks until the task ends; returns its result (a copy; an rvalue
  /// AsyncResult moves it out) or rethrows its exception.
  T get() & {
    wait();
    return value();
  }
  T get() && {
    wait();
    if constexpr (std::is_void_v<T>) {
      return value();
    } else {
      rethrow_if_failed();
      return std::move(st_->value());
    }
  }

  /// get() that throws mp::TimeoutError when the result is not ready within d.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> d) {
    if (!wait(d)) throw TimeoutError("mp::AsyncResult::get: the result was not ready within the timeout");
    return value();
  }

  /// Blocks until the task ends (successfully or not). Never throws.
  void wait() const { st_->wait_until(detail::Clock::time_point::max()); }

  /// Blocks up to d; returns whether the task has ended.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> d) const {
    return st_->wait_until(detail::deadline_after(d));
  }

  /// Whether the task has ended. Never blocks.
  [[nodiscard]] bool ready() const noexcept { return st_->ready(); }

  /// Whether the task ended without an exception. Throws std::logic_error
  /// when it has not ended (Python raises ValueError).
  [[nodiscard]] bool successful() const {
    if (!ready()) throw std::logic_error("mp::AsyncResult::successful: the result is not ready");
    return st_->status() == detail::StateBase::has_value;
  }

  /// Registers callback(const T&) (callback() for void), run once on the
  /// pool's result thread when the value arrives, or at once in this thread
  /// if it is already there. Exceptions the callback throws are swallowed.
  template <class Cb>
  AsyncResult& then(Cb callback) {
    return then(std::move(callback), [](std::exception_ptr) {});
  }

  /// Also registers error_callback(std::exception_ptr), run instead when
  /// the task failed.
  template <class Cb, class ErrCb>
  AsyncResult& then(Cb callback, ErrCb error_callback) {
    detail::ResultState<T>* s = st_.get();
    st_->add_callback([s, cb = std::move(callback), ecb = std::move(error_callback)]() mutable {
      if (s->status() == detail::StateBase::has_error) {
        ecb(s->error());
      } else if constexpr (std::is_void_v<T>) {
        cb();
      } else {
        cb(std::as_const(s->value()));
      }
    });
    return *this;
  }

  /// Cancels the task if it has not started: it is removed and the future
  /// fails with mp::CancelledError; returns whether that happened (true
  /// again on a later call). With kill_if_running, a task already running is
  /// cancelled too, by killing its worker (the pool replaces it), and the
  /// future fails at once. A map_async's future cancels every chunk not
  /// started yet; without kill_if_running the map fails with CancelledError
  /// once its running chunks ended. A task already handed to a worker but not begun
  /// (at most PoolOptions::window per worker) cannot be cancelled, as in
  /// Python's concurrent.futures: false. Blocks only on the pool's lock.
  /// Thread-safe; may be called from a then() callback.
  bool cancel(bool kill_if_running = false) { return st_->cancel(kill_if_running); }

  /// Whether this handle refers to a task at all (default-constructed: no).
  [[nodiscard]] bool valid() const noexcept { return st_ != nullptr; }

private:
  void rethrow_if_failed() const {
    if (st_->status() == detail::StateBase::has_error) std::rethrow_exception(st_->error());
  }
  T value() const {
    rethrow_if_failed();
    if constexpr (!std::is_void_v<T>) return st_->value();
  }

  std::shared_ptr<detail::ResultState<T>> st_;
};

}  // namespace mp
