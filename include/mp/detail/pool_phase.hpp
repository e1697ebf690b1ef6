// mp/detail/pool_phase.hpp - a pool's lifecycle as one value, and the
// transitions it may take (ForkBackend and MpiBackend both keep it):
//
//   running --close()--> closed --join()--> stopping --> ended
//      |                   |                   |           ^
//      |                   +--> broken --join()+           |
//      |                          |                        |
//      +------ terminate() -------+--> terminated ---------+
//
//   running    takes submissions.
//   closed     takes none; queued and running tasks go on.
//   broken     takes none, for a reason (an initializer failed, no spawner
//              is left; MPI: an MPI call failed); every task failed.
//   stopping   join(): every task finished, the workers were sent their
//              stop messages and the spawner is told to exit.
//   terminated terminate(): the workers are killed, unfinished tasks fail
//              with ClosedError.
//   ended      the spawners and workers are gone (MPI: the worker ranks
//              were sent stop or kill); the result thread ends.
//
// From stopping on, the spawners' exit is no death: the pool does not heal.
// stopping, terminated and ended may be entered again by a second caller of
// join() or terminate() on another thread.
#pragma once

#include <stdexcept>
#include <string>

namespace mp::detail {

enum class Phase { running, closed, broken, stopping, terminated, ended };

[[nodiscard]] constexpr const char* phase_name(Phase p) noexcept {
  switch (p) {
    case Phase::running: return "running";
    case Phase::closed: return "closed";
    case Phase::broken: return "broken";
    case Phase::stopping: return "stopping";
    case Phase::terminated: return "terminated";
    case Phase::ended: return "ended";
  }
  return "unknown";
}

/// Whether the pool may go from phase `from` to phase `to` (the drawing above).
[[nodiscard]] constexpr bool phase_may_go(Phase from, Phase to) noexcept {
  switch (to) {
    case Phase::running: return false;
    case Phase::closed: return from == Phase::running;
    case Phase::broken: return from == Phase::running || from == Phase::closed;
    case Phase::stopping: return from == Phase::closed || from == Phase::broken || from == Phase::stopping;
    case Phase::terminated: return from != Phase::ended;
    case Phase::ended: return from == Phase::stopping || from == Phase::terminated || from == Phase::ended;
  }
  return false;
}

/// `to`, after checking that the pool may go there from `from`. Throws
/// std::logic_error on a transition the drawing above does not have (a bug
/// in the pool, never a user's mistake).
[[nodiscard]] inline Phase next_phase(Phase from, Phase to) {
  if (!phase_may_go(from, to))
    throw std::logic_error(std::string("mp::Pool: the pool cannot go from phase ") + phase_name(from) + " to " +
                           phase_name(to));
  return to;
}

/// Whether the spawners' exit from here on is part of shutting down (no death).
[[nodiscard]] constexpr bool phase_is_ending(Phase p) noexcept {
  return p == Phase::stopping || p == Phase::terminated || p == Phase::ended;
}

}  // namespace mp::detail
