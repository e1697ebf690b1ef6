// mp/detail/ring.hpp - a variable-size message ring in shared memory.
//
// detail::Ring is a view (two pointers and cached positions, process-local)
// of a ring whose control block and data live at an offset inside a segment
// that someone else owns; see ring_layout.hpp for the layout and the frame
// format. One writer and one reader at a time: the SPSC channel uses it
// directly; mp::Queue serialises writers and readers with robust locks and
// calls repair_writer()/repair_reader() when a lock's owner died.
//
// Files: ring_layout.hpp (the shared layout, frames, wait/wake),
// ring_view.hpp (RingView, Ring's base: header access, publish/consume, the
// control-block checks and frame validation), ring_reassembly.hpp
// (ReadCursor: the reader's reassembly of fragmented messages), and this one
// (Ring: create/attach, the write paths, read and read_batch).
//
// Guarantees
// - A message of at most max_whole() bytes is one contiguous frame, encoded
//   in place by the caller's callback; the reader gets a span of it in place
//   and consumes it (moves tail) only after its callback returned or threw,
//   so a reader killed inside the callback leaves the message in the ring.
// - A larger message goes through in fragments (FIRST/MIDDLE/LAST) while the
//   reader drains; it is never truncated. A writer that gives up (deadline)
//   or dies mid-message owes an ABORT, published from the headroom that data
//   frames never use, so the reader drops the partial message.
// - A corrupt or stale frame header is detected by its check and reported as
//   mp::DecodeError; the reader skips to the next valid frame (resync).
// - A fragmented message's total (in FIRST's payload, not covered by the
//   check) is never trusted for memory: the reader holds what arrived plus at
//   most one ring, and a total the fragments do not match exactly drops the
//   message with mp::DecodeError (its remaining fragments are skipped).
// - Outside that model, a corrupted control block (head more than a ring
//   ahead of tail or behind it, or either not a multiple of 8) makes the
//   reader throw mp::DecodeError before it reads or consumes anything, and a
//   writer at an unaligned head throw mp::Error before a header would cross
//   the end: no hang, no access outside the data area.
#pragma once

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <mp/detail/ring_layout.hpp>
#include <mp/detail/ring_reassembly.hpp>
#include <mp/detail/ring_view.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// What Ring::read ended with.
enum class ReadStatus {
  message,  ///< one message was handed to the callback and consumed
  timeout,  ///< the deadline passed (a partial message stays in the cursor)
  stalled,  ///< mid-message, nothing arrived for `stall` (see Ring::read)
};

class Ring : private RingView {
public:
  using RingView::header_bytes;
  /// Bytes data frames leave free, so that a control frame (ABORT) always fits.
  static constexpr std::size_t headroom = 16;
  static constexpr std::size_t min_capacity = 256;
  static constexpr std::size_t max_capacity = std::size_t{1} << 31;

  /// `bytes` rounded up to a power of two within [min_capacity, max_capacity].
  static std::size_t round_capacity(std::size_t bytes) {
    if (bytes > max_capacity) throw std::invalid_argument("mp: a ring holds at most 2 GiB");
    return std::bit_ceil(std::max(bytes, min_capacity));
  }

  /// Bytes a ring of `capacity` data bytes occupies (control block + data);
  /// a multiple of cache_line.
  static constexpr std::size_t bytes_needed(std::size_t capacity) noexcept { return header_bytes + capacity; }

  /// Initialises a ring in place at base+offset (offset a multiple of
  /// cache_line; capacity a power of two in range). doorbell_offset, if not 0,
  /// is the offset from base of an initialised Doorbell rung after every
  /// publish. Call once, before other processes use it. Throws
  /// std::invalid_argument on a bad offset or capacity.
  static Ring create(std::byte* base, std::size_t offset, std::size_t capacity, std::size_t doorbell_offset = 0) {
    if (offset % cache_line != 0) throw std::invalid_argument("mp: a ring's offset must be a multiple of 64");
    if (capacity < min_capacity || capacity > max_capacity || !std::has_single_bit(capacity))
      throw std::invalid_argument("mp: a ring's capacity must be a power of two between 256 B and 2 GiB");
    auto* h = ::new (static_cast<void*>(base + offset)) RingHeader{};
    h->capacity = capacity;
    h->doorbell = doorbell_offset;
    std::atomic_thread_fence(std::memory_order_release);
    h->magic = ring_magic;
    return Ring(base, offset);
  }

