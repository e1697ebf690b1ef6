// mp/simple_queue.hpp - mp::SimpleQueue<T>: the small queue API of Python's
// multiprocessing.SimpleQueue (put, get, empty, close) over mp::Queue<T>.
//
// It lives in an anonymous shared segment mapped at construction: create it
// BEFORE starting the Process or Pool that uses it. Copies of the handle are
// the same queue. It inherits mp::Queue's robustness: a process killed in the
// middle of put() or get() does not wedge the queue (see <mp/queue.hpp>).
#pragma once

#include <mp/queue.hpp>

namespace mp {

/// An unbounded FIFO between processes with only put/get/empty/close.
template <class T>
class SimpleQueue {
public:
  using value_type = T;

  /// Creates an empty queue. Throws mp::Error if shared memory cannot be mapped.
  SimpleQueue() = default;

  /// Puts x; blocks only while the ring has no room. Throws std::logic_error
  /// after close() in this process. Safe across threads and processes.
  void put(const T& x) { q_.put(x); }

  /// Removes and returns the oldest value; blocks until there is one. Throws
  /// mp::DecodeError if the bytes are not a T. Safe across threads and processes.
  T get() { return q_.get(); }

  /// Whether the queue is empty now (a snapshot). Never blocks.
  [[nodiscard]] bool empty() const noexcept { return q_.empty(); }

  /// This process will put no more (later put()s throw std::logic_error).
  void close() noexcept { q_.close(); }

private:
  Queue<T> q_;
};

}  // namespace mp
