// mp/detail/compiled_backend.hpp - the backends of mp::Pool and
// mp::ThreadPool in a program built with MP_SEPARATE_COMPILATION: ForkBackend
// and ThreadBackend behind a pointer, their functions declared here and
// defined once, in the one file that includes <mp/src.hpp>. A file that uses
// a pool then compiles neither the engine's headers (spawner, worker loop,
// rings, result thread, worker threads) nor their code; it still compiles
// everything that depends on its task types (encoding, the trampolines the
// workers call, the futures).
//
// Every function forwards to Impl's of the same name, which documents what
// it blocks on and throws (detail/fork_backend.hpp, detail/thread_backend.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include <mp/detail/backend.hpp>

namespace mp::detail {

class ForkBackend;
class ThreadBackend;

/// The seam functions both backends have (backend.hpp's contract), over
/// Impl behind a pointer. Defined, and instantiated for ForkBackend and
/// ThreadBackend, in <mp/src.hpp>.
template <class Impl>
class CompiledBackend {
public:
  explicit CompiledBackend(const BackendOptions& o);
  CompiledBackend(const CompiledBackend&) = delete;
  CompiledBackend& operator=(const CompiledBackend&) = delete;
  ~CompiledBackend();

  [[nodiscard]] unsigned size() const noexcept;
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index);
  std::string why_not_running();
  bool running();
  void close();
  void join();
  bool join_until(Clock::time_point deadline);
  void terminate();
  bool cancel(const Sink* s, bool running);

protected:
  std::unique_ptr<Impl> impl_;
};

/// mp::Pool's backend: forked worker processes.
class CompiledForkBackend : public CompiledBackend<ForkBackend> {
public:
  static constexpr bool shares_memory = true;
  static constexpr bool per_call_time_limits = true;
  using CompiledBackend::CompiledBackend;
  [[nodiscard]] pid_t worker_pid(unsigned i) const noexcept;
  std::size_t running_items(const Sink* s) const;
};

/// mp::ThreadPool's backend: threads of this process.
class CompiledThreadBackend : public CompiledBackend<ThreadBackend> {
public:
  static constexpr bool shares_memory = true;
  using CompiledBackend::CompiledBackend;
  template <class Never = void>
  pid_t worker_pid(unsigned) const noexcept {
    return no_worker_processes<Never>();
  }
};

}  // namespace mp::detail
