// array_rows - hand a large input to worker processes without copying it.
//
// The rows live in an mp::Array made before the workers start, so every
// worker reads them in place through the shared mapping: nothing is
// serialized or sent, whatever the input's size. Each worker gets only a
// range of row indices and writes its answers in place into a second
// mp::Array. With mp::Pool (step 4 below) the same shape is a map over indices,
// with the Array bound to the task as an argument:
//
//     int count_row(const mp::Array<Row>& rows, std::size_t i);
//     mp::Array<Row> rows(n);                         // BEFORE the Pool forks its workers
//     mp::Pool pool;
//     auto counts = pool.map(mp::partial(count_row, rows),
//                            std::views::iota(std::size_t{0}, rows.size()), 10'000);
//
// An mp::Array handle travels as the identity of its shared segment, not as
// its elements: the worker's handle is the same memory. An Array made after
// the Pool started is not mapped in its workers: using it there throws
// std::logic_error.
//
//   build/dev/examples/array_rows [rows] [workers]
#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <ranges>
#include <vector>

#include <mp/cpu_count.hpp>
#include <mp/partial.hpp>
#include <mp/pool.hpp>
#include <mp/process.hpp>
#include <mp/sharedctypes.hpp>

namespace {

using Row = std::array<int, 5>;

// How many of a row's values lie in [4, 8].
int count_in_range(const Row& r) {
  int n = 0;
  for (int v : r) n += (v >= 4 && v <= 8) ? 1 : 0;
  return n;
}

// The count of row i of a shared array of rows (a pool task).
int count_row(const mp::Array<Row>& rows, std::size_t i) { return count_in_range(rows[i]); }

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n_rows = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200'000;
  const std::size_t n_workers = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : mp::cpu_count();

  // 1. The input, in shared memory, filled in the parent before any worker starts.
  mp::Array<Row> rows(n_rows);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> dist(0, 10);
  for (Row& r : rows)
    for (int& v : r) v = dist(rng);

  // 2. The output, also shared: worker w writes counts[i] for its own rows.
  mp::Array<int> counts(n_rows);

  // 3. Workers over index ranges: each captures the two handles (cheap copies
  //    naming the same memory) and reads rows[i] in place.
  std::vector<mp::Process> workers;
  for (std::size_t w = 0; w < n_workers; ++w) {
    const std::size_t begin = n_rows * w / n_workers, end = n_rows * (w + 1) / n_workers;
    workers.emplace_back([rows, counts, begin, end] {
      for (std::size_t i = begin; i < end; ++i) counts[i] = count_in_range(rows[i]);
    });
    workers.back().start();
  }
  for (mp::Process& p : workers) {
    p.join();
    if (p.exitcode() != 0) {
      std::fprintf(stderr, "%s failed with exit code %d\n", p.name().c_str(), p.exitcode().value_or(-1));
      return 1;
    }
  }

  // 4. The same with mp::Pool: a map over indices; the Array is bound to the
  //    task with mp::partial, so each worker reads rows[i] in place.
  std::vector<int> pooled;
  {
    mp::Pool pool(static_cast<int>(n_workers));
    pooled = pool.map(mp::partial(count_row, rows), std::views::iota(std::size_t{0}, n_rows), 10'000);
  }

  // 5. Check against a serial pass.
  long total = 0, expected = 0;
  for (std::size_t i = 0; i < n_rows; ++i) {
    total += counts[i];
    expected += count_in_range(rows[i]);
    if (pooled[i] != counts[i]) total = -1;
  }
  std::printf("%zu rows, %zu workers (Process and Pool): %ld values in [4, 8] (serial: %ld) %s\n", n_rows, n_workers, total, expected,
              total == expected ? "OK" : "MISMATCH");
  return total == expected ? 0 : 1;
}
