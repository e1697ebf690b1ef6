// mp/detail/holder_table.hpp - a fixed table in shared memory of which
// processes hold how many of something (a Semaphore's units, a
// JoinableQueue's got but unfinished tasks), so that what a dead process
// held can be taken back. Every function runs under the owner's lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/types.h>

#include <mp/detail/pids.hpp>

namespace mp::detail {

/// One process's count; pid 0 and count 0: a free entry.
struct Holder {
  pid_t pid;
  std::uint32_t count;
};

/// Adds n to pid's count, in a free entry if pid has none. Returns false
/// (nothing recorded) when the table is full. Never blocks.
template <std::size_t N>
bool holder_add(Holder (&table)[N], pid_t pid, std::uint32_t n) noexcept {
  Holder* free_entry = nullptr;
  for (Holder& h : table) {
    if (h.count != 0 && h.pid == pid) {
      h.count += n;
      return true;
    }
    if (h.count == 0 && free_entry == nullptr) free_entry = &h;
  }
  if (free_entry == nullptr) return false;
  *free_entry = Holder{pid, n};
  return true;
}

/// Takes one off the calling process's count, else off a dead holder's,
/// else off any holder's (a hand-off to another process). Returns false
/// when nobody holds anything. Never blocks (reads /proc for liveness).
template <std::size_t N>
bool holder_forget_one(Holder (&table)[N]) noexcept {
  const pid_t me = self_pid();
  Holder* pick = nullptr;
  for (Holder& h : table)
    if (h.count != 0 && h.pid == me) pick = &h;
  for (Holder& h : table)
    if (pick == nullptr && h.count != 0 && !pid_alive(h.pid)) pick = &h;
  for (Holder& h : table)
    if (pick == nullptr && h.count != 0) pick = &h;
  if (pick == nullptr) return false;
  if (--pick->count == 0) pick->pid = 0;
  return true;
}

}  // namespace mp::detail
