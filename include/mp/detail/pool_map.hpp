// mp/detail/pool_map.hpp - the pool's sinks: the states that receive result
// messages (protocol.hpp decodes them) and fill a future: apply's value,
// map's output vector chunk by chunk, imap's buffer of finished chunks.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <ranges>
#include <span>
#include <type_traits>
#include <vector>

#include <mp/async_result.hpp>
#include <mp/detail/chunk_size.hpp>
#include <mp/detail/compiled.hpp>
#include <mp/detail/progress_tracker.hpp>
#include <mp/detail/protocol.hpp>

namespace mp::detail {

/// apply_async's state: decodes the apply result message into the future.
template <class T>
class ApplyState final : public ResultState<T> {
public:
  void on_result(std::size_t, std::span<const std::byte> msg) noexcept override {
    deliver_apply_result<T>(msg, *this);
  }
};

/// What map_async of a function returning R gives: std::vector<R>, or void.
template <class R>
using map_result_t = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;

struct NoOutput {};

/// What a map counts whatever its result type: the chunks still out, the
/// first error in input order, the progress. Chunks finish on the result
/// thread, but when the input range throws, the submitting thread fails the
/// chunks it never sent, so the count and the error are locked. The lock
/// also orders every chunk's writes into the output before the thread that
/// finishes the map reads it. (Compiled once with MP_SEPARATE_COMPILATION.)
class ChunkTally {
public:
  ChunkTally(std::size_t chunks, std::shared_ptr<ProgressTracker> progress) noexcept;
  ~ChunkTally();
  /// Counts `items` finished items for the progress.
  void add_items(std::size_t items) noexcept;
  /// Counts one chunk as ended, with error e at input position pos (none
  /// when e is null). True for the last chunk: then `first` is the first
  /// error in input order (null when none) and the progress has finished.
  bool end_chunk(std::size_t pos, std::exception_ptr e, std::exception_ptr& first) noexcept;

private:
  std::mutex m_;  ///< guards remaining_, err_pos_, err_
  std::size_t remaining_;
  std::size_t err_pos_ = std::numeric_limits<std::size_t>::max();
  std::exception_ptr err_;
  std::shared_ptr<ProgressTracker> progress_;
};

/// map_async's state: the output vector (none for void), filled chunk by
/// chunk at each chunk's offset; the first error in input order wins.
template <class R>
class MapState final : public ResultState<map_result_t<R>> {
public:
  MapState(std::size_t n, std::size_t chunksize, std::size_t chunks, std::shared_ptr<ProgressTracker> progress = {})
      : out_(make_out(n)), n_(n), chunksize_(chunksize), tally_(chunks, std::move(progress)) {}

  void on_result(std::size_t start, std::span<const std::byte> msg) noexcept override {
    std::exception_ptr err;
    std::uint64_t idx = 0;
    try {
      if (start >= n_) throw DecodeError("mp: a chunk result for an unknown chunk");
      const std::size_t count = std::min(chunksize_, n_ - start);
      if (!read_chunk<R>(msg, out_at(start), count, err, idx)) return end_chunk(start + idx, std::move(err));
      tally_.add_items(count);
    } catch (...) {
      return end_chunk(start, std::current_exception());
    }
    end_chunk(start, nullptr);
  }
  void on_error(std::size_t start, std::exception_ptr e) noexcept override { end_chunk(start, std::move(e)); }

private:
  using Out = std::conditional_t<std::is_void_v<R>, NoOutput, std::vector<R>>;
  static Out make_out(std::size_t n) {
    if constexpr (std::is_void_v<R>) {
      return {};
    } else {
      return Out(n);
    }
  }
  R* out_at(std::size_t start) noexcept {
    if constexpr (std::is_void_v<R>) {
      return nullptr;
    } else {
      return out_.data() + start;
    }
  }
  void end_chunk(std::size_t pos, std::exception_ptr e) noexcept {
    std::exception_ptr first;
    if (!tally_.end_chunk(pos, std::move(e), first)) return;
    if (first) {
      this->fail(std::move(first));
    } else if constexpr (std::is_void_v<R>) {
      this->set_value();
    } else {
      this->set_value(std::move(out_));
    }
  }

