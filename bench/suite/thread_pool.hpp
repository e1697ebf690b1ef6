// bench/suite/thread_pool.hpp - the plain std::thread pool the suite measures
// mp against: one mutex-guarded queue of std::function, futures from
// std::promise, map in chunks written in place. No marshalling at all: the
// bound for a pool that sends nothing between address spaces.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace bench {

class ThreadPool {
public:
  explicit ThreadPool(unsigned n) {
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { serve(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> g(m_);
      closed_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  unsigned size() const { return static_cast<unsigned>(threads_.size()); }

  template <class F, class... A>
  auto apply_async(F f, A... a) {
    auto p = std::make_shared<std::promise<decltype(f(a...))>>();
    auto fut = p->get_future();
    push([p, f, a...] { p->set_value(f(a...)); });
    return fut;
  }

  /// f over `in` in chunks (ceil(n / (4 * size())) as mp's default), results
  /// written in place; blocks until all chunks ran.
  template <class F, class T>
  auto map(F f, const std::vector<T>& in) {
    using R = decltype(f(in[0]));
    std::vector<R> out(in.size());
    const std::size_t n = in.size(), d = 4 * std::size_t{size()}, cs = std::max<std::size_t>(1, (n + d - 1) / d);
    std::vector<std::future<void>> done;
    for (std::size_t s = 0; s < n; s += cs) {
      auto p = std::make_shared<std::promise<void>>();
      done.push_back(p->get_future());
      push([p, f, s, e = std::min(n, s + cs), &in, &out] {
        for (std::size_t i = s; i < e; ++i) out[i] = f(in[i]);
        p->set_value();
      });
    }
    for (auto& x : done) x.get();
    return out;
  }

private:
  void push(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> g(m_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  void serve() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [this] { return closed_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool closed_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace bench
