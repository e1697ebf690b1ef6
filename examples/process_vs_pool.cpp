// examples/process_vs_pool.cpp - "Process for a few long tasks, Pool for many
// short ones", measured.
//
// The claim, from "Multicoreprocessing Python" (its "Process VS Pool"
// section): "Pool is most useful for large amounts of processes where each
// process can execute quickly, while Process is most useful for a small
// number of processes where each process would take a longer time to
// execute." Two workloads, each run both ways:
//   few long:   one task per CPU, ~50 ms each;
//   many short: 500 tasks of ~20 us each (or the number given).
// "Process" starts one mp::Process per task, all at once, and joins them;
// each writes its result into an mp::Array made before the children. "Pool"
// builds an mp::Pool (its creation is timed too) and maps the tasks over it.
// Both answers are checked against a serial computation; the table gives
// the median of 3 runs.
//
//   build/release/examples/process_vs_pool [short tasks]
#include <mp/cpu_count.hpp>
#include <mp/pool.hpp>
#include <mp/process.hpp>
#include <mp/sharedctypes.hpp>

#include "example_check.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

/// One task's input: a seed and how much work to do.
struct Job {
  std::uint64_t seed, rounds;
};

/// Deterministic CPU work.
std::uint64_t work(Job job) {
  std::uint64_t h = job.seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::uint64_t i = 0; i < job.rounds; ++i) h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull + i;
  return h;
}

/// The rounds of work() that take about `us` microseconds here.
std::uint64_t rounds_for_us(double us) {
  std::uint64_t rounds = 1 << 16;
  for (;;) {
    example::Stopwatch t;
    volatile std::uint64_t sink = work({1, rounds});
    (void)sink;
    const double took_us = t.seconds() * 1e6;
    if (took_us > 5000 || rounds > (std::uint64_t{1} << 40))
      return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(double(rounds) * us / took_us));
    rounds *= 4;
  }
}

std::vector<std::uint64_t> with_processes(const std::vector<Job>& jobs) {
  mp::Array<std::uint64_t> results(jobs.size());
  std::vector<mp::Process> children;
  children.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i)
    children.emplace_back([&results, &jobs, i] { results[i] = work(jobs[i]); });
  for (auto& c : children) c.start();
  bool ok = true;
  for (auto& c : children) {
    c.join();
    ok = ok && c.exitcode() == 0;
  }
  if (!ok) return {};
  return {results.begin(), results.end()};
}

std::vector<std::uint64_t> with_pool(const std::vector<Job>& jobs) {
  mp::Pool pool(static_cast<int>(mp::cpu_count()));
  return pool.map(work, jobs, 1);
}

template <class Run>
double median_ms(Run run, const std::vector<Job>& jobs, const std::vector<std::uint64_t>& expected,
                 example::Checks& check, const char* what) {
  std::vector<double> ms;
  for (int i = 0; i < 3; ++i) {
    example::Stopwatch t;
    const std::vector<std::uint64_t> got = run(jobs);
    ms.push_back(t.ms());
    check(got == expected, what);
  }
  std::sort(ms.begin(), ms.end());
  return ms[1];
}

int main(int argc, char** argv) {
  example::Checks check;
  const unsigned cpus = mp::cpu_count();
  const std::size_t short_tasks = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 500;
  struct Workload {
    const char* name;
    std::size_t tasks;
    double us_each;
  };
  const Workload workloads[] = {{"few long", cpus, 50'000}, {"many short", short_tasks, 20}};
  std::printf("cpu_count() = %u\n\n", cpus);
  std::printf("| workload | tasks x time each | Process per task (ms) | Pool, created + map (ms) |\n");
  std::printf("|---|---|---:|---:|\n");
  for (const Workload& w : workloads) {
    const std::uint64_t rounds = rounds_for_us(w.us_each);
    std::vector<Job> jobs;
    for (std::size_t i = 0; i < w.tasks; ++i) jobs.push_back({i, rounds});
    std::vector<std::uint64_t> expected;
    for (const Job& j : jobs) expected.push_back(work(j));
    const double process_ms = median_ms(with_processes, jobs, expected, check, "Process results equal serial");
    const double pool_ms = median_ms(with_pool, jobs, expected, check, "Pool results equal serial");
    std::printf("| %s | %zu x %.0f us | %.1f | %.1f |\n", w.name, w.tasks, w.us_each, process_ms, pool_ms);
  }
  std::printf("\nA Process costs a fork, an exit and a wait per task; a Pool pays for its workers once and then\n"
              "sends tasks through shared memory.\n");
  return check.finish("process_vs_pool");
}
