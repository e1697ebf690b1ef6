// mp/detail/callback_error.hpp - where an exception thrown by a then()
// callback goes: one line on stderr, as Python's pools print callback errors.
#pragma once

#include <mp/detail/compiled.hpp>  // first: MP_DEFINE_COMPILED selects includes below

#if MP_DEFINE_COMPILED
#include <cxxabi.h>
#endif
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <exception>
#include <string>
#include <typeinfo>

#include <mp/detail/demangle.hpp>

namespace mp::detail {

/// Writes "mp: an AsyncResult callback threw <type>: <what>; ignored" to
/// fd 2 in one write(2), so that lines from several threads never mix.
/// Called inside a catch block. Never throws.
MP_COMPILED void report_callback_error() noexcept;

/// Runs cb; an exception it throws goes to report_callback_error().
template <class Cb>
void run_callback(Cb& cb) noexcept {
  try {
    cb();
  } catch (...) {
    report_callback_error();
  }
}

#if MP_DEFINE_COMPILED

MP_COMPILED void report_callback_error() noexcept {
  try {
    std::string line = "mp: an AsyncResult callback threw ";
    const std::type_info* t = abi::__cxa_current_exception_type();
    line += t != nullptr ? demangle(t->name()) : std::string("an unknown exception");
    try {
      throw;
    } catch (const std::exception& e) {
      line += ": ";
      line += e.what();
    } catch (...) {
    }
    line += "; ignored\n";
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(2, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  } catch (...) {  // out of memory while formatting: nothing more to do
  }
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
