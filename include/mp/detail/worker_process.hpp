// mp/detail/worker_process.hpp - the worker process of the fork pool: what
// it applies to itself after fork, the initializer, and the loop that reads
// task messages from its task channel (reassembling parts, see
// pool_layout.hpp), runs them and writes their results to its result
// channel. The spawner (spawner.hpp) forks it and calls worker_main.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <stdio_ext.h>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include <mp/detail/pool_layout.hpp>
#include <mp/detail/spin.hpp>
#include <mp/detail/spsc.hpp>
#include <mp/detail/protocol.hpp>

namespace mp::detail {

/// A worker's ResultOut: the result channel, blocking while it is full.
/// A value above max_bytes is refused with std::length_error, which the
/// trampoline sends back instead as the task's error; errors always go.
class ChannelOut final : public ResultOut {
public:
  ChannelOut(SpscChannel& ch, std::size_t max_bytes) noexcept : ch_(ch), max_(max_bytes) {}
  void write(std::size_t n, EncodeRef enc) override {
    if (n > max_) {
      throw std::length_error("mp::Pool: a task's result is " + std::to_string(n) +
                              " bytes encoded, more than PoolOptions::max_result_bytes (" + std::to_string(max_) +
                              "); raise that limit or return less");
    }
    ch_.send(n, enc);
  }
  void write_error(std::size_t n, EncodeRef enc) override { ch_.send(n, enc); }

private:
  SpscChannel& ch_;
  std::size_t max_;
};

/// What a worker applies to itself after fork.
struct WorkerLimits {
  unsigned maxtasks = 0;             // 0: unlimited
  std::size_t memory = 0;            // RLIMIT_AS in bytes; 0: none
  std::size_t max_result = SIZE_MAX; // bytes of one encoded result
};

/// Caps this process's address space (RLIMIT_AS) at `bytes` (0: leaves it).
inline void apply_memory_limit(std::size_t bytes) noexcept {
  if (bytes == 0) return;
  rlimit lim{};
  ::getrlimit(RLIMIT_AS, &lim);
  lim.rlim_cur = static_cast<rlim_t>(bytes);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_cur > lim.rlim_max) lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_AS, &lim);
}

/// Discards a result (the initializer's).
class InitializerOut final : public ResultOut {
public:
  void write(std::size_t n, EncodeRef enc) override {
    std::vector<std::byte> buf(n);
    enc(buf.data());
    if (n > 0 && buf[0] != std::byte{0}) error_ = std::move(buf);
  }
  bool failed() const noexcept { return !error_.empty(); }
  /// The initializer's exception's what(), decoded from its error message.
  std::string what() const {
    std::exception_ptr err;
    std::uint64_t index = 0;
    try {
      Reader r(error_);
      if (!read_status(r, err, index) && err) std::rethrow_exception(err);
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
    }
    return "an exception not derived from std::exception";
  }

private:
  std::vector<std::byte> error_;  // the error result message; empty: none
};

/// Exit code of a worker whose initializer threw.
inline constexpr int initializer_failed_exit = 70;

/// A worker's reading side: whole task messages from the task channel,
/// parts reassembled; an empty message means stop.
class TaskReader {
public:
  /// `doorbell` is rung when the parent asked for task-channel space.
  TaskReader(SpscChannel& tasks, WorkerSlot& slot, ResultOut& out, Doorbell& doorbell)
      : tasks_(tasks), slot_(slot), out_(out), doorbell_(doorbell) {
    item_counter.word = &slot.items;
  }

