// mp/detail/wire_error.hpp - an exception as it crosses to another process:
// its demangled type name and what(), which standard or registered type it
// exactly is, and how the receiving side rebuilds it.
//
//   error body = u8 kind | type name | what | mangled name | fields
//     kind          : ErrorKind (a standard type, `registered`, or `other`)
//     mangled name  : type_info::name() of a registered type, else empty
//     fields        : its codec bytes (exception_registry.hpp), else empty
//
// A standard type comes back as itself; a registered type as itself, rebuilt
// from its fields; anything else (or a registered type the receiver cannot
// identify) as mp::RemoteError with the type name and what().
#pragma once

#include <mp/detail/compiled.hpp>  // first: MP_DEFINE_COMPILED selects includes below

#if MP_DEFINE_COMPILED
#include <cxxabi.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <mp/codec.hpp>
#include <mp/detail/demangle.hpp>
#include <mp/detail/exception_registry.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

enum class ErrorKind : std::uint8_t {
  other, runtime_error, logic_error, invalid_argument, domain_error, length_error,
  out_of_range, range_error, overflow_error, underflow_error, bad_alloc, registered
};

/// An exception in the form it travels in (the error body above).
struct WireError {
  ErrorKind kind = ErrorKind::other;
  std::string type_name;
  std::string what;
  std::string key;
  std::vector<std::byte> fields;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(kind, type_name, what, key, fields);
  }
};

/// The exception being handled, when it derives from std::exception. Call
/// only inside a catch block.
MP_COMPILED const std::exception* current_std_exception() noexcept;

/// The demangled type name and what() of the exception being handled, with
/// kind `other`. Call only inside a catch block. Throws std::bad_alloc.
MP_COMPILED WireError describe_current_exception();

/// The kind of e's exact dynamic type among the standard rethrown types.
MP_COMPILED ErrorKind standard_kind(const std::exception& e) noexcept;

/// Describes and classifies the exception being handled: a standard type, a
/// registered type with its fields (when encoding them throws, it travels as
/// `other`), or `other`. Call only inside a catch block. Throws std::bad_alloc.
MP_COMPILED WireError current_wire_error();

/// The exception a WireError stands for. Throws mp::DecodeError when a
/// registered type's fields do not decode, or what its constructor throws.
MP_COMPILED std::exception_ptr make_exception(const WireError& w);

/// Reads an error body; throws mp::DecodeError when it is malformed.
MP_COMPILED WireError read_wire_error(Reader& r);

#if MP_DEFINE_COMPILED

MP_COMPILED const std::exception* current_std_exception() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    return &e;
  } catch (...) {
    return nullptr;
  }
}

MP_COMPILED WireError describe_current_exception() {
  if (const std::exception* e = current_std_exception()) return {ErrorKind::other, demangle(typeid(*e).name()), e->what(), {}, {}};
  const std::type_info* t = abi::__cxa_current_exception_type();
  return {ErrorKind::other, t ? demangle(t->name()) : "unknown", "an exception not derived from std::exception", {}, {}};
}

MP_COMPILED ErrorKind standard_kind(const std::exception& e) noexcept {
  const std::pair<const std::type_info*, ErrorKind> table[] = {
      {&typeid(std::runtime_error), ErrorKind::runtime_error}, {&typeid(std::logic_error), ErrorKind::logic_error},
      {&typeid(std::invalid_argument), ErrorKind::invalid_argument}, {&typeid(std::domain_error), ErrorKind::domain_error},
      {&typeid(std::length_error), ErrorKind::length_error}, {&typeid(std::out_of_range), ErrorKind::out_of_range},
      {&typeid(std::range_error), ErrorKind::range_error}, {&typeid(std::overflow_error), ErrorKind::overflow_error},
      {&typeid(std::underflow_error), ErrorKind::underflow_error}, {&typeid(std::bad_alloc), ErrorKind::bad_alloc}};
  for (const auto& [t, k] : table)
    if (typeid(e) == *t) return k;
  return ErrorKind::other;
}

MP_COMPILED WireError current_wire_error() {
  WireError w = describe_current_exception();
  const std::exception* e = current_std_exception();
  if (e == nullptr) return w;
  w.kind = standard_kind(*e);
  if (const ExceptionEntry* t = find_exception_entry(typeid(*e))) {
    try {
      w.fields = t->encode(*e);
      w.key = typeid(*e).name();
      w.kind = ErrorKind::registered;
    } catch (...) {
      w.fields.clear();
    }
  }
  return w;
}

MP_COMPILED std::exception_ptr make_exception(const WireError& w) {
  switch (w.kind) {
    case ErrorKind::runtime_error: return std::make_exception_ptr(std::runtime_error(w.what));
    case ErrorKind::logic_error: return std::make_exception_ptr(std::logic_error(w.what));
    case ErrorKind::invalid_argument: return std::make_exception_ptr(std::invalid_argument(w.what));
    case ErrorKind::domain_error: return std::make_exception_ptr(std::domain_error(w.what));
    case ErrorKind::length_error: return std::make_exception_ptr(std::length_error(w.what));
    case ErrorKind::out_of_range: return std::make_exception_ptr(std::out_of_range(w.what));
    case ErrorKind::range_error: return std::make_exception_ptr(std::range_error(w.what));
    case ErrorKind::overflow_error: return std::make_exception_ptr(std::overflow_error(w.what));
    case ErrorKind::underflow_error: return std::make_exception_ptr(std::underflow_error(w.what));
    case ErrorKind::bad_alloc: return std::make_exception_ptr(std::bad_alloc());
    case ErrorKind::registered:
      if (const ExceptionEntry* t = find_exception_entry(w.key)) return t->decode(w.what, w.fields);
      break;
    case ErrorKind::other: break;
  }
  return std::make_exception_ptr(RemoteError(w.type_name, w.what));
}

MP_COMPILED WireError read_wire_error(Reader& r) {
  WireError w = r.read<WireError>();
  if (w.kind > ErrorKind::registered) r.fail("a result message has a bad error kind");
  return w;
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