  [[no_unique_address]] Out out_;
  std::size_t n_;
  std::size_t chunksize_;
  ChunkTally tally_;
};

// std::vector<bool> has no data(): collect bools as chars, then convert.
template <>
class MapState<bool> final : public ResultState<std::vector<bool>> {
public:
  MapState(std::size_t n, std::size_t chunksize, std::size_t chunks, std::shared_ptr<ProgressTracker> progress = {})
      : inner_(std::make_shared<MapState<char>>(n, chunksize, chunks, std::move(progress))) {}
  void on_result(std::size_t start, std::span<const std::byte> msg) noexcept override {
    inner_->on_result(start, msg);
    forward();
  }
  void on_error(std::size_t start, std::exception_ptr e) noexcept override {
    inner_->on_error(start, e);
    forward();
  }

private:
  void forward() noexcept {
    if (!inner_->ready()) return;
    if (inner_->status() == has_error) return fail(inner_->error());
    try {
      set_value(std::vector<bool>(inner_->value().begin(), inner_->value().end()));
    } catch (...) {
      fail(std::current_exception());
    }
  }
  std::shared_ptr<MapState<char>> inner_;
};

/// imap's state: finished chunks by sequence number, and their completion
/// order, until the consumer takes them.
template <class R>
class ImapState final : public Sink {
public:
  struct Chunk {
    std::vector<R> values;
    std::exception_ptr error;
    std::uint64_t run_ns = 0;  ///< how long the worker ran it (0 when it failed)
  };

  explicit ImapState(std::shared_ptr<ProgressTracker> progress = {}) : progress_(std::move(progress)) {}

  void expect(std::size_t seq, std::size_t count) {
    std::lock_guard lock(mu_);
    sizes_[seq] = count;
  }

  /// The input ended after `items` items were sent: progress finishes once
  /// their chunks are all back.
  void input_ended(std::size_t items) {
    {
      std::lock_guard lock(mu_);
      sent_ = items;
      if (received_ != sent_) return;
    }
    if (progress_) progress_->finish();
  }

  void on_result(std::size_t seq, std::span<const std::byte> msg) noexcept override {
    Chunk c;
    try {
      std::size_t count;
      {
        std::lock_guard lock(mu_);
        count = sizes_.at(seq);
      }
      std::vector<Elem> tmp(count);
      std::uint64_t idx = 0;
      if (read_chunk<Elem>(msg, tmp.data(), count, c.error, idx, &c.run_ns)) {
        c.values.assign(tmp.begin(), tmp.end());
        if (progress_) progress_->add(count);
      }
    } catch (...) {
      c.error = std::current_exception();
    }
    put(seq, std::move(c));
  }
  void on_error(std::size_t seq, std::exception_ptr e) noexcept override { put(seq, Chunk{{}, e}); }

  /// Blocks until chunk `seq` (ordered) or any chunk (unordered) is done.
  Chunk take(bool ordered, std::size_t seq) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return ordered ? done_.count(seq) != 0 : !order_.empty(); });
    if (!ordered) seq = order_.front();
    auto it = done_.find(seq);
    Chunk c = std::move(it->second);
    done_.erase(it);
    std::erase(order_, seq);
    sizes_.erase(seq);
    return c;
  }

private:
  using Elem = std::conditional_t<std::is_same_v<R, bool>, char, R>;
  void put(std::size_t seq, Chunk c) noexcept {
    bool last = false;
    try {
      std::lock_guard lock(mu_);
      received_ += sizes_.count(seq) != 0 ? sizes_[seq] : 0;
      last = received_ == sent_;
      done_.emplace(seq, std::move(c));
      order_.push_back(seq);
    } catch (...) {
    }
    if (last && progress_) progress_->finish();
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::size_t, std::size_t> sizes_;
  std::map<std::size_t, Chunk> done_;
  std::deque<std::size_t> order_;
  std::size_t received_ = 0;  ///< items of the chunks back
  std::size_t sent_ = std::numeric_limits<std::size_t>::max();  ///< items sent, once the input ended
  std::shared_ptr<ProgressTracker> progress_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED ChunkTally::ChunkTally(std::size_t chunks, std::shared_ptr<ProgressTracker> progress) noexcept
    : remaining_(chunks), progress_(std::move(progress)) {}

MP_COMPILED ChunkTally::~ChunkTally() = default;

MP_COMPILED void ChunkTally::add_items(std::size_t items) noexcept {
  if (progress_) progress_->add(items);
}

MP_COMPILED bool ChunkTally::end_chunk(std::size_t pos, std::exception_ptr e, std::exception_ptr& first) noexcept {
  {
    std::lock_guard<std::mutex> g(m_);
    if (e && pos < err_pos_) {
      err_pos_ = pos;
      err_ = std::move(e);
    }
    if (--remaining_ != 0) return false;
    first = err_;
  }
  if (progress_) progress_->finish();  // before the result is ready, as Python's callbacks
  return true;
}

#endif  // MP_DEFINE_COMPILED

}  // namespace mp::detail
