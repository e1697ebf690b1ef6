// mp/cpu_count.hpp - how many CPUs this process may actually use.
//
// Python's os.cpu_count() counts the machine's CPUs; under `taskset -c 0` or
// in a container limited to 1.5 CPUs that oversubscribes. mp::cpu_count()
// takes the smallest of:
//   - the CPUs in this process's affinity mask (sched_getaffinity), and
//   - the cgroup v2 quota: for this process's cgroup and each of its
//     ancestors, cpu.max "<quota> <period>" gives ceil(quota / period)
//     ("max" means no limit);
// and is at least 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sched.h>
#include <sstream>
#include <string>
#include <thread>

namespace mp {
namespace detail {

/// CPUs in this process's affinity mask; hardware_concurrency() if the mask
/// cannot be read. Never blocks on anything but the system call.
inline unsigned affinity_cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

/// The CPUs a cpu.max line allows: ceil(quota / period); 0 for "max", a
/// malformed line or a zero period.
inline unsigned parse_cpu_max(const std::string& line) {
  std::istringstream in(line);
  std::string quota;
  std::uint64_t period = 0;
  if (!(in >> quota >> period) || quota == "max" || period == 0) return 0;
  std::uint64_t q = 0;
  try {
    q = std::stoull(quota);
  } catch (...) {
    return 0;
  }
  const std::uint64_t n = (q + period - 1) / period;
  return static_cast<unsigned>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(n, 1u << 20)));
}

/// Where the cgroup v2 hierarchy is mounted ("" when it is not), from
/// /proc/self/mountinfo.
inline std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line);
    std::string id, parent, devno, root, mount;
    if (f >> id >> parent >> devno >> root >> mount) return mount;
  }
  return {};
}

/// This process's cgroup v2 path (the "0::<path>" line of /proc/self/cgroup).
inline std::string cgroup2_path() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return {};
}

/// The tightest cpu.max limit from `dir` up to `root` (both paths on disk);
/// 0 when nothing limits. Exposed for tests with a fake hierarchy.
inline unsigned cgroup_cpu_limit(const std::string& root, std::string rel) {
  unsigned best = 0;
  for (;;) {
    std::ifstream f(root + rel + (rel.empty() || rel.back() == '/' ? "" : "/") + "cpu.max");
    std::string line;
    if (f && std::getline(f, line)) {
      const unsigned n = parse_cpu_max(line);
      if (n != 0 && (best == 0 || n < best)) best = n;
    }
    if (rel.empty() || rel == "/") break;
    const auto slash = rel.find_last_of('/');
    rel = slash == std::string::npos ? std::string{} : rel.substr(0, slash);
  }
  return best;
}

}  // namespace detail

/// CPUs this process may actually use: the affinity mask, capped by the
/// cgroup v2 cpu.max quota of its cgroup and its ancestors; at least 1.
/// Reads /proc and /sys on every call (a few tens of µs); never throws;
/// safe across threads.
inline unsigned cpu_count() noexcept {
  unsigned n = detail::affinity_cpu_count();
  try {
    const std::string mount = detail::cgroup2_mount();
    if (!mount.empty()) {
      const unsigned limit = detail::cgroup_cpu_limit(mount, detail::cgroup2_path());
      if (limit != 0) n = std::min(n, limit);
    }
  } catch (...) {  // an unreadable /proc or /sys: the affinity count stands
  }
  return std::max(1u, n);
}

}  // namespace mp
