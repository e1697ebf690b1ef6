// examples/hypotenuse.cpp - a DataFrame-style table, row-wise with map and
// column-wise with starmap.
//
// Exercise 3 of the multiprocessing.Pool tutorial this project's demo follows
// (the notebook that opens "Solve 3 different usecases with the
// multiprocessing.Pool() interface"; it names no author or address): a table of two integer
// columns in [3, 10); the hypotenuse sqrt(a^2 + b^2) of each row. Python:
//   pool.imap(hypotenuse, df.itertuples(name=False))        # row-wise
//   pool.starmap(hypotenuse2, zip(df["a"], df["b"]))          # column pairs
// Here the table is a struct of two columns. map() takes each row as one
// Row value; starmap() takes (a, b) pairs zipped from the columns and unpacks
// each into the function's two parameters. Both are checked against a serial
// loop and against each other.
//
//   build/dev/examples/hypotenuse [rows]
#include <mp/pool.hpp>

#include "example_check.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

/// A table with two columns, like a two-column DataFrame.
struct Table {
  std::vector<int> a, b;
  [[nodiscard]] std::size_t rows() const { return a.size(); }
};

/// One row of the table, as df.itertuples() gives it.
struct Row {
  int a, b;
};

double hypotenuse_of_row(Row r) { return std::sqrt(double(r.a) * r.a + double(r.b) * r.b); }
double hypotenuse(int a, int b) { return std::sqrt(double(a) * a + double(b) * b); }

Table random_table(std::size_t n) {
  std::mt19937 rng(100);
  std::uniform_int_distribution<int> value(3, 9);
  Table t;
  for (std::size_t i = 0; i < n; ++i) {
    t.a.push_back(value(rng));
    t.b.push_back(value(rng));
  }
  return t;
}

int main(int argc, char** argv) {
  example::Checks check;
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 500;
  const Table df = random_table(n);
  mp::Pool pool;

  std::vector<double> serial;
  for (std::size_t i = 0; i < df.rows(); ++i) serial.push_back(hypotenuse(df.a[i], df.b[i]));

  std::vector<Row> rows;  // df.itertuples()
  for (std::size_t i = 0; i < df.rows(); ++i) rows.push_back({df.a[i], df.b[i]});
  const std::vector<double> by_row = pool.map(hypotenuse_of_row, rows);

  std::vector<std::pair<int, int>> pairs;  // zip(df["a"], df["b"])
  for (std::size_t i = 0; i < df.rows(); ++i) pairs.emplace_back(df.a[i], df.b[i]);
  const std::vector<double> by_columns = pool.starmap(hypotenuse, pairs);

  std::printf("   a  b  hypotenuse\n");
  for (std::size_t i = 0; i < 5 && i < df.rows(); ++i)
    std::printf("  %2d %2d  %.4f\n", df.a[i], df.b[i], by_row[i]);
  std::printf("3 4 -> %.1f (map), %.1f (starmap)\n", pool.map(hypotenuse_of_row, std::vector<Row>{{3, 4}})[0],
              pool.starmap(hypotenuse, std::vector<std::pair<int, int>>{{3, 4}})[0]);
  check(by_row == serial, "map over rows equals the serial answer");
  check(by_columns == serial, "starmap over column pairs equals the serial answer");
  return check.finish("hypotenuse");
}