  /// A view of the ring already initialised at base+offset (in this or
  /// another process's mapping). Throws mp::Error if there is none.
  static Ring attach(std::byte* base, std::size_t offset) {
    const auto* h = std::launder(reinterpret_cast<const RingHeader*>(base + offset));
    if (h->magic != ring_magic) throw Error("mp: no initialised ring at offset " + std::to_string(offset));
    return Ring(base, offset);
  }

  Ring() = default;

  [[nodiscard]] std::size_t capacity() const noexcept { return static_cast<std::size_t>(cap_); }
  /// The largest message written as one frame (larger ones are fragmented).
  [[nodiscard]] std::size_t max_whole() const noexcept {
    return static_cast<std::size_t>(cap_ - headroom - sizeof(FrameHeader));
  }
  /// Complete messages published / consumed so far (for qsize).
  [[nodiscard]] std::uint64_t written() const noexcept { return h_->written.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t consumed() const noexcept { return h_->read.load(std::memory_order_acquire); }
  /// Messages published and not yet consumed (approximate while others run).
  [[nodiscard]] std::uint64_t messages() const noexcept {
    const std::uint64_t r = consumed(), w = written();
    return w > r ? w - r : 0;
  }
  /// Whether any frame is published and unconsumed (cheap; for doorbell waits).
  [[nodiscard]] bool readable() const noexcept {
    return h_->head.load(std::memory_order_acquire) != h_->tail.load(std::memory_order_relaxed);
  }

  // ---- writer side (one writer at a time) ------------------------------------

  /// This view's writes go back to the start of the data area, instead of
  /// into bytes it never wrote, whenever the reader has consumed everything
  /// (see start_is_warmer). Until the reader passes the PAD this leaves, the
  /// writer has less room than the capacity: only for a channel whose reader
  /// is another thread or process that keeps reading. Never blocks.
  void prefer_warm_start() noexcept { warm_start_ = true; }

  /// Writes one message of n bytes; enc(std::byte* dst) must write exactly n
  /// bytes. In place when n <= max_whole(), else encoded into a temporary and
  /// fragmented. Blocks for space until the deadline; returns false when it
  /// passed (nothing of the message is delivered). If enc throws, nothing is
  /// published and the exception propagates. Throws mp::Error for a corrupted
  /// control block (head not 8-aligned where a header would cross the end).
  template <class Enc>
  bool write(std::size_t n, Enc&& enc, Clock::time_point deadline = Clock::time_point::max()) {
    if (!flush_pending_abort(deadline)) return false;
    if (n <= max_whole()) return write_whole(n, enc, deadline);
    struct Release {  // keep a moderate scratch buffer for the next big message
      std::vector<std::byte>& v;
      ~Release() {
        if (v.capacity() > ReadCursor::keep_bytes) std::vector<std::byte>().swap(v);
      }
    } release{scratch_};
    scratch_.resize(n);
    enc(scratch_.data());
    return write_fragments(std::span<const std::byte>(scratch_.data(), n), deadline);
  }

  /// Writes already-encoded bytes as one message (as write()).
  bool write_bytes(std::span<const std::byte> msg, Clock::time_point deadline = Clock::time_point::max()) {
    if (!flush_pending_abort(deadline)) return false;
    if (msg.size() > max_whole()) return write_fragments(msg, deadline);
    auto enc = [&](std::byte* dst) { copy(dst, msg.data(), msg.size()); };
    return write_whole(msg.size(), enc, deadline);
  }

  /// Publishes the ABORT owed by a writer that stopped mid-message, waiting
  /// for 8 bytes of space until the deadline. true when nothing is owed any more.
  bool flush_pending_abort(Clock::time_point deadline) {
    if (h_->w_in_message.load(std::memory_order_relaxed) == 0) return true;
    const std::uint64_t pos = writer_head();
    if (!wait_free(pos, sizeof(FrameHeader), deadline)) return false;
    put_header(pos, 0, FrameType::abort);
    publish(pos + sizeof(FrameHeader), 0);
    h_->w_in_message.store(0, std::memory_order_relaxed);
    return true;
  }

  /// After the previous writer died (robust lock EOWNERDEAD): repairs the
  /// message counter from the commit log and publishes the ABORT it owed if
  /// there is space (else the next write does). Unpublished bytes stay so.
  /// Wakes a reader the dead writer may have left asleep.
  void repair_writer() {
    if (h_->head.load(std::memory_order_relaxed) == h_->w_commit_head.load(std::memory_order_relaxed))
      h_->written.store(h_->w_commit_written.load(std::memory_order_relaxed), std::memory_order_release);
    flush_pending_abort(Clock::now());
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_reader();  // the wake the dead writer may owe
  }

  /// Blocks (spin, then futex) until ready() or the deadline; woken whenever
  /// the reader consumes. For a writer waiting on something the reader frees
  /// (a queue's maxsize). Returns ready()'s last value.
  template <class Ready>
  bool wait_consumed(Ready&& ready, Clock::time_point deadline) {
    return spin_then_wait(h_->space_word, h_->space_waiters, ready, deadline);
  }

  // ---- reader side (one reader at a time) ------------------------------------

  /// Consumes one message: on_msg(std::span<const std::byte>) gets it (in
  /// place when it was one frame, reassembled in cur.buf otherwise); it is
  /// consumed after on_msg returns or throws (the exception propagates).
  /// Blocks until a message or the deadline (timeout; a partial message stays
  /// in `cur` and the next read resumes it). When mid-message and nothing
  /// arrives for `stall`, returns stalled (the caller may check the writer).
  /// Throws mp::DecodeError for a corrupt frame (after resynchronising) or a
  /// corrupted control block (consuming nothing).
  template <class F>
  ReadStatus read(F&& on_msg, ReadCursor& cur, Clock::time_point deadline = Clock::time_point::max(),
                  Clock::duration stall = Clock::duration::max()) {
    for (;;) {
      const std::uint64_t pos = h_->tail.load(std::memory_order_relaxed);
      if (pos % frame_align != 0) [[unlikely]] corrupt_positions(true);  // has_data needs it
      if (!has_data(pos)) {
        Clock::time_point until = deadline;
        bool stall_limited = false;
        if (cur.in_message && stall != Clock::duration::max() && Clock::now() + stall < deadline) {
          until = Clock::now() + stall;
          stall_limited = true;
        }
        if (!spin_then_wait(h_->data_word, h_->data_waiters, [&] { return has_data(pos); }, until))
          return stall_limited ? ReadStatus::stalled : ReadStatus::timeout;
      }
      const FrameHeader fh = get_header(pos);
      if (!valid(fh, pos)) {
        // A fresh (checked) head; equal to tail only if head moved back (a
        // corrupted control block): nothing is there to skip, so wait again.
        if (checked_head(pos) == pos) [[unlikely]] continue;
        resync(pos, cur);
      }
      if (step(fh, pos, cur, on_msg)) return ReadStatus::message;
    }
  }

  /// Never blocks: consumes up to max one-frame messages already published,
  /// calling on_msg(span) for each, and moves tail once. Stops at a fragment
  /// or a corrupt frame (read() handles those). Returns how many it delivered.
  /// If on_msg throws, that message and those before it are consumed. Throws
  /// mp::DecodeError for a corrupted control block (consuming nothing).
  template <class F>
  std::size_t read_batch(F&& on_msg, std::size_t max, ReadCursor& cur) {
    if (cur.in_message) return 0;
    const std::uint64_t tail = h_->tail.load(std::memory_order_relaxed);
    if (tail % frame_align != 0) [[unlikely]] corrupt_positions(true);
    const std::uint64_t head = checked_head(tail);
    BatchCommit c{this, tail, 0};
    std::size_t n = 0;
    while (n < max && c.pos < head) {
      const FrameHeader fh = get_header(c.pos);
      if (!valid(fh, c.pos)) break;
      const FrameType t = frame_type(fh);
      const std::uint64_t at_pos = c.pos;
      if (t == FrameType::whole) {
        c.pos += frame_bytes(fh.len);
        ++c.count;
        ++n;
        on_msg(std::span<const std::byte>(at(at_pos) + sizeof(FrameHeader), fh.len));
      } else if (t == FrameType::pad || t == FrameType::abort) {
        c.pos += frame_bytes(fh.len);
      } else {
        break;
      }
    }
    return n;
  }

  /// After the previous reader died (robust lock EOWNERDEAD): repairs the
  /// consumed counter from the commit log. A message it had half reassembled
  /// is skipped by the next read (its remaining fragments are orphans).
  /// Wakes a writer the dead reader may have left asleep.
  void repair_reader() noexcept {
    if (h_->tail.load(std::memory_order_relaxed) == h_->r_commit_tail.load(std::memory_order_relaxed))
      h_->read.store(h_->r_commit_read.load(std::memory_order_relaxed), std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_writer();  // the wake the dead reader may owe
  }

private:
  Ring(std::byte* base, std::size_t offset) : RingView(base, offset) {}

  // -- writer internals --

  template <class Enc>
  bool write_whole(std::size_t n, Enc& enc, Clock::time_point deadline) {
    const std::uint64_t frame = frame_bytes(n);
    std::uint64_t pos = h_->head.load(std::memory_order_relaxed);
    const std::uint64_t to_end = cap_ - (pos & mask_);
    // (A frame that fits before the end stays inside the data area even at an
    // unaligned head; only the PAD's header could cross it: see writer_head.)
    // Would straddle the end, or the start is free and warmer: PAD to the end, frame at 0.
    if (frame > to_end || start_is_warmer(pos, frame)) {
      if (pos % frame_align != 0) [[unlikely]] corrupt_positions(false);
      if (!wait_free(pos, to_end + headroom, deadline)) return false;
      put_header(pos, to_end - sizeof(FrameHeader), FrameType::pad);
      pos += to_end;
      if (!has_free(pos, frame + headroom)) publish(pos, 0);  // let the reader pass it
    }
    if (!wait_free(pos, frame + headroom, deadline)) return false;
    enc(at(pos) + sizeof(FrameHeader));
    put_header(pos, n, FrameType::whole);
    publish(pos + frame, 1);
    warm_end_ = std::max(warm_end_, (pos & mask_) + frame);
    return true;
  }

  /// Whether a frame of `frame` bytes at pos had better go at the start of
  /// the data area: it would reach bytes past any this writer wrote (fresh
  /// pages: a page fault in each process that touches them, tens of
  /// microseconds each on a VM), while the reader has consumed everything,
  /// so the start, already mapped and in cache, is free. Request/reply
  /// traffic thus stays in the first pages instead of walking the ring.
  /// Only for a writer that prefer_warm_start() enabled: until the reader
  /// takes the PAD, the writer has only the bytes before pos.
  bool start_is_warmer(std::uint64_t pos, std::uint64_t frame) noexcept {
    const std::uint64_t idx = pos & mask_;
    if (!warm_start_ || idx == 0 || idx + frame <= warm_end_ || frame + headroom > idx) return false;
    cached_tail_ = h_->tail.load(std::memory_order_acquire);
    return cached_tail_ == pos;
  }

  bool write_pad(std::uint64_t pos, std::uint64_t to_end, Clock::time_point deadline) {
    if (!wait_free(pos, to_end + headroom, deadline)) return false;
    put_header(pos, to_end - sizeof(FrameHeader), FrameType::pad);
    publish(pos + to_end, 0);
    return true;
  }

  bool abandon_message() {
    flush_pending_abort(Clock::now());
    return false;
  }

  /// One fragment of msg from `off` at the current head, as large as the
  /// free contiguous space allows; returns the bytes of msg it carried.
  std::size_t write_fragment(std::span<const std::byte> msg, std::size_t off, std::uint64_t pos, std::uint64_t to_end) {
    const bool first = off == 0;
    const std::uint64_t extra = first ? sizeof(std::uint64_t) : 0;
    const std::uint64_t room = std::min(to_end, cap_ - (pos - cached_tail_) - headroom);
    std::uint64_t chunk = std::min<std::uint64_t>(msg.size() - off, room - sizeof(FrameHeader) - extra);
    if (first) chunk = std::min<std::uint64_t>(chunk, msg.size() - 1);  // LAST always follows FIRST
    const FrameType type = first ? FrameType::first
                           : off + chunk == msg.size() ? FrameType::last : FrameType::middle;
    std::byte* dst = at(pos) + sizeof(FrameHeader);
    if (first) {
      const std::uint64_t total = msg.size();
      std::memcpy(dst, &total, sizeof total);
    }
    copy(dst + extra, msg.data() + off, static_cast<std::size_t>(chunk));
    put_header(pos, chunk + extra, type);
    if (first) h_->w_in_message.store(1, std::memory_order_relaxed);
    publish(pos + frame_bytes(chunk + extra), type == FrameType::last ? 1 : 0);
    if (type == FrameType::last) h_->w_in_message.store(0, std::memory_order_relaxed);
    return static_cast<std::size_t>(chunk);
  }

  bool write_fragments(std::span<const std::byte> msg, Clock::time_point deadline) {
    const std::uint64_t target = std::max<std::uint64_t>(cap_ / 4, 64);
    std::size_t off = 0;
    while (off < msg.size()) {
      const std::uint64_t pos = writer_head();
      const std::uint64_t to_end = cap_ - (pos & mask_);
      if (to_end < 64) {
        if (!write_pad(pos, to_end, deadline)) return abandon_message();
        continue;
      }
      const std::uint64_t all = frame_bytes(msg.size() - off + (off == 0 ? sizeof(std::uint64_t) : 0));
      if (!wait_free(pos, std::min({all, to_end, target}) + headroom, deadline)) return abandon_message();
      off += write_fragment(msg, off, pos, to_end);
    }
    return true;
  }

  // -- reader internals --

  /// Skips to the next valid frame before cached_head_, which the caller has
  /// just checked (> pos, at most capacity ahead: at most capacity/8 steps).
  [[noreturn]] void resync(std::uint64_t pos, ReadCursor& cur) {
    const std::uint64_t head = cached_head_;
    std::uint64_t p = pos + frame_align;
    while (p < head && !valid(get_header(p), p)) p += frame_align;
    cur.reset();
    consume(std::min(p, head), 1);
    throw DecodeError("mp: corrupt frame header in a shared-memory channel at byte " + std::to_string(pos) +
                      "; that message was dropped and the channel resumes at byte " +
                      std::to_string(std::min(p, head)));
  }

  /// Handles the frame at pos; true when it delivered a message.
  template <class F>
  bool step(const FrameHeader& fh, std::uint64_t pos, ReadCursor& cur, F& on_msg) {
    const std::uint64_t next = pos + frame_bytes(fh.len);
    const std::byte* payload = at(pos) + sizeof(FrameHeader);
    switch (frame_type(fh)) {
      case FrameType::whole:
        cur.reset();  // a partial message without LAST or ABORT is dropped
        deliver(on_msg, std::span<const std::byte>(payload, fh.len), next);
        return true;
      case FrameType::first:
        cur.begin_message(*this, fh, payload, next);
        return false;
      case FrameType::middle:
        if (cur.in_message) cur.append(*this, payload, fh.len, next, 0);
        consume(next, 0);  // without FIRST: an orphan of a reader that died mid-message
        return false;
      case FrameType::last:
        return cur.finish(*this, fh, payload, next, on_msg);
      case FrameType::abort:
        cur.reset();
        consume(next, 0);
        return false;
      case FrameType::pad: break;
    }
    consume(next, 0);
    return false;
  }

  std::uint64_t warm_end_ = 0;     ///< writer: the furthest data offset its whole frames reached
  bool warm_start_ = false;        ///< writer: prefer_warm_start() was called
  std::vector<std::byte> scratch_;  ///< writer's encoding buffer for fragmented messages
};

}  // namespace mp::detail