// mp/detail/spin.hpp - how long each waiter of the library spins for a peer
// that is likely to answer within microseconds before it sleeps on a futex,
// and the spin loop the pool's processes use (spin_for). spin_for and
// AsyncResult::get yield the CPU after spin_before_yield; a ring's waiter
// (spin_then_wait, ring_layout.hpp) does not.
#pragma once

#include <chrono>
#include <cstdint>
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

/// How long a worker spins for its next task before it sleeps on a futex
/// (ns), counted from the end of its last task; an idle pool sleeps.
inline constexpr std::int64_t worker_spin_ns = 100'000;

/// How long the result thread spins for results before it sleeps.
inline constexpr std::int64_t parent_spin_ns = 30'000;

/// Spinning waiters yield the CPU after this long: if the peer they wait
/// for was placed on the same core (other jobs hold the other one), it runs
/// now rather than after a time slice. A round trip between two cores takes
/// ~2 us, so a waiter whose peer runs elsewhere rarely gets here.
inline constexpr std::chrono::nanoseconds spin_before_yield{3'000};

/// Spins until ready() or spin_ns passed, yielding now and then after
/// spin_before_yield; returns ready().
template <class Ready>
bool spin_for(std::int64_t spin_ns, Ready&& ready) {
  if (ready()) return true;
  const auto start = Clock::now();
  const auto stop = start + std::chrono::nanoseconds(spin_ns);
  for (Clock::time_point now = start; now < stop; now = Clock::now()) {
    for (int i = 0; i < 32; ++i) {
      cpu_relax();
      if (ready()) return true;
    }
    if (now - start > spin_before_yield) std::this_thread::yield();
  }
  return ready();
}

}  // namespace mp::detail
