// mp/detail/item_counter.hpp - how a worker reports the items of a map
// chunk it has finished, for mp::progress: one 64-bit word of its own
// (WorkerSlot::items in the fork pool's segment), written with a relaxed
// store after each item. The high 32 bits name the task (the low 32 bits of
// WorkerSlot::started once it began), the low 32 bits count its finished
// items, so the parent never counts a finished task's items twice.
#pragma once

#include <atomic>
#include <cstdint>

namespace mp::detail {

/// This process's item word; the null word (no fork worker: MPI ranks, the
/// parent) makes note_items do nothing.
struct ItemCounter {
  std::atomic<std::uint64_t>* word = nullptr;
  std::uint64_t tag = 0;  ///< the running task's number, in the high 32 bits
};
inline ItemCounter item_counter;

/// The worker begins task number `task` (WorkerSlot::started after it).
inline void begin_items(std::uint64_t task) noexcept {
  if (item_counter.word == nullptr) return;
  item_counter.tag = task << 32;
  item_counter.word->store(item_counter.tag, std::memory_order_relaxed);
}

/// `done` items of the running chunk have finished. Never blocks.
inline void note_items(std::uint64_t done) noexcept {
  if (item_counter.word != nullptr) item_counter.word->store(item_counter.tag | done, std::memory_order_relaxed);
}

/// The items word's count if it belongs to task number `task`, else 0.
inline std::uint64_t items_of(std::uint64_t word, std::uint64_t task) noexcept {
  return (word >> 32) == (task & 0xffff'ffffu) ? (word & 0xffff'ffffu) : 0;
}

}  // namespace mp::detail
