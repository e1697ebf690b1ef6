// mp/detail/exception_registry.hpp - the exception types registered with
// mp::register_exception<T>(): how a worker finds the exact type of what a
// task threw, and how the parent rebuilds it.
//
// Every registered type has one ExceptionEntry of static storage, linked into
// a lock-free list at static initialization (the initializer of the inline
// variable template exception_registered<T>). So each process running the
// program has the same list before main(): a forked worker, and a process
// started from the same binary that never ran the parent's call.
//
// On the wire a registered type is named by its mangled name (type_info::name),
// which is the same in every process of the program whatever its load
// address. Its fields are its codec's bytes (serialize() or mp::codec<T>);
// a type without a codec sends no fields.
//
// This header is reached through <mp/codec.hpp>, after the codec is complete.
#pragma once

#include <mp/codec.hpp>
#include <mp/errors.hpp>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace mp::detail {

/// One registered exception type. Constant-initialized; `next` is written
/// once, before the entry is published.
struct ExceptionEntry {
  const std::type_info* type;
  /// The fields of e (whose dynamic type is *type), as codec bytes.
  std::vector<std::byte> (*encode)(const std::exception& e);
  /// A new exception of type *type from its what() and its field bytes;
  /// throws mp::DecodeError when the bytes do not decode.
  std::exception_ptr (*decode)(const std::string& what, std::span<const std::byte> fields);
  const ExceptionEntry* next;
};

/// The head of the list of registered types. Constant-initialized.
inline std::atomic<const ExceptionEntry*>& exception_entries() noexcept {
  static std::atomic<const ExceptionEntry*> head{nullptr};
  return head;
}

/// Links e into the list unless its type is there already (a second copy of
/// the same entry, from another shared object). Lock-free; any thread.
inline bool add_exception_entry(ExceptionEntry& e) noexcept {
  auto& head = exception_entries();
  const ExceptionEntry* h = head.load(std::memory_order_acquire);
  do {
    for (const ExceptionEntry* p = h; p != nullptr; p = p->next)
      if (*p->type == *e.type) return true;
    e.next = h;
  } while (!head.compare_exchange_weak(h, &e, std::memory_order_release, std::memory_order_acquire));
  return true;
}

/// The entry of exactly type t (typeid equality: a base never matches a
/// derived type), or nullptr. Lock-free; any thread.
inline const ExceptionEntry* find_exception_entry(const std::type_info& t) noexcept {
  for (const ExceptionEntry* p = exception_entries().load(std::memory_order_acquire); p != nullptr; p = p->next)
    if (*p->type == t) return p;
  return nullptr;
}

/// The entry whose mangled name is `key`, or nullptr when none or more than
/// one has it (types of internal linkage in different files may share a
/// name: then none is chosen, rather than a wrong one). Lock-free; any thread.
inline const ExceptionEntry* find_exception_entry(const std::string& key) noexcept {
  const ExceptionEntry* found = nullptr;
  for (const ExceptionEntry* p = exception_entries().load(std::memory_order_acquire); p != nullptr; p = p->next) {
    if (std::strcmp(p->type->name(), key.c_str()) != 0) continue;
    if (found != nullptr) return nullptr;
    found = p;
  }
  return found;
}

/// How the parent rebuilds a registered T.
enum class Rebuild {
  what,             // T(what): no codec
  what_then_fields, // T(what), then its serialize() fields
  fields,           // T{}, then its serialize() fields (what() is T's own)
  codec,            // mp::codec<T>'s decode / from_wire (what() is T's own)
  impossible
};

template <class T>
consteval Rebuild rebuild_of() {
  constexpr Kind k = kind_of<T>();
  constexpr bool archive = k == Kind::codec_archive || k == Kind::member_serialize || k == Kind::member_save_load ||
                           k == Kind::free_serialize;
  constexpr bool from_what = std::is_constructible_v<T, std::string>;
  if constexpr (k == Kind::codec_explicit || k == Kind::codec_wire || k == Kind::codec_invalid) return Rebuild::codec;
  else if constexpr (archive && from_what) return Rebuild::what_then_fields;
  else if constexpr (archive && std::is_default_constructible_v<T>) return Rebuild::fields;
  else if constexpr (!archive && from_what) return Rebuild::what;
  else return Rebuild::impossible;
}

