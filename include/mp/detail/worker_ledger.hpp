// mp/detail/worker_ledger.hpp - the fork backend's ledger of one worker: the
// parent's side of it: its two channels and shared slot, the FIFO of tasks in flight to
// it, a message being written in parts, and why the parent had it killed
// (a task timeout or a cancel). Everything here runs under the backend's
// mutex; the backend (fork_backend.hpp) decides which worker gets what.
//
// In-flight accounting. Tasks enter the FIFO in the order their messages
// enter the task channel; the worker answers in that order. It bumps
// WorkerSlot::started as it begins each task, so of the FIFO the first
// (started - answered - 1) entries have finished with their results still
// unread, the next one is running, the rest wait in the channel.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <mp/detail/backend.hpp>
#include <mp/detail/pool_layout.hpp>
#include <mp/detail/pool_reader.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// The most tasks one worker may have in flight (short tasks).
inline constexpr std::int64_t max_window = 8192;

/// A copy of a task's message, kept while it is in flight when retries are
/// on, and how many of its runs were lost so far.
struct KeptCopy {
  std::vector<std::byte> bytes;
  unsigned attempts = 0;
};

/// A task whose message is in a worker's channel (or being streamed there).
/// Small (32 bytes): one is pushed and popped per task.
struct InFlight {
  std::shared_ptr<Sink> sink;
  std::size_t index = 0;
  std::unique_ptr<KeptCopy> kept;  // only when retries are on
};

/// A task message waiting in the parent.
struct Pending {
  std::vector<std::byte> bytes;
  std::shared_ptr<Sink> sink;
  std::size_t index = 0;
  std::size_t written = 0;  // bytes already in a channel, while streaming
  unsigned attempts = 0;

  /// A copy of the bytes when `keep` (a retry may need them), else none.
  [[nodiscard]] std::unique_ptr<KeptCopy> copy_if(bool keep) const {
    return keep ? std::make_unique<KeptCopy>(KeptCopy{bytes, attempts}) : nullptr;
  }
};

/// Takes sink s's tasks out of q, in order.
inline std::vector<Pending> take_pending_of(std::deque<Pending>& q, const Sink* s) {
  std::vector<Pending> out;
  auto mine = [s](const Pending& p) { return p.sink.get() == s; };
  auto first = std::stable_partition(q.begin(), q.end(), [&](const Pending& p) { return !mine(p); });
  std::move(first, q.end(), std::back_inserter(out));
  q.erase(first, q.end());
  return out;
}

/// The task for which the parent had the spawner kill a worker. Holds the
/// sink, so no later task can be mistaken for it by its address.
struct Doom {
  std::shared_ptr<Sink> sink;
  std::size_t index = 0;
  std::exception_ptr error;  // TimeoutError or CancelledError
};

/// The error of a task cancelled by AsyncResult::cancel.
inline std::exception_ptr cancelled_error(bool running) {
  return std::make_exception_ptr(CancelledError(
      running ? "mp::Pool: this task was cancelled while it ran; its worker was killed and replaced"
              : "mp::Pool: this task was cancelled before it started"));
}