  /// Runs the tasks that arrive (blocking for at least one), at most `max`.
  /// Returns the tasks run; sets stop() when told to exit.
  std::size_t run_some(std::size_t max) {
    std::size_t ran = 0;
    Clock::time_point first{};
    auto on_msg = [&](std::span<const std::byte> msg) {
      if (ran == 0) first = Clock::now();
      if (msg.empty()) {
        stop_ = true;
      } else if (!is_part(msg)) {
        run(msg);
        ++ran;
      } else if (add_part(msg)) {
        run(buf_);
        ++ran;
        buf_.clear();
      }
    };
    spin_until([&] { return tasks_.readable(); }, {worker_spin_time});
    try {
      tasks_.recv_batch(on_msg, max);
    } catch (...) {  // a corrupt frame: that task is lost, answer it so results stay in order
      slot_.started.fetch_add(1, std::memory_order_seq_cst);
      write_current_error(out_, 0);
      ++ran;
    }
    if (ran != 0) note_time(first, ran);
    if (slot_.wants_space.load(std::memory_order_seq_cst) != 0) {
      slot_.wants_space.store(0, std::memory_order_relaxed);
      doorbell_.notify();
    }
    return ran;
  }
  [[nodiscard]] bool stop() const noexcept { return stop_; }

private:
  void run(std::span<const std::byte> msg) {
    slot_.used.store(1, std::memory_order_relaxed);
    slot_.task_start.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    begin_items(slot_.started.load(std::memory_order_relaxed) + 1);
    slot_.started.fetch_add(1, std::memory_order_seq_cst);
    run_task(msg, out_);
    if (::__fpending(stdout) != 0) std::fflush(stdout);  // the task's lines reach the parent now, not at exit
  }
  /// Publishes the smoothed time per task (the parent sizes its window by it).
  void note_time(Clock::time_point first, std::size_t ran) noexcept {
    const auto per = static_cast<std::uint64_t>((Clock::now() - first).count()) / ran;
    const std::uint32_t old = slot_.task_ns.load(std::memory_order_relaxed);
    const std::uint64_t avg = old == task_ns_unknown ? per : (3 * std::uint64_t{old} + per) / 4;
    slot_.task_ns.store(static_cast<std::uint32_t>(std::min<std::uint64_t>(avg, task_ns_unknown - 1)),
                        std::memory_order_relaxed);
  }

  /// Appends a part; true when the message is complete.
  bool add_part(std::span<const std::byte> msg) {
    PartHeader h;
    std::memcpy(&h, msg.data(), sizeof h);
    if (h.offset == 0) {
      buf_.clear();
      buf_.reserve(static_cast<std::size_t>(h.total));
    }
    if (h.offset != buf_.size()) return false;  // the start of this message was lost
    buf_.insert(buf_.end(), msg.begin() + sizeof h, msg.end());
    return buf_.size() == h.total;
  }

  SpscChannel& tasks_;
  WorkerSlot& slot_;
  ResultOut& out_;
  Doorbell& doorbell_;
  std::vector<std::byte> buf_;
  bool stop_ = false;
};

/// The worker loop: run the initializer, then read tasks until told to stop
/// or maxtasks is reached. Returns the exit code. Runs in the worker process.
inline int worker_main(const PoolSegment& seg, unsigned i, std::span<const std::byte> initializer,
                       const WorkerLimits& limits) {
  apply_memory_limit(limits.memory);
  const unsigned maxtasks = limits.maxtasks;
  WorkerSlot& slot = seg.slot(i);
  SpscChannel tasks = seg.task_channel(i);
  SpscChannel results = seg.result_channel(i);
  if (!initializer.empty()) {
    slot.used.store(1, std::memory_order_seq_cst);
    InitializerOut init;
    run_task(initializer, init);
    if (init.failed()) {  // stderr reaches the parent's stderr (the spawner forwards it)
      std::fprintf(stderr, "mp::Pool worker %d: its initializer threw: %s\n", static_cast<int>(::getpid()),
                   init.what().c_str());
      return initializer_failed_exit;
    }
  }
  ChannelOut out(results, limits.max_result);
  TaskReader reader(tasks, slot, out, seg.ctl().doorbell);
  std::size_t done = 0;
  while (!reader.stop()) {
    const std::size_t max = maxtasks != 0 ? maxtasks - done : 256;
    done += reader.run_some(max);
    if (maxtasks != 0 && done >= maxtasks) break;
  }
  return 0;
}

}  // namespace mp::detail
