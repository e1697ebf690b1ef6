// examples/normalize_rows.cpp - scale each row of a 2-D array to [0, 1], with
// map.
//
// Exercise 2 of the multiprocessing.Pool tutorial this project's demo follows
// (the notebook that opens "Solve 3 different usecases with the
// multiprocessing.Pool() interface"; it names no author or address): each row becomes
// (x - min) / (max - min). Python:
//   pool.map(normalize, list_a)
// The tutorial's 4 x 4 list is printed; then a 20,000 x 100 array of doubles
// is normalised serially and with map at the default chunksize and at 100,
// each checked against the serial answer, each timed. Rows this large make
// each item worth sending; the timings show what chunking costs or saves.
// The pool's first map of the big rows is timed apart: it also pays the first
// touch of the pool's shared memory (about 0.1 s on the project's VM; see the
// README's Performance floors), which a long-lived pool pays once.
//
//   build/dev/examples/normalize_rows [rows]
#include <mp/pool.hpp>

#include "example_check.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using Row = std::vector<double>;

/// (x - min) / (max - min) for each x; a constant row becomes all zeros.
Row normalize(Row row) {
  if (row.empty()) return row;
  const auto [lo, hi] = std::minmax_element(row.begin(), row.end());
  const double min = *lo, span = *hi - *lo;
  for (double& x : row) x = span > 0 ? (x - min) / span : 0.0;
  return row;
}

void print_rows(const std::vector<Row>& rows) {
  for (const Row& r : rows) {
    std::printf(" ");
    for (double x : r) std::printf(" %.3f", x);
    std::printf("\n");
  }
}

/// Normalises n random rows of 100 doubles serially, then with map: once on
/// the fresh pool, then at the default chunksize and at 100; prints the times
/// and checks each answer against the serial one.
void time_big_rows(mp::Pool& pool, std::size_t n, example::Checks& check) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> value(-50.0, 50.0);
  std::vector<Row> big(n, Row(100));
  for (Row& r : big)
    for (double& x : r) x = value(rng);

  example::Stopwatch t_serial;
  std::vector<Row> serial;
  serial.reserve(n);
  for (const Row& r : big) serial.push_back(normalize(r));
  const double serial_ms = t_serial.ms();
  example::Stopwatch t_first;
  const std::vector<Row> first = pool.map(normalize, big);
  const double first_ms = t_first.ms();
  example::Stopwatch t_default;
  const std::vector<Row> by_default = pool.map(normalize, big);
  const double default_ms = t_default.ms();
  example::Stopwatch t_100;
  const std::vector<Row> by_100 = pool.map(normalize, big, 100);
  std::printf("%zu x 100 doubles: serial %.1f ms, map %.1f ms, map with chunksize 100 %.1f ms (%u workers; "
              "the pool's first map of them: %.1f ms)\n",
              n, serial_ms, default_ms, t_100.ms(), pool.size(), first_ms);
  check(first == serial, "the first map equals the serial answer");
  check(by_default == serial, "map (default chunksize) equals the serial answer");
  check(by_100 == serial, "map (chunksize 100) equals the serial answer");
}

int main(int argc, char** argv) {
  example::Checks check;
  mp::Pool pool;

  const std::vector<Row> list_a{{2, 3, 4, 5}, {6, 9, 10, 12}, {11, 12, 13, 14}, {21, 24, 25, 26}};
  const std::vector<Row> small = pool.map(normalize, list_a);
  std::printf("the tutorial's rows, normalised:\n");
  print_rows(small);
  std::vector<Row> small_serial;
  for (const Row& r : list_a) small_serial.push_back(normalize(r));
  check(small == small_serial, "the tutorial's rows equal the serial answer");

  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20'000;
  time_big_rows(pool, n, check);
  return check.finish("normalize_rows");
}
