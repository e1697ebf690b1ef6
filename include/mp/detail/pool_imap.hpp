// mp/detail/pool_imap.hpp - the lazy range Pool::imap / imap_unordered /
// istarmap / istarmap_unordered return.
//
// It reads the input only when a result is wanted, keeps at most `window`
// chunks in flight, and forgets the rest when dropped early: in-flight
// chunks finish into a state nobody reads (their sinks keep it alive).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <utility>
#include <vector>

#include <mp/detail/pool_map.hpp>

namespace mp::detail {

/// imap's default chunks hold at most this many items.
inline constexpr std::size_t imap_max_default_chunk = 4096;
/// A default chunk grows until its items take about this long in a worker.
inline constexpr Clock::duration imap_chunk_target = std::chrono::milliseconds(2);

/// How an imap cuts its input: a fixed chunksize, or (the default) chunks
/// that start at one item and grow, at most doubling per finished chunk,
/// towards imap_chunk_target of work in a worker (as the workers measure
/// it), up to `cap` items and about default_chunk_bytes of encoded input.
struct ImapChunking {
  std::size_t fixed = 0;                    ///< the caller's chunksize; 0: adaptive
  std::size_t cap = imap_max_default_chunk;  ///< adaptive chunks hold at most this many items
};

/// T: the item type sent (the input's values converted to f's parameter);
/// Star: each item is a tuple unpacked into f's arguments (istarmap).
template <class Backend, class Fn, class View, class T = std::ranges::range_value_t<View>, bool Star = false>
class ImapRange {
  using R = std::remove_cvref_t<item_result_t<Star, Fn, T>>;
  using Elem = std::conditional_t<std::is_same_v<R, bool>, char, R>;

public:
  /// `progress` (may be null) counts the items; `limit` (0: none) is each
  /// chunk's time limit.
  ImapRange(Backend& b, Fn f, View v, ImapChunking chunking, bool ordered, std::size_t window,
            std::shared_ptr<ProgressTracker> progress = {}, Clock::duration limit = {})
      : b_(&b), f_(std::move(f)), view_(std::move(v)), cs_(chunking.fixed != 0 ? chunking.fixed : 1),
        cap_(chunking.fixed != 0 ? 0 : std::max<std::size_t>(1, chunking.cap)), ordered_(ordered), window_(window),
        st_(std::make_shared<ImapState<R>>(progress)) {
    st_->set_time_limit(limit);
    if (progress) progress->watch(st_.get());
  }

  ImapRange(ImapRange&&) noexcept = default;
  ImapRange& operator=(ImapRange&&) noexcept = default;

  class iterator {
  public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    using reference = std::conditional_t<std::is_same_v<R, bool>, bool, const R&>;
    iterator() = default;
    explicit iterator(ImapRange* r) : r_(r) {}
    /// The current result (a reference into the current chunk).
    reference operator*() const { return r_->current(); }
    /// Advances; may block for the next chunk and rethrow its error.
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.r_->at_end(); }

  private:
    ImapRange* r_ = nullptr;
  };

