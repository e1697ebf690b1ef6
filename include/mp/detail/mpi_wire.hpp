// mp/detail/mpi_wire.hpp - the messages between rank 0 and the worker ranks
// of an MpiPool, and the non-blocking sender and receiver that move them.
//
//   tag task    0 -> r   a batch of frames: u64 seq | task message (protocol.hpp)
//   tag cancel  0 -> r   u64 seq | u8 running
//   tag stop    0 -> r   (empty) finish the local pool's tasks, then exit
//   tag kill    0 -> r   (empty) kill the local pool, then exit
//   tag result  r -> 0   a batch of frames: u64 seq | result message (protocol.hpp)
//   a batch is one or more (u64 length | frame): the small tasks (results)
//   ready for one rank at one time travel in one MPI message; a frame of
//   mpi_alone_bytes or more is a batch by itself, sent from the buffer it
//   was encoded in (each frame is built as a batch of one: mpi_framed)
//   tag big     either   u64 inner tag | u64 size: the next `part` messages
//   tag part    either   from that source carry the message, in order
//
// No message mp sends is larger than mpi_part_bytes: a larger one goes as a
// `big` header and parts (MPI keeps the order of one source's messages on
// one communicator), so nothing is ever truncated by an int count.
// The frames' contents are protocol.hpp's messages: this file only frames,
// batches and moves them.
#pragma once

#include <mpi.h>

#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <array>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <mp/detail/mpi_env.hpp>
#include <mp/detail/protocol.hpp>
#include <mp/errors.hpp>

namespace mp::detail {

enum MpiTag : int { mpi_task = 1, mpi_cancel, mpi_stop, mpi_kill, mpi_result, mpi_big, mpi_part };

/// The largest single MPI message mp sends (bytes).
inline constexpr std::size_t mpi_part_bytes = std::size_t{8} << 20;

/// The smallest frame that travels as a message of its own (a batch of one,
/// sent from the buffer it was built in); smaller ones are joined.
inline constexpr std::size_t mpi_alone_bytes = std::size_t{16} << 10;

/// The buffers of finished sends of mpi_alone_bytes or more (up to 1 MiB
/// each, 16 MiB in all), kept for the next frames: a map's chunks then
/// reuse memory that is mapped already rather than fault in fresh pages.
/// Thread-safe.
class MpiBufferPool {
public:
  /// A buffer of n bytes whose contents the caller overwrites.
  std::vector<std::byte> take(std::size_t n) {
    if (n >= mpi_alone_bytes) {
      std::lock_guard lock(mu_);
      for (std::size_t i = free_.size(); i-- > 0;) {
        if (free_[i].capacity() < n || free_[i].capacity() > 2 * n) continue;
        std::vector<std::byte> b = std::move(free_[i]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        kept_ -= b.capacity();
        b.resize(n);
        return b;
      }
    }
    return std::vector<std::byte>(n);
  }
  /// Keeps b for take() if it is of a size worth keeping and there is room.
  void give(std::vector<std::byte> b) {
    const std::size_t c = b.capacity();
    if (c < mpi_alone_bytes || c > (std::size_t{1} << 20)) return;
    std::lock_guard lock(mu_);
    if (kept_ + c > (std::size_t{16} << 20)) return;
    kept_ += c;
    free_.push_back(std::move(b));
  }

private:
  std::mutex mu_;
  std::vector<std::vector<std::byte>> free_;
  std::size_t kept_ = 0;  // their capacities, in bytes
};

/// A batch of one frame: u64 length | u64 seq | `n` bytes written by enc
/// (in a buffer from `pool` when given).
inline std::vector<std::byte> mpi_framed(std::uint64_t seq, std::size_t n, EncodeRef enc,
                                         MpiBufferPool* pool = nullptr) {
  std::vector<std::byte> out = pool != nullptr ? pool->take(16 + n) : std::vector<std::byte>(16 + n);
  std::byte* p = out.data();
  if (p == nullptr) return out;  // never (16 + n > 0); tells the optimizer so
  const std::uint64_t len = 8 + n;
  std::memcpy(p, &len, 8);
  std::memcpy(p + 8, &seq, 8);
  enc(p + 16);
  return out;
}

/// The seq of a batch of one frame (mpi_framed).
inline std::uint64_t mpi_framed_seq(std::span<const std::byte> framed) noexcept {
  std::uint64_t seq = 0;
  if (framed.size() >= 16) std::memcpy(&seq, framed.data() + 8, 8);
  return seq;
}

/// The messages that carry the frames ready for one rank (see the file
/// comment): frames of mpi_alone_bytes or more go alone, without a copy;
/// the others are joined into one message.
class MpiBatch {
public:
  /// Takes a batch of one frame (mpi_framed).
  void add(std::vector<std::byte> framed) {
    if (framed.size() >= mpi_alone_bytes) {
      out_.push_back(std::move(framed));
    } else if (joined_.empty()) {
      joined_ = std::move(framed);
    } else {
      joined_.insert(joined_.end(), framed.begin(), framed.end());
    }
  }
  [[nodiscard]] bool empty() const noexcept { return joined_.empty() && out_.empty(); }
  /// The messages, each a batch; the batch is empty afterwards.
  std::vector<std::vector<std::byte>> take() {
    if (!joined_.empty()) out_.push_back(std::move(joined_));
    joined_.clear();
    return std::move(out_);
  }

private:
  std::vector<std::byte> joined_;
  std::vector<std::vector<std::byte>> out_;
};

/// Calls on(frame) for each frame of a batch. Throws mp::DecodeError when
/// the lengths do not add up.
template <class On>
void for_each_frame(std::span<const std::byte> m, On&& on) {
  while (!m.empty()) {
    std::uint64_t n = 0;
    if (m.size() < 8) throw DecodeError("mp::MpiPool: a batch message ends inside a length");
    std::memcpy(&n, m.data(), 8);
    if (n > m.size() - 8) throw DecodeError("mp::MpiPool: a batch message is shorter than its frame");
    on(m.subspan(8, static_cast<std::size_t>(n)));
    m = m.subspan(8 + static_cast<std::size_t>(n));
  }
}

/// A worker rank's ResultOut: the result message, a batch of one frame.
class MpiResultOut final : public ResultOut {
public:
  explicit MpiResultOut(std::uint64_t seq) noexcept : seq_(seq) {}
  void write(std::size_t n, EncodeRef enc) override { bytes = mpi_framed(seq_, n, enc); }
  std::vector<std::byte> bytes;

private:
  std::uint64_t seq_;
};

/// Non-blocking sends that own their buffers until MPI is done with them.
/// One thread only (the one that makes mp's MPI calls).
class MpiSender {
public:
  /// Buffers of finished sends go to `pool` when given.
  explicit MpiSender(MPI_Comm comm, MpiBufferPool* pool = nullptr) noexcept : comm_(comm), pool_(pool) {}

