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

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <mp/detail/syscall.hpp>

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

/// The text of a small file of /proc or /sys; empty when it cannot be read.
inline std::string read_small_file(const std::string& path) {
  const int fd = retry_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
  if (fd < 0) return {};
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = retry_eintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

/// The lines of `text`, without their newlines.
inline std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return out;
}

/// The space-separated words of `line`.
inline std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  for (std::size_t i = line.find_first_not_of(' '); i != std::string_view::npos; i = line.find_first_not_of(' ', i)) {
    const auto end = std::min(line.find(' ', i), line.size());
    out.push_back(line.substr(i, end - i));
    i = end;
  }
  return out;
}

/// Whether `w` starts with a decimal number; sets v to it (as `>>` read it).
inline bool leading_u64(std::string_view w, std::uint64_t& v) {
  return !w.empty() && std::from_chars(w.data(), w.data() + w.size(), v).ec == std::errc{};
}

/// The CPUs a cpu.max line allows: ceil(quota / period); 0 for "max", a
/// malformed line or a zero period.
inline unsigned parse_cpu_max(std::string_view line) {
  const auto w = words_of(line);
  std::uint64_t q = 0, period = 0;
  if (w.size() < 2 || w[0] == "max" || !leading_u64(w[1], period) || period == 0 || !leading_u64(w[0], q)) return 0;
  const std::uint64_t n = q / period + (q % period != 0 ? 1 : 0);
  return static_cast<unsigned>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(n, 1u << 20)));
}

/// Where the cgroup v2 hierarchy is mounted ("" when it is not), from
/// /proc/self/mountinfo.
inline std::string cgroup2_mount() {
  const std::string text = read_small_file("/proc/self/mountinfo");
  for (std::string_view line : lines_of(text)) {
    const auto dash = line.find(" - ");
    if (dash == std::string_view::npos || line.substr(dash + 3, 8) != "cgroup2 ") continue;
    const auto w = words_of(line);
    if (w.size() >= 5) return std::string(w[4]);
  }
  return {};
}

/// This process's cgroup v2 path (the "0::<path>" line of /proc/self/cgroup).
inline std::string cgroup2_path() {
  const std::string text = read_small_file("/proc/self/cgroup");
  for (std::string_view line : lines_of(text)) {
    if (line.starts_with("0::")) return std::string(line.substr(3));
  }
  return {};
}

/// The tightest cpu.max limit from `dir` up to `root` (both paths on disk);
/// 0 when nothing limits. Exposed for tests with a fake hierarchy.
inline unsigned cgroup_cpu_limit(const std::string& root, std::string rel) {
  unsigned best = 0;
  for (;;) {
    const std::string text = read_small_file(root + rel + (rel.empty() || rel.back() == '/' ? "" : "/") + "cpu.max");
    const unsigned n = parse_cpu_max(std::string_view(text).substr(0, text.find('\n')));
    if (n != 0 && (best == 0 || n < best)) best = n;
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
