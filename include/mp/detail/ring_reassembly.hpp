// mp/detail/ring_reassembly.hpp - a ring reader's reassembly of fragmented
// messages (FIRST/MIDDLE/LAST frames).
//
// detail::ReadCursor is the reader's process-local state for a message that
// arrives in fragments: the bytes so far, the announced total, and whether a
// FIRST was consumed without its LAST. Ring::read (ring.hpp) hands it each
// fragment; it appends the payload and consumes the frame through the
// RingView, and on LAST hands the whole message to the callback.
//
// FIRST's total is not covered by the header check, so it is never trusted
// for memory: the buffer holds what arrived plus at most one ring. A total
// the fragments do not match exactly drops the message with mp::DecodeError
// (its remaining fragments are then orphans that the reader skips).
#pragma once

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <mp/detail/ring_view.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

/// A reader's reassembly state for fragmented messages (process-local).
struct ReadCursor {
  static constexpr std::size_t keep_bytes = std::size_t{64} << 20;
  /// No message is larger than an address space (2^57 B: x86-64 with 5-level
  /// paging; arm64 has 2^52): a FIRST announcing more is corrupt.
  static constexpr std::uint64_t max_message = std::uint64_t{1} << 57;
  std::vector<std::byte> buf;
  std::uint64_t total = 0;
  bool in_message = false;  ///< FIRST consumed, LAST not yet

  void reset() noexcept {
    in_message = false;
    total = 0;
    if (buf.capacity() > keep_bytes) std::vector<std::byte>().swap(buf);
    else buf.clear();  // keep a moderate buffer: no allocation and page faults per message
  }

  /// FIRST: its payload starts with the message's total size, which the
  /// header check does not cover, so it is not trusted for memory: the buffer
  /// holds what has arrived plus at most one ring and grows as fragments come
  /// (append). The total must exceed FIRST's own data (a writer always sends a
  /// LAST) and fit in an address space; append/finish check the rest.
  void begin_message(RingView& ring, const FrameHeader& fh, const std::byte* payload, std::uint64_t next) {
    reset();
    std::uint64_t announced = 0;
    std::memcpy(&announced, payload, sizeof announced);
    const std::uint64_t data = fh.len - sizeof announced;
    if (announced <= data || announced > max_message)
      drop_message(ring, next, 0, "its first fragment carries " + std::to_string(data) +
                                      " bytes of an impossible total of " + std::to_string(announced));
    total = announced;
    buf.reserve(static_cast<std::size_t>(std::min(announced, data + ring.cap_)));
    buf.insert(buf.end(), payload + sizeof announced, payload + fh.len);
    in_message = true;
    ring.consume(next, 0);
  }

  /// Adds a MIDDLE or LAST fragment's n bytes; more than the announced total
  /// drops the message (DecodeError). Grows geometrically but never beyond the
  /// total, so memory follows the bytes that actually arrived.
  void append(RingView& ring, const std::byte* p, std::uint64_t n, std::uint64_t next, std::uint64_t completes) {
    const std::uint64_t size = buf.size();
    if (n > total - size)
      drop_message(ring, next, completes, "more bytes arrived than the " + std::to_string(total) + " it announced");
    if (size + n > buf.capacity()) {
      const std::uint64_t grown = std::max<std::uint64_t>(2 * buf.capacity(), size + n);
      buf.reserve(static_cast<std::size_t>(std::min(total, grown)));
    }
    buf.insert(buf.end(), p, p + n);
  }

  /// LAST: completes the message and hands it to on_msg, consuming the frame
  /// after on_msg returns or throws; true when it delivered a message (false
  /// for an orphan LAST, whose FIRST this reader never saw).
  template <class F>
  bool finish(RingView& ring, const FrameHeader& fh, const std::byte* payload, std::uint64_t next, F& on_msg) {
    if (!in_message) {  // orphan LAST: the message was counted as written, count it as read
      ring.consume(next, 1);
      return false;
    }
    append(ring, payload, fh.len, next, 1);
    in_message = false;
    if (buf.size() != total)
      drop_message(ring, next, 1, "it reassembled to " + std::to_string(buf.size()) + " bytes but announced " +
                                      std::to_string(total));
    struct Reset {
      ReadCursor& c;
      ~Reset() { c.reset(); }
    } reset_on_exit{*this};
    ring.deliver(on_msg, std::span<const std::byte>(buf), next);
    return true;
  }

  /// Forgets the partial message, consumes up to `next` and throws DecodeError
  /// (its remaining fragments, if any, are skipped as orphans).
  [[noreturn]] void drop_message(RingView& ring, std::uint64_t next, std::uint64_t completes, const std::string& why) {
    reset();
    ring.consume(next, completes);
    throw DecodeError("mp: a shared-memory channel dropped a corrupt fragmented message: " + why);
  }
};

}  // namespace mp::detail
