// mp/time_limit.hpp - mp::time_limit, a per-call limit on how long a task
// may run (pebble's schedule(f, args, timeout=)).
//
//   auto r = pool.apply_async(mp::time_limit(2s), f, x);   // first, before f
//   auto v = pool.map(f, items, mp::time_limit(2s));       // after the range
//   auto w = pool.map(f, items, 100, mp::progress(), mp::time_limit(2s));
//
// A task running longer than its limit has its worker killed (and
// replaced; other tasks go on) and fails with mp::TaskTimeoutError. The time
// counts from the moment a worker begins the task, not from submission. In
// a map-family call the limit applies to each chunk (a chunk is one task):
// pass chunksize 1 for a limit per item.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

namespace mp {

/// A per-call time limit; make one with mp::time_limit(d).
struct TimeLimit {
  std::chrono::nanoseconds duration{0};  ///< always positive
};

/// The per-call limit d. Never blocks; throws std::invalid_argument unless
/// d > 0 (leave the option out for no limit). Thread-safe.
template <class Rep, class Period>
TimeLimit time_limit(std::chrono::duration<Rep, Period> d) {
  if (!(d > d.zero())) {
    throw std::invalid_argument("mp::time_limit: a time limit must be positive (got " + std::to_string(d.count()) +
                                " ticks); to run without a limit, leave the option out");
  }
  return TimeLimit{std::chrono::ceil<std::chrono::nanoseconds>(d)};
}

}  // namespace mp
