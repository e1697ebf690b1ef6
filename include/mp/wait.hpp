// mp/wait.hpp - mp::wait and mp::as_completed over AsyncResult futures
// (Python's concurrent.futures.wait and as_completed).
//
//   auto [done, not_done] = mp::wait(futures, mp::FIRST_COMPLETED, 1s);
//   for (mp::AsyncResult<int> f : mp::as_completed(futures)) use(f.get());
//
// Neither polls: each registers a then() callback on every future that
// signals one shared waiter. The waiter lives in a shared_ptr owned by the
// callbacks too, so a callback that fires after its wait returned touches
// live memory and nothing else.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <mp/async_result.hpp>
#include <mp/errors.hpp>

namespace mp {

/// When mp::wait returns (concurrent.futures' return_when).
enum class ReturnWhen { first_completed, first_exception, all_completed };
/// As soon as one future ended.
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::first_completed;
/// As soon as one future failed, or all ended.
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::first_exception;
/// When all futures ended.
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::all_completed;

/// What mp::wait returns (concurrent.futures' DoneAndNotDoneFutures):
/// copies of the futures (sharing their state), each list in input order.
template <class T>
struct DoneAndNotDone {
  std::vector<AsyncResult<T>> done;      ///< ended (ready() is true)
  std::vector<AsyncResult<T>> not_done;  ///< had not ended
};

namespace detail {

template <class X>
struct async_result_value {};
template <class T>
struct async_result_value<AsyncResult<T>> {
  using type = T;
};

/// The T of a range of AsyncResult<T>, with a readable error otherwise.
template <class Rg>
consteval void check_futures() {
  static_assert(requires { typename async_result_value<std::ranges::range_value_t<Rg>>::type; },
                "mp::wait and mp::as_completed take a range of mp::AsyncResult<T> (for example a "
                "std::vector<mp::AsyncResult<int>>); this range's value type is not an AsyncResult.");
}

/// The waiter the futures' callbacks signal: which futures ended, in order.
struct CompletionSignal {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::size_t> order;  ///< indices, in completion order
  bool failed = false;             ///< one of them failed

  void note(std::size_t i, bool error) {
    {
      std::lock_guard lock(mu);
      order.push_back(i);
      failed = failed || error;
    }
    cv.notify_all();
  }

  /// cv.wait_until, or cv.wait for no deadline (time_point::max()).
  template <class Pred>
  bool wait_until(std::unique_lock<std::mutex>& lock, Clock::time_point deadline, Pred pred) {
    if (deadline == Clock::time_point::max()) {
      cv.wait(lock, pred);
      return true;
    }
    return cv.wait_until(lock, deadline, pred);
  }
};

/// Copies the futures and registers one callback on each that signals s.
/// Throws std::invalid_argument for a future that refers to no task.
template <class T, class Rg>
std::vector<AsyncResult<T>> watch(Rg&& futures, const std::shared_ptr<CompletionSignal>& s) {
  std::vector<AsyncResult<T>> fs;
  for (auto&& f : futures) {
    if (!f.valid()) throw std::invalid_argument("mp::wait/as_completed: a future refers to no task");
    fs.push_back(f);
  }
  for (std::size_t i = 0; i < fs.size(); ++i) {
    fs[i].then([s, i](const auto&...) { s->note(i, false); }, [s, i](std::exception_ptr) { s->note(i, true); });
  }
  return fs;
}

}  // namespace detail

/// Blocks until the futures satisfy `when` or the timeout passes (none by
/// default; Python returns at the timeout too, without raising), then splits
/// them into done and not done. Throws std::invalid_argument for a future
/// that refers to no task. Thread-safe; futures from several pools mix.
/// Must not run inside a then() callback of a pool whose futures it waits on.
template <std::ranges::input_range Rg, class Rep = long, class Period = std::ratio<1>>
auto wait(Rg&& futures, ReturnWhen when = ALL_COMPLETED,
          std::chrono::duration<Rep, Period> timeout = std::chrono::duration<Rep, Period>::max()) {
  detail::check_futures<Rg>();
  using T = typename detail::async_result_value<std::ranges::range_value_t<Rg>>::type;
  const auto deadline = detail::deadline_after(timeout);
  auto s = std::make_shared<detail::CompletionSignal>();
  std::vector<AsyncResult<T>> fs = detail::watch<T>(std::forward<Rg>(futures), s);
  std::vector<char> ended(fs.size(), 0);
  {
    std::unique_lock lock(s->mu);
    s->wait_until(lock, deadline, [&] {
      const std::size_t n = s->order.size();
      if (when == FIRST_COMPLETED) return n > 0 || fs.empty();
      if (when == FIRST_EXCEPTION) return s->failed || n == fs.size();
      return n == fs.size();
    });
    for (std::size_t i : s->order) ended[i] = 1;
  }
  DoneAndNotDone<T> out;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    if (ended[i] != 0) fs[i].wait();  // its callbacks ran; it is published at once after them
    (ended[i] != 0 ? out.done : out.not_done).push_back(std::move(fs[i]));
  }
  return out;
}

