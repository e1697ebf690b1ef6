// mp/detail/codec_user.hpp - Codec<T> for user types: a specialisation of
// mp::codec<T> (three forms), or cereal-style serialize()/save()+load().
#pragma once

#include <mp/detail/codec_containers.hpp>

namespace mp::detail {

template <class Archive, class T>
void call_member_serialize(Archive& a, T& v) {
  if constexpr (requires { v.serialize(a); }) {
    v.serialize(a);
  } else {
    v.serialize(a, std::uint32_t{0});  // cereal's versioned form; mp's version is always 0
  }
}

/// Runs T's field list with an output archive (counting or writing). Like
/// cereal, it calls the non-const serialize() on a const object; an output
/// archive only reads the fields it is given.
template <Kind K, class Archive, class T>
void run_output_archive(Archive& a, const T& cv) {
  T& v = const_cast<T&>(cv);
  if constexpr (K == Kind::codec_archive) mp::codec<T>::serialize(a, v);
  else if constexpr (K == Kind::member_serialize) call_member_serialize(a, v);
  else if constexpr (K == Kind::member_save_load) cv.save(a);
  else serialize(a, v);  // free function found by ADL
}

template <Kind K, class T>
void run_input_archive(InputArchive& a, T& v) {
  if constexpr (K == Kind::codec_archive) mp::codec<T>::serialize(a, v);
  else if constexpr (K == Kind::member_serialize) call_member_serialize(a, v);
  else if constexpr (K == Kind::member_save_load) v.load(a);
  else serialize(a, v);  // free function found by ADL
}

/// Codec of every archive-driven kind: the fields in order, no header.
template <class T, Kind K>
struct ArchiveCodec {
  static constexpr bool sendable = std::is_default_constructible_v<T>, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = 0;
  static std::size_t size(const T& v) {
    SizeArchive a;
    run_output_archive<K>(a, v);
    return a.size();
  }
  static std::byte* encode(std::byte* out, const T& v) {
    OutputArchive a(out);
    run_output_archive<K>(a, v);
    return a.position();
  }
  static T decode(Reader& r) {
    static_assert(std::is_default_constructible_v<T>,
                  "mp decodes a type with serialize()/load() by default-constructing it and then reading its "
                  "fields: give it a default constructor, or specialise mp::codec<T> with decode()/from_wire().");
    T v{};
    InputArchive a(r);
    run_input_archive<K>(a, v);
    return v;
  }
};

template <class T>
struct Codec<T, Kind::codec_archive> : ArchiveCodec<T, Kind::codec_archive> {};
template <class T>
struct Codec<T, Kind::member_serialize> : ArchiveCodec<T, Kind::member_serialize> {};
template <class T>
struct Codec<T, Kind::member_save_load> : ArchiveCodec<T, Kind::member_save_load> {};
template <class T>
struct Codec<T, Kind::free_serialize> : ArchiveCodec<T, Kind::free_serialize> {};

/// mp::codec<T> with wire_type/to_wire/from_wire: T travels as a wire_type.
template <class T>
struct Codec<T, Kind::codec_wire> {
  using W = std::remove_cvref_t<typename mp::codec<T>::wire_type>;
  static constexpr bool sendable = Codec<W>::sendable, bitwise = false;
  static constexpr std::size_t fixed = Codec<W>::fixed, min = Codec<W>::min;
  static std::size_t size(const T& v) {
    if constexpr (fixed != variable_size) {
      return fixed;
    } else {
      const W& w = mp::codec<T>::to_wire(v);
      return Codec<W>::size(w);
    }
  }
  static std::byte* encode(std::byte* out, const T& v) {
    const W& w = mp::codec<T>::to_wire(v);
    return Codec<W>::encode(out, w);
  }
  static T decode(Reader& r) { return mp::codec<T>::from_wire(Codec<W>::decode(r)); }
};

/// mp::codec<T> with size/encode/decode: full control.
template <class T>
struct Codec<T, Kind::codec_explicit> {
  static constexpr bool sendable = true, bitwise = false;
  static constexpr std::size_t fixed = variable_size, min = 0;
  static std::size_t size(const T& v) { return mp::codec<T>::size(v); }
  static std::byte* encode(std::byte* out, const T& v) { return mp::codec<T>::encode(out, v); }
  static T decode(Reader& r) { return mp::codec<T>::decode(r); }
};

struct RejectInvalidCodec {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp::codec<T> is specialised for this type but has none of the three forms mp accepts: "
                  "`template <class Archive> static void serialize(Archive& ar, T& v)`; or `using wire_type = W; "
                  "static W to_wire(const T&); static T from_wire(W&&)`; or `static std::size_t size(const T&); "
                  "static std::byte* encode(std::byte*, const T&); static T decode(mp::detail::Reader&)`.");
  }
};

template <class T>
struct Codec<T, Kind::codec_invalid> : RejectedCodec<T, RejectInvalidCodec> {};

}  // namespace mp::detail
