// mp/queue.hpp - mp::Queue<T>: Python's multiprocessing.Queue over a
// shared-memory ring, for any number of producer and consumer processes and
// threads.
//
//   mp::Queue<int> q;                // anonymous: create before fork
//   if (fork() == 0) { q.put(42); _exit(0); }
//   int x = q.get();                 // blocks until a value arrives
//
// Values go through mp's codec (<mp/codec.hpp>), encoded straight into the
// ring when they fit (see detail/ring.hpp). Producers are serialised by one
// robust lock and consumers by another, so between the current producer and
// the current consumer the ring is single-producer/single-consumer. A
// process that dies holding either lock (kill -9 in the middle of a put or a
// get) is repaired by the next one to take it: a half-sent message is
// aborted, a half-received one skipped, the counters fixed; every message
// whose put() returned is still delivered exactly once, unless it was the
// very message a consumer was killed while receiving.
//
// Segment layout (one segment per queue, anonymous or /dev/shm/<name>):
//
//   offset   0  SegmentHeader: magic "mpQUEUE1", version, size
//   offset  64  producer lock (RobustMutex, one cache line)
//   offset 128  consumer lock (RobustMutex, one cache line)
//   offset 192  maxsize u64, capacity u64 (fixed after creation)
//   offset 256  the ring: RingHeader (320 B) + capacity data bytes
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <mp/codec.hpp>
#include <mp/detail/compiled.hpp>
#include <mp/detail/ring.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shm.hpp>
#include <mp/errors.hpp>

namespace mp {

/// Options of an mp::Queue beyond maxsize.
struct QueueOptions {
  /// Most messages the queue holds (Python's maxsize); 0 = unbounded, i.e.
  /// bounded only by the ring's bytes (a put then waits for space).
  std::size_t maxsize = 0;
  /// Ring bytes, rounded up to a power of two (256 B to 2 GiB). Messages up
  /// to about this size are written in place in one piece; larger ones still
  /// go through, in fragments, while a consumer drains them.
  std::size_t capacity = std::size_t{1} << 20;
};

namespace detail {

inline constexpr std::uint64_t queue_magic = 0x3145'5545'5551'706dull;  // "mpQUEUE1"
// 2: the rings' sleeper words hold tickets, not a flag (ring_layout.hpp).
inline constexpr std::uint32_t queue_version = 2;

struct QueueHeader {
  alignas(cache_line) RobustMutex producer;
  alignas(cache_line) RobustMutex consumer;
  alignas(cache_line) std::uint64_t maxsize;
  std::uint64_t capacity;
};
static_assert(sizeof(RobustMutex) <= cache_line && sizeof(QueueHeader) == 3 * cache_line);

inline constexpr std::size_t queue_header_offset = segment_data_offset;
inline constexpr std::size_t queue_ring_offset = queue_header_offset + sizeof(QueueHeader);

/// The process-local state every copy of a Queue in this process shares.
struct QueueState {
  Segment seg;
  QueueHeader* hdr = nullptr;
  Ring writer;  ///< used under the producer lock only
  Ring reader;  ///< used under the consumer lock only
  ReadCursor cursor;  ///< reassembly buffer, used under the consumer lock only (reset per get)
  std::atomic<bool> closed{false};
  std::string name;

  static std::shared_ptr<QueueState> make(Segment seg, const QueueOptions& o, std::string name);

  static std::shared_ptr<QueueState> attach(Segment seg, std::string name);
};

#if MP_DEFINE_COMPILED

MP_COMPILED std::shared_ptr<QueueState> QueueState::make(Segment seg, const QueueOptions& o, std::string name) {
  auto s = std::make_shared<QueueState>();
  s->seg = std::move(seg);
  s->hdr = ::new (static_cast<void*>(s->seg.base() + queue_header_offset)) QueueHeader{};
  s->hdr->producer.init();
  s->hdr->consumer.init();
  s->hdr->maxsize = o.maxsize;
  s->hdr->capacity = Ring::round_capacity(o.capacity);
  s->writer = Ring::create(s->seg.base(), queue_ring_offset, s->hdr->capacity);
  s->reader = Ring::attach(s->seg.base(), queue_ring_offset);
  s->name = std::move(name);
  s->seg.publish(queue_magic, queue_version);
  return s;
}

MP_COMPILED std::shared_ptr<QueueState> QueueState::attach(Segment seg, std::string name) {
  seg.check(queue_magic, queue_version, "'" + name + "'");
  auto s = std::make_shared<QueueState>();
  s->seg = std::move(seg);
  s->hdr = s->seg.at<QueueHeader>(queue_header_offset);
  if (s->seg.size() < queue_ring_offset + Ring::bytes_needed(s->hdr->capacity))
    throw Error("mp: shared memory '" + name + "' is too small for the queue it describes");
  s->writer = Ring::attach(s->seg.base(), queue_ring_offset);
  s->reader = Ring::attach(s->seg.base(), queue_ring_offset);
  s->name = std::move(name);
  return s;
}

#endif  // MP_DEFINE_COMPILED

/// Unlocks a RobustMutex at scope exit.
struct UnlockAtExit {
  RobustMutex& m;
  explicit UnlockAtExit(RobustMutex& mutex) noexcept : m(mutex) {}
  UnlockAtExit(const UnlockAtExit&) = delete;
  UnlockAtExit& operator=(const UnlockAtExit&) = delete;
  ~UnlockAtExit() { m.unlock(); }
};

struct TestAccess;  // defined by the tests only

}  // namespace detail

/// A FIFO queue between processes (and threads), like Python's
/// multiprocessing.Queue. Copies share the same queue; an anonymous queue
/// made before fork is shared with the children (they use their inherited
/// copy). All members are safe across threads and processes.
template <class T>
class Queue {
  static_assert(Sendable<T>,
                "mp::Queue<T> needs a T that mp's codec can send: an arithmetic or trivially copyable type, a "
                "std container/string/optional/variant of such, or a type with a serialize(Archive&) member or an "
                "mp::codec<T> specialization. Give T one of those.");

public:
  using value_type = T;

