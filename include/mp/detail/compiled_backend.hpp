// mp/detail/compiled_fork_backend.hpp - mp::Pool's backend in a program built
// with MP_SEPARATE_COMPILATION: ForkBackend behind a pointer, its functions
// declared here and defined once, in the one file that includes <mp/src.hpp>.
// A file that uses mp::Pool then compiles neither the engine's headers
// (spawner, worker loop, rings, result thread) nor their code; it still
// compiles everything that depends on its task types (encoding, the
// trampolines the workers call, the futures).
//
// Every function forwards to ForkBackend's of the same name, which documents
// what it blocks on and throws (detail/fork_backend.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include <mp/detail/backend.hpp>

namespace mp::detail {

class ForkBackend;

class CompiledForkBackend {
public:
  static constexpr bool shares_memory = true;
  static constexpr bool per_call_time_limits = true;

  explicit CompiledForkBackend(const BackendOptions& o);
  CompiledForkBackend(const CompiledForkBackend&) = delete;
  CompiledForkBackend& operator=(const CompiledForkBackend&) = delete;
  ~CompiledForkBackend();

  [[nodiscard]] unsigned size() const noexcept;
  [[nodiscard]] pid_t worker_pid(unsigned i) const noexcept;
  void submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index);
  std::size_t running_items(const Sink* s) const;
  std::string why_not_running();
  bool running();
  void close();
  void join();
  bool join_until(Clock::time_point deadline);
  void terminate();
  bool cancel(const Sink* s, bool running);

private:
  std::unique_ptr<ForkBackend> impl_;
};

}  // namespace mp::detail
