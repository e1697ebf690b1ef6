// Tests of mp::Event across processes: set wakes every waiter, clear,
// timeouts.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include <mp/event.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"
#include "test_access.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Event: set, clear, is_set, wait with timeout in one process", "[event]") {
  mp::Event e;
  REQUIRE_FALSE(e.is_set());
  REQUIRE_FALSE(e.wait(10ms));
  e.set();
  REQUIRE(e.is_set());
  REQUIRE(e.wait(0ms));
  e.wait();
  e.clear();
  REQUIRE_FALSE(e.is_set());
  REQUIRE_FALSE(e.wait(1ms));
}

TEST_CASE("Event: set() wakes all 3 sleeping processes", "[event]") {
  mp::Event go;
  mp::Array<int> woke(3);
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    kids.push_back(fork_child([&, i] {
      if (!go.wait(10s)) return 1;
      woke[static_cast<std::size_t>(i)] = 1;
      return 0;
    }));
  }
  REQUIRE(woke[0] + woke[1] + woke[2] == 0);
  go.set();
  for (pid_t k : kids) REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(woke[0] + woke[1] + woke[2] == 3);
}

TEST_CASE("Event: ping-pong between two processes, 1000 rounds", "[event]") {
  mp::Event ping, pong;
  mp::Value<int> rounds(0);
  pid_t k = fork_child([&] {
    for (int i = 0; i < 1000; ++i) {
      if (!ping.wait(10s)) return 1;
      ping.clear();
      ++rounds.value();
      pong.set();
    }
    return 0;
  });
  for (int i = 0; i < 1000; ++i) {
    ping.set();
    REQUIRE(pong.wait(10s));
    pong.clear();
  }
  REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(rounds.value() == 1000);
}

TEST_CASE("Event: a set() killed between raising the flag and waking strands no waiter", "[event][robust]") {
  mp::Event e;
  pid_t k = fork_child([&] {
    e.wait();  // no timeout: only the flag can end it
    return 0;
  });
  while (mp::detail::TestAccess::layout(e).waiters.load() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);    // asleep in the futex now
  mp::detail::TestAccess::layout(e).flag.store(1);  // all a set() killed before its FUTEX_WAKE did
  CHECK(exited_with(mp_test::wait_child_within(k, 5s), 0));  // it looked again within a second
}
