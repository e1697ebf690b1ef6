// mp/detail/backend.hpp - the seam between the Pool's API layer and a
// backend that runs its tasks.
//
// basic_pool<Backend> (pool.hpp) owns chunking, ordering, futures and errors;
// a backend only moves opaque task messages to workers and their results
// back. ForkBackend (fork_backend.hpp) forks local workers; another backend
// (MPI ranks, say) implements the same members and reuses the whole API:
//
//   Backend(const BackendOptions&)       start the workers
//   unsigned size() const
//   void submit(n, EncodeRef, shared_ptr<Sink>, index)
//                                        queue one task message of n bytes;
//                                        the sink gets exactly one on_result
//                                        or on_error, on the result thread
//   bool running()                       submissions accepted?
//   void close(); void join(); void terminate();
//
//   std::string why_not_running()        the sentence PoolNotRunning carries
//   bool cancel(const Sink*, bool running)
//                                        drop (or kill) that sink's tasks
//
// The messages are task.hpp's, the same for every backend: a task is the
// FunctionId of a trampoline (load-address independent: function_id.hpp)
// and its encoded callable and arguments; a result is a status byte and
// the encoded value or error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

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

}  // namespace mp::detail
