// bench/suite/baseline_suite.cpp - the C++ baselines of the suite on mp's
// workloads: a serial loop ("serial") and a plain std::thread pool of 2
// ("threads", bench/suite/thread_pool.hpp), the bound with no marshalling.
#include "harness.hpp"
#include "thread_pool.hpp"

#include <future>
#include <string>
#include <vector>

namespace {

using bench::emit;
using bench::median_seconds;

void apply_rows() {
  bench::ThreadPool pool(2);
  std::vector<double> us;
  for (std::size_t i = 0, n = bench::size(20'000); i < n; ++i) {
    const double t = bench::now_s();
    if (pool.apply_async(bench::identity, 1).get() != 1) std::abort();
    us.push_back((bench::now_s() - t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  emit("apply_rt_median", "threads", bench::median(us), "us");
  emit("apply_rt_p99", "threads", us[us.size() * 99 / 100], "us");
  const std::size_t n = bench::size(500'000);
  const double t = median_seconds([&] {
    std::vector<std::future<int>> rs;
    rs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) rs.push_back(pool.apply_async(bench::identity, static_cast<int>(i)));
    for (auto& r : rs) r.get();
  });
  emit("apply_async_warm", "threads", static_cast<double>(n) / t, "tasks/s");
  const double start = median_seconds([] {
    bench::ThreadPool p(2);
    if (p.apply_async(bench::identity, 1).get() != 1) std::abort();
  });
  emit("pool_start", "threads", start * 1e3, "ms");
}

void map_rows() {
  const auto in = bench::iota_ints(bench::size(10'000'000));
  bench::ThreadPool pool(2);
  const double th = median_seconds([&] { pool.map(bench::identity, in); });
  const double se = median_seconds([&] {
    std::vector<int> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = bench::identity(in[i]);
    __asm__ volatile("" ::"r"(out.data()) : "memory");
  });
  emit("map_1e7", "threads", static_cast<double>(in.size()) / th, "items/s");
  emit("map_1e7", "serial", static_cast<double>(in.size()) / se, "items/s");
}

void rowcount_rows() {
  bench::ThreadPool pool(2);
  bench::rowcount_cases([&pool](const std::string& id, const auto& data, auto count) {
    const double th = median_seconds([&] { pool.map(count, data); });
    const double se = median_seconds([&] {
      std::vector<int> out(data.size());
      for (std::size_t i = 0; i < data.size(); ++i) out[i] = count(data[i]);
      __asm__ volatile("" ::"r"(out.data()) : "memory");
    });
    emit(id, "threads", th * 1e3, "ms");
    emit(id, "serial", se * 1e3, "ms");
  });
}

void cpu_rows(int iters50) {
  const std::vector<int> work(bench::size(4'000), iters50);
  bench::ThreadPool pool(2);
  const double th = median_seconds([&] { pool.map(bench::spin, work); });
  const double se = median_seconds([&] {
    int s = 0;
    for (int w : work) s += bench::spin(w);
    __asm__ volatile("" ::"r"(s));
  });
  emit("cpu_kernel", "threads", th * 1e3, "ms");
  emit("cpu_kernel", "serial", se * 1e3, "ms");
  bench::break_even("threads", [&](const std::vector<int>& w) { pool.map(bench::spin, w); });
}

}  // namespace

int main() {
  const int iters50 = bench::spin_iters_for_us(50);
  apply_rows();
  map_rows();
  rowcount_rows();
  cpu_rows(iters50);
}