/// The exception types rethrown as themselves without registration.
template <class T>
inline constexpr bool standard_rethrown =
    std::is_same_v<T, std::runtime_error> || std::is_same_v<T, std::logic_error> ||
    std::is_same_v<T, std::invalid_argument> || std::is_same_v<T, std::domain_error> ||
    std::is_same_v<T, std::length_error> || std::is_same_v<T, std::out_of_range> ||
    std::is_same_v<T, std::range_error> || std::is_same_v<T, std::overflow_error> ||
    std::is_same_v<T, std::underflow_error> || std::is_same_v<T, std::bad_alloc>;

/// Whether T can be registered; a failing check stops compilation with a
/// sentence (the instantiation note names T).
template <class T>
consteval bool check_registrable() {
  if constexpr (!std::derived_from<T, std::exception>) {
    static_assert(always_false<T>,
                  "mp::register_exception<T>: T must derive publicly from std::exception, so that mp can read "
                  "its what() and rethrow it; derive it from one, e.g. "
                  "struct BadRecord : std::runtime_error { using std::runtime_error::runtime_error; };");
    return false;
  } else if constexpr (standard_rethrown<T>) {
    static_assert(always_false<T>,
                  "mp::register_exception<T>: T is a standard exception type that mp already rethrows as "
                  "itself (std::runtime_error, std::logic_error and their standard children, std::bad_alloc); "
                  "register only your own types, e.g. "
                  "struct BadRecord : std::runtime_error { using std::runtime_error::runtime_error; };");
    return false;
  } else if constexpr (std::is_abstract_v<T> || !std::is_copy_constructible_v<T>) {
    static_assert(always_false<T>,
                  "mp::register_exception<T>: T must be a copy-constructible, non-abstract class, as every "
                  "thrown exception type is; give it a public copy constructor.");
    return false;
  } else if constexpr (rebuild_of<T>() == Rebuild::impossible) {
    static_assert(always_false<T>,
                  "mp::register_exception<T>: mp cannot rebuild T in the parent: give T a constructor from "
                  "std::string (e.g. using std::runtime_error::runtime_error;), or a default constructor with "
                  "a serialize(Archive&) member, or a specialization of mp::codec<T> (see <mp/codec.hpp>).");
    return false;
  } else {
    return true;
  }
}

/// A new T from its what() and its fields' bytes (see Rebuild).
template <class T>
T rebuild_exception(const std::string& what, Reader& r) {
  constexpr Rebuild how = rebuild_of<T>();
  if constexpr (how == Rebuild::codec) {
    return r.read<T>();
  } else if constexpr (how == Rebuild::what) {
    return T(what);
  } else {
    T v = [&] {
      if constexpr (how == Rebuild::what_then_fields) return T(what);
      else return T{};
    }();
    InputArchive a(r);
    run_input_archive<kind_of<T>()>(a, v);
    return v;
  }
}

/// The registry's entry for T, and its two conversions.
template <class T>
struct ExceptionType {
  static std::vector<std::byte> encode(const std::exception& e) {
    if constexpr (rebuild_of<T>() == Rebuild::what) {
      (void)e;
      return {};
    } else {
      const T& v = dynamic_cast<const T&>(e);
      std::vector<std::byte> out(encoded_size(v));
      encode_to(out.data(), v);
      return out;
    }
  }
  static std::exception_ptr decode(const std::string& what, std::span<const std::byte> fields) {
    Reader r(fields);
    T v = rebuild_exception<T>(what, r);
    r.expect_end();
    return std::make_exception_ptr(std::move(v));
  }
  static constinit inline ExceptionEntry entry{&typeid(T), &encode, &decode, nullptr};
};

/// Registers T at static initialization in every process running the
/// program, wherever the program names it.
template <class T>
inline const bool exception_registered = add_exception_entry(ExceptionType<T>::entry);

/// mp::register_exception<T>()'s work: check T at compile time, and name
/// exception_registered<T> so that the program registers T.
template <class T>
struct ExceptionRegistration {
  static void run() noexcept {
    if constexpr (check_registrable<T>()) static_cast<void>(exception_registered<T>);
  }
};

}  // namespace mp::detail
