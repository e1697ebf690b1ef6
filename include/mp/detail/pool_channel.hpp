// mp/detail/pool_channel.hpp - the pool's single-producer single-consumer
// message channel between the parent and one worker, placed at an offset
// inside the pool's one anonymous segment.
//
// Layout of one channel (all offsets from the channel's start):
//
//   0    +-----------------------------------------------+
//        | tail u64 (producer)  | wants_space u32        |
//   64   +-----------------------------------------------+
//        | head u64 (consumer)                            |
//   128  +-----------------------------------------------+
//        | data_bell  {seq u32, sleepers u32}             |
//   192  +-----------------------------------------------+
//        | space_bell {seq u32, sleepers u32}             |
//   256  +-----------------------------------------------+
//        | data: capacity bytes of records                |
//        +-----------------------------------------------+
//
// A record is an 8-byte header {u32 length, u32 flags} and the payload padded
// to 8 bytes. flags: pad (skip to the start of the buffer), more (a fragment:
// the message continues in the next record). head and tail count bytes for
// ever (u64), so position = counter % capacity. A message longer than
// max_record() travels as fragments, reassembled by the reader.
//
// Waiting: a Bell is a futex sequence word and a sleeper count. A waiter
// spins, then counts itself in, re-checks its condition and sleeps on seq; a
// ringer publishes its data, then (seq_cst fence) bumps seq and wakes only if
// someone sleeps. So a busy channel makes no system calls.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <mp/detail/config.hpp>
#include <mp/detail/futex.hpp>

namespace mp::detail {

/// A futex doorbell in shared memory.
struct Bell {
  std::atomic<std::uint32_t> seq{0};
  std::atomic<std::uint32_t> sleepers{0};

  /// Wakes every sleeper if there is one. Call after publishing the data the
  /// sleepers wait for. Never blocks; safe across processes.
  void ring() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_relaxed) != 0) {
      seq.fetch_add(1, std::memory_order_release);
      futex_wake_all(seq);
    }
  }

  /// Spins for about spin_ns, then sleeps until ready() or the deadline.
  /// Returns ready() at the end. Blocks; safe across processes.
  template <class Ready>
  bool wait(Ready&& ready, std::int64_t spin_ns, Clock::time_point deadline = Clock::time_point::max()) {
    if (ready()) return true;
    if (spin_ns > 0) {
      const auto stop = Clock::now() + std::chrono::nanoseconds(spin_ns);
      do {
        for (int i = 0; i < 64; ++i) {
          cpu_relax();
          if (ready()) return true;
        }
      } while (Clock::now() < stop);
    }
    for (;;) {
      const std::uint32_t s = seq.load(std::memory_order_acquire);
      sleepers.fetch_add(1, std::memory_order_seq_cst);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      bool ok = ready();
      bool timed_out = false;
      if (!ok) timed_out = !futex_wait(seq, s, deadline);
      sleepers.fetch_sub(1, std::memory_order_relaxed);
      if (ok || ready()) return true;
      if (timed_out) return false;
    }
  }
};

struct alignas(cache_line) ChannelCtl {
  alignas(cache_line) std::atomic<std::uint64_t> tail{0};
  std::atomic<std::uint32_t> wants_space{0};
  alignas(cache_line) std::atomic<std::uint64_t> head{0};
  alignas(cache_line) Bell data_bell;
  alignas(cache_line) Bell space_bell;
};
static_assert(sizeof(ChannelCtl) == 4 * cache_line);

inline constexpr std::uint32_t rec_pad = 1;
inline constexpr std::uint32_t rec_more = 2;
inline constexpr std::size_t rec_header = 8;

/// Bytes one channel with `capacity` bytes of data takes in the segment.
constexpr std::size_t channel_bytes(std::size_t capacity) noexcept { return sizeof(ChannelCtl) + capacity; }

/// A process-local view of one channel. One producer and one consumer; the
/// view of each keeps its own state (the consumer's reassembly buffer).
class Channel {
public:
  Channel() = default;
  /// `base` points at the channel's start; `data_bell` is the bell the
  /// producer rings after writing (the channel's own, or a shared doorbell).
  Channel(std::byte* base, std::size_t capacity, Bell* data_bell) noexcept
      : ctl_(reinterpret_cast<ChannelCtl*>(base)), data_(base + sizeof(ChannelCtl)),
        cap_(capacity), bell_(data_bell ? data_bell : &ctl_->data_bell) {}

