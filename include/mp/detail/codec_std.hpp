// mp/detail/codec_std.hpp - Codec<T> for built-in scalars, std::complex, chrono
// types, pair, tuple, optional and variant, and the byte helpers the container
// codecs share (the wire format is the table in <mp/codec.hpp>).
#pragma once

#include <mp/detail/codec_reject.hpp>
#include <mp/detail/codec_traits.hpp>
#include <mp/detail/function_id.hpp>

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace mp::detail {

// GCC 12 at -O3 sees the size computations of std::vector and warns about
// impossible huge bounds (-Wstringop-overflow, -Wrestrict); n is always a
// real size here. Clang knows neither warning (and -Werror would reject the
// unknown names), hence GCC only. The encoders below write into a caller's
// buffer sized with encoded_size; where the caller's buffer is a
// std::vector's data(), GCC 12 at -O3 assumes it may be null
// (-Wnull-dereference), which an encoded size of at least 8 rules out.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif
/// memcpy that accepts n == 0 with null pointers. Up to 32 bytes (a short
/// string, a few ints) it copies inline with two overlapping fixed-size moves,
/// as memcpy itself does after the call: for such sizes the call through the
/// PLT and memcpy's size dispatch cost more than the copy.
inline void copy_bytes(void* dst, const void* src, std::size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (n > 32) {
    std::memcpy(d, s, n);
  } else if (n >= 16) {
    std::memcpy(d, s, 16);
    std::memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + n - 4, s + n - 4, 4);
  } else if (n != 0) {
    d[0] = s[0];
    d[n / 2] = s[n / 2];
    d[n - 1] = s[n - 1];
  }
}
inline std::byte* write_length(std::byte* out, std::size_t n) noexcept {
  const auto len = static_cast<wire_length>(n);
  std::memcpy(out, &len, sizeof len);
  return out + sizeof len;
}

/// How many elements to reserve for a declared count n: never more than the
/// bytes left could hold.
template <class E>
std::size_t bounded_reserve(std::size_t n, const Reader& r) noexcept {
  constexpr std::size_t m = Codec<E>::min == 0 ? 1 : Codec<E>::min;
  return std::min(n, r.remaining() / m);
}

// --- element-wise helpers shared by containers ------------------------------
template <class E, class C>
std::size_t elements_size(const C& c) {
  if constexpr (Codec<E>::fixed != variable_size) {
    return sizeof(wire_length) + c.size() * Codec<E>::fixed;
  } else {
    std::size_t n = sizeof(wire_length);
    for (const E& e : c) n += Codec<E>::size(e);
    return n;
  }
}

template <class E, class C>
std::byte* encode_elements(std::byte* out, const C& c) {
  out = write_length(out, c.size());
  if constexpr (Codec<E>::bitwise && requires { c.data(); }) {
    const std::size_t n = c.size() * sizeof(E);
    copy_bytes(out, c.data(), n);
    return out + n;
  } else {
    for (const E& e : c) out = Codec<E>::encode(out, e);  // const E& also converts vector<bool>'s proxy
    return out;
  }
}

template <class C, class E = typename C::value_type>
C decode_sequence(Reader& r) {
  const std::size_t n = r.read_length(Codec<E>::min);
  C c;
  if constexpr (requires { c.reserve(n); }) c.reserve(bounded_reserve<E>(n, r));
  if constexpr (requires { Codec<E>::decode_append(r, c); }) {
    // A local cursor stays in registers; r's own fields would be reloaded and
    // stored around every element, as each string's char stores may alias them.
    Reader local = r;
    for (std::size_t i = 0; i < n; ++i) Codec<E>::decode_append(local, c);
    r = local;
  } else {
    for (std::size_t i = 0; i < n; ++i) c.push_back(Codec<E>::decode(r));
  }
  return c;
}

template <class E>
inline constexpr bool byte_like = std::is_same_v<E, char> || std::is_same_v<E, unsigned char> ||
                                  std::is_same_v<E, std::byte>;

