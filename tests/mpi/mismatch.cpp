// tests/mpi/mismatch.cpp - built twice (MP_TEST_VARIANT "a" and "b"), so the
// two executables differ in their ELF build-id. Run as
//   mpirun -np 1 test_mpi_mismatch_a : -np 2 test_mpi_mismatch_b
// rank 0 must get std::runtime_error naming ranks 1 and 2 and their host,
// and every rank must exit 0 (the worker ranks inside the constructor).
#include <mp/mpi.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

int main() {
  try {
    mp::MpiPool pool;
    std::fprintf(stderr, "mismatch (%s): the pool started although the ranks run different executables\n",
                 MP_TEST_VARIANT);
    return 1;
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    const bool names_them = what.find("rank 1 on host ") != std::string::npos &&
                            what.find("rank 2 on host ") != std::string::npos &&
                            what.find("rank 0") != std::string::npos;
    if (!names_them) std::fprintf(stderr, "mismatch: the error does not name the ranks: %s\n", what.c_str());
    return names_them ? 0 : 1;
  }
}
