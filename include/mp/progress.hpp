// mp/progress.hpp - mp::progress, a per-item progress report for the map
// family (tqdm(pool.imap(f, it), total=n)).
//
//   auto v = pool.map(f, items, mp::progress());   // a bar on stderr
//   pool.map(f, items, mp::progress([](std::size_t done, std::size_t total) {
//     log(done, total);
//   }));
//
// The bar (count, total, percent, rate, ETA) is drawn only when stderr is a
// terminal, at most 10 times a second, and ends with a line at 100%. For an
// unsized input the total is 0 and the bar shows the count and the rate.
// Items count as they finish in a worker, not per chunk.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <utility>

namespace mp {

/// A progress report option; make one with mp::progress() or
/// mp::progress(callback).
class Progress {
public:
  /// Called with the items finished so far and the total (0: unknown).
  using Callback = std::function<void(std::size_t done, std::size_t total)>;

  /// The bar on stderr.
  Progress() = default;
  /// The callback instead of the bar.
  explicit Progress(Callback cb) : callback_(std::move(cb)) {}

  /// The callback; empty for the bar.
  [[nodiscard]] const Callback& callback() const noexcept { return callback_; }

private:
  Callback callback_;
};

/// A tqdm-like bar on stderr when stderr is a terminal (else nothing).
/// Never blocks. Thread-safe.
inline Progress progress() { return Progress(); }

/// Reports to callback(done, total) instead of drawing. The callback runs on
/// one of the pool's threads, never two calls at once; it should return
/// quickly and must not wait for the same call's result. The values never
/// decrease; the last call, after every item succeeded, has done == total
/// and comes before the result is ready. For an unsized input total is 0
/// until that last call, which gives the count as both. Throws what copying
/// the callback throws.
template <class F>
  requires std::invocable<F&, std::size_t, std::size_t>
Progress progress(F&& callback) {
  return Progress(Progress::Callback(std::forward<F>(callback)));
}

}  // namespace mp
