// mp/semaphore.hpp - mp::Semaphore and mp::BoundedSemaphore, shared by
// processes (Python's multiprocessing.Semaphore and BoundedSemaphore).
//
// Each semaphore lives in its own anonymous shared segment, mapped at
// construction: create it BEFORE starting the Process or Pool that uses it.
// Copies of the handle refer to the same semaphore.
//
// Dead holders. A semaphore has no owner, but mp records which process took
// each of the first `initial` units (a table of pid -> units). A waiter that
// has waited 20 ms finds holders that have exited (or are zombies) and takes
// their units back, so a process killed while holding a unit does not block
// the others for ever. The record is exact when each process releases the
// units it acquired (the resource-counting use). A release by a process that
// holds no unit is treated as a hand-off and clears some other holder's
// record (a dead one first); with such hand-offs a reclaimed unit may be one
// that was in fact already given back. Units beyond `initial` (created by
// extra releases of a plain Semaphore, e.g. Semaphore(0) used as a signal)
// are never recorded and never reclaimed. At most 32 holders are recorded.
//
//   layout (after the 64-byte SegmentHeader):
//   +-------------------------------------------------------------+
//   | RobustMutex m         guards everything below               |
//   | value    u32 atomic   the count; also the futex word         |
//   | waiters  u32 atomic   sleepers, so release skips the syscall |
//   | initial  u32 | bound u32 (0 = unbounded) | recorded u32      |
//   | holders[32] { pid i32, count u32 } units                     |
//   +-------------------------------------------------------------+
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <sys/types.h>

#include <mp/detail/compiled.hpp>
#include <mp/detail/futex.hpp>
#include <mp/detail/holder_table.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/shared_object.hpp>

namespace mp {
namespace detail {

struct SemaphoreLayout {
  static constexpr std::size_t max_holders = 32;
  RobustMutex m;
  std::atomic<std::uint32_t> value;
  std::atomic<std::uint32_t> waiters;
  std::uint32_t initial;
  std::uint32_t bound;
  std::uint32_t recorded;  // sum of holders[].count, at most initial
  Holder holders[max_holders];  // count: units it took
};

inline constexpr std::uint64_t semaphore_magic = 0x6d702d53656d6131;  // "mp-Sema1"

/// The engine of Semaphore and BoundedSemaphore. Safe across threads and processes.
class SemaphoreCore {
public:
  /// How long a waiter waits before it looks for dead holders, and how often after.
  static constexpr std::chrono::milliseconds reclaim_period{20};

  SemaphoreCore(std::uint32_t initial, bool bounded);

  bool acquire_until(Clock::time_point deadline);

  bool try_take();

  void release(const char* kind);

  /// Takes back the units of recorded holders that have exited. Returns
  /// whether any came back.
  bool reclaim_dead();

  [[nodiscard]] std::uint32_t value() const noexcept { return s_->value.load(); }

private:
  static bool add_units(SemaphoreLayout& l, pid_t pid, std::uint32_t n) { return holder_add(l.holders, pid, n); }

  /// A release: take one unit off the releaser's record, else off a dead
  /// holder's, else off any holder's (a hand-off); nothing if none is recorded.
  static void forget_one(SemaphoreLayout& l) {
    if (l.recorded == 0) return;
    if (holder_forget_one(l.holders)) --l.recorded;
  }

  /// After a process died inside the critical section: recount the records.
  static void repair(SemaphoreLayout& l) {
    std::uint32_t sum = 0;
    for (const Holder& h : l.holders) sum += h.count;
    l.recorded = std::min(sum, l.initial);
  }

  friend struct HandleAccess;  // sent as its handles (shared_object.hpp)
  SemaphoreCore(HandleTag, SharedObject<SemaphoreLayout> s) : s_(std::move(s)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(s_); }

