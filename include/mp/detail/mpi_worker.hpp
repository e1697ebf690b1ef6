// mp/detail/mpi_worker.hpp - a worker rank of an MpiPool (ranks 1..N-1).
//
// The rank's main thread makes all of mp's MPI calls: it receives task
// messages from rank 0 and runs each in a local fork pool (ForkBackend,
// PoolOptions::processes workers), so a task that crashes kills a forked
// worker, not the rank: the local pool reports WorkerLostError and replaces
// the worker, and that error goes back to rank 0 as the task's result.
// While tasks are out and the main thread polls, it reads the local pool's
// results itself (through the pool's WaitHelper, as a waiting
// AsyncResult::get does; the pool's result thread stands back, looking
// every 1 ms for worker deaths); before it sleeps it hands the reading back,
// and results come from that result thread. Either way results and errors
// go into an outbox; the main thread sends them. The forked workers never
// call MPI.
//
// Waiting: Open MPI's blocking calls spin, so the main thread polls
// (MPI_Iprobe) and, when nothing happens, sleeps on the outbox's condition
// variable with a growing timeout (MpiPacer): a result wakes it at once, a
// new task waits at most the current timeout (25 ms once idle for long).
#pragma once

#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <mp/detail/backend.hpp>
#include <mp/detail/fork_backend.hpp>
#include <mp/detail/mpi_env.hpp>
#include <mp/detail/mpi_wire.hpp>

namespace mp::detail {

/// How long the MPI thread sleeps when a poll found nothing. It spins (with
/// sched_yield: the ranks may share cores) after the last event, for 1 ms
/// while tasks are out (`busy`: a result is coming) and 50 us otherwise;
/// then sleeps an eighth of the idle time so far: 10 us to 5 ms, and up to
/// 25 ms after a second of idleness (the first task after that waits up
/// to 25 ms; an idle rank wakes 40 times a second).
class MpiPacer {
public:
  /// Zero: poll again now; else the time to sleep first.
  Clock::duration next(bool did, bool busy) {
    const auto now = Clock::now();
    if (did) last_ = now;
    const auto idle = now - last_;
    if (idle < (busy ? std::chrono::microseconds(2000) : std::chrono::microseconds(1000))) {
      if (!did && idle > std::chrono::microseconds(50)) ::sched_yield();
      return Clock::duration::zero();
    }
    const auto cap = idle < std::chrono::seconds(1) ? std::chrono::milliseconds(5) : std::chrono::milliseconds(25);
    return std::clamp<Clock::duration>(idle / 8, std::chrono::microseconds(10), cap);
  }

private:
  Clock::time_point last_ = Clock::now();
};

class MpiWorkerRank {
public:
  MpiWorkerRank(MpiWorld& w, const BackendOptions& o)
      : world_(w), sender_(w.comm, &buffers_), receiver_(w.comm),
        where_(" (on MPI rank " + std::to_string(w.rank) + ", host " + w.hosts[static_cast<std::size_t>(w.rank)] + ")") {
    pool_.emplace(o);
  }

  /// Serves rank 0 until it sends stop or kill, then finalizes MPI and
  /// exits 0. A failing MPI call prints its sentence and exits 1.
  [[noreturn]] void serve() noexcept {
    int code = 0;
    try {
      loop();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s%s\n", e.what(), where_.c_str());
      code = 1;
    }
    stop_reading();
    pool_.reset();  // its forked workers end before MPI does
    mpi_worker_exit(world_, code);
  }

private:
  /// The local pool's receiver of one task's result.
  class Forward final : public Sink {
  public:
    Forward(MpiWorkerRank& rank, std::uint64_t seq) noexcept : rank_(rank), seq_(seq) {}
    void on_result(std::size_t, std::span<const std::byte> msg) noexcept override {
      auto copy = [&](std::byte* p) { std::memcpy(p, msg.data(), msg.size()); };
      rank_.post(mpi_framed(seq_, msg.size(), copy, &rank_.buffers_));
    }
    /// The local pool's reader of results (the same for every task).
    void use_helper(const std::shared_ptr<WaitHelper>& h) noexcept override { rank_.reader_ = h; }
    /// mp's own errors (a lost worker, a timeout) go on as pool errors.
    void on_error(std::size_t, std::exception_ptr e) noexcept override {
      MpiResultOut out(seq_);
      write_error_result(out, e, rank_.where_);
      rank_.post(std::move(out.bytes));
    }

