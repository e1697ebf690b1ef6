// mp/detail/item_slot.hpp - where a worker decodes the items of a map chunk.
//
// A std::vector of memcpy-able elements is decoded into the same vector for
// every item of the chunk, so its storage is allocated once per chunk rather
// than once per item; any other type is decoded afresh into an optional.
#pragma once

#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include <mp/codec.hpp>

namespace mp::detail {

/// The current item of a chunk being run. next() decodes the following item
/// and returns a reference valid until the next call.
template <class T>
class ItemSlot {
public:
  T& next(Reader& in) { return item_.emplace(in.read<T>()); }

private:
  std::optional<T> item_;
};

template <class E>
  requires(Codec<E>::bitwise && std::is_trivially_copyable_v<E> && !std::is_same_v<E, bool>)
class ItemSlot<std::vector<E>> {
public:
  std::vector<E>& next(Reader& in) {
    const auto [q, n] = in.read_block<sizeof(E)>();
    item_.resize(n);
    if (n != 0) std::memcpy(static_cast<void*>(item_.data()), q, n * sizeof(E));
    return item_;
  }

private:
  std::vector<E> item_;
};

}  // namespace mp::detail
