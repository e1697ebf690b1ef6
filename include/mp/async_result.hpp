// mp/async_result.hpp - mp::AsyncResult<T>, the future a Pool hands out
// (Python's multiprocessing.pool.AsyncResult).
//
// The shared state is a futex word (0 pending, 1 value, 2 error) that the
// pool's result thread sets once, the value or exception, and callbacks
// registered with then(). Completion first decides the outcome, then runs
// the callbacks, then publishes the word: a thread that sees the result
// ready also sees every callback registered before completion finished
// (Python's order). Waiting spins ~100 us, meanwhile reading the
// pool's result channels itself (so a quick task's result needs no thread
// wakeup), then sleeps on the word. The state receives a value, never
// bytes: decoding a result message is the pool's (detail/protocol.hpp), so
// this header does not include the codec.
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

#include <mp/detail/backend.hpp>
#include <mp/detail/callback_error.hpp>
#include <mp/detail/compiled.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/spin.hpp>
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
  bool wait_until(Clock::time_point deadline) const { return ready() || wait_slow(deadline); }

  /// Asks the pool to cancel this task (every unstarted chunk of a map);
  /// see AsyncResult::cancel. True again once it returned true.
  bool cancel(bool running);

  /// Fails the state with e if it has not ended yet (else nothing).
  void fail(std::exception_ptr e) noexcept {
    if (!claim()) return;
    error_ = std::move(e);
    finish(has_error);
  }

  ~StateBase() override;
  void on_error(std::size_t, std::exception_ptr e) noexcept override;
  [[nodiscard]] bool has_callbacks() const noexcept override { return has_cb_.load(std::memory_order_acquire); }
  void use_helper(const std::shared_ptr<WaitHelper>& h) noexcept override;

  /// Stores cb to run on completion, before the state is published; runs it
  /// now in this thread when the callbacks already ran. Called from inside a
  /// callback of this state, cb runs after the current one, still before
  /// the state is published. An exception cb throws goes to stderr.
  void add_callback(std::function<void()> cb);

  /// The published status: pending until the callbacks ran.
  [[nodiscard]] std::uint32_t status() const noexcept { return status_.load(std::memory_order_acquire); }
  /// The decided status: set before the callbacks run (what they read).
  [[nodiscard]] std::uint32_t outcome() const noexcept { return outcome_.load(std::memory_order_acquire); }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }
  /// Whether a cancel() succeeded (the state may still be pending).
  [[nodiscard]] bool cancel_requested() const noexcept { return cancelled_.load(std::memory_order_acquire); }

protected:
  /// True for the one caller that may set the value or the error.
  bool claim() noexcept { return !claimed_.exchange(true, std::memory_order_acq_rel); }

  /// Decides the outcome, runs the callbacks, then publishes st and wakes
  /// the waiters.
  void finish(std::uint32_t st) noexcept;

  mutable std::atomic<std::uint32_t> status_{pending};
  mutable std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint32_t> outcome_{pending};
  std::exception_ptr error_;

private:
  /// wait_until when the state is not ready yet (compiled once with
  /// MP_SEPARATE_COMPILATION, not in every get()).
  bool wait_slow(Clock::time_point deadline) const;

  /// Spins until ready, wait_spin_time or the deadline, helping the backend.
  void spin(Clock::time_point deadline) const;

  /// Runs each registered callback once, including those registered while
  /// they run; afterwards add_callback runs a callback itself.
  void run_callbacks() noexcept;

  std::atomic<bool> has_cb_{false};
  std::atomic<bool> claimed_{false};    ///< the value or error is being set
  std::atomic<bool> cancelled_{false};  ///< a cancel() succeeded
  std::mutex cb_mu_;
  bool cb_done_ = false;  ///< guarded by cb_mu_: the callbacks ran
  std::vector<std::function<void()>> callbacks_;
  std::shared_ptr<WaitHelper> helper_;
};

/// The state of an AsyncResult<T>: the value once it is set. It knows no
/// message format: the pool's sink for T (ApplyState, MapState in
/// pool_map.hpp) derives from it, decodes the result message
/// (protocol.hpp) and calls set_value(T) or fail(exception_ptr).
template <class T>
class ResultState : public StateBase {
public:
  void set_value(T v) noexcept {
    if (!claim()) return;
    value_.emplace(std::move(v));
    finish(has_value);
  }
  T& value() noexcept { return *value_; }

private:
  std::optional<T> value_;
};

template <>
class ResultState<void> : public StateBase {
public:
  void set_value() noexcept {
    if (claim()) finish(has_value);
  }
};

#if MP_DEFINE_COMPILED

// StateBase's key function: with MP_SEPARATE_COMPILATION its vtable is
// emitted once, where <mp/src.hpp> is.
MP_COMPILED void StateBase::on_error(std::size_t, std::exception_ptr e) noexcept { fail(std::move(e)); }

// Out of line, so that the destructor of every ResultState<T> calls one
// function instead of destroying the callbacks and the helper inline.
MP_COMPILED StateBase::~StateBase() = default;

