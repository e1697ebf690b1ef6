// mp/detail/syscall.hpp - system calls that retry on EINTR and fail loudly.
#pragma once

#include <cerrno>
#include <chrono>
#include <ctime>
#include <system_error>

#include <mp/detail/compiled.hpp>
#include <mp/detail/config.hpp>

namespace mp::detail {

#if MP_DEFINE_COMPILED
/// Throws std::system_error naming the call and err's meaning. Cold and out
/// of line: building the exception's message is code that no caller needs
/// inline.
[[noreturn, gnu::cold, gnu::noinline]] MP_COMPILED void throw_system_error(const char* call, int err) {
  throw std::system_error(err, std::generic_category(), call);
}
#else
[[noreturn]] void throw_system_error(const char* call, int err);
#endif

/// Throws std::system_error naming the call and errno's meaning.
[[noreturn]] inline void throw_system_error(const char* call) { throw_system_error(call, errno); }

/// Runs f() (a system call returning -1 and setting errno on failure) until it
/// does not fail with EINTR; returns its result.
template <class F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto r = f();
    if (r == -1 && errno == EINTR) continue;
    return r;
  }
}

/// Runs f() as retry_eintr does and throws std::system_error(call) on failure.
template <class F>
auto checked(const char* call, F&& f) {
  auto r = retry_eintr(static_cast<F&&>(f));
  if (r == -1) throw_system_error(call);
  return r;
}

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux

/// A steady_clock time point as an absolute CLOCK_MONOTONIC timespec.
inline timespec to_timespec(Clock::time_point t) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

/// A duration as a relative timespec (a ppoll timeout); a negative one as 0.
inline timespec relative_timespec(Clock::duration d) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  if (ns < 0) ns = 0;
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

/// now + d, saturating instead of overflowing for huge durations.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  using namespace std::chrono;
  auto now = Clock::now();
  if (d <= duration<Rep, Period>::zero()) return now;
  if (duration_cast<duration<double>>(d).count() > 1e9) return Clock::time_point::max();
  return now + duration_cast<Clock::duration>(d);
}

}  // namespace mp::detail
