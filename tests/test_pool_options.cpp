// Tests of <mp/pool_options.hpp>: PoolOptions' documented defaults, and
// mp::initializer and maxtasksperchild as a Pool honours them.
#include <catch2/catch.hpp>

#include <mp/pool.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <ranges>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace {

int g_init_value = 0;
void init_worker(int v, std::string s) { g_init_value = v + static_cast<int>(s.size()); }
int read_init(int) { return g_init_value; }
void init_throws(int) { throw std::runtime_error("no database"); }
int my_pid(int) { return static_cast<int>(::getpid()); }
int square(int x) { return x * x; }

}  // namespace

TEST_CASE("PoolOptions' defaults are the documented ones", "[pool_options]") {
  const mp::PoolOptions o;
  CHECK(o.processes == 0);
  CHECK(o.factor == 1.5);
  CHECK(o.maxtasksperchild == 0);
  CHECK(o.initializer.message.empty());
  CHECK(o.window == 64);
  CHECK(o.task_timeout == std::chrono::milliseconds(0));
  CHECK(o.retries == 0);
  CHECK(o.memory_limit == 0);
  CHECK(o.max_result_bytes == std::size_t{4} << 30);
  const mp::PoolOptions d{.processes = 2, .maxtasksperchild = 5};  // designated, in declaration order
  CHECK(d.processes == 2);
  CHECK(d.factor == 1.5);
  CHECK(d.maxtasksperchild == 5);
}

TEST_CASE("initializer with arguments runs once in each worker before its tasks", "[pool_options]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.initializer = mp::initializer(init_worker, 40, std::string("ab"));
  CHECK_FALSE(o.initializer.message.empty());
  mp::Pool pool(o);
  auto r = pool.map(read_init, std::views::iota(0, 20), 1);
  CHECK(std::all_of(r.begin(), r.end(), [](int v) { return v == 42; }));
}

TEST_CASE("an initializer that throws breaks the pool with a sentence, it does not respawn forever", "[pool_options]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.initializer = mp::initializer(init_throws, 1);
  mp::Pool pool(o);
  auto r = pool.apply_async(square, 3);
  CHECK_THROWS_WITH(r.get(std::chrono::seconds(30)), Catch::Contains("initializer"));
  CHECK_THROWS_WITH(pool.apply(square, 4), Catch::Contains("initializer threw"));
  CHECK_THROWS_AS(pool.apply(square, 4), std::logic_error);
}

TEST_CASE("maxtasksperchild replaces a worker after N tasks", "[pool_options]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.maxtasksperchild = 3;
  mp::Pool pool(o);
  auto pids = pool.map(my_pid, std::views::iota(0, 30), 1);
  std::map<int, int> per_pid;
  for (int p : pids) ++per_pid[p];
  CHECK(per_pid.size() >= 10);
  for (auto& [pid, n] : per_pid) CHECK(n <= 3);
  CHECK(pool.apply(square, 5) == 25);
}
