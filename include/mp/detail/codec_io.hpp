// mp/detail/codec_io.hpp - the byte cursors of the codec: Writer, Reader, and
// the three archives a cereal-style serialize() member is run with.
//
// Writer writes into a caller's buffer that already has room (size it with
// encoded_size()); it never checks bounds in release builds. Reader reads a
// std::span<const std::byte>, checks every read against the bytes left and
// throws mp::DecodeError (with the byte offset) on anything malformed.
#pragma once

#include <mp/detail/compiled.hpp>

#include <mp/errors.hpp>

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace mp::detail {

class Reader;

// The entry points, defined in <mp/codec.hpp>.
template <class T>
std::size_t encoded_size(const T& v);
template <class T>
std::byte* encode_to(std::byte* out, const T& v);
template <class T>
T decode(Reader& r);

/// Marks "no fixed encoded size" in Codec<T>::fixed.
inline constexpr std::size_t variable_size = std::numeric_limits<std::size_t>::max();

/// Wire type of every length/count: u64 in host byte order (little-endian on
/// every platform mp runs on).
using wire_length = std::uint64_t;

/// Most elements a container may declare when its elements can encode to zero
/// bytes, beyond the bytes left (bounds the work a forged count can cause).
inline constexpr std::size_t max_zero_size_elements = std::size_t{1} << 24;

// Cold, out of line, and given values rather than a Reader's `this`: a
// Reader whose address never escapes can live in registers through a
// decoding loop.
#if MP_DEFINE_COMPILED
/// Throws DecodeError("mp cannot decode the input: <what> (at byte <at>).").
[[noreturn, gnu::cold, gnu::noinline]] MP_COMPILED void throw_decode_error(const char* what, std::size_t at) {
  throw DecodeError(std::string("mp cannot decode the input: ") + what + " (at byte " + std::to_string(at) + ").");
}

/// Throws DecodeError for a read of n bytes at byte `at` with `left` left.
[[noreturn, gnu::cold, gnu::noinline]] MP_COMPILED void throw_truncated(std::size_t n, std::size_t at,
                                                                       std::size_t left) {
  throw DecodeError("mp cannot decode the input: it is truncated (needs " + std::to_string(n) + " more bytes at byte " +
                    std::to_string(at) + ", " + std::to_string(left) + " left).");
}
#else
[[noreturn]] void throw_decode_error(const char* what, std::size_t at);
[[noreturn]] void throw_truncated(std::size_t n, std::size_t at, std::size_t left);
#endif

/// Bounds-checked sequential reader over encoded bytes. Not thread-safe (one
/// reader per thread); reads only the span it was given.
class Reader {
public:
  explicit Reader(std::span<const std::byte> in) noexcept
      : begin_(in.data()), p_(in.data()), end_(in.data() + in.size()) {}

  [[nodiscard]] std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  [[nodiscard]] std::size_t position() const noexcept { return static_cast<std::size_t>(p_ - begin_); }

  /// Consumes n bytes and returns where they start; throws DecodeError when
  /// fewer than n bytes are left.
  const std::byte* take(std::size_t n) {
    if (n > remaining()) throw_truncated(n, position(), remaining());
    const std::byte* q = p_;
    p_ += n;
    return q;
  }

  /// Reads one trivially copyable T stored by memcpy.
  template <class T>
  T read_raw() {
    static_assert(std::is_trivially_copyable_v<T>, "read_raw needs a trivially copyable type.");
    struct Raw {
      alignas(T) std::byte b[sizeof(T)];
    } raw;
    std::memcpy(raw.b, take(sizeof(T)), sizeof(T));
    return std::bit_cast<T>(raw);
  }

  /// Reads a length and checks that `n` elements of at least `min_elem` bytes
  /// each can fit in what is left (overflow-safe), before anyone allocates.
  std::size_t read_length(std::size_t min_elem) {
    const auto n = read_raw<wire_length>();
    const std::size_t left = remaining();
    const bool ok = min_elem == 0 ? n <= left + max_zero_size_elements : n <= left / min_elem;
    if (!ok) fail_at("a length exceeds the bytes left", position() - sizeof(wire_length));
    return static_cast<std::size_t>(n);
  }

  /// Reads a count n and consumes the n * Elem bytes that follow, with one
  /// bounds check for both (a string or a vector of scalars is this pair on
  /// every element of a container, so the second check was measurable).
  /// Returns where the block starts and n.
  template <std::size_t Elem>
  std::pair<const std::byte*, std::size_t> read_block() {
    static_assert(Elem != 0, "read_block needs elements of at least one byte.");
    const auto n = read_raw<wire_length>();
    if (n > remaining() / Elem) fail_at("a length exceeds the bytes left", position() - sizeof(wire_length));
    const std::byte* q = p_;
    p_ += static_cast<std::size_t>(n) * Elem;
    return {q, static_cast<std::size_t>(n)};
  }

  /// Reads a length-prefixed block of bytes without copying (the wire format of
  /// std::vector<std::byte>); the span points into the input.
  std::span<const std::byte> read_view() {
    const auto [q, n] = read_block<1>();
    return {q, n};
  }

  /// Decodes the next value as T (see mp::detail::decode).
  template <class T>
  T read() {
    return detail::decode<T>(*this);
  }

  /// Throws DecodeError unless every byte was consumed.
  void expect_end() const {
    if (p_ != end_) fail("trailing bytes follow the value");
  }

  /// Throws DecodeError naming the current offset.
  [[noreturn]] void fail(const char* what) const { throw_decode_error(what, position()); }
  [[noreturn]] static void fail_at(const char* what, std::size_t at) { throw_decode_error(what, at); }

private:
  const std::byte* begin_;
  const std::byte* p_;
  const std::byte* end_;
};

/// Sequential writer into a caller's buffer that has room for everything
/// written (size it with encoded_size(a, b, ...)). Not thread-safe.
class Writer {
public:
  explicit Writer(std::byte* out) noexcept : p_(out) {}
  /// Debug builds assert that writes stay inside `out`.
  explicit Writer(std::span<std::byte> out) noexcept : p_(out.data()), end_(out.data() + out.size()) {}

  template <class T>
  void write(const T& v) {
    p_ = detail::encode_to(p_, v);
    assert(end_ == nullptr || p_ <= end_);
  }

  /// One past the last byte written.
  [[nodiscard]] std::byte* position() const noexcept { return p_; }

private:
  std::byte* p_;
  std::byte* end_ = nullptr;
};

/// The archive serialize() runs with to count bytes.
class SizeArchive {
public:
  template <class... Ts>
  void operator()(const Ts&... vs) {
    ((n_ += detail::encoded_size(vs)), ...);
  }
  template <class U>
  SizeArchive& operator&(const U& v) {
    n_ += detail::encoded_size(v);
    return *this;
  }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

private:
  std::size_t n_ = 0;
};

/// The archive serialize() runs with to write.
class OutputArchive {
public:
  explicit OutputArchive(std::byte* out) noexcept : p_(out) {}
  template <class... Ts>
  void operator()(const Ts&... vs) {
    ((p_ = detail::encode_to(p_, vs)), ...);
  }
  template <class U>
  OutputArchive& operator&(const U& v) {
    p_ = detail::encode_to(p_, v);
    return *this;
  }
  [[nodiscard]] std::byte* position() const noexcept { return p_; }

private:
  std::byte* p_;
};

/// Decodes into an existing object: assignment, or memcpy for a C array.
template <class T>
void decode_into(Reader& r, T& v) {
  if constexpr (std::is_array_v<T>) {
    static_assert(std::is_trivially_copyable_v<T>,
                  "mp can decode a C array member only when its elements are trivially copyable; "
                  "use std::array or std::vector instead.");
    std::memcpy(&v, r.take(sizeof(T)), sizeof(T));
  } else {
    v = detail::decode<T>(r);
  }
}

/// The archive serialize() runs with to read.
class InputArchive {
public:
  explicit InputArchive(Reader& r) noexcept : r_(r) {}
  template <class... Ts>
  void operator()(Ts&... vs) {
    (detail::decode_into(r_, vs), ...);
  }
  template <class U>
  InputArchive& operator&(U& v) {
    detail::decode_into(r_, v);
    return *this;
  }

private:
  Reader& r_;
};

}  // namespace mp::detail
