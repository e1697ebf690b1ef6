// mp/detail/codec_traits.hpp - which encoding a type gets (its Kind), and the
// primary template of the public customisation point mp::codec<T>.
#pragma once

#include <mp/detail/codec_io.hpp>

#include <array>
#include <chrono>
#include <complex>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace mp {

/// Customisation point: specialise mp::codec<T> for a type you cannot change.
/// See <mp/codec.hpp> for the three forms a specialisation may take. The
/// primary template is a marker meaning "not specialised".
template <class T>
struct codec {
  using mp_primary_template = void;
};

/// Opt-in: `template <> inline constexpr bool mp::is_address_free<T> = true;`
/// promises that the trivially copyable type T holds no address (no pointer,
/// no reference, no handle that means something only in this process) and
/// that every byte pattern a peer sends is a valid T. mp then sends T as its
/// bytes (one memcpy), padding included. Ignored for types with serialize()
/// or an mp::codec<T>; a type that is not trivially copyable is rejected.
template <class T>
inline constexpr bool is_address_free = false;

}  // namespace mp

namespace mp::detail {

template <class T>
inline constexpr bool always_false = false;

template <class T, template <class...> class Tmpl>
inline constexpr bool is_specialization_of = false;
template <template <class...> class Tmpl, class... As>
inline constexpr bool is_specialization_of<Tmpl<As...>, Tmpl> = true;

template <class T>
inline constexpr bool is_std_array = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array<std::array<T, N>> = true;

template <class T>
inline constexpr bool is_std_span = false;
template <class T, std::size_t N>
inline constexpr bool is_std_span<std::span<T, N>> = true;

template <class T>
concept std_contiguous = (is_specialization_of<T, std::vector> && !std::is_same_v<typename T::value_type, bool>) ||
                         is_specialization_of<T, std::basic_string>;
template <class T>
concept std_sequence = is_specialization_of<T, std::vector> || is_specialization_of<T, std::deque> ||
                       is_specialization_of<T, std::list>;
template <class T>
concept std_set = is_specialization_of<T, std::set> || is_specialization_of<T, std::unordered_set>;
template <class T>
concept std_map = is_specialization_of<T, std::map> || is_specialization_of<T, std::unordered_map>;
template <class T>
concept std_tuple_like = is_specialization_of<T, std::pair> || is_specialization_of<T, std::tuple>;
template <class T>
concept std_view = is_std_span<T> || is_specialization_of<T, std::basic_string_view>;
template <class T>
concept smart_pointer = is_specialization_of<T, std::unique_ptr> || is_specialization_of<T, std::shared_ptr> ||
                        is_specialization_of<T, std::weak_ptr>;
template <class T>
concept std_wrapper = is_specialization_of<T, std::complex> || is_specialization_of<T, std::chrono::duration> ||
                      is_specialization_of<T, std::chrono::time_point>;
template <class T>
concept function_pointer = std::is_pointer_v<T> && std::is_function_v<std::remove_pointer_t<T>>;
/// A class without state that can be made anew: in C++20 exactly the closure
/// types without a lambda-capture (generic lambdas included), and empty
/// function objects such as std::less<>. mp sends such a type as zero bytes
/// and default-constructs it on the other side. `[&]{}` and `[=]{}` are not
/// default-constructible even when they capture nothing.
template <class T>
inline constexpr bool is_stateless_callable = std::is_class_v<T> && std::is_empty_v<T> &&
                                              std::is_default_constructible_v<T> &&
                                              std::is_trivially_copyable_v<T>;

/// An enum whose underlying type is fixed (every scoped enum, `enum E : int`):
/// every value of that type is a valid E. Only such enums allow E{u}.
template <class T>
concept fixed_enum = std::is_enum_v<T> && requires { T{std::underlying_type_t<T>{}}; };

// --- user hooks -------------------------------------------------------------
template <class T>
concept codec_specialized = !requires { typename mp::codec<T>::mp_primary_template; };
template <class T>
concept codec_explicit = requires(const T& cv, std::byte* out, Reader& r) {
  { mp::codec<T>::size(cv) } -> std::convertible_to<std::size_t>;
  { mp::codec<T>::encode(out, cv) } -> std::same_as<std::byte*>;
  { mp::codec<T>::decode(r) } -> std::same_as<T>;
};
template <class T>
concept codec_wire = requires(const T& cv) {
  typename mp::codec<T>::wire_type;
  { mp::codec<T>::to_wire(cv) } -> std::convertible_to<typename mp::codec<T>::wire_type>;
  { mp::codec<T>::from_wire(std::declval<typename mp::codec<T>::wire_type&&>()) } -> std::same_as<T>;
};
template <class T>
concept codec_archive = requires(T& v, SizeArchive& a) { mp::codec<T>::serialize(a, v); };
template <class T>
concept member_serialize = requires(T& v, SizeArchive& a) { v.serialize(a); } ||
                           requires(T& v, SizeArchive& a) { v.serialize(a, std::uint32_t{0}); };
template <class T>
concept member_save_load = requires(const T& cv, T& v, SizeArchive& a, InputArchive& in) {
  cv.save(a);
  v.load(in);
};
template <class T>
concept free_serialize = requires(T& v, SizeArchive& a) { serialize(a, v); };  // found by ADL

enum class Kind {
  codec_explicit,    // mp::codec<T>::size/encode/decode
  codec_wire,        // mp::codec<T>::to_wire/from_wire
  codec_archive,     // mp::codec<T>::serialize(ar, v)
  codec_invalid,     // mp::codec<T> specialised with none of the forms above
  member_serialize,  // v.serialize(ar) (cereal style)
  member_save_load,  // v.save(ar) const / v.load(ar) (cereal style)
  free_serialize,    // serialize(ar, v) found by ADL (cereal style)
  function_pointer,  // FunctionId
  pointer,           // rejected: raw, member or smart pointer
  boolean,           // one byte, 0 or 1
  bitwise,           // arithmetic, enum with a fixed underlying type, mp::is_address_free: memcpy
  address_free_invalid,  // rejected: mp::is_address_free<T> set for a type that is not trivially copyable
  unfixed_enum,      // rejected: enum without a fixed underlying type (bytes may be no valid value)
  contiguous,        // std::vector (not of bool), std::basic_string
  sequence,          // std::deque, std::list, std::vector<bool>
  set,               // std::set, std::unordered_set
  map,               // std::map, std::unordered_map
  array,             // std::array
  tuple_like,        // std::pair, std::tuple
  optional,          // std::optional
  variant,           // std::variant
  monostate,         // std::monostate: zero bytes
  view,              // std::span, std::basic_string_view: encode only
  std_wrapper,       // std::complex, std::chrono::duration, std::chrono::time_point
  stateless,         // is_stateless_callable (captureless lambdas): zero bytes
  aggregate,         // an aggregate: its fields, or one memcpy (codec_aggregate.hpp)
  opaque,            // rejected: trivially copyable, not an aggregate (may hold an address)
  unsupported,
};

template <class T>
consteval Kind codec_hook_kind() {
  if constexpr (codec_explicit<T>) return Kind::codec_explicit;
  else if constexpr (codec_wire<T>) return Kind::codec_wire;
  else if constexpr (codec_archive<T>) return Kind::codec_archive;
  else return Kind::codec_invalid;
}

template <class T>
consteval Kind std_kind() {
  if constexpr (std::is_same_v<T, std::monostate>) return Kind::monostate;
  else if constexpr (std_contiguous<T>) return Kind::contiguous;
  else if constexpr (std_sequence<T>) return Kind::sequence;
  else if constexpr (std_set<T>) return Kind::set;
  else if constexpr (std_map<T>) return Kind::map;
  else if constexpr (is_std_array<T>) return Kind::array;
  else if constexpr (std_tuple_like<T>) return Kind::tuple_like;
  else if constexpr (is_specialization_of<T, std::optional>) return Kind::optional;
  else if constexpr (is_specialization_of<T, std::variant>) return Kind::variant;
  else if constexpr (std_view<T>) return Kind::view;
  else if constexpr (std_wrapper<T>) return Kind::std_wrapper;
  else return Kind::unsupported;
}

template <class T>
consteval Kind kind_of();

/// A C array's kind from its element's: memcpy-able elements only, and the
/// element's own rejection when that says more (an enum to fix).
template <class E>
consteval Kind element_array_kind() {
  constexpr Kind k = kind_of<E>();
  return k == Kind::bitwise || k == Kind::unfixed_enum ? k : Kind::unsupported;
}

/// The encoding T gets. Order matters: user hooks first; function pointers
/// before other pointers; std families (whose trivially copyable members such
/// as std::optional<int> carry flags to validate) before the user's opt-in to
/// memcpy; stateless classes before aggregates (an empty aggregate is both).
/// Nothing is sent as bytes unless mp can see it holds no address.
template <class T>
consteval Kind kind_of() {
  if constexpr (codec_specialized<T>) return codec_hook_kind<T>();
  else if constexpr (member_serialize<T>) return Kind::member_serialize;
  else if constexpr (member_save_load<T>) return Kind::member_save_load;
  else if constexpr (function_pointer<T>) return Kind::function_pointer;
  else if constexpr (std::is_pointer_v<T> || std::is_member_pointer_v<T> || smart_pointer<T>) return Kind::pointer;
  else if constexpr (std::is_same_v<T, bool>) return Kind::boolean;
  else if constexpr (std::is_arithmetic_v<T> || fixed_enum<T>) return Kind::bitwise;
  else if constexpr (std::is_enum_v<T>) return Kind::unfixed_enum;
  else if constexpr (std_kind<T>() != Kind::unsupported) return std_kind<T>();
  else if constexpr (free_serialize<T>) return Kind::free_serialize;
  else if constexpr (std::is_array_v<T>)  // C arrays only of memcpy-able elements (not pointers, not bool)
    return element_array_kind<std::remove_cv_t<std::remove_extent_t<T>>>();
  else if constexpr (is_address_free<T>)
    return std::is_trivially_copyable_v<T> ? Kind::bitwise : Kind::address_free_invalid;
  else if constexpr (is_stateless_callable<T>) return Kind::stateless;
  else if constexpr (std::is_aggregate_v<T>) return Kind::aggregate;
  else if constexpr (std::is_trivially_copyable_v<T>) return Kind::opaque;
  else return Kind::unsupported;
}

/// How T is encoded: specialised per Kind in codec_std.hpp, codec_containers.hpp and codec_user.hpp.
/// Every specialisation has: `sendable` (T can be encoded and decoded),
/// `bitwise` (the encoding is T's object representation and every byte
/// pattern is a valid T, so containers may memcpy blocks), `fixed` (encoded
/// size when it is the same for every value, else variable_size), `min`
/// (smallest encoded size), `size(v)`, `encode(out, v)`, `decode(r)`.
template <class T, Kind K = kind_of<T>()>
struct Codec;

}  // namespace mp::detail