  /// An anonymous, unbounded queue (nothing appears in /dev/shm). Throws mp::Error.
  Queue() : Queue(QueueOptions{}) {}
  /// An anonymous queue holding at most maxsize messages (0 = unbounded).
  explicit Queue(std::size_t maxsize) : Queue(QueueOptions{maxsize}) {}
  /// An anonymous queue with the given options. Throws mp::Error,
  /// std::invalid_argument for a capacity above 2 GiB.
  explicit Queue(const QueueOptions& o)
      : s_(detail::QueueState::make(detail::Segment::anonymous(segment_bytes(o)), o, {})) {}

  /// Creates the named queue `/dev/shm/<name>` (permissions 0600), which
  /// unrelated processes open() by name. It stays until remove(name).
  /// Throws mp::Error if it already exists or cannot be made.
  static Queue create(const std::string& name, const QueueOptions& o = {}) {
    return Queue(detail::QueueState::make(detail::Segment::create(name, segment_bytes(o)), o, name));
  }

  /// Opens the named queue another process created. Throws mp::Error if
  /// there is none, or it is not an mp queue of this layout version.
  static Queue open(const std::string& name) {
    return Queue(detail::QueueState::attach(detail::Segment::open(name), name));
  }

  /// Removes `/dev/shm/<name>`; processes that have it open keep using it.
  /// Returns false if there was no such name. Never throws.
  static bool remove(const std::string& name) noexcept { return detail::Segment::remove(name); }

  /// Puts x, blocking while the queue is full (maxsize) or its ring has no
  /// space, for as long as it takes. Throws std::logic_error after close()
  /// in this process (Python raises ValueError), or what encoding throws.
  void put(const T& x) { put_until(x, detail::Clock::time_point::max()); }

  /// As put(x), but throws mp::Full when it could not put within `timeout`
  /// (nothing of x is then delivered).
  template <class Rep, class Period>
  void put(const T& x, std::chrono::duration<Rep, Period> timeout) {
    put_until(x, detail::deadline_after(timeout));
  }

  /// Puts x only if that needs no waiting for space; else throws mp::Full.
  /// May wait up to 1 ms for another producer's put to finish.
  void put_nowait(const T& x) { put_until(x, detail::Clock::now(), nowait_lock); }

  /// Removes and returns the oldest value, blocking while the queue is
  /// empty, for ever (as Python's get()). Throws mp::DecodeError if the bytes
  /// do not decode as T (that message is consumed; the queue goes on).
  T get() { return get_until(detail::Clock::time_point::max()); }

  /// As get(), but throws mp::Empty when nothing arrived within `timeout`.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get_until(detail::deadline_after(timeout));
  }

  /// Returns a value only if one is there now; else throws mp::Empty.
  /// May wait up to 1 ms for another consumer's get to finish.
  T get_nowait() { return get_until(detail::Clock::now(), nowait_lock); }

  /// Messages put and not yet got (approximate while others are active, as
  /// in Python). Never blocks.
  [[nodiscard]] std::size_t qsize() const noexcept { return static_cast<std::size_t>(s_->reader.messages()); }
  /// qsize() == 0. Never blocks.
  [[nodiscard]] bool empty() const noexcept { return qsize() == 0; }
  /// maxsize() > 0 and qsize() >= maxsize(). Never blocks.
  [[nodiscard]] bool full() const noexcept { return maxsize() != 0 && qsize() >= maxsize(); }
  /// The maxsize given at creation (0 = unbounded).
  [[nodiscard]] std::size_t maxsize() const noexcept { return static_cast<std::size_t>(s_->hdr->maxsize); }
  /// Ring bytes (a power of two).
  [[nodiscard]] std::size_t capacity() const noexcept { return s_->reader.capacity(); }
  /// The name of a named queue; empty for an anonymous one.
  [[nodiscard]] const std::string& name() const noexcept { return s_->name; }

