// mp/detail/codec_containers.hpp - Codec<T> for standard containers: strings,
// vectors, lists, sets, maps, fixed-size arrays, and the encode-only views
// (std::span, std::string_view). The wire format is the table in
// <mp/codec.hpp>.
#pragma once

#include <mp/detail/codec_std.hpp>

#include <algorithm>

namespace mp::detail {

// --- containers -------------------------------------------------------------
template <class C>
struct Codec<C, Kind::contiguous> {
  using E = typename C::value_type;
  static constexpr bool sendable = Codec<E>::sendable, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = sizeof(wire_length);
  static std::size_t size(const C& c) { return elements_size<E>(c); }
  static std::byte* encode(std::byte* out, const C& c) { return encode_elements<E>(out, c); }
  static C decode(Reader& r) {
    if constexpr (byte_like<E>) {
      const auto [src, n] = r.read_block<1>();
      const auto* p = reinterpret_cast<const E*>(src);
      return C(p, p + n);  // one allocation (none for a short string) and one copy
    } else if constexpr (Codec<E>::bitwise && std::is_default_constructible_v<E>) {
      const auto [src, n] = r.read_block<sizeof(E)>();
      C c = make_sized(n);
      copy_bytes(c.data(), src, n * sizeof(E));
      return c;
    } else {
      return decode_sequence<C>(r);
    }
  }
  /// A C of n value-initialised elements (n is bounded by the input; neither
  /// vector nor string can be sized without initialising). Constructing with
  /// the size skips resize()'s growth path; basic_string has no such constructor.
  static C make_sized(std::size_t n) {
    if constexpr (std::is_constructible_v<C, std::size_t>) {
      return C(n);
    } else {
      C c;
      c.resize(n);
      return c;
    }
  }
  /// Decodes one C at the end of a container of them, built in place: a
  /// vector<string> constructs each string from its bytes (no empty string
  /// assigned to, no temporary moved from).
  template <class Seq>
  static void decode_append(Reader& r, Seq& seq)
    requires(Codec<E>::bitwise && std::is_default_constructible_v<E>)
  {
    if constexpr (byte_like<E>) {
      const auto [src, n] = r.read_block<1>();
      const auto* p = reinterpret_cast<const E*>(src);
      seq.emplace_back(p, p + n);
    } else {
      const auto [src, n] = r.read_block<sizeof(E)>();
      C& c = seq.emplace_back();
      c.resize(n);
      copy_bytes(c.data(), src, n * sizeof(E));
    }
  }
};

template <class C>
struct Codec<C, Kind::sequence> {
  using E = typename C::value_type;
  static constexpr bool sendable = Codec<E>::sendable, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = sizeof(wire_length);
  static std::size_t size(const C& c) { return elements_size<E>(c); }
  static std::byte* encode(std::byte* out, const C& c) { return encode_elements<E>(out, c); }
  static C decode(Reader& r) { return decode_sequence<C>(r); }
};

template <class C>
struct Codec<C, Kind::set> {
  using E = typename C::key_type;
  static constexpr bool sendable = Codec<E>::sendable, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = sizeof(wire_length);
  static std::size_t size(const C& c) { return elements_size<E>(c); }
  static std::byte* encode(std::byte* out, const C& c) { return encode_elements<E>(out, c); }
  static C decode(Reader& r) {
    const std::size_t n = r.read_length(Codec<E>::min);
    C c;
    if constexpr (requires { c.reserve(n); }) c.reserve(bounded_reserve<E>(n, r));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = r.position();
      c.emplace_hint(c.end(), Codec<E>::decode(r));
      if (c.size() != i + 1) Reader::fail_at("a set holds the same key twice", at);
    }
    return c;
  }
};

template <class C>
struct Codec<C, Kind::map> {
  using K = typename C::key_type;
  using V = typename C::mapped_type;
  using KC = Codec<K>;
  using VC = Codec<V>;
  static constexpr bool sendable = KC::sendable && VC::sendable, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = sizeof(wire_length);
  static std::size_t size(const C& c) {
    if constexpr (KC::fixed != variable_size && VC::fixed != variable_size) {
      return sizeof(wire_length) + c.size() * (KC::fixed + VC::fixed);
    } else {
      std::size_t n = sizeof(wire_length);
      for (const auto& kv : c) n += KC::size(kv.first) + VC::size(kv.second);
      return n;
    }
  }
  static std::byte* encode(std::byte* out, const C& c) {
    out = write_length(out, c.size());
    for (const auto& kv : c) out = VC::encode(KC::encode(out, kv.first), kv.second);
    return out;
  }
  static C decode(Reader& r) {
    const std::size_t n = r.read_length(KC::min + VC::min);
    C c;
    if constexpr (requires { c.reserve(n); }) c.reserve(std::min(n, r.remaining() / std::max<std::size_t>(1, KC::min + VC::min)));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = r.position();
      K k = KC::decode(r);
      V v = VC::decode(r);
      c.emplace_hint(c.end(), std::move(k), std::move(v));
      if (c.size() != i + 1) Reader::fail_at("a map holds the same key twice", at);
    }
    return c;
  }
};

template <class A>
struct Codec<A, Kind::array> {
  using E = typename A::value_type;
  static constexpr std::size_t N = std::tuple_size_v<A>;
  static constexpr bool sendable = Codec<E>::sendable && (Codec<E>::bitwise || std::is_default_constructible_v<E>);
  static constexpr bool bitwise = N != 0 && Codec<E>::bitwise && sizeof(A) == N * sizeof(E);
  static constexpr std::size_t fixed = Codec<E>::fixed == variable_size ? variable_size : N * Codec<E>::fixed;
  static constexpr std::size_t min = N * Codec<E>::min;
  static std::size_t size(const A& a) {
    if constexpr (fixed != variable_size) {
      return fixed;
    } else {
      std::size_t n = 0;
      for (const E& e : a) n += Codec<E>::size(e);
      return n;
    }
  }
  static std::byte* encode(std::byte* out, const A& a) {
    if constexpr (bitwise) {
      std::memcpy(out, a.data(), sizeof(A));
      return out + sizeof(A);
    } else {
      for (const E& e : a) out = Codec<E>::encode(out, e);
      return out;
    }
  }
  static A decode(Reader& r) {
    if constexpr (bitwise) {
      return r.read_raw<A>();
    } else {
      A a{};
      for (E& e : a) e = Codec<E>::decode(r);
      return a;
    }
  }
};

// --- encode-only views ---------------------------------------------------------
template <class C>
struct Codec<C, Kind::view> {
  using E = std::remove_cv_t<typename C::value_type>;
  static constexpr bool sendable = false, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = sizeof(wire_length);
  static std::size_t size(const C& c) { return elements_size<E>(c); }
  static std::byte* encode(std::byte* out, const C& c) { return encode_elements<E>(out, c); }
  static C decode(Reader&) {
    static_assert(always_false<C>,
                  "mp cannot decode into a std::span or std::string_view, which would point into the message: "
                  "decode a std::vector or std::string (same wire format) instead, or use Reader::read_view().");
    return C{};
  }
};

}  // namespace mp::detail
