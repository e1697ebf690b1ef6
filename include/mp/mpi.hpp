// mp/mpi.hpp - mp::MpiPool: the same Pool API over the ranks of an MPI job.
// Opt-in: <mp/mp.hpp> does not include it; link the CMake target mp::mpi.
//
//   int main() {
//     mp::MpiPool pool;                  // ranks 1..N-1 serve in here, then exit
//     auto squares = pool.map(square, std::views::iota(0, 1000));   // rank 0 only
//   }
//   $ mpirun -np 4 ./app
//
// Launch model. Every rank constructs the pool. On rank 0 the constructor
// returns; the pool's workers are the other ranks. On ranks 1..N-1 it never
// returns: the rank serves tasks until rank 0's pool is joined (close() +
// join(), or its destructor) or terminated, then calls MPI_Finalize (always,
// even when the program initialized MPI) and exit(0). Rank 0's pool
// initializes MPI (MPI_THREAD_SERIALIZED) when the program has not, and then
// finalizes it in its destructor; a program that initialized MPI itself must
// have asked for MPI_THREAD_MULTIPLE and finalizes it itself. One MpiPool per
// run: a second one throws std::logic_error. At start-up every rank checks
// that it runs the same executable (its ELF build-id, so the path may differ
// between machines); otherwise rank 0's constructor throws
// std::runtime_error naming the ranks and hosts that differ and the worker
// ranks exit 0.
//
// Workers. Each worker rank runs its tasks in a local fork pool of
// PoolOptions::processes workers (0 means 1). A task that crashes its
// process (a signal, abort, _exit) kills a forked worker, not the rank: its
// future fails with mp::WorkerLostError and the job goes on. size() is
// processes x (N-1). pids()[i] is the pid, on its own host, of the MPI
// process of the rank serving slot i (slots are numbered rank by rank);
// WorkerLostError::pid() is the pid of the forked worker that died, on the
// host its what() names with the rank.
//
// PoolOptions on MPI: processes (per worker rank, as above),
// maxtasksperchild, initializer, window (tasks in flight per local worker;
// a rank holds window x processes), task_timeout (mp::TimeoutError, the
// local worker is killed and replaced), retries (on the same rank),
// memory_limit and max_result_bytes (per local worker) are honoured.
// factor has no meaning here: a value other than its default throws
// std::invalid_argument naming it.
//
// What is fatal. A whole rank lost (killed, its node down) is MPI's domain:
// Open MPI's mpirun then ends every rank of the job and reports which one
// died, so rank 0 does not hang; if an MPI library reports the failure to
// the pool instead, every unfinished task fails with WorkerLostError and
// the pool is broken. Ctrl-C: mpirun forwards it to every rank and ends the
// job; a rank's local pool ends with it (its spawner sees the rank's
// socket close and kills the workers).
// Fork hazard: the local pools fork after MPI_Init. That is safe with the
// shared-memory and TCP transports when the children never call MPI (they
// do not); with InfiniBand verbs (openib/UCX), memory the rank registered
// for RDMA is not shared correctly with a child (pages may be copy-on-write
// protected or missing), so on such fabrics set processes to 1, export
// RDMAV_FORK_SAFE=1, and keep tasks away from MPI buffers.
//
// Shared-memory objects (mp::Value, mp::Array, ...) and captures that rely
// on fork inheritance name memory on rank 0's machine and cannot be sent to
// an MpiPool: MpiBackend::shares_memory is false (ForkBackend's is true).
#pragma once

#include <mp/detail/mpi_backend.hpp>
#include <mp/pool.hpp>

namespace mp {

/// The backend of MpiPool: tasks go to the worker ranks of an MPI job.
using MpiBackend = detail::MpiBackend;

/// The pool over MPI ranks; see the comment at the top of this header.
using MpiPool = basic_pool<MpiBackend>;

}  // namespace mp
