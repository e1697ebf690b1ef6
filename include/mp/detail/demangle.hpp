// mp/detail/demangle.hpp - a C++ type's readable name from its mangled one,
// for the messages that name an exception's type.
#pragma once

#include <mp/detail/compiled.hpp>  // first: MP_DEFINE_COMPILED selects includes below

#if MP_DEFINE_COMPILED
#include <cxxabi.h>
#endif

#include <cstdlib>
#include <memory>
#include <string>

namespace mp::detail {

/// The demangled name of a type_info's name(); the name itself when it does
/// not demangle. Throws std::bad_alloc; thread-safe.
MP_COMPILED std::string demangle(const char* mangled);

#if MP_DEFINE_COMPILED

MP_COMPILED std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> s(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && s ? std::string(s.get()) : std::string(mangled);
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
