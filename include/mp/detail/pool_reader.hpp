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

#include <mp/detail/backend.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/pool_layout.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// Who reads the result channels now: the result thread or one waiting
/// thread (busy_); a spinning waiter reads them through help(). Shared by
/// the backend and its pending results, so a late help() finds it detached.
class ResultReader final : public WaitHelper {
public:
  /// drain() reads whatever results are there; returns whether it read any.
  /// cancel(s, running) cancels sink s's tasks (the backend's cancel).
  using CancelFn = std::function<bool(const Sink*, bool)>;
  explicit ResultReader(std::function<bool()> drain, CancelFn cancel = {})
      : drain_(std::move(drain)), cancel_(std::move(cancel)) {}

  bool help() noexcept override {
    if (busy_.exchange(true, std::memory_order_acquire)) return false;
    took();
    bool did = false;
    try {
      did = drain_ && drain_();
    } catch (...) {  // a waiter that cannot help just waits
    }
    unlock();
    return did;
  }
  /// Cancels with the reading role held, so that a sink never sees a result
  /// and a cancellation at once. A callback run while this reader delivers
  /// results already holds it (held()): it must not wait for itself.
  bool cancel(const Sink* s, bool running) noexcept override {
    const bool mine = held() == this;
    if (!mine) lock();
    bool did = false;
    try {
      did = cancel_ && cancel_(s, running);
    } catch (...) {
    }
    if (!mine) unlock();
    return did;
  }
  /// The result thread takes the reading role (waits for a helper to finish).
  void lock() noexcept {
    for (unsigned i = 0; busy_.exchange(true, std::memory_order_acquire); ++i) {
      if (i > 64) std::this_thread::yield();
      cpu_relax();
    }
    took();
  }
  void unlock() noexcept {
    held() = prev_;
    busy_.store(false, std::memory_order_release);
  }
  /// The backend is going away: later help() and cancel() calls do nothing.
  void detach() noexcept {
    lock();
    drain_ = nullptr;
    cancel_ = nullptr;
    unlock();
  }
  /// Whether a waiter is spinning (the result thread then stands back).
  [[nodiscard]] bool helping() const noexcept { return active_.load(std::memory_order_seq_cst) != 0; }
  /// The futex word the result thread sleeps on while standing back.
  std::atomic<std::uint32_t>& active_word() noexcept { return active_; }

private:
  /// The reader whose role this thread holds (nested: a callback of one
  /// pool may wait on another's result), and the one it held before.
  static const ResultReader*& held() noexcept {
    static thread_local const ResultReader* h = nullptr;
    return h;
  }
  void took() noexcept {
    prev_ = held();
    held() = this;
  }

  std::atomic<bool> busy_{false};
  const ResultReader* prev_ = nullptr;  // written by the role's holder only
  std::function<bool()> drain_;
  CancelFn cancel_;
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
