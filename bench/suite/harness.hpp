// bench/suite/harness.hpp - what every program of the suite shares: how a
// row is printed, medians, the quick mode, the workloads and the two floors.
//
// Each program prints rows "measure<TAB>peer<TAB>value<TAB>unit" on stdout;
// bench/report.py gathers them from every program (C++, OpenMP, Python) into
// bench/results/latest.md and latest.png.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <sys/mman.h>
#include <utility>
#include <vector>

namespace bench {

/// MP_BENCH_QUICK=1: every measure once, on small inputs (a smoke run for CI).
inline bool quick() {
  const char* q = std::getenv("MP_BENCH_QUICK");
  return q != nullptr && q[0] == '1';
}

/// Runs per measure: the median of these is reported (1 in quick mode).
inline int runs() { return quick() ? 1 : 3; }

/// n, or n / `shrink` (at least 1) in quick mode.
inline std::size_t size(std::size_t n, std::size_t shrink = 100) { return quick() ? std::max<std::size_t>(1, n / shrink) : n; }

inline void emit(const std::string& measure, const char* peer, double value, const char* unit) {
  std::printf("%s\t%s\t%.6g\t%s\n", measure.c_str(), peer, value, unit);
  std::fflush(stdout);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// The median over runs() of the seconds `f` takes.
template <class F>
double median_seconds(F&& f) {
  std::vector<double> s;
  for (int r = 0; r < runs(); ++r) {
    const double t = now_s();
    f();
    s.push_back(now_s() - t);
  }
  return median(s);
}

// ---- workloads: plain functions, so that every backend can send them -------

inline int identity(int x) { return x; }
inline int add(int a, int b) { return a + b; }
inline std::vector<char> echo(std::vector<char> v) { return v; }

/// `iters` rounds of integer arithmetic (~0.4 ns each here); the item is the
/// amount of work, so that one plain function serves every task size.
inline int spin(int iters) {
  unsigned h = 2166136261u;
  for (int k = 0; k < iters; ++k) h = (h ^ static_cast<unsigned>(k)) * 16777619u;
  __asm__ volatile("" : "+r"(h));
  return static_cast<int>(h & 1u);
}

/// spin() rounds that take about `us` microseconds on this machine.
inline int spin_iters_for_us(double us) {
  const int probe = 1 << 20;
  std::vector<double> s;
  for (int r = 0; r < 5; ++r) {
    const double t = now_s();
    spin(probe);
    s.push_back(now_s() - t);
  }
  return static_cast<int>(us * 1e-6 / median(s) * probe);
}

using Row = std::array<int, 5>;
inline int count_row(Row row) {
  int c = 0;
  for (int v : row) c += (4 <= v && v <= 8) ? 1 : 0;
  return c;
}
inline int count_vec(const std::vector<int>& row) {
  int c = 0;
  for (int v : row) c += (4 <= v && v <= 8) ? 1 : 0;
  return c;
}

/// The row-count tutorial's matrix: n rows of 5 ints in [0, 10), seed 100.
template <class R>
std::vector<R> rows(std::size_t n) {
  std::mt19937 gen(100);
  std::uniform_int_distribution<int> dist(0, 9);
  std::vector<R> out(n);
  for (auto& r : out) {
    if constexpr (std::is_same_v<R, std::vector<int>>) r.resize(5);
    for (int& v : r) v = dist(gen);
  }
  return out;
}

/// Calls visit(id, rows, count) for the four row counts of the suite: 200k
/// and 20M rows, as std::array<int, 5> and as std::vector<int>.
template <class Visit>
void rowcount_cases(Visit&& visit) {
  for (const auto& [n, label] : {std::pair<std::size_t, const char*>{200'000, "_200k"}, {20'000'000, "_20M"}}) {
    visit(std::string("rowcount_array") + label, rows<Row>(size(n)), count_row);
    visit(std::string("rowcount_vector") + label, rows<std::vector<int>>(size(n)), count_vec);
  }
}

inline std::vector<int> iota_ints(std::size_t n) {
  std::vector<int> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<int>(i);
  return v;
}

/// The break-even task size of `peer`: the smallest per-item work (ns of
/// spin(), timed serially) at which `par(work)`, a map of spin over 10^5
/// items, beats the serial loop over the same items. Emits it.
template <class Par>
void break_even(const char* peer, Par&& par) {
  const std::size_t n = size(100'000);
  for (int iters = 1; iters <= (1 << 20); iters *= 2) {
    const std::vector<int> work(n, iters);
    const double serial = median_seconds([&] {
      int s = 0;
      for (int w : work) s += spin(w);
      __asm__ volatile("" ::"r"(s));
    });
    const double parallel = median_seconds([&] { par(work); });
    if (parallel < serial) {
      emit("break_even", peer, serial / static_cast<double>(n) * 1e9, "ns");
      return;
    }
  }
}

// ---- floors ----------------------------------------------------------------

/// Seconds to map `bytes` of fresh shared memory and write every page of it.
inline double first_touch_seconds(std::size_t bytes) {
  return median_seconds([&] {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    std::memset(p, 1, bytes);
    ::munmap(p, bytes);
  });
}

/// Seconds for one memcpy of `bytes` between buffers already touched.
inline double memcpy_seconds(std::size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  const int reps = bytes < (1u << 20) ? 1000 : 3;
  return median_seconds([&] {
    for (int i = 0; i < reps; ++i) {
      std::memcpy(b.data(), a.data(), bytes);
      __asm__ volatile("" ::"r"(b.data()) : "memory");
    }
  }) / reps;
}

}  // namespace bench
