// mp/detail/spsc.hpp - a lock-free single-producer/single-consumer message
// channel in shared memory, for the pool's per-worker task and result rings.
//
// Usage (the pool's segment holds many channels and one doorbell):
//
//   // parent, before fork: lay out offsets, all multiples of cache_line
//   std::size_t bell_off = segment_data_offset;                  // 64 bytes
//   std::size_t ch_off   = bell_off + sizeof(Doorbell);
//   seg.at<Doorbell>(bell_off)->init();
//   auto results = SpscChannel::create(seg.base(), ch_off, 1 << 20, bell_off);
//   ch_off += SpscChannel::bytes_needed(1 << 20);                // next channel
//   ... fork: the child uses its copy of `results` (or attach()) ...
//   // worker:  results.send(n, [&](std::byte* dst) { encode n bytes at dst; });
//   // parent result thread: sleeps on all channels at once
//   bell->wait([&] { return any_of(channels, &SpscChannel::readable) || stopping; });
//   for (auto& ch : channels) ch.try_recv_batch(on_msg, 64);
//
// Rules
// - Exactly one producer (one thread of one process) and one consumer at a
//   time per channel; no lock on the hot path. The object is a process-local
//   view (pointers into this process's mapping, cached positions, and the
//   consumer's reassembly buffer): copy it into a child by fork, or attach().
// - Message boundaries are kept; messages of any size (0 B up to what fits in
//   memory) go through: up to max_whole() bytes as one frame encoded in place,
//   larger ones in fragments while the consumer drains (the consumer must be
//   reading for such a send to finish).
// - A deadline that passes mid-message is harmless: a producer publishes an
//   ABORT (the consumer drops the partial message); a consumer keeps the
//   partial message and the next recv resumes it.
// - A corrupt frame header makes recv throw mp::DecodeError for that message
//   and resynchronise at the next valid frame; later messages are delivered.
//   A corrupted control block (head/tail overwritten) makes every recv throw
//   mp::DecodeError without consuming, and send throw mp::Error rather than
//   write outside the data area.
// - Waiting spins ~20 µs then sleeps on a futex; the fast path makes no
//   system call (wakes happen only when the peer is registered as sleeping).
// - recv_batch paces a consumer that keeps up with a streaming producer: it
//   looks at the producer's head at most once per poll_gap (1 µs), since
//   each look costs the producer a cache-line round trip (see poll_gap).
#pragma once

#include <mp/detail/ring.hpp>

namespace mp::detail {

class SpscChannel {
public:
  /// Bytes a channel of `capacity` data bytes occupies at its offset
  /// (capacity: a power of two, 256 B to 2 GiB; see Ring::round_capacity).
  static constexpr std::size_t bytes_needed(std::size_t capacity) noexcept { return Ring::bytes_needed(capacity); }

  /// Initialises a channel in place at base+offset (a multiple of 64).
  /// doorbell_offset: 0, or the offset from base of an initialised Doorbell
  /// that the producer rings after each publish. Call before fork / before
  /// the peer attaches. Throws std::invalid_argument on a bad offset/capacity.
  static SpscChannel create(std::byte* base, std::size_t offset, std::size_t capacity,
                            std::size_t doorbell_offset = 0) {
    return SpscChannel(Ring::create(base, offset, capacity, doorbell_offset));
  }

  /// A view of a channel already created at base+offset, e.g. by an
  /// unrelated process that mapped a named segment. Throws mp::Error.
  static SpscChannel attach(std::byte* base, std::size_t offset) { return SpscChannel(Ring::attach(base, offset)); }

  SpscChannel() = default;

  // ---- producer ----------------------------------------------------------

  /// Sends one message of n bytes; enc(std::byte* dst) writes exactly n
  /// bytes (straight into the ring when n <= max_whole()). Blocks while the
  /// ring is full, until the deadline; returns false if it passed (the
  /// message is not delivered). Exceptions from enc propagate, nothing sent.
  template <class Enc>
  bool send(std::size_t n, Enc&& enc, Clock::time_point deadline = Clock::time_point::max()) {
    return ring_.write(n, enc, deadline);
  }

  /// This view's sends reuse the start of the ring, already mapped, when the
  /// consumer has emptied it, rather than walk into fresh pages (each a page
  /// fault in both processes). Only for a consumer that keeps reading
  /// (another thread or process): after such a reuse the producer has less
  /// room until the consumer passes the gap. Never blocks.
  void prefer_warm_start() noexcept { ring_.prefer_warm_start(); }

  /// Sends already-encoded bytes as one message; as send().
  bool send_bytes(std::span<const std::byte> msg, Clock::time_point deadline = Clock::time_point::max()) {
    return ring_.write_bytes(msg, deadline);
  }

  // ---- consumer ----------------------------------------------------------

