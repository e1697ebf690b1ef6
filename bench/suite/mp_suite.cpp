// bench/suite/mp_suite.cpp - mp's rows of the suite (bench/report.py puts the
// peers beside them). Pool of 2; "fresh" is a pool made just before the timed
// part, "warm" the same pool's second round. Rows: bench/suite/harness.hpp.
#include "harness.hpp"

#include <mp/pool.hpp>
#include <mp/process.hpp>
#include <mp/queue.hpp>

#include <fstream>
#include <ranges>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using bench::emit;
using bench::median_seconds;

void apply_round_trip() {
  mp::Pool pool(2);
  std::vector<double> us;
  const std::size_t n = bench::size(20'000);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = bench::now_s();
    if (pool.apply(bench::identity, 1) != 1) std::abort();
    us.push_back((bench::now_s() - t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  emit("apply_rt_median", "mp", bench::median(us), "us");
  emit("apply_rt_p99", "mp", us[us.size() * 99 / 100], "us");
}

/// tasks/s of n apply_async, one future each, then every get().
double apply_async_rate(mp::Pool& pool, std::size_t n) {
  std::vector<mp::AsyncResult<int>> rs;
  rs.reserve(n);
  const double t = bench::now_s();
  for (std::size_t i = 0; i < n; ++i) rs.push_back(pool.apply_async(bench::identity, static_cast<int>(i)));
  long sum = 0;
  for (auto& r : rs) sum += r.get();
  if (sum < 0) std::abort();
  return static_cast<double>(n) / (bench::now_s() - t);
}

void apply_async_fresh_and_warm() {
  const std::size_t n = bench::size(500'000);
  std::vector<double> fresh, warm;
  for (int r = 0; r < bench::runs(); ++r) {
    mp::Pool pool(2);
    fresh.push_back(apply_async_rate(pool, n));
    warm.push_back(apply_async_rate(pool, n));
  }
  emit("apply_async_fresh", "mp", bench::median(fresh), "tasks/s");
  emit("apply_async_warm", "mp", bench::median(warm), "tasks/s");
}

void map_rows() {
  const auto in = bench::iota_ints(bench::size(10'000'000));
  std::vector<double> s;
  for (int r = 0; r < bench::runs(); ++r) {
    mp::Pool pool(2);
    const double t = bench::now_s();
    if (pool.map(bench::identity, in).back() != in.back()) std::abort();
    s.push_back(bench::now_s() - t);
  }
  emit("map_1e7", "mp", static_cast<double>(in.size()) / bench::median(s), "items/s");
  emit("map_1e7", "floor", static_cast<double>(in.size()) / (2 * bench::memcpy_seconds(in.size() * sizeof(int))),
       "items/s");
  const auto small = bench::iota_ints(bench::size(1'000'000));
  mp::Pool pool(2);
  for (std::size_t cs = 1; cs <= 100'000; cs *= 10) {
    const double t = median_seconds([&] { pool.map(bench::identity, small, cs); });
    emit("map_cs_" + std::to_string(cs), "mp", static_cast<double>(small.size()) / t, "items/s");
  }
}

void starmap_imap_rows() {
  const std::size_t n = bench::size(1'000'000);
  std::vector<std::pair<int, int>> pairs(n);
  for (std::size_t i = 0; i < n; ++i) pairs[i] = {static_cast<int>(i), 1};
  const auto in = bench::iota_ints(n);
  mp::Pool pool(2);
  const double st = median_seconds([&] { pool.starmap(bench::add, pairs); });
  const double im = median_seconds([&] {
    long s = 0;
    for (int v : pool.imap(bench::identity, in)) s += v;
    if (s < 0) std::abort();
  });
  const double iu = median_seconds([&] {
    long s = 0;
    for (int v : pool.imap_unordered(bench::identity, in)) s += v;
    if (s < 0) std::abort();
  });
  emit("starmap", "mp", static_cast<double>(n) / st, "items/s");
  emit("imap", "mp", static_cast<double>(n) / im, "items/s");
  emit("imap_unordered", "mp", static_cast<double>(n) / iu, "items/s");
}

/// msgs/s through one mp::Queue<int>: `p` producer and `c` consumer processes.
double queue_rate(int p, int c, std::size_t n) {
  mp::Queue<int> q;
  const std::size_t per_p = n / static_cast<std::size_t>(p), per_c = n / static_cast<std::size_t>(c);
  std::vector<mp::Process> procs;
  for (int i = 0; i < c; ++i)
    procs.emplace_back([&q, per_c] {
      for (std::size_t k = 0; k < per_c; ++k) q.get();
    });
  for (int i = 0; i < p; ++i)
    procs.emplace_back([&q, per_p] {
      for (std::size_t k = 0; k < per_p; ++k) q.put(static_cast<int>(k));
    });
  const double t = bench::now_s();
  for (auto& pr : procs) pr.start();
  for (auto& pr : procs) pr.join();
  return static_cast<double>(n) / (bench::now_s() - t);
}

void queue_rows() {
  const std::size_t n = bench::size(400'000);
  std::vector<double> a, b;
  for (int r = 0; r < bench::runs(); ++r) {
    a.push_back(queue_rate(1, 1, n));
    b.push_back(queue_rate(4, 4, n));
  }
  emit("queue_1to1", "mp", bench::median(a), "msgs/s");
  emit("queue_4to4", "mp", bench::median(b), "msgs/s");
}

void payload_rows() {
  mp::Pool pool(2);
  for (std::size_t kib : {1ul, 64ul, 1024ul, 16ul * 1024, 64ul * 1024}) {
    const std::size_t bytes = kib * 1024;
    if (bench::quick() && bytes > (1u << 20)) break;
    const std::vector<char> v(bytes, 'x');
    const int reps = bytes <= 65536 ? 200 : 3;
    const double t = median_seconds([&] {
      for (int i = 0; i < reps; ++i)
        if (pool.apply(bench::echo, v).size() != bytes) std::abort();
    }) / reps;
    const std::string id = "payload_" + std::to_string(kib) + "KiB";
    emit(id, "mp", 2.0 * static_cast<double>(bytes) / t / 1e6, "MB/s");
    emit(id, "floor", 1.0 / bench::memcpy_seconds(bytes) * static_cast<double>(bytes) / 1e6, "MB/s");
  }
}

/// Bytes of shared mappings in this process (/proc/self/maps, 's' in perms).
std::size_t shared_mapped_bytes() {
  std::ifstream maps("/proc/self/maps");
  std::size_t total = 0;
  for (std::string line; std::getline(maps, line);) {
    std::istringstream ls(line);
    std::string range, perms;
    ls >> range >> perms;
    if (perms.size() < 4 || perms[3] != 's') continue;
    const auto dash = range.find('-');
    total += std::stoull(range.substr(dash + 1), nullptr, 16) - std::stoull(range.substr(0, dash), nullptr, 16);
  }
  return total;
}

void pool_start_rows() {
  const std::size_t before = shared_mapped_bytes();
  std::size_t mapped = 0;
  const double t = median_seconds([&] {
    mp::Pool pool(2);
    if (pool.apply(bench::identity, 1) != 1) std::abort();
    mapped = shared_mapped_bytes() - before;
  });
  emit("pool_start", "mp", t * 1e3, "ms");
  emit("pool_shm_mapped", "mp", static_cast<double>(mapped) / (1 << 20), "MiB");
  emit("first_touch", "floor", bench::first_touch_seconds(mapped) * 1e3, "ms");
}

void codec_rows() {
  const std::vector<int> v5{1, 2, 3, 4, 5};
  std::vector<std::string> strs(1000);
  for (std::size_t i = 0; i < strs.size(); ++i) strs[i] = "item-" + std::to_string(i);
  const int reps = static_cast<int>(bench::size(100'000)), reps2 = static_cast<int>(bench::size(1'000));
  const double a = median_seconds([&] {
    for (int i = 0; i < reps; ++i)
      if (mp::loads<std::vector<int>>(mp::dumps(v5)).size() != 5) std::abort();
  });
  const double b = median_seconds([&] {
    for (int i = 0; i < reps2; ++i)
      if (mp::loads<std::vector<std::string>>(mp::dumps(strs)).size() != 1000) std::abort();
  });
  emit("codec_vec5", "mp", a / reps * 1e9, "ns");
  emit("codec_str1000", "mp", b / reps2 * 1e6, "us");
}

void rowcount_rows() {
  bench::rowcount_cases([](const std::string& id, const auto& data, auto count) {
    std::vector<double> s;
    for (int r = 0; r < bench::runs(); ++r) {
      mp::Pool pool(2);
      const double t = bench::now_s();
      if (pool.map(count, data).size() != data.size()) std::abort();
      s.push_back(bench::now_s() - t);
    }
    emit(id, "mp", bench::median(s) * 1e3, "ms");
  });
}

void cpu_rows(int iters50) {
  const std::vector<int> work(bench::size(4'000), iters50);
  std::vector<double> s;
  for (int r = 0; r < bench::runs(); ++r) {
    mp::Pool pool(2);
    const double t = bench::now_s();
    pool.map(bench::spin, work);
    s.push_back(bench::now_s() - t);
  }
  emit("cpu_kernel", "mp", bench::median(s) * 1e3, "ms");
}

void break_even_row() {
  mp::Pool pool(2);
  bench::break_even("mp", [&](const std::vector<int>& w) { pool.map(bench::spin, w); });
}

}  // namespace

int main() {
  const int iters50 = bench::spin_iters_for_us(50);
  apply_round_trip();
  apply_async_fresh_and_warm();
  map_rows();
  starmap_imap_rows();
  queue_rows();
  payload_rows();
  pool_start_rows();
  codec_rows();
  rowcount_rows();
  cpu_rows(iters50);
  break_even_row();
}
