// mp/detail/spin.hpp - how the pool's processes wait for a peer that is
// likely to answer within microseconds: spin, yielding the CPU now and then,
// for a bounded time; the caller then sleeps on a futex.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#include <mp/detail/config.hpp>
#include <mp/detail/futex.hpp>

namespace mp::detail {

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
