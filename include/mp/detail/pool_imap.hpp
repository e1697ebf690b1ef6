// mp/detail/pool_imap.hpp - the lazy range Pool::imap / imap_unordered /
// istarmap / istarmap_unordered return.
//
// It reads the input only when a result is wanted, keeps at most `window`
// chunks in flight, and forgets the rest when dropped early: in-flight
// chunks finish into a state nobody reads (their sinks keep it alive).
#pragma once

#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <utility>
#include <vector>

#include <mp/detail/pool_map.hpp>

namespace mp::detail {

/// The default chunksize of imap for a sized input is Python map's, capped
/// so that memory stays flat on huge inputs; for an unsized one, this.
inline constexpr std::size_t imap_max_default_chunk = 4096;
inline constexpr std::size_t imap_streaming_chunk = 1024;

/// T: the item type sent (the input's values converted to f's parameter);
/// Star: each item is a tuple unpacked into f's arguments (istarmap).
template <class Backend, class Fn, class View, class T = std::ranges::range_value_t<View>, bool Star = false>
class ImapRange {
  using R = std::remove_cvref_t<item_result_t<Star, Fn, T>>;
  using Elem = std::conditional_t<std::is_same_v<R, bool>, char, R>;

public:
  /// `progress` (may be null) counts the items; `limit` (0: none) is each
  /// chunk's time limit.
  ImapRange(Backend& b, Fn f, View v, std::size_t chunksize, bool ordered, std::size_t window,
            std::shared_ptr<ProgressTracker> progress = {}, Clock::duration limit = {})
      : b_(&b), f_(std::move(f)), view_(std::move(v)), cs_(chunksize), ordered_(ordered), window_(window),
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
        for (; items.size() < cs_ && it_ != std::ranges::end(view_); ++it_) items.push_back(to_wire<T>(*it_));
        if (it_ == std::ranges::end(view_)) exhausted_ = true;
      } catch (...) {
        input_error_ = std::current_exception();
        exhausted_ = true;
      }
      if (!items.empty()) send(std::move(items));
      if (exhausted_) st_->input_ended(sent_items_);
    }
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
      if (c.error) std::rethrow_exception(c.error);
      if constexpr (std::is_same_v<Elem, R>) {
        cur_ = std::move(c.values);
      } else {
        cur_.assign(c.values.begin(), c.values.end());
      }
    }
  }

  Backend* b_;
  Fn f_;
  View view_;
  std::ranges::iterator_t<View> it_{};
  std::size_t cs_;
  bool ordered_;
  std::size_t window_;
  std::shared_ptr<ImapState<R>> st_;
  bool started_ = false, exhausted_ = false;
  std::size_t next_seq_ = 0, take_seq_ = 0, inflight_ = 0, sent_items_ = 0;
  std::exception_ptr input_error_;  ///< the input's exception, rethrown after the last result
  std::vector<Elem> cur_;
  std::size_t pos_ = 0;
};

}  // namespace mp::detail
