// mp/detail/config.hpp - constants every shared-memory layout agrees on.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mp::detail {

/// The cache-line size every shared layout pads to. An explicit constant, not
/// std::hardware_destructive_interference_size, whose value may differ between
/// compilers and so between two processes that share a segment.
inline constexpr std::size_t cache_line = 64;

/// Rounds n up to a multiple of `to` (a power of two).
constexpr std::size_t align_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) & ~(to - 1);
}

}  // namespace mp::detail
