// Tests of mp::time_limit: a per-call limit kills only that task's worker,
// counts from the task's start, applies per chunk in maps, and is refused
// when not positive.
#include <catch2/catch.hpp>

#include <mp/pool.hpp>
#include <mp/time_limit.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

/// Waits (up to 10 s) until every worker slot has a live process.
bool pool_full(const mp::Pool& pool) {
  const auto end = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    bool all = true;
    for (pid_t p : pool.pids()) all = all && p > 0;
    if (all) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST_CASE("apply_async past its time limit fails with TaskTimeoutError, a task without one goes on",
          "[time_limit]") {
  mp::Pool pool(2);
  const auto before = pool.pids();
  auto slow = pool.apply_async(mp::time_limit(300ms), sleepy, 20'000);
  auto other = pool.apply_async(sleepy, 1'000);  // runs longer than 300 ms, without a limit
  const auto t0 = std::chrono::steady_clock::now();
  try {
    slow.get(10s);
    FAIL("no error");
  } catch (const mp::TaskTimeoutError& e) {
    CHECK(std::string(e.what()).find("300 ms") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(other.get(10s) == 1'000);
  REQUIRE(pool_full(pool));
  CHECK(pool.size() == 2);
  CHECK(pool.pids() != before);  // one worker was replaced
  CHECK(pool.apply(mp::time_limit(5s), sleepy, 3) == 3);
}

TEST_CASE("the time limit counts from the task's start, not from its submission", "[time_limit]") {
  mp::Pool pool(1);
  auto first = pool.apply_async(sleepy, 600);
  auto queued = pool.apply_async(mp::time_limit(400ms), sleepy, 100);  // waits 600 ms, runs 100 ms
  CHECK(first.get(10s) == 600);
  CHECK(queued.get(10s) == 100);
}

TEST_CASE("a map with one slow item fails with TaskTimeoutError, and the pool maps on", "[time_limit]") {
  mp::Pool pool(2);
  std::vector<int> items(40, 1);
  items[17] = 20'000;
  CHECK_THROWS_AS(pool.map(sleepy, items, 1, mp::time_limit(500ms)), mp::TaskTimeoutError);
  auto r = pool.map_async(sleepy, items, mp::time_limit(500ms));
  CHECK_THROWS_AS(r.get(10s), mp::TaskTimeoutError);
  REQUIRE(pool_full(pool));
  CHECK(pool.map(sleepy, std::vector<int>(8, 1), mp::time_limit(5s)) == std::vector<int>(8, 1));
}

TEST_CASE("a map's time limit applies to each chunk", "[time_limit]") {
  mp::Pool pool(2);
  const std::vector<int> items(6, 150);  // 900 ms in one chunk, 150 ms per item
  CHECK_THROWS_AS(pool.map(sleepy, items, 6, mp::time_limit(600ms)), mp::TaskTimeoutError);
  CHECK(pool.map(sleepy, items, 1, mp::time_limit(600ms)) == items);
  std::vector<int> got;
  for (int v : pool.imap(sleepy, items, 1, mp::time_limit(600ms))) got.push_back(v);
  CHECK(got == items);
  CHECK_THROWS_AS(
      [&] {
        for (int v : pool.imap_unordered(sleepy, items, 6, mp::time_limit(600ms))) (void)v;
      }(),
      mp::TaskTimeoutError);
}

TEST_CASE("a time limit of zero or less is refused", "[time_limit]") {
  CHECK_THROWS_AS(mp::time_limit(0ms), std::invalid_argument);
  CHECK_THROWS_AS(mp::time_limit(-1s), std::invalid_argument);
  CHECK_THROWS_WITH(mp::time_limit(0s), Catch::Contains("must be positive"));
  CHECK(mp::time_limit(1500us).duration == 1500us);
}
