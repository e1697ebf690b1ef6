// mp/detail/progress_tracker.hpp - the parent side of mp::progress: one
// ProgressTracker per map-family call, and the pool's ProgressTicker thread
// that samples them.
//
// Items are counted twice over: the tracker's `finished` count grows as the
// result thread receives whole chunks, and the fork backend's running_items
// adds the items its workers finished inside the chunks they run now (each
// worker's item word in the pool segment, see pool_layout.hpp). The ticker
// samples both ~10 times a second and reports the sum, never less than the
// last report and, while the call runs, less than the total; the call's own
// completion (finish) makes the one report at the total.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <mp/detail/compiled.hpp>
#include <mp/detail/progress_bar.hpp>
#include <mp/detail/syscall.hpp>
#include <mp/progress.hpp>

namespace mp::detail {

class Sink;

/// The progress of one call. Thread-safe: the result thread adds finished
/// chunks, the ticker samples, the call's completion finishes it.
class ProgressTracker {
public:
  ProgressTracker(Progress p, std::size_t total) : cb_(p.callback()), total_(total) {}
  ProgressTracker(const ProgressTracker&) = delete;
  ProgressTracker& operator=(const ProgressTracker&) = delete;
  ~ProgressTracker();

  /// A tracker for p, or nullptr when it would report nothing (a bar while
  /// stderr is no terminal): such a call pays nothing.
  static std::shared_ptr<ProgressTracker> make(const Progress& p, std::size_t total);

  /// The sink whose running tasks count (set once, before the first submit).
  void watch(const Sink* s) noexcept { sink_ = s; }
  [[nodiscard]] const Sink* sink() const noexcept { return sink_; }

  /// k more items finished (a whole chunk's result arrived). Never blocks.
  void add(std::size_t k) noexcept { finished_items_.fetch_add(k, std::memory_order_relaxed); }

  /// The ticker's sample: finished items plus `running` ones inside chunks
  /// still running. Reports if it grew (a bar also redraws for its rate).
  void tick(std::size_t running);

  /// The call ended: the last report (done = the items finished; an unknown
  /// total becomes that count). Only the first call reports.
  void finish() noexcept;

  [[nodiscard]] bool finished() {
    std::lock_guard lock(m_);
    return finished_;
  }

private:
  void report(std::size_t done, std::size_t total, bool final);

  Progress::Callback cb_;
  std::size_t total_;
  const Sink* sink_ = nullptr;
  Clock::time_point start_ = Clock::now();
  std::atomic<std::size_t> finished_items_{0};
  std::mutex m_;  ///< orders reports; guards last_, finished_, drawn_
  std::size_t last_ = 0;
  bool finished_ = false;
  std::size_t drawn_ = 0;  ///< the bar's last line length (0: nothing drawn)
};

/// The pool's progress thread: samples every live tracker ~10 times a
/// second. Started at the first tracker; joined by the destructor. A
/// callback that throws is ignored.
class ProgressTicker {
public:
  /// running(sink): items finished inside that sink's running tasks.
  explicit ProgressTicker(std::function<std::size_t(const Sink*)> running) : running_(std::move(running)) {}
  ProgressTicker(const ProgressTicker&) = delete;
  ProgressTicker& operator=(const ProgressTicker&) = delete;
  ~ProgressTicker();

  /// Samples t until it finishes or is gone. Throws std::system_error if
  /// the thread cannot start. Thread-safe.
  void add(const std::shared_ptr<ProgressTracker>& t);

  static constexpr std::chrono::milliseconds period{100};

private:
  void loop();
  void sample(ProgressTracker& t) noexcept;

  std::function<std::size_t(const Sink*)> running_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::weak_ptr<ProgressTracker>> trackers_;
  bool stop_ = false;
  std::thread thread_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED ProgressTracker::~ProgressTracker() {
  if (!cb_ && drawn_ != 0 && !finished_) draw_bar("", drawn_, true);  // an abandoned bar: end its line
}

MP_COMPILED std::shared_ptr<ProgressTracker> ProgressTracker::make(const Progress& p, std::size_t total) {
  if (!p.callback() && ::isatty(STDERR_FILENO) != 1) return nullptr;
  return std::make_shared<ProgressTracker>(p, total);
}

MP_COMPILED void ProgressTracker::tick(std::size_t running) {
  std::lock_guard lock(m_);
  if (finished_) return;
  std::size_t v = finished_items_.load(std::memory_order_relaxed) + running;
  if (total_ != 0) v = std::min(v, total_ - 1);
  v = std::max(v, last_);
  if (v == last_ && cb_) return;
  last_ = v;
  report(v, total_, false);
}

MP_COMPILED void ProgressTracker::finish() noexcept {
  std::lock_guard lock(m_);
  if (finished_) return;
  finished_ = true;
  const std::size_t done = std::max(last_, finished_items_.load(std::memory_order_relaxed));
  try {
    report(done, total_ != 0 ? total_ : done, true);
  } catch (...) {  // a throwing callback must not fail the call: the result is what counts
  }
}

MP_COMPILED void ProgressTracker::report(std::size_t done, std::size_t total, bool final) {
  if (cb_) return cb_(done, total);
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  draw_bar(bar_text(done, total, secs), drawn_, final);
}

MP_COMPILED ProgressTicker::~ProgressTicker() {
  {
    std::lock_guard lock(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

MP_COMPILED void ProgressTicker::add(const std::shared_ptr<ProgressTracker>& t) {
  std::lock_guard lock(m_);
  trackers_.push_back(t);
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  cv_.notify_all();
}

MP_COMPILED void ProgressTicker::loop() {
  std::unique_lock lock(m_);
  while (!stop_) {
    if (trackers_.empty()) {
      cv_.wait(lock, [&] { return stop_ || !trackers_.empty(); });
      continue;
    }
    cv_.wait_for(lock, period, [&] { return stop_; });
    std::vector<std::shared_ptr<ProgressTracker>> live;
    std::erase_if(trackers_, [&](const std::weak_ptr<ProgressTracker>& w) {
      auto t = w.lock();
      if (!t || t->finished()) return true;
      live.push_back(std::move(t));
      return false;
    });
    lock.unlock();
    for (auto& t : live) sample(*t);
    live.clear();  // the last owner may be here: end it unlocked
    lock.lock();
  }
}

MP_COMPILED void ProgressTicker::sample(ProgressTracker& t) noexcept {
  try {
    t.tick(running_(t.sink()));
  } catch (...) {
  }
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