  /// This process will put no more on this queue (every copy in this
  /// process; children forked later inherit the flag): later put()s throw
  /// std::logic_error. get() keeps working, so what is queued can be drained.
  /// Never blocks.
  void close() noexcept { s_->closed.store(true, std::memory_order_release); }

private:
  static constexpr auto nowait_lock = std::chrono::milliseconds(1);
  static constexpr auto stall_check = std::chrono::milliseconds(20);

  explicit Queue(std::shared_ptr<detail::QueueState> s) : s_(std::move(s)) {}

  static std::size_t segment_bytes(const QueueOptions& o) {
    return detail::queue_ring_offset + detail::Ring::bytes_needed(detail::Ring::round_capacity(o.capacity));
  }

  static detail::Clock::time_point lock_deadline(detail::Clock::time_point d, detail::Clock::duration nowait) {
    return nowait == detail::Clock::duration::zero() ? d : detail::Clock::now() + nowait;
  }

  void put_until(const T& x, detail::Clock::time_point deadline,
                 detail::Clock::duration nowait = detail::Clock::duration::zero()) {
    if (s_->closed.load(std::memory_order_acquire))
      throw std::logic_error("mp::Queue::put: the queue was closed in this process (close() was called)");
    const std::size_t n = detail::encoded_size(x);
    detail::Ring& w = s_->writer;
    auto& lock = s_->hdr->producer;
    if (lock.lock_until_and_repair(lock_deadline(deadline, nowait), [&] { w.repair_writer(); }) ==
        detail::LockStatus::busy)
      throw Full("mp::Queue::put: the queue is full (another producer holds it)");
    detail::UnlockAtExit unlock{lock};
    if (const std::uint64_t max = s_->hdr->maxsize; max != 0) {
      if (!w.wait_consumed([&] { return w.messages() < max; }, deadline))
        throw Full("mp::Queue::put: the queue is full (maxsize " + std::to_string(max) + ")");
    }
    if (!w.write(n, [&](std::byte* dst) { detail::encode_to(dst, x); }, deadline))
      throw Full("mp::Queue::put: no space in the queue's ring before the timeout");
  }

  T get_until(detail::Clock::time_point deadline, detail::Clock::duration nowait = detail::Clock::duration::zero()) {
    detail::Ring& r = s_->reader;
    auto& lock = s_->hdr->consumer;
    if (lock.lock_until_and_repair(lock_deadline(deadline, nowait), [&] { r.repair_reader(); }) ==
        detail::LockStatus::busy)
      throw Empty("mp::Queue::get: the queue is empty (another consumer holds it)");
    detail::UnlockAtExit unlock{lock};
    detail::ReadCursor& cur = s_->cursor;
    cur.reset();  // a fresh start: fragments of a message begun by a dead consumer are orphans
    std::optional<T> out;
    auto on_msg = [&](std::span<const std::byte> m) { out.emplace(loads<T>(m)); };
    detail::Clock::time_point until = deadline;
    for (;;) {
      const detail::ReadStatus st = r.read(on_msg, cur, until, stall_check);
      if (st == detail::ReadStatus::message) return std::move(*out);
      if (!cur.in_message) {
        if (detail::Clock::now() >= deadline) throw Empty("mp::Queue::get: the queue is empty");
        until = deadline;
        continue;
      }
      // Mid-message and nothing new: a message once started is finished or
      // aborted, never half taken; if no producer is alive to do either,
      // publish the ABORT the dead or timed-out one owes, then read on.
      rescue_abandoned_message();
      until = std::max(deadline, detail::Clock::now() + stall_check);
    }
  }

  /// Called by a consumer holding the consumer lock: if no producer holds
  /// the producer lock, repairs after a dead one and publishes an owed ABORT.
  void rescue_abandoned_message() {
    auto& lock = s_->hdr->producer;
    const detail::LockStatus st = lock.try_lock();
    if (st == detail::LockStatus::busy) return;
    detail::UnlockAtExit unlock{lock};
    if (st == detail::LockStatus::owner_died) {
      s_->writer.repair_writer();
      lock.mark_consistent();
    } else {
      s_->writer.flush_pending_abort(detail::Clock::now());
    }
  }

  friend struct detail::TestAccess;  // tests reach its locks and rings

  std::shared_ptr<detail::QueueState> s_;
};

}  // namespace mp
