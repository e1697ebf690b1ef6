// mp/detail/ring_view.hpp - one process's view of a ring and the frame-level
// steps that Ring's writer and reader paths are built from.
//
// detail::RingView holds what a process keeps of a ring (pointers into its
// own mapping, the capacity, cached positions; process-local) and the steps
// both ends share: frame header access, publish (writer) and consume
// (reader) with their commit logs, waiting for free space, the checks of the
// control block's positions, and the validation of a frame header. Ring
// (ring.hpp) derives from it privately; ReadCursor (ring_reassembly.hpp) is
// its friend and consumes through it. See ring_layout.hpp for the layout and
// the frame format.
#pragma once

#include <bit>
#include <cstring>
#include <new>
#include <span>
#include <string>

#include <mp/detail/ring_layout.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

class RingView {
public:
  static constexpr std::size_t header_bytes = sizeof(RingHeader);

protected:
  friend struct ReadCursor;

  RingView() = default;
  RingView(std::byte* base, std::size_t offset)
      : h_(std::launder(reinterpret_cast<RingHeader*>(base + offset))),
        data_(base + offset + header_bytes),
        bell_(h_->doorbell != 0 ? std::launder(reinterpret_cast<Doorbell*>(base + h_->doorbell)) : nullptr),
        cap_(h_->capacity),
        mask_(h_->capacity - 1) {}

  static void copy(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
    if (n != 0) std::memcpy(dst, src, n);
  }

  [[nodiscard]] std::byte* at(std::uint64_t pos) const noexcept { return data_ + (pos & mask_); }

  [[nodiscard]] FrameHeader get_header(std::uint64_t pos) const noexcept {
    FrameHeader fh;
    std::memcpy(&fh, at(pos), sizeof fh);
    return fh;
  }

  void put_header(std::uint64_t pos, std::uint64_t len, FrameType type) noexcept {
    const FrameHeader fh = make_frame(static_cast<std::uint32_t>(len), type, pos);
    std::memcpy(at(pos), &fh, sizeof fh);
  }

  // -- writer side --

  /// Whether [pos, pos + need) is free. cached_tail_ may be any number of
  /// laps behind (another producer process wrote since), hence no cap - used.
  bool has_free(std::uint64_t pos, std::uint64_t need) noexcept {
    if (pos - cached_tail_ + need <= cap_) return true;
    cached_tail_ = h_->tail.load(std::memory_order_acquire);
    return pos - cached_tail_ + need <= cap_;
  }

  bool wait_free(std::uint64_t pos, std::uint64_t need, Clock::time_point deadline) {
    if (has_free(pos, need)) return true;
    return spin_then_wait(h_->space_word, h_->space_waiters, [&] { return has_free(pos, need); }, deadline);
  }

  /// Makes [head, new_head) visible; `completes` messages end in it. The
  /// commit log lets repair_writer() fix `written` if we die in between.
  void publish(std::uint64_t new_head, std::uint64_t completes) noexcept {
    if (completes != 0) {
      const std::uint64_t w = h_->written.load(std::memory_order_relaxed) + completes;
      h_->w_commit_head.store(new_head, std::memory_order_relaxed);
      h_->w_commit_written.store(w, std::memory_order_relaxed);
      h_->head.exchange(new_head, std::memory_order_seq_cst);  // a full barrier (xchg), cheaper than mfence
      h_->written.store(w, std::memory_order_release);
    } else {
      h_->head.exchange(new_head, std::memory_order_seq_cst);
    }
    wake_reader();
  }

  /// Wakes a reader asleep for data, and the doorbell it may sleep on. Call
  /// after a full barrier that follows the publish.
  void wake_reader() noexcept {
    wake_if_waiting(h_->data_word, h_->data_waiters);
    if (bell_ != nullptr) wake_if_waiting(bell_->seq, bell_->waiters);
  }

  /// Wakes a writer asleep for space. Call after a full barrier that follows
  /// the consume.
  void wake_writer() noexcept { wake_if_waiting(h_->space_word, h_->space_waiters); }

  /// The writer's position where a header may go at the end of the data area
  /// (PAD, fragments, ABORT); one that is not a multiple of 8 (a corrupted
  /// control block) would put the header across the end.
  std::uint64_t writer_head() const {
    const std::uint64_t pos = h_->head.load(std::memory_order_relaxed);
    if (pos % frame_align != 0) [[unlikely]] corrupt_positions(false);
    return pos;
  }