/// The input range mp::as_completed returns: yields each future once, as it
/// ends (those already ended first). Single pass; not thread-safe.
template <class T>
class AsCompleted {
public:
  AsCompleted(std::vector<AsyncResult<T>> fs, std::shared_ptr<detail::CompletionSignal> s,
              detail::Clock::time_point deadline)
      : fs_(std::move(fs)), s_(std::move(s)), deadline_(deadline) {}

  class iterator {
  public:
    using value_type = AsyncResult<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* r) : r_(r) {}
    /// The current future (ready() is true), a copy sharing its state.
    AsyncResult<T> operator*() const { return r_->fs_[r_->cur_]; }
    /// Blocks for the next future to end; throws mp::TimeoutError past the
    /// deadline.
    iterator& operator++() {
      r_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.r_->at_end(); }

  private:
    AsCompleted* r_ = nullptr;
  };

  /// Blocks for the first future; throws mp::TimeoutError past the deadline.
  iterator begin() {
    if (!started_) {
      started_ = true;
      next();
    }
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Whether every future was yielded. Never blocks.
  bool at_end() const noexcept { return taken_ > fs_.size(); }

private:
  void next() {
    if (taken_++ >= fs_.size()) return;
    {
      std::unique_lock lock(s_->mu);
      const std::size_t want = taken_;
      if (!s_->wait_until(lock, deadline_, [&] { return s_->order.size() >= want; })) {
        --taken_;
        throw TimeoutError("mp::as_completed: not every future ended within the timeout");
      }
      cur_ = s_->order[want - 1];
    }
    fs_[cur_].wait();  // its callbacks ran; it is published at once after them
  }

  std::vector<AsyncResult<T>> fs_;
  std::shared_ptr<detail::CompletionSignal> s_;
  detail::Clock::time_point deadline_;
  bool started_ = false;
  std::size_t taken_ = 0;  ///< futures yielded so far, +1 past the end
  std::size_t cur_ = 0;
};

/// The futures as they end, as an input range of AsyncResult<T>; with a
/// timeout (counted from this call), advancing past it throws
/// mp::TimeoutError. Throws std::invalid_argument for a future that refers
/// to no task. Registers its callbacks at once.
template <std::ranges::input_range Rg, class Rep = long, class Period = std::ratio<1>>
auto as_completed(Rg&& futures, std::chrono::duration<Rep, Period> timeout = std::chrono::duration<Rep, Period>::max()) {
  detail::check_futures<Rg>();
  using T = typename detail::async_result_value<std::ranges::range_value_t<Rg>>::type;
  const auto deadline = detail::deadline_after(timeout);
  auto s = std::make_shared<detail::CompletionSignal>();
  std::vector<AsyncResult<T>> fs = detail::watch<T>(std::forward<Rg>(futures), s);
  return AsCompleted<T>(std::move(fs), std::move(s), deadline);
}

}  // namespace mp