  /// Places a fresh, empty channel at base (before any process uses it, or
  /// after both ends are gone).
  static void init(std::byte* base) noexcept { new (base) ChannelCtl(); }
  /// Empties the channel; only when neither end is using it.
  void reset() noexcept {
    ctl_->head.store(0, std::memory_order_relaxed);
    ctl_->tail.store(0, std::memory_order_relaxed);
    ctl_->wants_space.store(0, std::memory_order_relaxed);
    partial_.clear();
  }

  [[nodiscard]] std::size_t max_record() const noexcept { return cap_ / 2 - rec_header; }
  [[nodiscard]] bool empty() const noexcept {
    return ctl_->head.load(std::memory_order_acquire) == ctl_->tail.load(std::memory_order_acquire);
  }
  [[nodiscard]] ChannelCtl& ctl() const noexcept { return *ctl_; }
  [[nodiscard]] Bell& data_bell() const noexcept { return *bell_; }

  // ---- producer ----------------------------------------------------------

  /// Writes one record of n bytes (n <= max_record()) if it fits now: enc(p)
  /// must write exactly n bytes at p. Returns false (nothing written) when
  /// the ring is too full. Never blocks.
  template <class Enc>
  bool try_write(std::size_t n, Enc&& enc, std::uint32_t flags = 0) {
    std::byte* p = reserve(n);
    if (p == nullptr) return false;
    enc(p);
    commit(n, flags);
    return true;
  }

  /// Writes message bytes msg[done..] as fragments while they fit. Returns
  /// the new `done` (== msg.size() when all is written). Never blocks.
  std::size_t try_write_fragments(std::span<const std::byte> msg, std::size_t done) {
    const std::size_t frag = max_record() / 2;
    while (done < msg.size() || msg.empty()) {
      const std::size_t n = std::min(frag, msg.size() - done);
      const bool last = done + n == msg.size();
      if (!try_write(n, [&](std::byte* p) { std::memcpy(p, msg.data() + done, n); }, last ? 0 : rec_more))
        return done;
      done += n;
      if (msg.empty()) break;
    }
    return done;
  }

  /// Writes one message of n bytes, blocking while the ring is full; larger
  /// than max_record() it is encoded to a buffer and sent as fragments.
  template <class Enc>
  void write(std::size_t n, Enc&& enc, std::int64_t spin_ns) {
    if (n <= max_record()) {
      while (!try_write(n, enc)) wait_space(n, spin_ns);
      return;
    }
    std::vector<std::byte> buf(n);
    enc(buf.data());
    std::size_t done = 0;
    while ((done = try_write_fragments(buf, done)) < n) wait_space(max_record() / 2, spin_ns);
  }

  // ---- consumer ----------------------------------------------------------

  /// Delivers the next whole message to cb(std::span<const std::byte>) and
  /// then frees it; returns false when no whole message is there yet
  /// (fragments read so far are kept). Never blocks except inside cb.
  template <class Cb>
  bool try_read(Cb&& cb) {
    for (;;) {
      const std::uint64_t head = ctl_->head.load(std::memory_order_relaxed);
      if (head == ctl_->tail.load(std::memory_order_acquire)) return false;
      const std::size_t pos = static_cast<std::size_t>(head % cap_);
      std::uint32_t hdr[2];
      std::memcpy(hdr, data_ + pos, sizeof hdr);
      const std::size_t len = hdr[0];
      if (hdr[1] & rec_pad) {
        release(head + (cap_ - pos));
        continue;
      }
      const std::byte* payload = data_ + pos + rec_header;
      const std::uint64_t next = head + rec_header + align_up(len, 8);
      if (hdr[1] & rec_more) {
        partial_.insert(partial_.end(), payload, payload + len);
        release(next);
        continue;
      }
      if (partial_.empty()) {
        cb(std::span<const std::byte>(payload, len));
      } else {
        partial_.insert(partial_.end(), payload, payload + len);
        cb(std::span<const std::byte>(partial_));
        partial_.clear();
      }
      release(next);
      return true;
    }
  }

