// tests/mpi/faults.cpp - the MPI program of tests/mpi/faults.py, which kills
// part of this job from outside and checks how the job ends.
//
//   mpirun -np 4 test_mpi_faults DIR MARKER
//
// Every rank builds an MpiPool of 2 local workers per worker rank. Rank 0
// then maps slow tasks (each sleeps 60 s); every task, as it starts, creates
// DIR/task-<its pid>. Once every local worker runs a task, rank 0 writes
// DIR/ready: "<rank 0's pid> <the worker ranks' pids>" on one line, and waits
// for the map. MARKER is not read: it names the job's processes in
// /proc/<pid>/cmdline (forked ones keep their parent's argv) for the driver.
//
// If the map ends, rank 0 writes DIR/outcome: "lost" when it failed with
// mp::WorkerLostError, else "other <what>" or "done", and exits with 3.
// Neither should happen: the driver ends the job first.
#include <mp/mpi.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <ranges>
#include <set>
#include <string>
#include <thread>

namespace {

constexpr unsigned local_processes = 2;

std::string dir_of_job;  // set on every rank before the pool's constructor: workers inherit it

int slow_task(int x) {
  std::ofstream(dir_of_job + "/task-" + std::to_string(::getpid())) << x;
  std::this_thread::sleep_for(std::chrono::seconds(60));
  return x;
}

/// Writes path by rename, so that a reader never sees it half written.
void write_whole(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text << '\n';
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: test_mpi_faults DIR MARKER\n");
    return 2;
  }
  dir_of_job = argv[1];
  mp::PoolOptions o;
  o.processes = local_processes;
  mp::MpiPool pool(o);  // ranks 1..3 never return from here

  auto result = pool.map_async(slow_task, std::views::iota(0, 64), 1);
  const auto slots = pool.pids();  // local_processes slots per worker rank
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    std::size_t running = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_of_job)) {
      if (e.path().filename().string().starts_with("task-")) ++running;
    }
    if (running >= slots.size()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "test_mpi_faults: only %zu of %zu local workers started a task\n", running, slots.size());
      return 4;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string line = std::to_string(::getpid());
  for (pid_t p : std::set<pid_t>(slots.begin(), slots.end())) line += " " + std::to_string(p);
  write_whole(dir_of_job + "/ready", line);

  std::string outcome = "done";
  try {
    std::move(result).get();
  } catch (const mp::WorkerLostError& e) {
    outcome = std::string("lost ") + e.what();
  } catch (const std::exception& e) {
    outcome = std::string("other ") + e.what();
  }
  write_whole(dir_of_job + "/outcome", outcome);
  std::fprintf(stderr, "test_mpi_faults: the map ended: %s\n", outcome.c_str());
  return 3;
}