  // -- reader side --

  /// pos: the reader's tail, a multiple of 8 (read() checked it).
  bool has_data(std::uint64_t pos) {
    if (cached_head_ > pos) return true;
    return checked_head(pos) > pos;
  }

  /// Loads head (into cached_head_) and checks it against the reader's tail,
  /// a multiple of 8: head - tail must be a multiple of 8 in [0, capacity], as
  /// every writer and reader keeps it. Anything else is a corrupted control
  /// block: the reader throws rather than scan up to such a head (a hang) or
  /// read a header across the end of the data area. One compare: rotating
  /// the distance right by 3 moves any of its low 3 bits to the top.
  std::uint64_t checked_head(std::uint64_t tail) {
    const std::uint64_t head = h_->head.load(std::memory_order_acquire);
    if (std::rotr(head - tail, 3) > (cap_ >> 3)) [[unlikely]] corrupt_positions(true);
    return cached_head_ = head;
  }

  /// Outside the documented model (something wrote over the control block):
  /// throws mp::DecodeError to a reader, mp::Error to a writer, and changes
  /// nothing, so every later call throws too until the positions are sane.
  [[noreturn, gnu::cold, gnu::noinline]] void corrupt_positions(bool reader) const {
    const std::string msg = "mp: the control block of a shared-memory channel is corrupt (head " +
                            std::to_string(h_->head.load()) + ", tail " + std::to_string(h_->tail.load()) +
                            ", capacity " + std::to_string(cap_) + "; they must be multiples of 8 with " +
                            "tail <= head <= tail + capacity): the channel is unusable";
    if (reader) throw DecodeError(msg);
    throw Error(msg);
  }

  /// Moves tail to `next`; `completes` messages were consumed. Commit log
  /// first, so repair_reader() can fix `read` if we die in between.
  void consume(std::uint64_t next, std::uint64_t completes) noexcept {
    if (completes != 0) {
      const std::uint64_t r = h_->read.load(std::memory_order_relaxed) + completes;
      h_->r_commit_tail.store(next, std::memory_order_relaxed);
      h_->r_commit_read.store(r, std::memory_order_relaxed);
      h_->tail.exchange(next, std::memory_order_seq_cst);  // full barrier before checking for sleepers
      h_->read.store(r, std::memory_order_release);
    } else {
      h_->tail.exchange(next, std::memory_order_seq_cst);
    }
    wake_writer();
  }

  /// Consumes up to `pos` on scope exit, also when a callback throws.
  struct BatchCommit {
    RingView* ring;
    std::uint64_t pos;
    std::uint64_t count;
    ~BatchCommit() {
      if (pos != ring->h_->tail.load(std::memory_order_relaxed)) ring->consume(pos, count);
    }
  };

  template <class F>
  void deliver(F& on_msg, std::span<const std::byte> msg, std::uint64_t next) {
    BatchCommit c{this, next, 1};
    on_msg(msg);
  }

  [[nodiscard]] bool valid(const FrameHeader& fh, std::uint64_t pos) const noexcept {
    const std::uint32_t raw = fh.tag & 0xffu;
    if (raw < 1 || raw > 6) return false;
    const FrameType type = frame_type(fh);
    if ((fh.tag >> 8) != frame_check(fh.len, type, pos)) return false;
    const std::uint64_t idx = pos & mask_, size = frame_bytes(fh.len);
    if (type == FrameType::pad) return size == cap_ - idx && pos + size <= cached_head_;
    if (type == FrameType::abort && fh.len != 0) return false;
    if (type == FrameType::first && fh.len < sizeof(std::uint64_t)) return false;
    return idx + size <= cap_ && pos + size <= cached_head_;
  }

  RingHeader* h_ = nullptr;
  std::byte* data_ = nullptr;
  Doorbell* bell_ = nullptr;
  std::uint64_t cap_ = 0;
  std::uint64_t mask_ = 0;
  std::uint64_t cached_tail_ = 0;  ///< writer's last view of tail (only ever behind: safe)
  std::uint64_t cached_head_ = 0;  ///< reader's last view of head (only ever behind: safe)
};

}  // namespace mp::detail
