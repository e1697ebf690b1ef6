// mp/detail/spawners.hpp - the pool's two spawners as the parent holds them:
// the active one (forks and reaps workers) and a standby, both forked at
// construction. When the active one dies, the standby takes over and makes
// its own standby; when the standby dies, the active one makes another. The
// pool can make workers while either lives.
//
// Taking over when the active spawner died (bury_active, then promote):
//   1. reap it: its workers were sent SIGKILL (PDEATHSIG) as it died;
//   2. bump PoolCtl::epoch: a worker it forked that has not started yet
//      sees the change after taking its life lock, and exits;
//   3. take and release each slot's life lock: a worker holds it until the
//      kernel has torn down its memory, so after this no worker of the dead
//      spawner can touch a slot or a channel;
//   4. send take_over to the standby, which answers with its successor.
// Everything here runs under the backend's lock, except end().
#pragma once

#include <string>
#include <sys/types.h>
#include <sys/wait.h>

#include <mp/detail/pool_layout.hpp>
#include <mp/detail/robust_mutex.hpp>
#include <mp/detail/spawner.hpp>
#include <mp/detail/spawner_link.hpp>

namespace mp::detail {

class Spawners {
public:
  /// Forks the active spawner, then the standby. Call before the pool starts
  /// any thread. Throws std::system_error.
  Spawners(const PoolSegment& seg, const Spawner::WorkerMain& main) : seg_(seg) {
    auto [pid, fd] = start_spawner(seg, main, false);
    active_ = SpawnerLink(pid, fd);
    try {
      auto [spid, sfd] = start_spawner(seg, main, true);
      standby_ = SpawnerLink(spid, sfd);
    } catch (...) {
      end(SpawnerOp::kill);
      throw;
    }
  }

  [[nodiscard]] pid_t active_pid() const noexcept { return active_.pid(); }
  [[nodiscard]] pid_t standby_pid() const noexcept { return standby_.pid(); }

  /// Sends a command to the active spawner. Throws std::system_error.
  void send(std::uint32_t cmd) const { active_.send(cmd); }

  /// Whether the active spawner has died. Never blocks.
  [[nodiscard]] bool active_died() const noexcept { return active_.exited(); }

  /// When the standby died (or none could be made): reaps it and has the
  /// active spawner make another. Blocks only while it answers.
  void renew_standby() {
    if (standby_.open() && !standby_.exited()) return;
    standby_.close();
    standby_.reap();
    std::string why;
    standby_ = active_.ask_for_standby(SpawnerOp::new_standby, why);
  }

  /// The active spawner died: reaps it and waits until none of its workers
  /// can touch the segment (steps 1-3 above). Returns how it ended
  /// ("killed by SIGKILL"). Blocks while its workers finish dying.
  std::string bury_active() {
    const std::string how = active_.how_it_ended();
    active_.close();
    active_.reap();
    seg_.ctl().epoch.fetch_add(1, std::memory_order_seq_cst);
    for (unsigned i = 0; i < seg_.workers(); ++i) {
      RobustMutex& life = seg_.slot(i).life;
      if (life.lock() == LockStatus::owner_died) life.mark_consistent();
      life.unlock();
    }
    return how;
  }

  /// After bury_active: the standby becomes the active spawner and makes
  /// its own standby. Returns "" when it did, else why it could not.
  std::string promote() {
    if (!standby_.open() || standby_.exited()) {
      const std::string how = standby_.open() ? standby_.how_it_ended() : "could not be made";
      standby_.close();
      standby_.reap();
      return "its standby spawner " + how;
    }
    active_ = standby_;
    std::string why;
    standby_ = active_.ask_for_standby(SpawnerOp::take_over, why);
    if (standby_.open() || !active_.exited()) return "";
    return "its standby spawner " + active_.how_it_ended();
  }

  /// Ends both spawners: op (kill or join) to the active one, EOF to the
  /// standby; reaps both. Blocks while the active spawner reaps its workers.
  void end(SpawnerOp op) {
    if (active_.open()) {
      try {
        active_.send(spawner_command(op));
      } catch (...) {  // it is gone already: reap it all the same
      }
    }
    standby_.close();
    active_.reap();
    standby_.reap();
  }

  /// Closes the parent's ends (after end()).
  void close() noexcept {
    active_.close();
    standby_.close();
  }

private:
  const PoolSegment& seg_;
  SpawnerLink active_, standby_;
};

}  // namespace mp::detail
