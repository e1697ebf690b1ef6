// mp/detail/chunk_size.hpp - how many items the map family puts in a chunk
// when the caller gives no chunksize.
//
// Python's rule (about 4 chunks per worker) balances load; a cap on the
// encoded bytes of a chunk keeps each chunk small beside a worker's channel,
// so it goes into the channel whole and several fit at once.
#pragma once

#include <algorithm>
#include <cstddef>

#include <mp/codec.hpp>

namespace mp::detail {

/// The encoded bytes a default map chunk aims at: a small fraction of a
/// worker's channel (BackendOptions::channel_capacity, 8 MiB).
inline constexpr std::size_t default_chunk_bytes = std::size_t{256} << 10;

/// Items sampled to estimate the encoded size of a variable-size item.
inline constexpr std::size_t chunk_size_sample = 64;

/// The mean encoded size of the items [first, first+n) of type T: exact
/// for a fixed-size codec, else the mean of the first chunk_size_sample.
template <class T, class It>
std::size_t mean_item_bytes(It first, std::size_t n) {
  if constexpr (Codec<T>::fixed != variable_size) {
    (void)first, (void)n;
    return std::max<std::size_t>(1, Codec<T>::fixed);
  } else {
    const std::size_t k = std::min(n, chunk_size_sample);
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < k; ++i, ++first) bytes += encoded_size(static_cast<const T&>(*first));
    return k == 0 ? 1 : std::max<std::size_t>(1, bytes / k);
  }
}

/// Items of item_bytes each that fit default_chunk_bytes (at least 1).
inline std::size_t items_within_budget(std::size_t item_bytes) noexcept {
  return std::max<std::size_t>(1, default_chunk_bytes / std::max<std::size_t>(1, item_bytes));
}

/// map's default chunksize for n items of item_bytes each on `workers`
/// workers: Python's (about 4 chunks per worker), capped so that a chunk
/// encodes to about default_chunk_bytes at most.
inline std::size_t default_map_chunksize(std::size_t n, std::size_t item_bytes, unsigned workers) noexcept {
  const std::size_t d = 4 * std::size_t{std::max(1u, workers)};
  return std::min(std::max<std::size_t>(1, (n + d - 1) / d), items_within_budget(item_bytes));
}

}  // namespace mp::detail
