// mp/detail/spin.hpp - how long each waiter of the library spins for a peer
// that is likely to answer within microseconds before it sleeps on a futex,
// and the one spin loop they all use (spin_until). The sleeping after an
// unsuccessful spin is the caller's: each sleeps on its own word.
//
//   waiter                          budget             yields
//   a ring's waiter (ring_layout)   ring_spin_time     no
//   AsyncResult::get                wait_spin_time     after spin_before_yield
//   a worker awaiting its next task worker_spin_time   after spin_before_yield
//   the pool's result thread        parent_spin_time   after spin_before_yield
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

#include <mp/detail/config.hpp>
#include <mp/detail/futex.hpp>

namespace mp::detail {

/// How long a ring's waiter spins (cpu_relax) before it sleeps on the futex: a
/// futex wake of a sleeper on another core takes tens of microseconds, and a
/// short spin catches a peer that is about to publish without one.
inline constexpr std::chrono::nanoseconds ring_spin_time{20'000};

/// How long AsyncResult::get spins (helping the backend read results) before it
/// sleeps on the futex. A futex wake of a sleeper on another core takes tens
/// of microseconds, so a round trip that completes within this window never
/// sleeps.
inline constexpr std::chrono::nanoseconds wait_spin_time{100'000};

/// How long a worker spins for its next task before it sleeps on a futex,
/// counted from the end of its last task; an idle pool sleeps.
inline constexpr std::chrono::nanoseconds worker_spin_time{100'000};

/// How long the result thread spins for results before it sleeps.
inline constexpr std::chrono::nanoseconds parent_spin_time{30'000};

/// Spinning waiters yield the CPU after this long: if the peer they wait
/// for was placed on the same core (other jobs hold the other one), it runs
/// now rather than after a time slice. A round trip between two cores takes
/// ~2 us, so a waiter whose peer runs elsewhere rarely gets here.
inline constexpr std::chrono::nanoseconds spin_before_yield{3'000};

/// How long one spin may last.
struct SpinBudget {
  std::chrono::nanoseconds time;                           ///< from the start of the spin
  Clock::time_point deadline = Clock::time_point::max();  ///< never spin past this
  bool yield = true;                                       ///< yield the CPU after spin_before_yield
};

/// Calls ready() (which may do work: AsyncResult::get reads results there)
/// with a cpu_relax between calls until it returns true or the budget ends;
/// the clock is read every 16 calls. Returns whether ready() returned true.
/// Never sleeps; thread-safe as ready() is.
template <class Ready>
bool spin_until(Ready&& ready, SpinBudget budget) {
  if (ready()) return true;
  const auto start = Clock::now();
  const auto stop = std::min(budget.deadline, start + budget.time);
  for (unsigned i = 1;; ++i) {
    cpu_relax();
    if (ready()) return true;
    if ((i & 15u) != 0) continue;
    const auto now = Clock::now();
    if (now >= stop) return false;
    if (budget.yield && now - start > spin_before_yield) std::this_thread::yield();
  }
}

}  // namespace mp::detail
