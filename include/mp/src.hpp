// mp/src.hpp - the part of mp a program built with MP_SEPARATE_COMPILATION
// compiles once. Include it in exactly one source file of the program, and
// define MP_SEPARATE_COMPILATION for every file that includes an mp header:
//
//   // mp_src.cpp (compiled with -DMP_SEPARATE_COMPILATION like the others)
//   #include <mp/src.hpp>
//
// Without the macro mp is header-only: every file that uses mp::Pool
// compiles the pool's engine again. With it, that code is compiled here
// only. Both ways build the same pool; a program must not mix them (the
// two give mp::Pool different types, so a mix fails to link rather than
// misbehaving).
#pragma once

#ifndef MP_SEPARATE_COMPILATION
#error "<mp/src.hpp> belongs to a program built with MP_SEPARATE_COMPILATION: define it for every file (e.g. -DMP_SEPARATE_COMPILATION), or drop this include to use mp header-only."
#endif

// The headers below define their MP_COMPILED functions only when they are
// first included here, with MP_SOURCE set: another mp header included
// earlier in this file would have brought them in without the definitions.
#ifdef MP_COMPILED
#error "<mp/src.hpp> must be the first mp header its file includes (best: its only one)."
#endif
#define MP_SOURCE

#include <mp/detail/compiled_fork_backend.hpp>
#include <mp/detail/fork_backend.hpp>
#include <mp/detail/progress_bar.hpp>
#include <mp/pool.hpp>

// Doxygen skips these definitions: their class is internal (mp::detail).
/// @cond
namespace mp::detail {

CompiledForkBackend::CompiledForkBackend(const BackendOptions& o) : impl_(std::make_unique<ForkBackend>(o)) {}
CompiledForkBackend::~CompiledForkBackend() = default;

unsigned CompiledForkBackend::size() const noexcept { return impl_->size(); }
pid_t CompiledForkBackend::worker_pid(unsigned i) const noexcept { return impl_->worker_pid(i); }
void CompiledForkBackend::submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
  impl_->submit(n, enc, std::move(sink), index);
}
std::size_t CompiledForkBackend::running_items(const Sink* s) const { return impl_->running_items(s); }
std::string CompiledForkBackend::why_not_running() { return impl_->why_not_running(); }
bool CompiledForkBackend::running() { return impl_->running(); }
void CompiledForkBackend::close() { impl_->close(); }
void CompiledForkBackend::join() { impl_->join(); }
bool CompiledForkBackend::join_until(Clock::time_point deadline) { return impl_->join_until(deadline); }
void CompiledForkBackend::terminate() { impl_->terminate(); }
bool CompiledForkBackend::cancel(const Sink* s, bool running) { return impl_->cancel(s, running); }

}  // namespace mp::detail

template class mp::basic_pool<mp::detail::CompiledForkBackend>;
/// @endcond