  /// Starts sending msg to dest; in parts when larger than mpi_part_bytes.
  /// Never blocks. Throws std::runtime_error when MPI fails.
  void send(int dest, int tag, std::vector<std::byte> msg) {
    auto out = std::make_unique<Out>();
    out->bytes = std::move(msg);
    const std::size_t n = out->bytes.size();
    if (n <= mpi_part_bytes) {
      post(*out, dest, tag, out->bytes.data(), n);
    } else {
      out->head = {static_cast<std::uint64_t>(tag), n};
      post(*out, dest, mpi_big, out->head.data(), sizeof out->head);
      for (std::size_t at = 0; at < n; at += mpi_part_bytes)
        post(*out, dest, mpi_part, out->bytes.data() + at, std::min(mpi_part_bytes, n - at));
    }
    out_.push_back(std::move(out));
  }

  /// Frees the buffers of finished sends; returns whether any finished.
  bool progress() {
    bool did = false;
    while (!out_.empty()) {
      int done = 0;
      auto& reqs = out_.front()->reqs;
      mpi_check(MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      if (done == 0) break;
      if (pool_ != nullptr) pool_->give(std::move(out_.front()->bytes));
      out_.pop_front();
      did = true;
    }
    return did;
  }

  [[nodiscard]] bool idle() const noexcept { return out_.empty(); }

  /// Waits (yielding the CPU) until every send finished.
  void drain() {
    while (!idle()) {
      if (!progress()) ::sched_yield();
    }
  }

private:
  struct Out {
    std::vector<std::byte> bytes;
    std::array<std::uint64_t, 2> head{};
    std::vector<MPI_Request> reqs;
  };

  void post(Out& out, int dest, int tag, const void* p, std::size_t n) {
    MPI_Request r = MPI_REQUEST_NULL;
    mpi_check(MPI_Isend(p, static_cast<int>(n), MPI_BYTE, dest, tag, comm_, &r), "MPI_Isend");
    out.reqs.push_back(r);
  }

  MPI_Comm comm_;
  MpiBufferPool* pool_;
  std::deque<std::unique_ptr<Out>> out_;
};

/// Receives mp's messages, putting split ones back together. One thread only.
class MpiReceiver {
public:
  explicit MpiReceiver(MPI_Comm comm) noexcept : comm_(comm) {}

  /// Receives one message if one is there; calls on(source, tag, bytes) once
  /// a whole message is in. Returns whether it received anything. Never
  /// blocks on a message that is not there; throws std::runtime_error when
  /// MPI fails, mp::DecodeError on a part nobody announced.
  template <class On>
  bool poll(On&& on) {
    int flag = 0;
    MPI_Status st;
    mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &st), "MPI_Iprobe");
    if (flag == 0) return false;
    int count = 0;
    mpi_check(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count");
    const auto n = static_cast<std::size_t>(count);
    const int src = st.MPI_SOURCE;
    if (st.MPI_TAG == mpi_part) {
      auto it = big_.find(src);
      if (it == big_.end() || it->second.filled + n > it->second.bytes.size())
        throw DecodeError("mp::MpiPool: a message part arrived that no header announced");
      Whole& w = it->second;
      recv(w.bytes.data() + w.filled, n, src, mpi_part);
      w.filled += n;
      if (w.filled == w.bytes.size()) {
        Whole done = std::move(w);
        big_.erase(it);
        on(src, done.tag, std::span<const std::byte>(done.bytes));
      }
      return true;
    }
    buf_.resize(n);
    recv(buf_.data(), n, src, st.MPI_TAG);
    if (st.MPI_TAG == mpi_big) {
      std::array<std::uint64_t, 2> head{};
      if (n != sizeof head) throw DecodeError("mp::MpiPool: a message header has the wrong size");
      std::memcpy(head.data(), buf_.data(), sizeof head);
      big_[src] = Whole{static_cast<int>(head[0]), std::vector<std::byte>(static_cast<std::size_t>(head[1])), 0};
      return true;
    }
    on(src, st.MPI_TAG, std::span<const std::byte>(buf_.data(), n));
    return true;
  }

private:
  struct Whole {
    int tag = 0;
    std::vector<std::byte> bytes;
    std::size_t filled = 0;
  };

  void recv(std::byte* p, std::size_t n, int src, int tag) {
    mpi_check(MPI_Recv(p, static_cast<int>(n), MPI_BYTE, src, tag, comm_, MPI_STATUS_IGNORE), "MPI_Recv");
  }

  MPI_Comm comm_;
  std::vector<std::byte> buf_;
  std::map<int, Whole> big_;
};

}  // namespace mp::detail
