// mp/detail/codec_reject.hpp - Codec<T> for the types mp refuses to send: any
// use fails to compile through a static_assert whose message says why and how
// to fix it; mp::Sendable<T> is false for them.
#pragma once

#include <mp/detail/codec_traits.hpp>

#include <exception>

namespace mp::detail {

struct RejectPointer {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp cannot encode a pointer (raw, member or smart): it would not point to the same object in "
                  "another process; send the pointed-to value (or a std::optional of it) or an index instead. "
                  "Only function pointers are encoded, as module-relative ids.");
  }
};

struct RejectUnfixedEnum {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp cannot encode or decode an enum without a fixed underlying type: its valid values are "
                  "only those of its enumerators' bit width, so arbitrary bytes could make an invalid value "
                  "(undefined behaviour). Give the enum a fixed underlying type, e.g. `enum Color : int { red, "
                  "green };` (or make it an enum class), or specialise mp::codec<T> for it (see <mp/codec.hpp>).");
  }
};

struct RejectUnsupported {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp cannot encode this type: it is not an aggregate, not a supported standard type, and has no "
                  "serialize member. A lambda with captures cannot be sent (mp cannot see what it captured): pass "
                  "the captured values as task arguments, or write a struct with them as public fields and an "
                  "operator() (an aggregate is sent field by field). For a class, add `template <class Archive> "
                  "void serialize(Archive& ar) { ar(member1, member2); }` to it, or specialise mp::codec<T> for "
                  "it (see <mp/codec.hpp>).");
  }
};

struct RejectOpaque {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp cannot encode this type: it is trivially copyable but not an aggregate, so mp cannot see "
                  "whether it holds an address (a pointer, a reference, a lambda's captured reference or `this`) "
                  "that would mean nothing in another process. A lambda with captures cannot be sent: pass the "
                  "captured values as task arguments, or write a struct with them as public fields and an "
                  "operator() (an aggregate is sent field by field). For a class, add `template <class Archive> "
                  "void serialize(Archive& ar) { ar(member1, member2); }`, or specialise mp::codec<T>, or, if it "
                  "truly holds no address, opt in with `template <> inline constexpr bool mp::is_address_free<T> "
                  "= true;` (see <mp/codec.hpp>).");
  }
};

struct RejectAddressFreeInvalid {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp::is_address_free<T> is set for a type that is not trivially copyable: mp sends such a type "
                  "as its bytes, which is valid only for trivially copyable types. Remove the opt-in and add a "
                  "serialize() member or an mp::codec<T> specialisation instead (see <mp/codec.hpp>).");
  }
};

/// A type mp rejects: sendable is false, and any use fails to compile through
/// Why::reject<T>'s static_assert, whose message says how to opt in.
template <class T, class Why>
struct RejectedCodec {
  static constexpr bool sendable = false, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = 0;
  static std::size_t size(const T&) { return Why::template reject<T>(), 0; }
  static std::byte* encode(std::byte* out, const T&) { return Why::template reject<T>(), out; }
  using result = std::conditional_t<std::is_array_v<T> || std::is_abstract_v<T>, void, T>;
  [[noreturn]] static result decode(Reader&) {
    Why::template reject<T>();
    std::terminate();
  }
};

template <class T>
struct Codec<T, Kind::pointer> : RejectedCodec<T, RejectPointer> {};
template <class T>
struct Codec<T, Kind::unfixed_enum> : RejectedCodec<T, RejectUnfixedEnum> {};
template <class T>
struct Codec<T, Kind::unsupported> : RejectedCodec<T, RejectUnsupported> {};
template <class T>
struct Codec<T, Kind::opaque> : RejectedCodec<T, RejectOpaque> {};
template <class T>
struct Codec<T, Kind::address_free_invalid> : RejectedCodec<T, RejectAddressFreeInvalid> {};

}  // namespace mp::detail