  SharedObject<SemaphoreLayout> s_;
};

#if MP_DEFINE_COMPILED

MP_COMPILED SemaphoreCore::SemaphoreCore(std::uint32_t initial, bool bounded)
    : s_(SharedObject<SemaphoreLayout>::make(semaphore_magic, 1, 0, [&](SemaphoreLayout& l) {
        l.m.init();
        l.value.store(initial);
        l.initial = initial;
        l.bound = bounded ? initial : 0;
      })) {}

MP_COMPILED bool SemaphoreCore::acquire_until(Clock::time_point deadline) {
  SemaphoreLayout& l = *s_;
  Clock::time_point next_reclaim = Clock::now() + reclaim_period;
  for (;;) {
    if (try_take()) return true;
    Clock::time_point now = Clock::now();
    if (now >= deadline) return false;
    if (now >= next_reclaim) {
      next_reclaim = now + reclaim_period;
      if (reclaim_dead()) continue;
    }
    l.waiters.fetch_add(1);
    futex_wait(l.value, 0, std::min(deadline, next_reclaim));
    l.waiters.fetch_sub(1);
  }
}

MP_COMPILED bool SemaphoreCore::try_take() {
  SemaphoreLayout& l = *s_;
  if (l.value.load(std::memory_order_relaxed) == 0) return false;
  RobustLock g(l.m, [&] { repair(l); });
  std::uint32_t v = l.value.load(std::memory_order_relaxed);
  if (v == 0) return false;
  l.value.store(v - 1, std::memory_order_relaxed);
  if (l.recorded < l.initial && add_units(l, self_pid(), 1)) ++l.recorded;
  return true;
}

MP_COMPILED void SemaphoreCore::release(const char* kind) {
  SemaphoreLayout& l = *s_;
  {
    RobustLock g(l.m, [&] { repair(l); });
    std::uint32_t v = l.value.load(std::memory_order_relaxed);
    if (l.bound != 0 && v >= l.bound)
      throw std::logic_error(std::string("mp::") + kind + "::release(): released more often than acquired (value " +
                             std::to_string(v) + " already at its bound)");
    if (v == std::numeric_limits<std::uint32_t>::max())
      throw std::overflow_error(std::string("mp::") + kind + "::release(): value would overflow");
    forget_one(l);
    l.value.store(v + 1);  // seq_cst: pairs with the waiter's waiters.fetch_add
  }
  if (l.waiters.load() > 0) futex_wake(l.value, 1);
}

MP_COMPILED bool SemaphoreCore::reclaim_dead() {
  SemaphoreLayout& l = *s_;
  std::uint32_t back = 0;
  {
    RobustLock g(l.m, [&] { repair(l); });
    for (Holder& h : l.holders) {
      if (h.count == 0 || pid_alive(h.pid)) continue;
      back += h.count;
      l.recorded -= h.count;
      h = Holder{0, 0};
    }
    if (back == 0) return false;
    std::uint32_t v = l.value.load(std::memory_order_relaxed) + back;
    if (l.bound != 0) v = std::min(v, l.bound);
    l.value.store(v);
  }
  futex_wake(l.value, static_cast<int>(std::min<std::uint32_t>(back, 1u << 20)));
  return true;
}

#endif  // MP_DEFINE_COMPILED

/// The members Semaphore and BoundedSemaphore share; only release() differs,
/// by whether the core is bounded.
class SemaphoreBase {
public:
  /// Blocks until a unit is taken. Safe across threads and processes.
  void acquire() { core_.acquire_until(Clock::time_point::max()); }
  /// Blocks at most `timeout`; returns whether a unit was taken.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return core_.acquire_until(deadline_after(timeout));
  }
  /// Never blocks; returns whether a unit was taken.
  bool try_lock() { return core_.try_take(); }
  /// acquire(), for std::lock_guard / std::unique_lock.
  void lock() { acquire(); }
  /// The number of units available now (a snapshot). Never blocks.
  [[nodiscard]] std::uint32_t get_value() const noexcept { return core_.value(); }

protected:
  SemaphoreBase(std::uint32_t value, bool bounded) : core_(value, bounded) {}
  SemaphoreBase(HandleTag, SemaphoreCore core) : core_(std::move(core)) {}
  auto mp_handle_fields_() const noexcept { return std::tie(core_); }
  SemaphoreCore core_;
};

}  // namespace detail

/// A counter of available units shared by processes; acquire() takes one
/// (waiting while none is left), release() gives one back. release() may
/// raise the count above its initial value.
class Semaphore : public detail::SemaphoreBase {
public:
  /// Creates a semaphore holding `value` units in a new shared segment.
  /// Throws mp::Error if shared memory cannot be mapped.
  explicit Semaphore(std::uint32_t value = 1) : SemaphoreBase(value, false) {}

  /// Gives a unit back and wakes one waiter. Never blocks (beyond a short
  /// critical section). Throws std::overflow_error at 2^32 - 1 units.
  void release() { core_.release("Semaphore"); }
  /// release(), for std::lock_guard / std::unique_lock.
  void unlock() { release(); }

private:
  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  Semaphore(detail::HandleTag t, detail::SemaphoreCore core) : SemaphoreBase(t, std::move(core)) {}
};

/// A Semaphore whose count may never exceed its initial value: releasing
/// more often than acquiring throws.
class BoundedSemaphore : public detail::SemaphoreBase {
public:
  /// Creates a bounded semaphore holding `value` units. Throws mp::Error.
  explicit BoundedSemaphore(std::uint32_t value = 1) : SemaphoreBase(value, true) {}

  /// Gives a unit back and wakes one waiter. Throws std::logic_error (count
  /// unchanged) if the count is already at its initial value (Python raises
  /// ValueError).
  void release() { core_.release("BoundedSemaphore"); }
  /// release(), for std::lock_guard / std::unique_lock.
  void unlock() { release(); }

private:
  friend struct detail::HandleAccess;  // sent as its handles (shared_object.hpp)
  BoundedSemaphore(detail::HandleTag t, detail::SemaphoreCore core) : SemaphoreBase(t, std::move(core)) {}
};

}  // namespace mp
