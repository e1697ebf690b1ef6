// mp/joinable_queue.hpp - mp::JoinableQueue<T>: an mp::Queue<T> that also
// counts unfinished tasks, with task_done() and join() (Python's
// multiprocessing.JoinableQueue).
//
// It lives in anonymous shared segments mapped at construction: create it
// BEFORE starting the Process or Pool that uses it. Copies of the handle are
// the same queue.
//
// put() raises the unfinished count, task_done() lowers it, join() waits for
// zero. A consumer that dies between get() and task_done() would leave join()
// waiting for ever in Python. mp records how many tasks each process has got
// and not yet marked done; a join() that has waited 20 ms looks for such
// processes that have exited, removes their tasks from the count and throws
// mp::WorkerLostError naming the pid (once; the next join() waits for the
// rest normally). Not covered: a consumer killed in the instant between the
// queue handing it a value and the record (and the one message mp::Queue
// loses when its consumer is killed mid-receive): join(timeout) is the
// way out there.
//
//   tasks layout (after the 64-byte SegmentHeader):
//   +--------------------------------------------------------+
//   | RobustMutex m        guards holders[]                   |
//   | unfinished u32 atomic   put - task_done; the futex word |
//   | waiters    u32 atomic   joiners asleep                  |
//   | holders[32] { pid i32, count u32 }  got, not yet done   |
//   +--------------------------------------------------------+
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <sys/types.h>

#include <mp/detail/futex.hpp>
#include <mp/detail/holder_table.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shared_object.hpp>
#include <mp/errors.hpp>
#include <mp/queue.hpp>

namespace mp {
namespace detail {

struct JoinLayout {
  static constexpr std::size_t max_holders = 32;
  RobustMutex m;
  std::atomic<std::uint32_t> unfinished;
  std::atomic<std::uint32_t> waiters;
  Holder holders[max_holders];  // count: tasks got, not yet done
};

inline constexpr std::uint64_t join_magic = 0x6d702d4a6f696e31;  // "mp-Join1"

}  // namespace detail

/// A Queue whose join() waits until every put() item was task_done().
template <class T>
class JoinableQueue {
public:
  using value_type = T;

  /// An unbounded queue. Throws mp::Error if shared memory cannot be mapped.
  JoinableQueue() : JoinableQueue(QueueOptions{}) {}
  /// A queue holding at most maxsize items (0 = unbounded).
  explicit JoinableQueue(std::size_t maxsize) : JoinableQueue(QueueOptions{maxsize}) {}
  /// A queue with the given options (see mp::QueueOptions).
  explicit JoinableQueue(const QueueOptions& o)
      : q_(o), j_(detail::SharedObject<detail::JoinLayout>::make(detail::join_magic, 1, 0,
                                                                 [](detail::JoinLayout& l) { l.m.init(); })) {}

  /// Queue::put, counting one more unfinished task. Blocks as Queue::put.
  void put(const T& x) {
    counted([&] { q_.put(x); });
  }
  /// Queue::put(x, timeout); throws mp::Full (count unchanged).
  template <class Rep, class Period>
  void put(const T& x, std::chrono::duration<Rep, Period> timeout) {
    counted([&] { q_.put(x, timeout); });
  }
  /// Queue::put_nowait; throws mp::Full (count unchanged).
  void put_nowait(const T& x) {
    counted([&] { q_.put_nowait(x); });
  }

  /// Queue::get; the caller owes one task_done(). Blocks until an item arrives.
  T get() { return taken(q_.get()); }
  /// Queue::get(timeout); throws mp::Empty.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return taken(q_.get(timeout));
  }
  /// Queue::get_nowait; throws mp::Empty.
  T get_nowait() { return taken(q_.get_nowait()); }

