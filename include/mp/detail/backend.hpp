// mp/detail/backend.hpp - the seam between the Pool's API layer and a
// backend that runs its tasks.
//
// basic_pool<Backend> (pool.hpp) owns chunking, ordering, futures and errors,
// and the messages are protocol.hpp's, the same for every backend; a backend
// only moves opaque task messages to workers and their result messages back
// (transport). ForkBackend (fork_backend.hpp) forks local workers,
// MpiBackend (mpi_backend.hpp) uses MPI ranks. What a backend B provides
// (the concept Backend below checks the same list; basic_pool asserts it):
//
//   static constexpr bool shares_memory  workers see the caller's shared memory
//   B(const BackendOptions&)             start the workers
//   unsigned size() const                worker slots
//   pid_t worker_pid(unsigned) const     slot i's process (0: being made)
//   void submit(n, EncodeRef, shared_ptr<Sink>, index)
//                                        queue one task message of n bytes;
//                                        the sink gets exactly one on_result
//                                        or on_error; throws PoolNotRunning
//   bool running()                       submissions accepted?
//   std::string why_not_running()        the sentence PoolNotRunning carries
//   void close()                         no more submissions
//   void join()                          wait for every task, end the workers
//   bool join_until(time_point)          join() giving up at the deadline
//   void terminate()                     kill the workers; tasks fail
//   bool cancel(const Sink*, bool running)
//                                        drop (or kill) that sink's tasks
//
// The backend hands each sink its WaitHelper (Sink::use_helper) at submit.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <mp/detail/futex.hpp>
#include <mp/detail/syscall.hpp>

namespace mp::detail {

/// What every backend is built from.
struct BackendOptions {
  unsigned processes = 1;               // 0: the backend's default
  double factor = 1.5;                  // ForkBackend: workers per CPU when processes == 0
  unsigned maxtasksperchild = 0;        // 0: unlimited
  unsigned window = 64;                 // in-flight tasks per worker
  std::size_t channel_capacity = 8u << 20;
  std::vector<std::byte> initializer;   // a task message, or empty
  Clock::duration task_timeout{0};      // 0: none
  unsigned retries = 0;                 // re-runs of a task whose worker died
  std::size_t memory_limit = 0;         // RLIMIT_AS of each worker; 0: none
  std::size_t max_result_bytes = SIZE_MAX;
};

inline constexpr const char* not_running = "mp::Pool is not running: it was closed or terminated";

/// Thrown by submit on a closed, terminated or broken pool.
class PoolNotRunning : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

/// A non-owning reference to a callable writing bytes at a pointer.
class EncodeRef {
public:
  template <class F>
  EncodeRef(F& f) noexcept  // NOLINT: implicit on purpose
      : obj_(&f), call_([](void* o, std::byte* p) { (*static_cast<F*>(o))(p); }) {}
  void operator()(std::byte* p) const { call_(obj_, p); }

private:
  void* obj_;
  void (*call_)(void*, std::byte*);
};

class Sink;

/// What a thread waiting for a result can do instead of sleeping: read the
/// backend's result channels itself (one thread at a time), so that a round
/// trip needs no wakeup of the result thread. Owned by the backend and
/// shared with its pending results, so it outlives both.
class WaitHelper {
public:
  virtual ~WaitHelper() = default;
  /// Delivers whatever results are there, if no other thread is reading
  /// them; returns whether it delivered any. Never blocks; any thread.
  virtual bool help() noexcept = 0;
  /// Cancels the tasks of sink s not begun yet (and, with `running`, the one
  /// running, by killing its worker); returns whether it cancelled any.
  virtual bool cancel(const Sink* s, bool running) noexcept {
    (void)s;
    (void)running;
    return false;
  }
  /// A waiter begins / ends its spin of help() calls (the backend's result
  /// thread stands back meanwhile). A waiter that leaves to sleep passes
  /// wake = true: the last one out wakes the result thread at once.
  void enter() noexcept { active_.fetch_add(1, std::memory_order_seq_cst); }
  void leave(bool wake) noexcept {
    if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 && wake) futex_wake_all(active_);
  }

protected:
  std::atomic<std::uint32_t> active_{0};
};

/// The parent-side receiver of one task's result. Called on the backend's
/// result thread (or on terminate, or in a thread waiting for a result),
/// exactly once per submitted task.
class Sink {
public:
  virtual ~Sink() = default;
  /// The result message of the task submitted with this `index`.
  virtual void on_result(std::size_t index, std::span<const std::byte> msg) noexcept = 0;
  /// The task will never produce a result (worker lost, pool terminated).
  virtual void on_error(std::size_t index, std::exception_ptr e) noexcept = 0;
  /// Whether completing this sink runs user callbacks (which must run on the
  /// result thread, so a helping waiter leaves it to that thread).
  [[nodiscard]] virtual bool has_callbacks() const noexcept { return false; }
  /// The backend's helper, for waiters of this sink (set at submit).
  virtual void use_helper(const std::shared_ptr<WaitHelper>&) noexcept {}
  /// The per-call time limit of each of this sink's tasks (0: none). Set
  /// before the first submit; a backend that kills a task past it says so.
  void set_time_limit(Clock::duration d) noexcept { time_limit_ = d; }
  [[nodiscard]] Clock::duration time_limit() const noexcept { return time_limit_; }

private:
  Clock::duration time_limit_{0};
};

/// The contract of a backend (the list in this file's comment).
template <class B>
concept Backend =
    std::constructible_from<B, const BackendOptions&> &&
    requires(B& b, const B& cb, std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, const Sink* s, unsigned i,
             Clock::time_point deadline) {
      { B::shares_memory } -> std::convertible_to<bool>;
      { cb.size() } -> std::same_as<unsigned>;
      { cb.worker_pid(i) } -> std::same_as<pid_t>;
      b.submit(n, enc, sink, n);
      { b.running() } -> std::same_as<bool>;
      { b.why_not_running() } -> std::same_as<std::string>;
      b.close();
      b.join();
      { b.join_until(deadline) } -> std::same_as<bool>;
      b.terminate();
      { b.cancel(s, true) } -> std::same_as<bool>;
    };

/// worker_pid of a pool without worker processes (mp::ThreadPool): using
/// it (pool.pids()) does not compile.
template <class Never>
pid_t no_worker_processes() noexcept {
  static_assert(!std::is_same_v<Never, Never>,
                "mp::ThreadPool has no worker processes, so pool.pids() has nothing to return: its workers are "
                "threads of this process (getpid() in a task is the caller's pid). Use mp::Pool for processes.");
  return 0;
}

}  // namespace mp::detail