// --- scalars ----------------------------------------------------------------
template <class T>
struct Codec<T, Kind::bitwise> {
  static constexpr bool sendable = true, bitwise = true;
  static constexpr std::size_t fixed = sizeof(T), min = sizeof(T);
  static constexpr std::size_t size(const T&) noexcept { return sizeof(T); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    std::memcpy(out, std::addressof(v), sizeof(T));
    return out + sizeof(T);
  }
  static auto decode(Reader& r) { return r.read_raw<T>(); }  // auto: T may be a C array
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

template <class T>
struct Codec<T, Kind::boolean> {
  static constexpr bool sendable = true, bitwise = false;
  static constexpr std::size_t fixed = 1, min = 1;
  static constexpr std::size_t size(const T&) noexcept { return 1; }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    *out = static_cast<std::byte>(v ? 1 : 0);
    return out + 1;
  }
  static T decode(Reader& r) {
    const auto b = std::to_integer<unsigned>(*r.take(1));
    if (b > 1) Reader::fail_at("a bool byte is neither 0 nor 1", r.position() - 1);
    return b == 1;
  }
};

template <class T>
struct Codec<T, Kind::function_pointer> {
  static constexpr bool sendable = true, bitwise = false;
  static constexpr std::size_t fixed = 16, min = 16;
  static constexpr std::size_t size(const T&) noexcept { return 16; }
  static std::byte* encode(std::byte* out, const T& v) {
    const FunctionId id = function_id(std::bit_cast<const void*>(v));
    std::memcpy(out, &id.module, 8);
    std::memcpy(out + 8, &id.offset, 8);
    return out + 16;
  }
  static T decode(Reader& r) {
    const FunctionId id{r.read_raw<std::uint64_t>(), r.read_raw<std::uint64_t>()};  // braces: in order
    return std::bit_cast<T>(resolve_function(id));
  }
};

template <class T>
struct Codec<T, Kind::monostate> {
  static constexpr bool sendable = true, bitwise = false;
  static constexpr std::size_t fixed = 0, min = 0;
  static constexpr std::size_t size(const T&) noexcept { return 0; }
  static std::byte* encode(std::byte* out, const T&) noexcept { return out; }
  static T decode(Reader&) noexcept { return T{}; }
};

/// A class without state (is_stateless_callable): zero bytes, decoded by
/// default construction.
template <class T>
struct Codec<T, Kind::stateless> : Codec<T, Kind::monostate> {};

/// std::complex, std::chrono::duration and time_point travel as their parts
/// (real and imaginary; the count; the duration since the clock's epoch).
template <class T>
struct StdWrapperWire;
template <class V>
struct StdWrapperWire<std::complex<V>> {
  using wire = std::array<V, 2>;
  static wire to(const std::complex<V>& c) { return {c.real(), c.imag()}; }
  static std::complex<V> from(wire&& w) { return {w[0], w[1]}; }
};
template <class R, class P>
struct StdWrapperWire<std::chrono::duration<R, P>> {
  using wire = R;
  static wire to(const std::chrono::duration<R, P>& d) { return d.count(); }
  static std::chrono::duration<R, P> from(wire&& w) { return std::chrono::duration<R, P>(std::move(w)); }
};
template <class C, class D>
struct StdWrapperWire<std::chrono::time_point<C, D>> {
  using wire = D;
  static wire to(const std::chrono::time_point<C, D>& t) { return t.time_since_epoch(); }
  static std::chrono::time_point<C, D> from(wire&& w) { return std::chrono::time_point<C, D>(std::move(w)); }
};

/// When the parts are bytes and fill T exactly, T is sent as one memcpy (its
/// object representation is its parts in order).
template <class T>
struct Codec<T, Kind::std_wrapper> {
  using Wire = StdWrapperWire<T>;
  using W = typename Wire::wire;
  static constexpr bool sendable = Codec<W>::sendable;
  static constexpr bool bitwise = Codec<W>::bitwise && std::is_trivially_copyable_v<T> && sizeof(T) == sizeof(W);
  static constexpr std::size_t fixed = Codec<W>::fixed, min = Codec<W>::min;
  static std::size_t size(const T& v) {
    if constexpr (fixed != variable_size) {
      return fixed;
    } else {
      return Codec<W>::size(Wire::to(v));
    }
  }
  static std::byte* encode(std::byte* out, const T& v) {
    if constexpr (bitwise) {
      std::memcpy(out, std::addressof(v), sizeof(T));
      return out + sizeof(T);
    } else {
      return Codec<W>::encode(out, Wire::to(v));
    }
  }
  static T decode(Reader& r) {
    if constexpr (bitwise) {
      return r.read_raw<T>();
    } else {
      return Wire::from(Codec<W>::decode(r));
    }
  }
};