  private:
    MpiWorkerRank& rank_;
    std::uint64_t seq_;
  };

  void loop() {
    MpiPacer pacer;
    auto on_msg = [&](int, int tag, std::span<const std::byte> m) { handle(tag, m); };
    while (!done_) {
      bool did = false;
      for (int i = 0; i < 64 && !done_ && receiver_.poll(on_msg); ++i) did = true;
      did = read_results() || did;
      did = flush() || did;
      did = sender_.progress() || did;
      const auto sleep = pacer.next(did, !sinks_.empty());
      if (sleep == Clock::duration::zero() || done_) continue;
      stop_reading();
      std::unique_lock lock(mu_);
      if (outbox_.empty()) cv_.wait_for(lock, sleep);
    }
    flush();
    sender_.drain();
  }

  /// While tasks are out, this thread reads the local pool's results itself
  /// (its result thread stands back meanwhile); returns whether it read any.
  bool read_results() {
    if (sinks_.empty() || !reader_) return false;
    if (!reading_) reader_->enter();
    reading_ = true;
    return reader_->help();
  }

  /// Hands the reading back to the local pool's result thread (before this
  /// thread sleeps or the pool stops).
  void stop_reading() noexcept {
    if (reading_) reader_->leave(true);
    reading_ = false;
  }

  /// One task frame: u64 seq | task message, into the local pool.
  void start_task(std::span<const std::byte> frame) {
    std::uint64_t seq = 0;
    if (frame.size() < 8) throw DecodeError("mp::MpiPool: a task frame is shorter than its sequence number");
    std::memcpy(&seq, frame.data(), 8);
    auto sink = std::make_shared<Forward>(*this, seq);
    sinks_[seq] = sink;
    const auto body = frame.subspan(8);
    auto copy = [&](std::byte* p) { std::memcpy(p, body.data(), body.size()); };
    try {
      pool_->submit(body.size(), copy, sink, 0);
    } catch (...) {
      sink->on_error(0, std::current_exception());
    }
  }

  void handle(int tag, std::span<const std::byte> m) {
    std::uint64_t seq = 0;
    if (m.size() >= 8) std::memcpy(&seq, m.data(), 8);
    if (tag == mpi_task) {
      for_each_frame(m, [&](std::span<const std::byte> frame) { start_task(frame); });
    } else if (tag == mpi_cancel) {
      auto it = sinks_.find(seq);
      if (it != sinks_.end() && m.size() >= 9) pool_->cancel(it->second.get(), m[8] != std::byte{0});
    } else if (tag == mpi_stop) {
      stop_reading();
      pool_->close();
      pool_->join();  // rank 0 stops a rank with no task out: this returns at once
      done_ = true;
    } else if (tag == mpi_kill) {
      stop_reading();
      pool_->terminate();
      std::lock_guard lock(mu_);
      outbox_.clear();  // rank 0 has failed those tasks already
      done_ = true;
    }
  }

  /// Called by the local pool's result thread (or terminate).
  void post(std::vector<std::byte> msg) noexcept {
    {
      std::lock_guard lock(mu_);
      outbox_.push_back(std::move(msg));
    }
    cv_.notify_one();
  }

  /// Sends what the outbox holds; returns whether it held anything.
  bool flush() {
    std::vector<std::vector<std::byte>> out;
    {
      std::lock_guard lock(mu_);
      out.swap(outbox_);
    }
    if (out.empty()) return false;
    MpiBatch batch;
    for (auto& m : out) {
      sinks_.erase(mpi_framed_seq(m));
      batch.add(std::move(m));
    }
    for (auto& m : batch.take()) sender_.send(0, mpi_result, std::move(m));
    return true;
  }

  MpiWorld& world_;
  MpiBufferPool buffers_;  // of result frames
  MpiSender sender_;
  MpiReceiver receiver_;
  std::string where_;
  std::optional<ForkBackend> pool_;
  std::shared_ptr<WaitHelper> reader_;  // the local pool's; main thread only
  bool reading_ = false;                // this thread holds reader_ entered
  std::unordered_map<std::uint64_t, std::shared_ptr<Forward>> sinks_;  // main thread only
  bool done_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<std::byte>> outbox_;  // guarded by mu_
};

}  // namespace mp::detail