  /// Marks one got item as processed; wakes join() at zero. Never blocks
  /// beyond a short critical section. Throws std::logic_error if called more
  /// often than items were put (Python raises ValueError). Safe across
  /// threads and processes.
  void task_done() {
    detail::JoinLayout& l = *j_;
    std::uint32_t v = l.unfinished.load();
    do {
      if (v == 0) throw std::logic_error("mp::JoinableQueue::task_done(): called more times than items were put");
    } while (!l.unfinished.compare_exchange_weak(v, v - 1));
    forget(l);
    if (v == 1 && l.waiters.load() != 0) detail::futex_wake_all(l.unfinished);
  }

  /// Blocks until every item put has been task_done(). Throws
  /// mp::WorkerLostError if a process died with got-but-unfinished items
  /// (their count is dropped, so a later join() can succeed).
  void join() { join_until(detail::Clock::time_point::max()); }

  /// As join(), for at most `timeout`; returns whether the count reached zero.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::deadline_after(timeout));
  }

  /// Items put and not yet task_done() (a snapshot). Never blocks.
  [[nodiscard]] std::uint32_t unfinished_tasks() const noexcept { return j_->unfinished.load(); }
  [[nodiscard]] std::size_t qsize() const noexcept { return q_.qsize(); }
  [[nodiscard]] bool empty() const noexcept { return q_.empty(); }
  [[nodiscard]] bool full() const noexcept { return q_.full(); }
  /// Queue::close: this process puts no more.
  void close() noexcept { q_.close(); }

private:
  template <class Put>
  void counted(Put&& put) {
    j_->unfinished.fetch_add(1);  // before the item is visible, so join() cannot miss it
    try {
      put();
    } catch (...) {
      if (j_->unfinished.fetch_sub(1) == 1) detail::futex_wake_all(j_->unfinished);
      throw;
    }
  }

  T taken(T&& x) {
    detail::JoinLayout& l = *j_;
    detail::RobustLock g(l.m, [] {});
    detail::holder_add(l.holders, detail::self_pid(), 1);
    return std::move(x);
  }

  /// task_done(): one fewer outstanding for this process (else a dead one,
  /// else any: task_done() from another process than the getter's).
  static void forget(detail::JoinLayout& l) {
    detail::RobustLock g(l.m, [] {});
    detail::holder_forget_one(l.holders);
  }

  /// Drops the tasks of holders that exited; throws WorkerLostError if any.
  void reclaim_dead() {
    detail::JoinLayout& l = *j_;
    pid_t dead = 0;
    std::uint32_t lost = 0;
    {
      detail::RobustLock g(l.m, [] {});
      for (detail::Holder& h : l.holders) {
        if (h.count == 0 || detail::pid_alive(h.pid)) continue;
        dead = h.pid;
        lost += h.count;
        h = detail::Holder{0, 0};
      }
    }
    if (lost == 0) return;
    std::uint32_t v = l.unfinished.load();
    while (!l.unfinished.compare_exchange_weak(v, v - std::min(v, lost))) {
    }
    if (v <= lost) detail::futex_wake_all(l.unfinished);
    throw WorkerLostError(dead, "mp::JoinableQueue::join(): process " + std::to_string(dead) + " exited with " +
                                    std::to_string(lost) + " got but unfinished task(s); they were dropped from the count");
  }

  bool join_until(detail::Clock::time_point deadline) {
    detail::JoinLayout& l = *j_;
    auto next_check = detail::Clock::now() + std::chrono::milliseconds(20);
    for (std::uint32_t v; (v = l.unfinished.load()) != 0;) {
      auto now = detail::Clock::now();
      if (now >= deadline) return false;
      if (now >= next_check) {
        next_check = now + std::chrono::milliseconds(20);
        reclaim_dead();
        continue;
      }
      l.waiters.fetch_add(1);
      detail::futex_wait(l.unfinished, v, std::min(deadline, next_check));
      l.waiters.fetch_sub(1);
    }
    return true;
  }

  Queue<T> q_;
  detail::SharedObject<detail::JoinLayout> j_;
};

}  // namespace mp
