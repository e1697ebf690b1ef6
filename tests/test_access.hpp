// tests/test_access.hpp - what tests reach inside mp: each class declares
// mp::detail::TestAccess its friend, and only the tests define it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <mp/detail/config.hpp>
#include <mp/detail/ring_layout.hpp>

namespace mp::detail {

struct TestAccess {
  /// The shared layout of an Event, Condition or Barrier, through which a
  /// test leaves what a process killed in the middle of an operation would.
  template <class Primitive>
  static auto& layout(Primitive& p) noexcept {
    return *p.s_;
  }

  /// Corrupts the header of worker i's next result frame before the parent
  /// reads it (as a stray write would), waiting up to `wait` for one. Only
  /// a one-frame message is touched. Returns whether it did.
  template <class ForkBackend>
  static bool corrupt_next_result(ForkBackend& b, unsigned i, Clock::duration wait) {
    b.reader_->lock();  // neither the result thread nor a waiter reads meanwhile
    const bool did = b.seg_.corrupt_next_result(i, Clock::now() + wait);
    b.reader_->unlock();
    return did;
  }

  /// How many tasks worker i's current process has begun.
  template <class ForkBackend>
  static std::uint64_t tasks_begun(const ForkBackend& b, unsigned i) noexcept {
    return b.seg_.slot(i).started.load();
  }

  /// The item count of an imap range's next chunk.
  template <class ImapRange>
  static std::size_t imap_next_chunk(const ImapRange& r) noexcept {
    return r.cs_;
  }

  /// A Queue's process-local state: its locks (hdr), its rings (writer,
  /// reader) and the reader's reassembly cursor.
  template <class Queue>
  static auto& queue_state(Queue& q) noexcept {
    return *q.s_;
  }

  /// How far a notifier's wake runs in wake_up_to.
  using WakeStep = Notifier::Step;

  /// The notifier's wake (Notifier::wake_if_waiting), stopped after `upto`.
  static void wake_up_to(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeper,
                         WakeStep upto) noexcept {
    Notifier::run(word, sleeper, upto);
  }
};

}  // namespace mp::detail