  /// Starts the iteration (one pass only). May block and rethrow.
  iterator begin() {
    if (!started_) {
      started_ = true;
      it_ = std::ranges::begin(view_);
      next_chunk();
    }
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  std::conditional_t<std::is_same_v<R, bool>, bool, const R&> current() const { return cur_[pos_]; }
  /// Whether every result was consumed.
  bool at_end() const noexcept { return pos_ >= cur_.size() && inflight_ == 0 && exhausted_; }

private:
  /// Moves to the next result (the iterator's ++); may block for the next chunk.
  void advance() {
    if (++pos_ < cur_.size()) return;
    next_chunk();
  }

  /// Sends chunks while fewer than window_ are in flight. An exception of
  /// the input ends it: the items read before it still go, and the
  /// exception is kept for after their results (as Python's imap does).
  void fill() {
    while (!exhausted_ && inflight_ < window_) {
      std::vector<T> items;
      items.reserve(cs_);
      try {
        read_items(items);
      } catch (...) {
        input_error_ = std::current_exception();
        exhausted_ = true;
      }
      if (!items.empty()) send(std::move(items));
      if (exhausted_) st_->input_ended(sent_items_);
    }
  }

  /// Reads up to cs_ items (an adaptive chunk also stops at about
  /// default_chunk_bytes of encoded input); notes the input's end.
  void read_items(std::vector<T>& items) {
    std::size_t bytes = 0;
    for (; items.size() < cs_ && it_ != std::ranges::end(view_); ++it_) {
      items.push_back(to_wire<T>(*it_));
      if constexpr (Codec<T>::fixed == variable_size) {
        bytes += encoded_size(items.back());
        if (cap_ != 0 && bytes >= default_chunk_bytes) {
          ++it_;
          break;
        }
      }
    }
    if (it_ == std::ranges::end(view_)) exhausted_ = true;
  }

  void send(std::vector<T> items) {
    const std::size_t seq = next_seq_++;
    st_->expect(seq, items.size());
    build_chunk<Star, Fn, T>(f_, items.begin(), items.size(),
                              [&](std::size_t n, auto& enc) { b_->submit(n, enc, st_, seq); });
    sent_items_ += items.size();
    ++inflight_;
  }

  /// Makes the next finished chunk current (skipping empty ones); rethrows
  /// a failed chunk's error once, then goes on after it. After the last
  /// result, rethrows the input's exception, if it threw.
  void next_chunk() {
    cur_.clear();
    pos_ = 0;
    while (cur_.empty()) {
      fill();
      if (inflight_ == 0) {
        if (input_error_) std::rethrow_exception(std::exchange(input_error_, nullptr));
        return;
      }
      auto c = st_->take(ordered_, take_seq_);
      if (ordered_) ++take_seq_;
      --inflight_;
      grow(c.values.size(), c.run_ns);
      if (c.error) std::rethrow_exception(c.error);
      if constexpr (std::is_same_v<Elem, R>) {
        cur_ = std::move(c.values);
      } else {
        cur_.assign(c.values.begin(), c.values.end());
      }
    }
  }

  /// After a chunk of `items` that a worker ran in `run_ns` was taken: the
  /// adaptive chunksize moves towards imap_chunk_target of work (at most
  /// doubling each time), from a running mean of the workers' time per
  /// item. Time outside the worker (the channels, the result thread, the
  /// consumer) does not count: a chunk's cost there does not grow with its
  /// items, so counting it would keep chunks small where it dominates.
  void grow(std::size_t items, std::uint64_t run_ns) {
    if (cap_ == 0 || items == 0) return;
    const double sample = static_cast<double>(run_ns) * 1e-9 / static_cast<double>(items);
    per_item_ = per_item_ < 0 ? sample : (per_item_ + sample) / 2;
    const double target = std::chrono::duration<double>(imap_chunk_target).count() / std::max(per_item_, 1e-9);
    const double next = std::min({target, 2.0 * static_cast<double>(cs_), static_cast<double>(cap_)});
    cs_ = std::max<std::size_t>(1, static_cast<std::size_t>(next));
  }

  friend struct TestAccess;  // tests read cs_

  Backend* b_;
  Fn f_;
  View view_;
  std::ranges::iterator_t<View> it_{};
  std::size_t cs_;   ///< items in the next chunk
  std::size_t cap_;  ///< adaptive: cs_'s upper bound; 0: cs_ is the caller's
  bool ordered_;
  std::size_t window_;
  std::shared_ptr<ImapState<R>> st_;
  bool started_ = false, exhausted_ = false;
  std::size_t next_seq_ = 0, take_seq_ = 0, inflight_ = 0, sent_items_ = 0;
  std::exception_ptr input_error_;  ///< the input's exception, rethrown after the last result
  double per_item_ = -1;  ///< running mean of a worker's seconds per item; < 0: none yet
  std::vector<Elem> cur_;
  std::size_t pos_ = 0;
};

}  // namespace mp::detail
