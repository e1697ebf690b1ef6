// mp/sharedctypes.hpp - mp::Value<T> and mp::Array<T>: trivially copyable
// data in shared memory, each with a lock (Python's multiprocessing.Value and
// multiprocessing.Array).
//
// The data lives in its own anonymous shared segment, mapped at construction:
// create it BEFORE starting the Process or Pool that uses it. Copies of the
// handle refer to the same memory, so a copy captured by a worker, passed as a
// Process argument, or given to a Pool initializer reads and writes the very
// bytes the parent sees (no copy, no serialization).
//
// Nothing here is atomic by itself: read-modify-write under get_lock(), e.g.
//   { std::lock_guard g(v.get_lock()); ++v.value(); }
// The lock is an mp::Lock by default (Python's default is an RLock: use
// Value<T, mp::RLock> for that); it survives its owner's death (see lock.hpp).
//
//   Value layout (after the 64-byte SegmentHeader):   Array layout:
//   +-------------------------------+                 +------------------------------+
//   | T (aligned, at most 64 B)     |                 | size u64, padded to 64 B     |
//   +-------------------------------+                 | T[size]                      |
//                                                     +------------------------------+
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <new>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <mp/detail/shared_object.hpp>
#include <mp/lock.hpp>

namespace mp {
namespace detail {

template <class T>
struct ValueLayout {
  alignas(T) unsigned char bytes[sizeof(T)];
};

struct ArrayLayout {
  std::uint64_t size;
  unsigned char pad[cache_line - sizeof(std::uint64_t)];
};
static_assert(sizeof(ArrayLayout) == cache_line);

inline constexpr std::uint64_t value_magic = 0x6d702d56616c7531;  // "mp-Valu1"
inline constexpr std::uint64_t array_magic = 0x6d702d4172726131;  // "mp-Arra1"

template <class T>
void check_shareable() {
  static_assert(std::is_trivially_copyable_v<T>,
                "mp::Value<T> and mp::Array<T> need a trivially copyable T: the bytes live in shared memory "
                "and are read in place by other processes. For strings, vectors or other owning types, "
                "send them through an mp::Queue or mp::Pipe instead.");
  static_assert(alignof(T) <= cache_line, "mp::Value/Array support types aligned to at most 64 bytes.");
}

}  // namespace detail

/// One T in shared memory, with a lock.
template <class T, class LockT = Lock>
class Value {
public:
  /// Creates the value `init` (default: T{}) with a new lock. Throws mp::Error
  /// if shared memory cannot be mapped.
  explicit Value(const T& init = T{}) : Value(init, LockT{}) {}

  /// Creates the value `init` guarded by `lock` (a handle: the same shared lock).
  Value(const T& init, LockT lock) : lock_(std::move(lock)), s_(make(init)) {}

  /// The shared T itself. Never blocks; not synchronised: hold get_lock()
  /// for read-modify-write across processes.
  [[nodiscard]] T& value() const noexcept { return *std::launder(reinterpret_cast<T*>(s_->bytes)); }

  /// A copy of the value, read under the lock. Blocks on the lock.
  [[nodiscard]] T load() const {
    std::lock_guard g(lock_);
    return value();
  }

  /// Stores x under the lock. Blocks on the lock.
  void store(const T& x) const {
    std::lock_guard g(lock_);
    value() = x;
  }

  /// The lock that guards this value (usable with std::lock_guard).
  [[nodiscard]] LockT& get_lock() const noexcept { return lock_; }

private:
  static detail::SharedObject<detail::ValueLayout<T>> make(const T& init) {
    detail::check_shareable<T>();
    return detail::SharedObject<detail::ValueLayout<T>>::make(
        detail::value_magic, 1, 0, [&](detail::ValueLayout<T>& l) { ::new (static_cast<void*>(l.bytes)) T(init); });
  }

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  Value(detail::HandleTag, LockT lock, detail::SharedObject<detail::ValueLayout<T>> s)
      : lock_(std::move(lock)), s_(std::move(s)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(lock_, s_); }

  mutable LockT lock_;
  detail::SharedObject<detail::ValueLayout<T>> s_;
};

/// A fixed-size array of T in shared memory, with a lock. The elements are
/// read and written in place by every process that holds a copy of the handle.
template <class T, class LockT = Lock>
class Array {
public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  /// n value-initialised elements (zero for arithmetic types). Throws mp::Error.
  explicit Array(std::size_t n) : s_(make(n)) {
    static_assert(std::is_default_constructible_v<T>, "mp::Array<T>(n) needs a default-constructible T.");
    for (T* p = begin(); p != end(); ++p) ::new (static_cast<void*>(p)) T();
  }

  /// n copies of `fill`. Throws mp::Error.
  Array(std::size_t n, const T& fill) : s_(make(n)) {
    for (T* p = begin(); p != end(); ++p) ::new (static_cast<void*>(p)) T(fill);
  }

  /// A copy of the elements of `r` (any sized input range of T). Throws mp::Error.
  template <std::ranges::sized_range R>
    requires std::convertible_to<std::ranges::range_reference_t<R>, T>
  explicit Array(const R& r) : s_(make(static_cast<std::size_t>(std::ranges::size(r)))) {
    T* p = begin();
    for (auto&& x : r) ::new (static_cast<void*>(p++)) T(x);
  }

  /// A copy of the listed elements.
  Array(std::initializer_list<T> il) : Array(std::span<const T>(il.begin(), il.size())) {}

  /// Element i, unchecked. Never blocks; not synchronised.
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data()[i]; }
  /// Element i; throws std::out_of_range when i >= size().
  [[nodiscard]] T& at(std::size_t i) const {
    if (i >= size())
      throw std::out_of_range("mp::Array::at(" + std::to_string(i) + "): size is " + std::to_string(size()));
    return data()[i];
  }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(s_->size); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] T* data() const noexcept { return std::launder(reinterpret_cast<T*>(s_.trailing())); }
  [[nodiscard]] T* begin() const noexcept { return data(); }
  [[nodiscard]] T* end() const noexcept { return data() + size(); }
  /// The elements as a span (zero-copy view of the shared memory).
  [[nodiscard]] std::span<T> span() const noexcept { return {data(), size()}; }

  /// The lock that guards this array (usable with std::lock_guard).
  [[nodiscard]] LockT& get_lock() const noexcept { return lock_; }

private:
  static detail::SharedObject<detail::ArrayLayout> make(std::size_t n) {
    detail::check_shareable<T>();
    if (n > (std::size_t{1} << 48) / sizeof(T)) throw std::length_error("mp::Array: too many elements");
    return detail::SharedObject<detail::ArrayLayout>::make(detail::array_magic, 1, n * sizeof(T),
                                                           [&](detail::ArrayLayout& l) { l.size = n; });
  }

  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  Array(detail::HandleTag, LockT lock, detail::SharedObject<detail::ArrayLayout> s)
      : lock_(std::move(lock)), s_(std::move(s)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(lock_, s_); }

  mutable LockT lock_;
  detail::SharedObject<detail::ArrayLayout> s_;
};

}  // namespace mp
