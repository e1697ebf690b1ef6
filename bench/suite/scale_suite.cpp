// bench/suite/scale_suite.cpp - how mp's cost grows with workers (1, 2, 4, 8
// on this machine's cores) and what memory a pool takes: unique (USS) and
// proportional (PSS) memory from /proc/<pid>/smaps_rollup, not RSS.
#include "harness.hpp"

#include <mp/pool.hpp>

#include <algorithm>
#include <fstream>
#include <ranges>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using bench::emit;

/// A field of /proc/<pid>/smaps_rollup (or /proc/<pid>/status), in MiB.
double proc_mib(pid_t pid, const char* file, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/" + file);
  for (std::string key; f >> key;) {
    if (key == field + ":") {
      double kib = 0;
      f >> kib;
      return kib / 1024;
    }
    f.ignore(1 << 16, '\n');
  }
  return 0;
}

double uss_mib(pid_t pid) {
  return proc_mib(pid, "smaps_rollup", "Private_Clean") + proc_mib(pid, "smaps_rollup", "Private_Dirty");
}

void scaling_rows(int iters50) {
  const auto in = bench::iota_ints(bench::size(10'000'000));
  const std::vector<int> work(bench::size(4'000), iters50);
  const std::size_t tasks = bench::size(200'000);
  for (int w : {1, 2, 4, 8}) {
    const std::string s = "_w" + std::to_string(w);
    mp::Pool pool(w);
    const double a = bench::median_seconds([&] {
      std::vector<mp::AsyncResult<int>> rs;
      rs.reserve(tasks);
      for (std::size_t i = 0; i < tasks; ++i) rs.push_back(pool.apply_async(bench::identity, 1));
      for (auto& r : rs) r.get();
    });
    emit("scale_apply_async" + s, "mp", static_cast<double>(tasks) / a, "tasks/s");
    emit("scale_map_1e7" + s, "mp", static_cast<double>(in.size()) / bench::median_seconds([&] { pool.map(bench::identity, in); }), "items/s");
    emit("scale_cpu_kernel" + s, "mp", bench::median_seconds([&] { pool.map(bench::spin, work); }) * 1e3, "ms");
  }
}

void idle_pool_memory() {
  mp::Pool pool(8);
  for (int i = 0; i < 64; ++i) pool.apply(bench::identity, i);
  auto pids = pool.pids();
  while (std::count(pids.begin(), pids.end(), 0) != 0) pids = pool.pids();  // a slot still forking
  double worst = 0, sum = 0;
  for (pid_t w : pids) {
    const double u = uss_mib(w);
    worst = std::max(worst, u);
    sum += proc_mib(w, "smaps_rollup", "Pss");
  }
  emit("mem_idle8_worker_uss_max", "mp", worst, "MiB");
  emit("mem_idle8_worker_pss_mean", "mp", sum / 8, "MiB");
}

/// The parent's RSS growth over imap of 10^8 items, the pool made first: its
/// rings (shared, 8 MiB per channel) count in RSS as they are touched.
void imap_memory() {
  const pid_t self = ::getpid();
  const int n = static_cast<int>(bench::size(100'000'000, 1000));
  mp::Pool pool(2);
  const double before = proc_mib(self, "status", "VmRSS");
  double peak = before;
  long sum = 0;
  int k = 0;
  for (int v : pool.imap(bench::identity, std::views::iota(0, n))) {
    sum += v;
    if ((++k & 0xfffff) == 0) peak = std::max(peak, proc_mib(self, "status", "VmRSS"));
  }
  if (sum != static_cast<long>(n) * (n - 1) / 2) std::abort();
  emit("mem_imap_1e8_parent_rss_growth", "mp", std::max(peak, proc_mib(self, "status", "VmRSS")) - before, "MiB");
}

}  // namespace

int main() {
  scaling_rows(bench::spin_iters_for_us(50));
  idle_pool_memory();
  imap_memory();
}