  /// Receives one message: on_msg(std::span<const std::byte>) sees it in
  /// place (valid only during the call); it is consumed when on_msg returns
  /// or throws (the exception propagates). Blocks until a message or the
  /// deadline: true if one was delivered, false on timeout. Throws
  /// mp::DecodeError for a corrupt frame (the channel resynchronises) or a
  /// corrupt control block (nothing is consumed).
  template <class F>
  bool recv(F&& on_msg, Clock::time_point deadline = Clock::time_point::max()) {
    return ring_.read(on_msg, cur_, deadline) == ReadStatus::message;
  }

  /// Receives up to max messages: delivers every published one-frame message
  /// at once (tail moves once: the fast path for many small results); if
  /// none is there, blocks like recv() for one. Returns how many it
  /// delivered (0 only on timeout).
  ///
  /// A consumer that keeps up with a streaming producer (its last call found
  /// more than one message at once and emptied the ring, and it calls again
  /// straight away) first waits until poll_gap has passed since then, so a
  /// message may then wait up to poll_gap longer (see poll_gap for why). A
  /// consumer that found one message or had to wait (a request/reply round
  /// trip: no clock read at all), or that comes back later, is not delayed.
  template <class F>
  std::size_t recv_batch(F&& on_msg, std::size_t max, Clock::time_point deadline = Clock::time_point::max()) {
    pace(deadline);
    if (const std::size_t n = ring_.read_batch(on_msg, max, cur_); n != 0) {
      drained_at_ = n > 1 && n < max ? Clock::now() : Clock::time_point{};
      return n;
    }
    return recv(on_msg, deadline) ? 1 : 0;
  }

  /// As recv_batch but never blocks: returns 0 when nothing complete is
  /// there (a fragmented message in progress is kept and resumed later).
  /// This is what a doorbell-woken consumer calls on each channel.
  template <class F>
  std::size_t try_recv_batch(F&& on_msg, std::size_t max) {
    if (const std::size_t n = ring_.read_batch(on_msg, max, cur_); n != 0) return n;
    if (!ring_.readable()) return 0;
    return ring_.read(on_msg, cur_, Clock::now()) == ReadStatus::message ? 1 : 0;
  }

  /// Whether anything is published and unconsumed (a message, or a frame the
  /// next recv will skip). Cheap, never blocks: the doorbell predicate.
  [[nodiscard]] bool readable() const noexcept { return ring_.readable(); }

  /// Messages sent / received so far, and their difference.
  [[nodiscard]] std::uint64_t sent() const noexcept { return ring_.written(); }
  [[nodiscard]] std::uint64_t received() const noexcept { return ring_.consumed(); }
  [[nodiscard]] std::uint64_t pending() const noexcept { return ring_.messages(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.capacity(); }
  /// Messages up to this size are one frame (encoded in place, read zero-copy).
  [[nodiscard]] std::size_t max_whole() const noexcept { return ring_.max_whole(); }

  /// Forgets a partially received message (e.g. its producer died); the
  /// rest of it, if it ever comes, is skipped.
  void drop_partial() noexcept { cur_.reset(); }

  [[nodiscard]] Ring& ring() noexcept { return ring_; }

  /// How long recv_batch leaves the producer's line alone after it emptied
  /// the ring. Each look at head while the producer writes it moves that
  /// cache line to the consumer's core and back, and the producer's next
  /// publish (a full barrier) waits for it: measured with 8-byte messages
  /// across the two cores of the target VM, a consumer that looks after
  /// every 1-5 messages holds the producer to 5-6 M msg/s; looking at most
  /// once per poll_gap lets it write whole batches into lines it owns
  /// (~24 M msg/s). An idle consumer is not delayed (it polls head on every
  /// spin, see spin_then_wait), nor one that does other work between calls
  /// (it came back later than straight_back).
  static constexpr std::chrono::nanoseconds poll_gap{1'000};
  static constexpr std::chrono::nanoseconds straight_back{250};

private:
  explicit SpscChannel(Ring r) : ring_(r) {}

  /// Spins until poll_gap after the last drain (or the deadline) when the
  /// caller came straight back; touches no shared line meanwhile.
  void pace(Clock::time_point deadline) noexcept {
    if (drained_at_ == Clock::time_point{}) return;
    const Clock::time_point since = drained_at_;
    drained_at_ = {};
    if (Clock::now() - since > straight_back) return;
    const Clock::time_point until = std::min(since + poll_gap, deadline);
    while (Clock::now() < until)
      for (int i = 0; i < 8; ++i) cpu_relax();
  }

  Ring ring_;
  ReadCursor cur_;
  Clock::time_point drained_at_{};  ///< when recv_batch last emptied the ring without waiting
};

}  // namespace mp::detail
