// tests/mpi/user_init.cpp - an MpiPool in a program that initialized MPI itself.
//
//   mpirun -np 3 test_mpi_user_init multiple     the pool runs; rank 0 can
//       still use MPI_COMM_WORLD with the pool alive and after it, and
//       finalizes MPI itself (the worker ranks finalized inside the pool)
//   mpirun -np 3 test_mpi_user_init serialized   every rank's pool refuses
//       the thread level with std::runtime_error; each rank finalizes, exits 0
#include <mp/mpi.hpp>

#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

int add(int a, int b) { return a + b; }

int main(int argc, char** argv) {
  const bool multiple = argc > 1 && std::strcmp(argv[1], "multiple") == 0;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, multiple ? MPI_THREAD_MULTIPLE : MPI_THREAD_SERIALIZED, &provided);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int failures = 0;
  if (multiple) {
    {
      mp::MpiPool pool;  // ranks 1.. finalize and exit in here
      if (pool.apply(add, 2, 3) != 5) ++failures;
      int me = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &me);  // the program's own MPI call while the pool's thread runs
      if (me != 0) ++failures;
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) ++failures;  // the pool must leave the program's MPI to the program
  } else {
    try {
      mp::MpiPool pool;
      ++failures;
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()).find("MPI_THREAD_MULTIPLE") == std::string::npos) ++failures;
    }
  }
  MPI_Finalize();
  if (failures != 0) std::fprintf(stderr, "test_mpi_user_init (rank %d): %d failure(s)\n", rank, failures);
  return failures == 0 ? 0 : 1;
}
