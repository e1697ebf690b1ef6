// Tests of mp::SimpleQueue with real processes, including a consumer killed
// in the middle of get() 20 times in a row.
#include <catch2/catch.hpp>

#include <csignal>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <mp/event.hpp>
#include <mp/simple_queue.hpp>

#include "fork_helpers.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("SimpleQueue: put, get, empty, close across processes", "[simple_queue]") {
  mp::SimpleQueue<std::string> q;
  REQUIRE(q.empty());
  pid_t k = fork_child([&] {
    for (int i = 0; i < 100; ++i) q.put("item " + std::to_string(i));
    return 0;
  });
  for (int i = 0; i < 100; ++i) REQUIRE(q.get() == "item " + std::to_string(i));
  REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(q.empty());
  q.close();
  REQUIRE_THROWS_AS(q.put("late"), std::logic_error);
}

TEST_CASE("SimpleQueue: consumer SIGKILLed in the middle of get, 20 times, the queue still works",
          "[simple_queue][robust]") {
  mp::SimpleQueue<std::vector<int>> q;
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    mp::Event started;
    pid_t k = fork_child([&]() -> int {
      started.set();
      for (;;) (void)q.get();  // blocks, or is in the middle of a 256 KiB message
    });
    REQUIRE(started.wait(10s));
    // Odd rounds: traffic, so the kill lands mid-message; even rounds: blocked on empty.
    if (round % 2 == 1)
      for (int i = 0; i < 8; ++i) q.put(std::vector<int>(64 * 1024, i));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    ::kill(k, SIGKILL);
    REQUIRE(mp_test::killed_by(wait_child(k), SIGKILL));
  }
  // Whatever the killed consumers left is still well-formed: drain it.
  pid_t drainer = fork_child([&] {
    while (!q.empty()) {
      std::vector<int> v = q.get();
      if (v.size() != 64 * 1024 || v.front() != v.back()) return 1;
    }
    return 0;
  });
  REQUIRE(exited_with(wait_child(drainer), 0));
  // And new traffic flows, every item exactly once, in order.
  pid_t producer = fork_child([&] {
    for (int i = 0; i < 200; ++i) q.put(std::vector<int>{i});
    return 0;
  });
  long sum = 0;
  for (int i = 0; i < 200; ++i) {
    std::vector<int> v = q.get();
    REQUIRE(v == std::vector<int>{i});
    sum += v[0];
  }
  REQUIRE(exited_with(wait_child(producer), 0));
  REQUIRE(sum == 199 * 200 / 2);
  REQUIRE(q.empty());
}
