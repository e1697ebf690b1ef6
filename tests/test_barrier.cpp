// Tests of mp::Barrier across processes: rounds with 3 parties, abort,
// reset, timeouts breaking the barrier.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <thread>
#include <vector>

#include <mp/barrier.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"
#include "test_access.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Barrier(3): 3 processes x 50 rounds, nobody passes early", "[barrier]") {
  mp::Barrier b(3);
  mp::Array<int> round(3);
  mp::Array<int> index_sum(50);
  std::vector<pid_t> kids;
  for (std::size_t p = 0; p < 3; ++p) {
    kids.push_back(fork_child([&, p] {
      for (int r = 1; r <= 50; ++r) {
        round[p] = r;
        std::uint32_t idx = b.wait(10s);
        {
          std::lock_guard g(index_sum.get_lock());
          index_sum[static_cast<std::size_t>(r - 1)] += static_cast<int>(idx);
        }
        for (std::size_t q = 0; q < 3; ++q)
          if (round[q] < r) return 1;  // someone had not arrived yet
        b.wait(10s);                   // nobody starts round r+1 before all checked round r
      }
      return 0;
    }));
  }
  for (pid_t k : kids) REQUIRE(exited_with(wait_child(k), 0));
  for (int s : index_sum) REQUIRE(s == 0 + 1 + 2);  // indices 0, 1, 2 each round
  REQUIRE(b.n_waiting() == 0);
  REQUIRE_FALSE(b.broken());
}

TEST_CASE("Barrier: abort breaks waiters and later waits until reset", "[barrier][broken]") {
  mp::Barrier b(3);
  auto waiter = [&] {
    try {
      b.wait(10s);
    } catch (const mp::BrokenBarrierError&) {
      return 0;
    }
    return 1;
  };
  pid_t k1 = fork_child(waiter), k2 = fork_child(waiter);
  while (b.n_waiting() < 2) std::this_thread::sleep_for(1ms);
  b.abort();
  REQUIRE(exited_with(wait_child(k1), 0));
  REQUIRE(exited_with(wait_child(k2), 0));
  REQUIRE(b.broken());
  REQUIRE_THROWS_AS(b.wait(), mp::BrokenBarrierError);
  b.reset();
  REQUIRE_FALSE(b.broken());
  auto passer = [&] { return b.wait(10s) <= 2 ? 0 : 1; };
  pid_t k3 = fork_child(passer), k4 = fork_child(passer);
  REQUIRE(b.wait(10s) <= 2);
  REQUIRE(exited_with(wait_child(k3), 0));
  REQUIRE(exited_with(wait_child(k4), 0));
}

TEST_CASE("Barrier: reset while processes wait breaks them, then the barrier is fresh", "[barrier][broken]") {
  mp::Barrier b(3);
  auto waiter = [&] {
    try {
      b.wait(10s);
    } catch (const mp::BrokenBarrierError&) {
      return 0;
    }
    return 1;
  };
  pid_t k1 = fork_child(waiter), k2 = fork_child(waiter);
  while (b.n_waiting() < 2) std::this_thread::sleep_for(1ms);
  b.reset();
  REQUIRE(exited_with(wait_child(k1), 0));
  REQUIRE(exited_with(wait_child(k2), 0));
  REQUIRE_FALSE(b.broken());
  REQUIRE(b.n_waiting() == 0);
}

TEST_CASE("Barrier: a timed-out wait breaks the barrier, bad arguments", "[barrier][broken]") {
  mp::Barrier b(2);
  REQUIRE_THROWS_WITH(b.wait(20ms), Catch::Contains("timed out"));
  REQUIRE(b.broken());
  REQUIRE_THROWS_AS(b.wait(20ms), mp::BrokenBarrierError);
  REQUIRE_THROWS_AS(mp::Barrier(0), std::invalid_argument);
  mp::Barrier one(1);
  REQUIRE(one.wait() == 0);
  REQUIRE(one.parties() == 1);
}

TEST_CASE("Barrier: a last arriver killed between completing the round and waking strands no waiter",
          "[barrier][robust]") {
  mp::Barrier b(2);
  pid_t k = mp_test::fork_child([&] { return static_cast<int>(b.wait()); });  // index 0: exit 0
  auto& l = mp::detail::TestAccess::layout(b);
  while (b.n_waiting() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);  // asleep in the futex now
  mp::detail::complete_generation(l, l.state.load() >> 1);  // all the last arriver did before its wake
  CHECK(mp_test::exited_with(mp_test::wait_child_within(k, 5s), 0));
}
