// mp/detail/mpi_env.hpp - MPI set-up for MpiBackend: initialization (and
// who finalizes), the pool's own communicator, and the start-up check that
// every rank runs the same binary.
//
// Every rank calls mpi_start() from the pool's constructor. It initializes
// MPI when the program has not (MPI_THREAD_SERIALIZED: on rank 0 one
// thread at a time makes mp's MPI calls, the pool's background thread or a
// thread waiting for a result), or checks that a program which initialized
// MPI itself asked for MPI_THREAD_MULTIPLE (it may call MPI while mp does). It duplicates MPI_COMM_WORLD, so mp's
// messages never match the program's own receives, and gathers each rank's
// executable id (function_id.hpp: the ELF build-id), pid and host. A rank
// whose executable differs fails the start on rank 0 with a sentence naming
// it; the worker ranks then finalize and exit.
#pragma once

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <mp/detail/function_id.hpp>

namespace mp::detail {

/// Throws std::runtime_error naming the MPI call when rc is not MPI_SUCCESS.
inline void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  throw std::runtime_error(std::string("mp::MpiPool: ") + call + " failed: " +
                           std::string(text, static_cast<std::size_t>(len)));
}

/// The ranks of one MpiPool and what the pool owns of MPI.
struct MpiWorld {
  MPI_Comm comm = MPI_COMM_NULL;  ///< a duplicate of MPI_COMM_WORLD
  int rank = 0;
  int size = 1;
  bool owns_mpi = false;            ///< this pool called MPI_Init_thread
  std::vector<pid_t> pids;          ///< each rank's pid (on its host)
  std::vector<std::string> hosts;   ///< each rank's MPI_Get_processor_name
};

/// Set once the first MpiPool began: the worker ranks serve only that one.
inline std::atomic<bool>& mpi_pool_made() {
  static std::atomic<bool> made{false};
  return made;
}

/// What one rank tells the others at start-up.
struct MpiIdentity {
  std::uint64_t module = 0;  ///< main_module_id() of the executable
  std::int64_t pid = 0;
  char host[MPI_MAX_PROCESSOR_NAME + 1] = {};
};

/// Initializes MPI (or checks the program's thread level). Throws
/// std::logic_error for a second pool or finalized MPI, std::runtime_error
/// when the thread level is too low.
inline bool mpi_initialize() {
  if (mpi_pool_made().exchange(true))
    throw std::logic_error(
        "mp::MpiPool: only one MpiPool can exist in a run: the worker ranks served the first one and have exited");
  int inited = 0, finalized = 0;
  mpi_check(MPI_Initialized(&inited), "MPI_Initialized");
  mpi_check(MPI_Finalized(&finalized), "MPI_Finalized");
  if (finalized != 0) throw std::logic_error("mp::MpiPool: MPI was finalized already; make the pool before MPI_Finalize");
  int provided = 0;
  if (inited == 0) mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  mpi_check(MPI_Query_thread(&provided), "MPI_Query_thread");
  const int need = inited == 0 ? MPI_THREAD_SERIALIZED : MPI_THREAD_MULTIPLE;
  if (provided < need) {
    if (inited == 0) MPI_Finalize();
    throw std::runtime_error(
        inited == 0 ? "mp::MpiPool: this MPI library does not provide MPI_THREAD_SERIALIZED, which the pool's "
                      "background thread needs"
                    : "mp::MpiPool: the program initialized MPI below MPI_THREAD_MULTIPLE; call "
                      "MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...) or let the pool initialize MPI");
  }
  return inited == 0;
}

/// The sentence naming the ranks whose executable differs from rank 0's,
/// or "" when all agree.
inline std::string mpi_mismatch(const std::vector<MpiIdentity>& ids) {
  std::string bad;
  for (std::size_t r = 1; r < ids.size(); ++r) {
    if (ids[r].module == ids[0].module) continue;
    bad += (bad.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " on host " + ids[r].host;
  }
  if (bad.empty()) return bad;
  return "mp::MpiPool: every rank must run the same executable (the same ELF build-id), but " + bad +
         " runs another one than rank 0 on host " + ids[0].host +
         "; build once and run that binary everywhere (any path will do)";
}

/// Ends a worker rank: frees the communicator, finalizes MPI (always, even
/// when the program initialized it) and exits with `code`. Never returns.
[[noreturn]] inline void mpi_worker_exit(MpiWorld& w, int code) {
  if (w.comm != MPI_COMM_NULL) MPI_Comm_free(&w.comm);
  MPI_Finalize();
  std::exit(code);
}

/// Starts the pool's MPI side on this rank (see the file comment). On a
/// worker rank a failed check ends the process; on rank 0 it throws
/// std::runtime_error (and finalizes MPI if the pool initialized it).
inline MpiWorld mpi_start() {
  MpiWorld w;
  w.owns_mpi = mpi_initialize();
  mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &w.comm), "MPI_Comm_dup");
  mpi_check(MPI_Comm_set_errhandler(w.comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  mpi_check(MPI_Comm_rank(w.comm, &w.rank), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(w.comm, &w.size), "MPI_Comm_size");
  MpiIdentity me;
  me.module = main_module_id();
  me.pid = ::getpid();
  int len = 0;
  mpi_check(MPI_Get_processor_name(me.host, &len), "MPI_Get_processor_name");
  std::vector<MpiIdentity> ids(static_cast<std::size_t>(w.size));
  mpi_check(MPI_Allgather(&me, sizeof me, MPI_BYTE, ids.data(), sizeof me, MPI_BYTE, w.comm), "MPI_Allgather");
  for (const auto& id : ids) {
    w.pids.push_back(static_cast<pid_t>(id.pid));
    w.hosts.emplace_back(id.host);
  }
  std::string why = mpi_mismatch(ids);
  if (why.empty() && w.size < 2)
    why = "mp::MpiPool needs at least 2 ranks (rank 0 submits, the others run tasks): run it as mpirun -np N with N >= 2";
  if (why.empty()) return w;
  if (w.rank != 0) mpi_worker_exit(w, 0);  // rank 0 reports it
  MPI_Comm_free(&w.comm);
  if (w.owns_mpi) MPI_Finalize();
  throw std::runtime_error(why);
}

}  // namespace mp::detail