/// "2 s", "250 ms": a timeout as a sentence says it.
inline std::string describe_duration(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

/// The error of a task that ran past PoolOptions::task_timeout.
inline std::exception_ptr timeout_error(Clock::duration timeout, pid_t pid) {
  return std::make_exception_ptr(TaskTimeoutError("mp::Pool: the task ran longer than its timeout of " +
                                              describe_duration(timeout) + "; its worker " + std::to_string(pid) +
                                              " was killed and replaced"));
}

/// How often the result thread looks for tasks past `timeout`: a quarter
/// of it, 1 to 10 ms.
inline Clock::duration timeout_check_step(Clock::duration timeout) {
  return std::clamp<Clock::duration>(timeout / 4, std::chrono::milliseconds(1), std::chrono::milliseconds(10));
}

/// The parent's ledger of worker slot i: what it sent there and what came
/// back. Not movable (an atomic flag): held in a std::deque.
struct WorkerLedger {
  WorkerLedger(const PoolSegment& seg, unsigned i)
      : tasks(seg.task_channel(i)), results(seg.result_channel(i)), slot(&seg.slot(i)) {}

  /// Worker ledgers for slots 0..n-1 of seg.
  static std::deque<WorkerLedger> for_slots(const PoolSegment& seg, unsigned n) {
    std::deque<WorkerLedger> all;
    for (unsigned i = 0; i < n; ++i) all.emplace_back(seg, i);
    return all;
  }

  SpscChannel tasks, results;
  WorkerSlot* slot;
  std::deque<InFlight> inflight;
  std::optional<Pending> streaming;  // a fragmented message half written
  unsigned sent = 0;                 // tasks sent to the current process
  std::uint64_t answered = 0;        // results received from it
  bool dead = false;                 // reported dead, replacement not asked yet
  bool want_space = false;
  bool stop_sent = false;            // join's empty message is in the channel
  std::uint64_t idle_since = 0;      // the backend's idle clock when its last task was answered
  std::atomic<bool> want_space_flag{false};  // want_space, for the lock-free wait check
  std::optional<Doom> doom;          // its death was asked for (timeout, cancel)

  /// Sends one message if it fits now; never blocks.
  template <class Enc>
  static bool try_send(SpscChannel& ch, std::size_t n, Enc& enc) {
    return ch.send(n, enc, Clock::time_point::min());
  }

  /// Tasks it may have in flight: `min`, or ~1 ms of its work when its
  /// tasks are short (it measures them: WorkerSlot::task_ns).
  [[nodiscard]] std::size_t window(unsigned min) const noexcept {
    const std::int64_t ns = std::max<std::uint32_t>(1, slot->task_ns.load(std::memory_order_relaxed));
    return std::max<std::size_t>(min, static_cast<std::size_t>(std::min(max_window, 1'000'000 / ns)));
  }

  /// The front task, answered (by a result or an error); notes when the
  /// worker ran out of tasks on the backend's idle clock.
  InFlight take_answered(std::uint64_t& idle_clock) {
    InFlight e = std::move(inflight.front());
    inflight.pop_front();
    ++answered;
    if (inflight.empty()) idle_since = ++idle_clock;
    return e;
  }

  /// The task it is running now, or nullptr (also when already doomed).
  [[nodiscard]] const InFlight* running() const {
    if (dead || doom) return nullptr;
    const std::uint64_t started = slot->started.load(std::memory_order_seq_cst);
    if (started <= answered) return nullptr;
    const std::uint64_t k = started - answered - 1;
    return k < inflight.size() ? &inflight[static_cast<std::size_t>(k)] : nullptr;
  }

  /// Whether the task it runs began more than `timeout` before `now`.
  [[nodiscard]] bool ran_longer(Clock::time_point now, Clock::duration timeout) const noexcept {
    const std::int64_t began = slot->task_start.load(std::memory_order_relaxed);
    return now.time_since_epoch().count() - began > timeout.count();
  }

  /// Writes now, or asks the worker to ring the doorbell when it frees space
  /// (and tries once more: it may have freed it in between).
  template <class Enc>
  bool try_write_or_want(std::size_t n, Enc& enc) {
    if (try_send(tasks, n, enc)) return true;
    want_space = true;
    want_space_flag.store(true, std::memory_order_relaxed);
    slot->wants_space.store(1, std::memory_order_seq_cst);
    if (try_send(tasks, n, enc)) {
      want_space = false;
      return true;
    }
    return false;
  }

  void send_stop() {
    auto none = [](std::byte*) {};
    if (try_write_or_want(0, none)) stop_sent = true;
  }

  /// Writes the parts of the streaming message while they fit.
  void stream(std::size_t part_limit) {
    Pending& p = *streaming;
    while (p.written < p.bytes.size()) {
      const std::size_t len = std::min(part_limit, p.bytes.size() - p.written);
      auto enc = [&](std::byte* out) {
        const PartHeader h{part_magic, p.bytes.size(), p.written};
        std::memcpy(out, &h, sizeof h);
        std::memcpy(out + sizeof h, p.bytes.data() + p.written, len);
      };
      if (!try_write_or_want(sizeof(PartHeader) + len, enc)) return;
      p.written += len;
    }
    streaming.reset();
  }

  /// After its death: the task it was running (the front of the FIFO), if
  /// it was the one doomed, goes to `doomed` with the reason; else, with a
  /// kept copy and attempts left below `retries`, to `retry`; else to
  /// `lost`. A task that merely began when a kill meant for its finished
  /// predecessor landed stays in the FIFO (take_unstarted re-runs it).
  void take_running(unsigned retries, std::vector<InFlight>& lost,
                    std::vector<std::pair<InFlight, std::exception_ptr>>& doomed, std::vector<Pending>& retry) {
    InFlight& e = inflight.front();
    if (doom && (doom->sink != e.sink || doom->index != e.index)) return;
    InFlight x = std::move(e);
    inflight.pop_front();
    if (doom) {
      doomed.emplace_back(std::move(x), doom->error);
    } else if (x.kept && x.kept->attempts < retries) {
      retry.push_back(Pending{std::move(x.kept->bytes), std::move(x.sink), x.index, 0, x.kept->attempts + 1});
    } else {
      lost.push_back(std::move(x));
    }
  }

  /// After its death: the tasks it had not begun, oldest first, read back
  /// from its task channel (or from kept copies); those whose bytes are
  /// gone go to `lost`. Empties the FIFO.
  std::deque<Pending> take_unstarted(std::vector<InFlight>& lost) {
    std::deque<Pending> back;
    const std::size_t from_ring = inflight.size() - (streaming ? 1 : 0);
    auto msgs = read_back_tasks(tasks);
    const std::size_t have = std::min(from_ring, msgs.size());
    for (std::size_t k = 0; k < from_ring; ++k) {
      InFlight& e = inflight[k];
      const unsigned attempts = e.kept ? e.kept->attempts : 0;
      if (k + have >= from_ring) {
        back.push_back({std::move(msgs[msgs.size() - from_ring + k]), std::move(e.sink), e.index, 0, attempts});
      } else if (e.kept) {  // gone from the ring: re-run from the kept copy
        back.push_back({std::move(e.kept->bytes), std::move(e.sink), e.index, 0, attempts});
      } else {
        lost.push_back(std::move(e));
      }
    }
    if (streaming) {
      streaming->written = 0;
      back.push_back(std::move(*streaming));
      streaming.reset();
    }
    inflight.clear();
    return back;
  }

  /// Fresh channels and slot for worker i's replacement.
  void reset(const PoolSegment& seg, unsigned i) {
    seg.create_channels(i);
    tasks = seg.task_channel(i);
    results = seg.result_channel(i);
    sent = 0;
    answered = 0;
    want_space = false;
    stop_sent = false;
    doom.reset();
    want_space_flag.store(false);
    slot->started.store(0);
    slot->used.store(0);
    slot->task_ns.store(task_ns_unknown);
    slot->wants_space.store(0);
  }
};

}  // namespace mp::detail
