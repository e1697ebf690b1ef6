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

#include <mp/detail/compiled_backend.hpp>
#include <mp/detail/fork_backend.hpp>
#include <mp/detail/thread_backend.hpp>
#include <mp/mp.hpp>  // every header with MP_COMPILED functions

// Doxygen skips these definitions: their class is internal (mp::detail).
/// @cond
namespace mp::detail {

template <class Impl>
CompiledBackend<Impl>::CompiledBackend(const BackendOptions& o) : impl_(std::make_unique<Impl>(o)) {}
template <class Impl>
CompiledBackend<Impl>::~CompiledBackend() = default;

template <class Impl>
unsigned CompiledBackend<Impl>::size() const noexcept { return impl_->size(); }
template <class Impl>
void CompiledBackend<Impl>::submit(std::size_t n, EncodeRef enc, std::shared_ptr<Sink> sink, std::size_t index) {
  impl_->submit(n, enc, std::move(sink), index);
}
template <class Impl>
std::string CompiledBackend<Impl>::why_not_running() { return impl_->why_not_running(); }
template <class Impl>
bool CompiledBackend<Impl>::running() { return impl_->running(); }
template <class Impl>
void CompiledBackend<Impl>::close() { impl_->close(); }
template <class Impl>
void CompiledBackend<Impl>::join() { impl_->join(); }
template <class Impl>
bool CompiledBackend<Impl>::join_until(Clock::time_point deadline) { return impl_->join_until(deadline); }
template <class Impl>
void CompiledBackend<Impl>::terminate() { impl_->terminate(); }
template <class Impl>
bool CompiledBackend<Impl>::cancel(const Sink* s, bool running) { return impl_->cancel(s, running); }

template class CompiledBackend<ForkBackend>;
template class CompiledBackend<ThreadBackend>;

pid_t CompiledForkBackend::worker_pid(unsigned i) const noexcept { return impl_->worker_pid(i); }
std::size_t CompiledForkBackend::running_items(const Sink* s) const { return impl_->running_items(s); }

}  // namespace mp::detail

template class mp::basic_pool<mp::detail::CompiledForkBackend>;
/// @endcond