  /// True while a fragmented message is half read.
  [[nodiscard]] bool mid_message() const noexcept { return !partial_.empty(); }

  /// The whole messages still in the ring, oldest first, copied out (for
  /// re-dispatching a dead worker's unstarted tasks). Only when the consumer
  /// is gone. A leading tail of a half-read message comes out as one more
  /// (meaningless) message at the front: callers take the last ones.
  std::vector<std::vector<std::byte>> drain_messages() const {
    std::vector<std::vector<std::byte>> out;
    std::vector<std::byte> cur;
    std::uint64_t head = ctl_->head.load(std::memory_order_acquire);
    const std::uint64_t tail = ctl_->tail.load(std::memory_order_acquire);
    while (head != tail) {
      const std::size_t pos = static_cast<std::size_t>(head % cap_);
      std::uint32_t hdr[2];
      std::memcpy(hdr, data_ + pos, sizeof hdr);
      if (hdr[1] & rec_pad) {
        head += cap_ - pos;
        continue;
      }
      const std::byte* payload = data_ + pos + rec_header;
      cur.insert(cur.end(), payload, payload + hdr[0]);
      head += rec_header + align_up(hdr[0], 8);
      if (hdr[1] & rec_more) continue;
      out.push_back(std::move(cur));
      cur.clear();
    }
    return out;
  }

  /// Blocks until the ring is non-empty or stop() is true (spinning spin_ns
  /// first). For a consumer that owns the channel's own data bell.
  template <class Stop>
  void wait_data(Stop&& stop, std::int64_t spin_ns) {
    bell_->wait([&] { return !empty() || stop(); }, spin_ns);
  }

private:
  std::byte* reserve(std::size_t n) {
    const std::uint64_t tail = ctl_->tail.load(std::memory_order_relaxed);
    const std::uint64_t head = ctl_->head.load(std::memory_order_acquire);
    const std::size_t pos = static_cast<std::size_t>(tail % cap_);
    const std::size_t need = rec_header + align_up(n, 8);
    const std::size_t pad = pos + need > cap_ ? cap_ - pos : 0;
    if (tail + pad + need - head > cap_) return nullptr;
    if (pad != 0) {
      const std::uint32_t hdr[2] = {0, rec_pad};
      std::memcpy(data_ + pos, hdr, sizeof hdr);
      pad_ = pad;
      return data_ + rec_header;
    }
    pad_ = 0;
    return data_ + pos + rec_header;
  }

  void commit(std::size_t n, std::uint32_t flags) {
    const std::uint64_t tail = ctl_->tail.load(std::memory_order_relaxed) + pad_;
    const std::size_t pos = static_cast<std::size_t>(tail % cap_);
    const std::uint32_t hdr[2] = {static_cast<std::uint32_t>(n), flags};
    std::memcpy(data_ + pos, hdr, sizeof hdr);
    ctl_->tail.store(tail + rec_header + align_up(n, 8), std::memory_order_release);
    bell_->ring();
  }

  void release(std::uint64_t next) {
    ctl_->head.store(next, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ctl_->wants_space.load(std::memory_order_relaxed) != 0) {
      ctl_->wants_space.store(0, std::memory_order_relaxed);
      if (space_bell_) space_bell_->ring();
    }
    // Always (not only on wants_space): a producer sleeping on the channel's
    // own space bell may need more than one release before its write fits.
    ctl_->space_bell.ring();
  }

  void wait_space(std::size_t n, std::int64_t spin_ns) {
    auto fits = [&] {
      const std::uint64_t tail = ctl_->tail.load(std::memory_order_relaxed);
      const std::uint64_t head = ctl_->head.load(std::memory_order_acquire);
      return tail - head + 2 * (rec_header + align_up(n, 8)) <= cap_;
    };
    ctl_->wants_space.store(1, std::memory_order_seq_cst);
    ctl_->space_bell.wait(fits, spin_ns);
  }

public:
  /// An extra bell the consumer rings when it frees space that the producer
  /// asked for (the parent's doorbell for task channels).
  Bell* space_bell_ = nullptr;

private:
  ChannelCtl* ctl_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t cap_ = 0;
  Bell* bell_ = nullptr;
  std::size_t pad_ = 0;
  std::vector<std::byte> partial_;
};

}  // namespace mp::detail
