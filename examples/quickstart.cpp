// examples/quickstart.cpp - the README's first example, built and run by CI.
#include <mp/mp.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ranges>
#include <string>
#include <vector>

using Row = std::array<int, 5>;

int count_in_range(Row row, int lo, int hi) {
  return static_cast<int>(std::ranges::count_if(row, [&](int v) { return lo <= v && v <= hi; }));
}

int main() {
  mp::Pool pool;  // cpu_count() * 1.5 workers, forked now

  std::vector<Row> rows(100'000);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < 5; ++j) rows[i][j] = static_cast<int>((i * 7 + j * 3) % 10);

  // map: chunks of rows go to the workers; results come back in input order
  std::vector<int> counts = pool.map([](Row r) { return count_in_range(r, 4, 8); }, rows);

  // starmap: each tuple is unpacked into the function's arguments
  std::vector<std::tuple<Row, int, int>> args{{rows[0], 4, 8}, {rows[1], 0, 3}};
  std::vector<int> two = pool.starmap(count_in_range, args);

  // apply_async: a future; errors come back as the same exception type
  mp::AsyncResult<std::string> greeting = pool.apply_async([](std::size_t n) { return std::string(n, '!'); }, std::size_t{3});
  mp::AsyncResult<int> failing = pool.apply_async([](int x) -> int { throw std::out_of_range("no row " + std::to_string(x)); }, 7);

  std::printf("%zu rows, first counts %d %d; starmap %d %d; %s\n", counts.size(), counts[0], counts[1], two[0],
              two[1], greeting.get().c_str());
  try {
    failing.get();
  } catch (const std::out_of_range& e) {
    std::printf("the task threw std::out_of_range: %s\n", e.what());
  }

  // a Queue shared with a Process made after it
  mp::Queue<std::string> q;
  mp::Process p([&q] { q.put("hello from pid " + std::to_string(::getpid())); });
  p.start();
  std::printf("%s\n", q.get().c_str());
  p.join();
  return p.exitcode() == 0 ? 0 : 1;
}
