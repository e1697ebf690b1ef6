// mp/detail/pool_reader.hpp - the parent side's reading helpers of the fork
// backend: who reads the result channels (ResultReader: the result thread,
// or a thread spinning in AsyncResult::get), and reading a dead worker's
// unstarted tasks back out of its task channel.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include <mp/detail/futex.hpp>
#include <mp/detail/pool_layout.hpp>
#include <mp/detail/task.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// Who reads the result channels now: the result thread or one waiting
/// thread (busy_); a spinning waiter reads them through help(). Shared by
/// the backend and its pending results, so a late help() finds it detached.
class ResultReader final : public WaitHelper {
public:
  /// drain() reads whatever results are there; returns whether it read any.
  explicit ResultReader(std::function<bool()> drain) : drain_(std::move(drain)) {}

  bool help() noexcept override {
    if (busy_.exchange(true, std::memory_order_acquire)) return false;
    bool did = false;
    try {
      did = drain_ && drain_();
    } catch (...) {  // a waiter that cannot help just waits
    }
    busy_.store(false, std::memory_order_release);
    return did;
  }
  /// The result thread takes the reading role (waits for a helper to finish).
  void lock() noexcept {
    for (unsigned i = 0; busy_.exchange(true, std::memory_order_acquire); ++i) {
      if (i > 64) std::this_thread::yield();
      cpu_relax();
    }
  }
  void unlock() noexcept { busy_.store(false, std::memory_order_release); }
  /// The backend is going away: later help() calls do nothing.
  void detach() noexcept {
    lock();
    drain_ = nullptr;
    unlock();
  }
  /// Whether a waiter is spinning (the result thread then stands back).
  [[nodiscard]] bool helping() const noexcept { return active_.load(std::memory_order_seq_cst) != 0; }
  /// The futex word the result thread sleeps on while standing back.
  std::atomic<std::uint32_t>& active_word() noexcept { return active_; }

private:
  std::atomic<bool> busy_{false};
  std::function<bool()> drain_;
};

/// The whole task messages left in a dead worker's task channel, oldest
/// first (the parent reads them as the consumer now). Parts are joined; a
/// message whose first parts the worker had already read is dropped.
inline std::vector<std::vector<std::byte>> read_back_tasks(SpscChannel& tasks) {
  std::vector<std::vector<std::byte>> out;
  std::vector<std::byte> part;
  auto on_msg = [&](std::span<const std::byte> m) {
    if (m.empty()) return;
    if (!is_part(m)) {
      out.emplace_back(m.begin(), m.end());
      return;
    }
    PartHeader h;
    std::memcpy(&h, m.data(), sizeof h);
    if (h.offset == 0) part.clear();
    if (h.offset != part.size()) return;
    part.insert(part.end(), m.begin() + sizeof h, m.end());
    if (part.size() == h.total) {
      out.push_back(std::move(part));
      part.clear();
    }
  };
  try {
    while (tasks.try_recv_batch(on_msg, 256) != 0) {
    }
  } catch (const DecodeError&) {  // what is left is unreadable: those tasks count as lost
  }
  return out;
}

}  // namespace mp::detail
