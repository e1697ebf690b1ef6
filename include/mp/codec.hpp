// mp/codec.hpp - mp::dumps / mp::loads: values to bytes and back (Python's
// pickle.dumps / pickle.loads), the codec every queue, pipe and pool uses.
//
//   std::vector<std::byte> b = mp::dumps(std::map<std::string, int>{{"a", 1}});
//   auto m = mp::loads<std::map<std::string, int>>(b);
//
// The bytes are meant for another process of the same program on the same
// machine (fork, or the same binary started again): values are in host byte
// order, and types provably free of addresses travel as their object
// representation.
// Decoding checks every length, flag and index against the input and throws
// mp::DecodeError on truncated, malformed or trailing bytes; it never reads
// out of bounds and never allocates more than the input could describe.
//
// What can be sent (mp::Sendable<T>)
// ----------------------------------
// Nothing that holds an address is ever sent as bytes. Sent as bytes (memcpy)
// only what is provably free of addresses: arithmetic types, enums with a
// fixed underlying type (every enum class, and `enum E : int {...}`),
// std::byte, std::complex, std::chrono::duration and time_point, std::array
// of these, aggregates of these without padding, and types opted in with
// mp::is_address_free (below); std::pair and std::tuple of these are sent
// element by element. Also sent: function pointers (as module-relative
// ids), std::string, std::vector, std::deque, std::list, std::optional,
// std::variant, std::monostate, std::map, std::unordered_map, std::set,
// std::unordered_set, nested in any combination, and user types opting in.
// std::span and std::string_view can be encoded (as a vector/string) but not
// decoded.
//
// Aggregates are sent without any serialize member: `struct Item { std::string
// name; int n; std::vector<double> xs; };` travels field by field (the fields
// are listed through structured bindings), and is decoded by aggregate
// initialisation, so const fields work. An aggregate whose fields are all sent
// as bytes and fill it exactly (no padding) is one memcpy; otherwise padding is
// never copied. A function object that is an aggregate, `struct AddK { int k;
// int operator()(int x) const { return x + k; } };`, is sent the same way.
// Simple aggregates only: no base class, no C-array field (use std::array), no
// reference member, at most 32 fields; bit-fields travel as their declared
// type. Anything else needs serialize() or mp::codec<T>, and the compile error
// says so.
//
// A class without state that can be default-constructed (a captureless lambda,
// generic ones included, or std::less<>) is sent as zero bytes and
// default-constructed by the receiver.
//
// Rejected at compile time, with a static_assert saying how to fix it: raw,
// member and smart pointers, and aggregates holding one (the instantiation
// note names the field's type); lambdas with captures (mp cannot see what they
// captured: pass the values as task arguments, or write an aggregate function
// object); trivially copyable classes that are not aggregates (private fields
// may hold an address), unless opted in; other classes without serialize();
// unions; and enums WITHOUT a fixed underlying type (`enum Color { red, green
// }`). Such an enum's valid values are only those of the smallest bit-field
// that holds its enumerators, which C++20 cannot find out, so decoding
// arbitrary bytes could produce an invalid value (undefined behaviour); `enum
// Color : int` (or an enum class) makes every int a valid value, and mp
// accepts it. A bool, inside an aggregate too, is checked to be 0 or 1.
//
// Opting in, 1: a cereal-style member (types written for cereal work
// unchanged; cereal's headers are not needed, and save()/load() pairs and
// serialize(ar, version) are accepted too). Decoding default-constructs T.
//
//   struct Point {
//     double x, y;
//     std::string label;
//     template <class Archive> void serialize(Archive& ar) { ar(x, y, label); }
//   };
//
// Opting in, 2: specialise mp::codec<T> for a type you cannot change, in one
// of three forms (an archive function, a conversion, or full control):
//
//   template <> struct mp::codec<Point> {           // fields, like serialize()
//     template <class Archive> static void serialize(Archive& ar, Point& p) { ar(p.x, p.y, p.label); }
//   };
//   template <> struct mp::codec<Celsius> {         // travels as another type
//     using wire_type = double;
//     static double to_wire(const Celsius& c) { return c.value(); }
//     static Celsius from_wire(double&& d) { return Celsius(d); }
//   };
//   template <> struct mp::codec<Blob> {            // full control
//     static std::size_t size(const Blob& b) { return mp::detail::encoded_size(b.bytes()); }
//     static std::byte* encode(std::byte* out, const Blob& b) { return mp::detail::encode_to(out, b.bytes()); }
//     static Blob decode(mp::detail::Reader& r) { return Blob(r.read<std::vector<std::byte>>()); }
//   };
//
// Opting in, 3: a trivially copyable class that truly holds no address (no
// pointer, no reference, no handle meaningful only in this process), and for
// which every byte pattern a peer may send is a valid value, may promise so;
// it is then sent as its bytes (one memcpy, padding included):
//
//   template <> inline constexpr bool mp::is_address_free<Pixel> = true;
//
// Wire format (no type tags, no header: both sides know T)
// ---------------------------------------------------------
//   | type                                  | bytes                                        |
//   |---------------------------------------|----------------------------------------------|
//   | bool                                  | 1 byte, 0 or 1 (anything else: DecodeError) |
//   | arithmetic, enum with a fixed         | sizeof(T) bytes, memcpy, host byte order;    |
//   |   underlying type (its value),        |   every value of the underlying type is      |
//   |   mp::is_address_free<T>              |   accepted (a valid value of such an enum)   |
//   | enum without a fixed underlying type  | rejected at compile time: add `: int`        |
//   | complex<T>                            | real, imaginary                              |
//   | chrono::duration / time_point         | count() / time_since_epoch()                 |
//   | aggregate (no serialize, no codec)    | the fields in order, no header; one memcpy   |
//   |                                       |   of sizeof(T) if all are bytes, no padding  |
//   | captureless lambda, empty class       | 0 bytes (decoded by default construction)    |
//   | length / count ("len")                | u64, host byte order (little-endian)         |
//   | string, vector, deque, list           | len, then the elements; elements sent as     |
//   |                                       |   bytes as one block of len*sizeof(E)        |
//   | set, unordered_set                    | len, then the keys (duplicates: DecodeError) |
//   | map, unordered_map                    | len, then key, value, key, value, ...        |
//   | array<T, N>                           | the N elements, no len                       |
//   | pair, tuple, serialize()/codec struct | the fields in order, no header               |
//   | optional                              | u8 flag 0/1, then the value if 1             |
//   | variant                               | index (u8; u32 if > 255 alternatives), value |
//   | monostate                             | 0 bytes                                      |
//   | function pointer                      | u64 module path hash, u64 offset (16 bytes)  |
//
// Every count is checked before anything is allocated: count * (smallest
// encoded element) must fit in the bytes left. Elements that can encode to
// zero bytes (std::monostate, a captureless lambda, an empty serialize()) are
// limited to the bytes left + 2^24 per container.
//
// Cost (bench/bench_codec.cpp): dumps walks the value twice (exact size, then
// the bytes) and allocates once; loads allocates only what the result holds.
// Both sit within ~10% of the floor measured beside them (allocating the bytes,
// and copy-constructing the same std:: value): for short strings nearly all of
// a round trip is building the std::strings. std::vector<std::byte>, the return
// type api.md fixes, zero-fills before the encoder writes (about 1% of a 20 KB
// round trip); no standard allocator offers an uninitialised size.
//
// The internal API (mp::detail, used by the ring, queues and pool):
//   std::size_t encoded_size(const T&)                 exact byte count
//   std::size_t encoded_size(const A&, const B&, ...)  sum
//   std::byte*  encode_to(std::byte* out, const T&)    writes encoded_size bytes
//   std::byte*  encode_to(std::byte* out, const A&, const B&, ...)
//   T           decode<T>(Reader&)                     reads one T
//   Writer w(out); w.write(a); ...   Reader r(span); r.read<A>(); ...; r.expect_end();
#pragma once

