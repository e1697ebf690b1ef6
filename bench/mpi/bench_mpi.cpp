// bench/mpi/bench_mpi.cpp - MpiPool's figures beside mp::Pool's, in one run.
//
//   mpirun --oversubscribe -np 4 build/release/bench/mpi/bench_mpi
//   (bench/mpi/run compares it with mpi4py.futures on the same machine)
//
// Rank 0 measures, on the MpiPool (3 worker ranks, one local worker each)
// and then on an mp::Pool of 3 forked workers: start-up (process start to
// the first result), the warm apply round trip (median of 2,000), the
// apply_async rate (50,000 tasks), the map rate (10^6 ints, chunksize
// 10^4), and the CPU each rank uses while the pool is idle for 5 s (the
// rank with every process it forked). Prints one line per figure.
#include <mp/mpi.hpp>
#include <mp/pool.hpp>

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <ranges>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int identity(int x) { return x; }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Fields of /proc/<pid>/stat after the command name (field 3 is [0]).
std::vector<std::string> stat_fields(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  std::vector<std::string> out;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 2));
  for (std::string s; rest >> s;) out.push_back(s);
  return out;
}

/// Milliseconds since this process started (10 ms resolution: clock ticks).
double ms_since_process_start() {
  const auto fields = stat_fields(::getpid());
  std::ifstream up("/proc/uptime");
  double uptime = 0;
  up >> uptime;
  const double start = std::stod(fields.at(19)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (uptime - start) * 1000.0;
}

/// CPU seconds (user + system) of pid and every process below it.
double tree_cpu(pid_t root, const std::multimap<pid_t, pid_t>& children) {
  const auto f = stat_fields(root);
  double s = f.size() > 12 ? (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(::sysconf(_SC_CLK_TCK)) : 0;
  auto [lo, hi] = children.equal_range(root);
  for (auto it = lo; it != hi; ++it) s += tree_cpu(it->second, children);
  return s;
}

std::multimap<pid_t, pid_t> process_children() {
  std::multimap<pid_t, pid_t> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    const auto f = stat_fields(pid);
    if (f.size() > 1) out.emplace(static_cast<pid_t>(std::stoi(f[1])), pid);
  }
  if (d) ::closedir(d);
  return out;
}

template <class Pool>
void measure(const char* name, Pool& pool, const std::vector<pid_t>& ranks) {
  for (int i = 0; i < 200; ++i) pool.apply(identity, i);
  std::vector<double> rt;
  for (int i = 0; i < 2000; ++i) {
    const auto t = Clock::now();
    pool.apply(identity, i);
    rt.push_back(seconds_since(t) * 1e6);
  }
  std::nth_element(rt.begin(), rt.begin() + 1000, rt.end());
  std::printf("%s apply round trip: %.1f us (median of 2000, warm)\n", name, rt[1000]);

  const int n = 50'000;
  auto t = Clock::now();
  std::vector<mp::AsyncResult<int>> rs;
  rs.reserve(n);
  for (int i = 0; i < n; ++i) rs.push_back(pool.apply_async(identity, i));
  for (auto& r : rs) r.get();
  std::printf("%s apply_async: %.0f tasks/s (%d tasks)\n", name, n / seconds_since(t), n);

  const std::vector<int> items(1'000'000, 7);
  std::vector<double> rates;
  for (int k = 0; k < 3; ++k) {
    t = Clock::now();
    const auto out = pool.map(identity, items, 10'000);
    rates.push_back(static_cast<double>(out.size()) / seconds_since(t));
  }
  std::sort(rates.begin(), rates.end());
  std::printf("%s map: %.2f M items/s (10^6 ints, chunksize 10^4, median of 3)\n", name, rates[1] / 1e6);

  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the pollers back off
  auto kids = process_children();
  std::vector<double> before;
  for (pid_t p : ranks) before.push_back(tree_cpu(p, kids));
  const auto idle_start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const double wall = seconds_since(idle_start);
  kids = process_children();
  for (std::size_t i = 0; i < ranks.size(); ++i)
    std::printf("%s idle CPU, %s %zu: %.2f %%\n", name, ranks.size() == 1 ? "pool" : "rank", i,
                100.0 * (tree_cpu(ranks[i], kids) - before[i]) / wall);
}

}  // namespace

int main() {
  mp::PoolOptions o;
  o.processes = 1;
  mp::MpiPool pool(o);  // ranks 1.. serve in here
  pool.apply(identity, 0);
  std::printf("MpiPool start-up: %.0f ms from process start to the first result (%u worker ranks)\n",
              ms_since_process_start(), pool.size());
  std::vector<pid_t> ranks{::getpid()};
  for (pid_t p : pool.pids()) ranks.push_back(p);
  measure("MpiPool", pool, ranks);

  const auto t = Clock::now();
  mp::Pool local(3);
  local.apply(identity, 0);
  std::printf("mp::Pool(3) start-up: %.1f ms from construction to the first result\n", seconds_since(t) * 1e3);
  measure("mp::Pool(3)", local, {::getpid()});
  return 0;
}
