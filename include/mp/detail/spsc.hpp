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
  template <class F>
  std::size_t recv_batch(F&& on_msg, std::size_t max, Clock::time_point deadline = Clock::time_point::max()) {
    if (const std::size_t n = ring_.read_batch(on_msg, max, cur_); n != 0) return n;
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

private:
  explicit SpscChannel(Ring r) : ring_(r) {}
  Ring ring_;
  ReadCursor cur_;
};

}  // namespace mp::detail