// --- sum and product types --------------------------------------------------
template <class T, class... Es>
struct TupleCodec {
  static constexpr bool sendable = (Codec<std::remove_cv_t<Es>>::sendable && ...), bitwise = false;
  static constexpr std::size_t fixed = ((Codec<std::remove_cv_t<Es>>::fixed != variable_size) && ...)
                                           ? (Codec<std::remove_cv_t<Es>>::fixed + ... + 0)
                                           : variable_size;
  static constexpr std::size_t min = (Codec<std::remove_cv_t<Es>>::min + ... + 0);
  static std::size_t size(const T& t) {
    return std::apply([](const auto&... es) { return (detail::encoded_size(es) + ... + std::size_t{0}); }, t);
  }
  static std::byte* encode(std::byte* out, const T& t) {
    std::apply([&out](const auto&... es) { ((out = detail::encode_to(out, es)), ...); }, t);
    return out;
  }
  static T decode([[maybe_unused]] Reader& r) {
    return T{Codec<std::remove_cv_t<Es>>::decode(r)...};  // a braced list is evaluated left to right
  }
};

template <class A, class B>
struct Codec<std::pair<A, B>, Kind::tuple_like> : TupleCodec<std::pair<A, B>, A, B> {};
template <class... Es>
struct Codec<std::tuple<Es...>, Kind::tuple_like> : TupleCodec<std::tuple<Es...>, Es...> {};

template <class T>
struct Codec<T, Kind::optional> {
  using E = typename T::value_type;
  static constexpr bool sendable = Codec<E>::sendable, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = 1;
  static std::size_t size(const T& v) { return 1 + (v ? detail::encoded_size(*v) : 0); }
  static std::byte* encode(std::byte* out, const T& v) {
    *out = static_cast<std::byte>(v ? 1 : 0);
    return v ? Codec<E>::encode(out + 1, *v) : out + 1;
  }
  static T decode(Reader& r) {
    const auto flag = std::to_integer<unsigned>(*r.take(1));
    if (flag == 0) return T{};
    if (flag != 1) Reader::fail_at("an optional's flag is neither 0 nor 1", r.position() - 1);
    return T(std::in_place, Codec<E>::decode(r));
  }
};

template <class... Es>
struct Codec<std::variant<Es...>, Kind::variant> {
  using V = std::variant<Es...>;
  using index_type = std::conditional_t<(sizeof...(Es) < 256), std::uint8_t, std::uint32_t>;
  static constexpr bool sendable = (Codec<std::remove_cv_t<Es>>::sendable && ...), bitwise = false;
  static constexpr std::size_t fixed = variable_size;
  static constexpr std::size_t min = sizeof(index_type) + std::min({Codec<std::remove_cv_t<Es>>::min...});
  static std::size_t size(const V& v) {
    if (v.valueless_by_exception()) {
      throw std::invalid_argument("mp cannot encode a std::variant that is valueless by exception.");
    }
    return sizeof(index_type) + std::visit([](const auto& e) { return detail::encoded_size(e); }, v);
  }
  static std::byte* encode(std::byte* out, const V& v) {
    const auto i = static_cast<index_type>(v.index());
    std::memcpy(out, &i, sizeof i);
    return std::visit([out](const auto& e) { return detail::encode_to(out + sizeof(index_type), e); }, v);
  }
  template <std::size_t I>
  static V decode_alternative(Reader& r) {
    return V(std::in_place_index<I>, Codec<std::remove_cv_t<std::variant_alternative_t<I, V>>>::decode(r));
  }
  template <std::size_t... I>
  static constexpr auto decoders(std::index_sequence<I...>) {
    return std::array<V (*)(Reader&), sizeof...(I)>{&decode_alternative<I>...};
  }
  static V decode(Reader& r) {
    static constexpr auto table = decoders(std::index_sequence_for<Es...>{});
    const auto i = r.read_raw<index_type>();
    if (i >= sizeof...(Es)) Reader::fail_at("a variant's index is out of range", r.position() - sizeof(index_type));
    return table[i](r);
  }
};

}  // namespace mp::detail