MP_COMPILED void StateBase::use_helper(const std::shared_ptr<WaitHelper>& h) noexcept { helper_ = h; }

MP_COMPILED bool StateBase::cancel(bool running) {
  if (cancelled_.load(std::memory_order_acquire)) return true;
  if (outcome() != pending || helper_ == nullptr) return false;
  if (!helper_->cancel(this, running)) return false;
  cancelled_.store(true, std::memory_order_release);
  // With running: the worker is killed; the state fails now, not once
  // the rest of a map's chunks ended.
  if (running) fail(std::make_exception_ptr(CancelledError("mp::AsyncResult::cancel: the task was cancelled")));
  return true;
}

MP_COMPILED void StateBase::add_callback(std::function<void()> cb) {
  {
    std::lock_guard lock(cb_mu_);
    if (!cb_done_) {
      callbacks_.push_back(std::move(cb));
      has_cb_.store(true, std::memory_order_seq_cst);
      return;
    }
  }
  run_callback(cb);
}

MP_COMPILED void StateBase::finish(std::uint32_t st) noexcept {
  outcome_.store(st, std::memory_order_release);
  run_callbacks();
  status_.store(st, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) futex_wake_all(status_);
}

MP_COMPILED bool StateBase::wait_slow(Clock::time_point deadline) const {
  spin(deadline);
  if (ready()) return true;
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  while (!ready()) {
    if (!futex_wait(status_, pending, deadline) && !ready()) break;
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return ready();
}

MP_COMPILED void StateBase::spin(Clock::time_point deadline) const {
  WaitHelper* h = helper_.get();
  if (h == nullptr) {
    spin_until([&] { return ready(); }, {wait_spin_time, deadline});
    return;
  }
  h->enter();
  spin_until([&] { return ready() || (h->help(), ready()); }, {wait_spin_time, deadline});
  h->leave(!ready());
}

MP_COMPILED void StateBase::run_callbacks() noexcept {
  for (;;) {
    std::vector<std::function<void()>> cbs;
    {
      std::lock_guard lock(cb_mu_);
      if (callbacks_.empty()) {
        cb_done_ = true;
        return;
      }
      cbs.swap(callbacks_);
    }
    for (auto& cb : cbs) run_callback(cb);
  }
}

#endif  // MP_DEFINE_COMPILED

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

  /// Whether the task has ended: ready(), as concurrent.futures names it.
  /// Never blocks.
  [[nodiscard]] bool done() const noexcept { return ready(); }

  /// Whether the task was submitted, has not ended and no cancel() of it
  /// succeeded: queued or running, as the pool does not tell the parent
  /// when a worker starts a task. Never blocks.
  [[nodiscard]] bool running() const noexcept { return valid() && !ready() && !st_->cancel_requested(); }

  /// Whether the task ended with mp::CancelledError (cancel() succeeded; a
  /// map cancelled without killing fails once its running chunks ended).
  /// Never blocks.
  [[nodiscard]] bool cancelled() const noexcept {
    if (st_ == nullptr || st_->status() != detail::StateBase::has_error) return false;
    try {
      std::rethrow_exception(st_->error());
    } catch (const CancelledError&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  /// Blocks until the task ends; returns its exception, null when it
  /// succeeded. Never throws.
  [[nodiscard]] std::exception_ptr exception() const {
    wait();
    return error_or_null();
  }

  /// exception() that throws mp::TimeoutError when the task has not ended
  /// within d.
  template <class Rep, class Period>
  [[nodiscard]] std::exception_ptr exception(std::chrono::duration<Rep, Period> d) const {
    if (!wait(d)) throw TimeoutError("mp::AsyncResult::exception: the task did not end within the timeout");
    return error_or_null();
  }

  /// Registers callback(const T&) (callback() for void), run once when the
  /// value arrives and before the future is ready: after get() or wait()
  /// returns, every callback registered before the task ended has run. It
  /// runs on the pool's result thread (or a thread blocked in get() that is
  /// delivering results), or at once in this thread when the task already
  /// ended. It must not block for long nor wait for this future; it may call
  /// then(), cancel(), and the pool's close() and terminate(). An exception
  /// it throws never leaves then(): it is printed to stderr on one line
  /// ("mp: an AsyncResult callback threw <type>: <what>; ignored").
  /// Thread-safe.
  template <class Cb>
  AsyncResult& then(Cb callback) {
    return then(std::move(callback), [](std::exception_ptr) {});
  }

  /// Also registers error_callback(std::exception_ptr), run instead, in the
  /// same way, when the task failed.
  template <class Cb, class ErrCb>
  AsyncResult& then(Cb callback, ErrCb error_callback) {
    detail::ResultState<T>* s = st_.get();
    st_->add_callback([s, cb = std::move(callback), ecb = std::move(error_callback)]() mutable {
      if (s->outcome() == detail::StateBase::has_error) {
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
  std::exception_ptr error_or_null() const {
    return st_->status() == detail::StateBase::has_error ? st_->error() : nullptr;
  }
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
