// bench/suite/thread_suite.cpp - mp::ThreadPool's rows of the suite (peer
// "mp_threads"): the same workloads as the std::thread pool of
// baseline_suite.cpp and mp::Pool's of mp_suite.cpp, pool of 2. Its tasks
// are encoded and decoded as mp::Pool's are, but travel through a queue in
// this process: the gap to "threads" is the cost of the messages, the gap
// to "mp" the cost of crossing processes.
#include "harness.hpp"

#include <mp/thread_pool.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace {

using bench::emit;
using bench::median;
using bench::median_seconds;
constexpr const char* peer = "mp_threads";

void round_trip_rows() {
  mp::ThreadPool pool(2);
  std::vector<double> us;
  for (std::size_t i = 0, n = bench::size(20'000); i < n; ++i) {
    const double t = bench::now_s();
    if (pool.apply(bench::identity, 1) != 1) std::abort();
    us.push_back((bench::now_s() - t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  emit("apply_rt_median", peer, median(us), "us");
  emit("apply_rt_p99", peer, us[us.size() * 99 / 100], "us");
}

/// tasks/s of n apply_async on `pool`, one future each, then every get().
double async_rate(mp::ThreadPool& pool, std::size_t n) {
  std::vector<mp::AsyncResult<int>> futures;
  futures.reserve(n);
  const double t = bench::now_s();
  for (std::size_t i = 0; i < n; ++i) futures.push_back(pool.apply_async(bench::identity, static_cast<int>(i)));
  long total = 0;
  for (auto& f : futures) total += f.get();
  if (total < 0) std::abort();
  return static_cast<double>(n) / (bench::now_s() - t);
}

void async_rows() {
  const std::size_t n = bench::size(500'000);
  std::vector<double> first, second;
  for (int r = 0; r < bench::runs(); ++r) {
    mp::ThreadPool pool(2);
    first.push_back(async_rate(pool, n));
    second.push_back(async_rate(pool, n));
  }
  emit("apply_async_fresh", peer, median(first), "tasks/s");
  emit("apply_async_warm", peer, median(second), "tasks/s");
  emit("pool_start", peer, median_seconds([] {
    mp::ThreadPool p(2);
    if (p.apply(bench::identity, 1) != 1) std::abort();
  }) * 1e3, "ms");
}

/// Seconds `body(pool)` takes on a fresh pool of 2, median over runs().
template <class Body>
double fresh_pool_seconds(Body&& body) {
  std::vector<double> s;
  for (int r = 0; r < bench::runs(); ++r) {
    mp::ThreadPool pool(2);
    const double t = bench::now_s();
    body(pool);
    s.push_back(bench::now_s() - t);
  }
  return median(s);
}

void map_shaped_rows() {
  const auto in = bench::iota_ints(bench::size(10'000'000));
  const double m = fresh_pool_seconds([&](mp::ThreadPool& p) {
    if (p.map(bench::identity, in).back() != in.back()) std::abort();
  });
  emit("map_1e7", peer, static_cast<double>(in.size()) / m, "items/s");
  const std::size_t n = bench::size(1'000'000);
  std::vector<std::pair<int, int>> pairs(n);
  for (std::size_t i = 0; i < n; ++i) pairs[i] = {static_cast<int>(i), 1};
  const auto small = bench::iota_ints(n);
  mp::ThreadPool pool(2);
  const auto drain = [](auto&& range) {
    long s = 0;
    for (int v : range) s += v;
    if (s < 0) std::abort();
  };
  emit("starmap", peer, static_cast<double>(n) / median_seconds([&] { pool.starmap(bench::add, pairs); }), "items/s");
  emit("imap", peer, static_cast<double>(n) / median_seconds([&] { drain(pool.imap(bench::identity, small)); }),
       "items/s");
  emit("imap_unordered", peer,
       static_cast<double>(n) / median_seconds([&] { drain(pool.imap_unordered(bench::identity, small)); }),
       "items/s");
  bench::rowcount_cases([](const std::string& id, const auto& data, auto count) {
    const double t = fresh_pool_seconds([&](mp::ThreadPool& p) {
      if (p.map(count, data).size() != data.size()) std::abort();
    });
    emit(id, peer, t * 1e3, "ms");
  });
}

void cpu_rows(int iters50) {
  const std::vector<int> work(bench::size(4'000), iters50);
  emit("cpu_kernel", peer, fresh_pool_seconds([&](mp::ThreadPool& p) { p.map(bench::spin, work); }) * 1e3, "ms");
  mp::ThreadPool pool(2);
  bench::break_even(peer, [&](const std::vector<int>& w) { pool.map(bench::spin, w); });
}

}  // namespace

int main() {
  const int iters50 = bench::spin_iters_for_us(50);
  round_trip_rows();
  async_rows();
  map_shaped_rows();
  cpu_rows(iters50);
}