#include <mp/detail/codec_aggregate.hpp>
#include <mp/detail/codec_io.hpp>
#include <mp/detail/codec_containers.hpp>
#include <mp/detail/codec_traits.hpp>
#include <mp/detail/codec_user.hpp>
#include <mp/detail/function_id.hpp>
#include <mp/errors.hpp>

#include <cassert>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace mp {

/// True when mp can encode and decode T (see the list at the top of this
/// header). For a type with serialize() or an mp::codec<T> archive function
/// it is true without looking at the fields (their types are checked when
/// dumps/loads is instantiated).
template <class T>
concept Sendable = detail::Codec<std::remove_cvref_t<T>>::sendable;

}  // namespace mp

namespace mp::detail {

/// Exact number of bytes encode_to(out, v) writes; a constant for types of
/// fixed size. Does not block; thread-safe for distinct or unchanging values.
template <class T>
std::size_t encoded_size(const T& v) {
  using C = Codec<std::remove_cv_t<T>>;
  if constexpr (C::fixed != variable_size) {
    return C::fixed;
  } else {
    return C::size(v);
  }
}

/// Sum of encoded_size() of each value.
template <class T, class U, class... Rest>
std::size_t encoded_size(const T& a, const U& b, const Rest&... rest) {
  return detail::encoded_size(a) + detail::encoded_size(b) + (std::size_t{0} + ... + detail::encoded_size(rest));
}

/// Writes exactly encoded_size(v) bytes at out (the caller guarantees room)
/// and returns one past the last. Throws only std::invalid_argument for a
/// value that cannot be encoded (a function pointer outside every module, a
/// valueless variant), or what a user codec throws.
template <class T>
std::byte* encode_to(std::byte* out, const T& v) {
  return Codec<std::remove_cv_t<T>>::encode(out, v);
}

/// Writes the values one after another; returns one past the last byte.
template <class T, class U, class... Rest>
std::byte* encode_to(std::byte* out, const T& a, const U& b, const Rest&... rest) {
  out = detail::encode_to(detail::encode_to(out, a), b);
  ((out = detail::encode_to(out, rest)), ...);
  return out;
}

/// Reads one T from r. Throws mp::DecodeError on malformed or truncated
/// input (r's position is then unspecified). Does not block.
template <class T>
T decode(Reader& r) {
  static_assert(std::is_same_v<T, std::remove_cvref_t<T>>, "mp::detail::decode<T> needs T without const or &.");
  return Codec<T>::decode(r);
}

}  // namespace mp::detail

namespace mp {

/// Encodes v into a new byte vector (Python's pickle.dumps). Does not block.
/// Throws std::bad_alloc, std::invalid_argument (see detail::encode_to), or
/// what a user's serialize/codec throws. Safe across threads for distinct or
/// unchanging values. Fails to compile, with a message saying how to opt in,
/// for a type mp cannot encode.
template <class T>
std::vector<std::byte> dumps(const T& v) {
  const std::size_t n = detail::encoded_size(v);
  if (n == 0) return {};
  std::vector<std::byte> out(n);
  [[maybe_unused]] std::byte* end = detail::encode_to(out.data(), v);
  assert(end == out.data() + out.size());
  return out;
}

/// Decodes a T from exactly the bytes of `in` (Python's pickle.loads). Does
/// not block. Throws mp::DecodeError when the bytes are truncated, malformed
/// or followed by trailing bytes; never undefined behaviour. Thread-safe.
template <class T>
T loads(std::span<const std::byte> in) {
  detail::Reader r(in);
  T v = detail::decode<T>(r);
  r.expect_end();
  return v;
}

}  // namespace mp

// Exceptions registered with mp::register_exception travel through this codec.
#include <mp/detail/exception_registry.hpp>
