// examples/common_items.cpp - the row-wise common items of two lists, one
// apply_async per row.
//
// Exercise 1 of the multiprocessing.Pool tutorial this project's demo follows
// (the notebook that opens "Solve 3 different usecases with the
// multiprocessing.Pool() interface"; it names no author or address):
// for each i, the items list_a[i] and list_b[i] have in common. Python:
//   results = [pool.apply_async(common, args=(a, b)) for a, b in zip(list_a, list_b)]
//   print([r.get() for r in results])
// Here each call returns an mp::AsyncResult at once; get() collects them in
// order. The tutorial's four rows are printed, then 2,000 random rows are
// checked against a serial loop and timed: one task per row, then the same
// calls through starmap, which sends them in chunks.
//
//   build/dev/examples/common_items
#include <mp/pool.hpp>

#include "example_check.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

using List = std::vector<int>;

/// The items of a that also occur in b, in a's order. A plain function: what
/// a task may be (as may a captureless lambda or an aggregate function object).
List common_items(List a, List b) {
  List out;
  for (int x : a)
    if (std::find(b.begin(), b.end(), x) != b.end()) out.push_back(x);
  return out;
}

std::string show(const std::vector<List>& rows) {
  std::string s = "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    s += i ? ", [" : "[";
    for (std::size_t j = 0; j < rows[i].size(); ++j) s += (j ? ", " : "") + std::to_string(rows[i][j]);
    s += "]";
  }
  return s + "]";
}

std::vector<List> in_parallel(mp::Pool& pool, const std::vector<List>& as, const std::vector<List>& bs) {
  std::vector<mp::AsyncResult<List>> futures;
  for (std::size_t i = 0; i < as.size(); ++i) futures.push_back(pool.apply_async(common_items, as[i], bs[i]));
  std::vector<List> out;
  for (auto& f : futures) out.push_back(f.get());  // in submission order, whatever order they finished in
  return out;
}

std::vector<List> random_rows(std::mt19937& rng, std::size_t n) {
  std::uniform_int_distribution<int> len(0, 12), value(0, 30);
  std::vector<List> rows(n);
  for (auto& r : rows) {
    r.resize(static_cast<std::size_t>(len(rng)));
    for (int& x : r) x = value(rng);
  }
  return rows;
}

int main() {
  example::Checks check;
  mp::Pool pool;

  const std::vector<List> list_a{{1, 2, 3}, {5, 6, 7, 8}, {10, 11, 12}, {20, 21}};
  const std::vector<List> list_b{{2, 3, 4, 5}, {6, 9, 10}, {11, 12, 13, 14}, {21, 24, 25}};
  const std::vector<List> common = in_parallel(pool, list_a, list_b);
  std::printf("common items: %s\n", show(common).c_str());
  check(common == std::vector<List>{{2, 3}, {6}, {11, 12}, {21}}, "the tutorial's four rows");

  std::mt19937 rng(100);
  const std::vector<List> as = random_rows(rng, 2000), bs = random_rows(rng, 2000);
  example::Stopwatch t_serial;
  std::vector<List> serial;
  for (std::size_t i = 0; i < as.size(); ++i) serial.push_back(common_items(as[i], bs[i]));
  const double serial_ms = t_serial.ms();
  example::Stopwatch t_parallel;
  const std::vector<List> parallel = in_parallel(pool, as, bs);
  const double apply_ms = t_parallel.ms();
  std::vector<std::pair<List, List>> pairs;
  for (std::size_t i = 0; i < as.size(); ++i) pairs.emplace_back(as[i], bs[i]);
  example::Stopwatch t_starmap;
  const std::vector<List> chunked = pool.starmap(common_items, pairs);  // the same calls, sent in chunks
  std::printf("2000 random rows: serial %.2f ms, one apply_async per row %.2f ms, starmap %.2f ms (%u workers)\n",
              serial_ms, apply_ms, t_starmap.ms(), pool.size());
  check(parallel == serial, "apply_async on 2000 random rows equals the serial answer");
  check(chunked == serial, "starmap on 2000 random rows equals the serial answer");
  return check.finish("common_items");
}
