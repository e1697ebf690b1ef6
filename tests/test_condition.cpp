// Tests of mp::Condition across processes: wait/notify with a predicate,
// notify_all, timeouts, and misuse.
#include <catch2/catch.hpp>

#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <mp/condition.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"
#include "test_access.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Condition: producer and consumer processes hand over 200 items", "[condition]") {
  mp::Condition cv;
  mp::Value<int> items(0, cv.get_lock());
  mp::Value<long> consumed(0);
  pid_t consumer = fork_child([&] {
    for (int i = 0; i < 200; ++i) {
      std::lock_guard g(cv);
      if (!cv.wait_for([&] { return items.value() > 0; }, 10s)) return 1;
      --items.value();
      consumed.value() += i;
      cv.notify();
    }
    return 0;
  });
  for (int i = 0; i < 200; ++i) {
    std::lock_guard g(cv);
    cv.wait_for([&] { return items.value() < 3; });  // at most 3 in flight
    ++items.value();
    cv.notify();
  }
  REQUIRE(exited_with(wait_child(consumer), 0));
  REQUIRE(consumed.value() == 199 * 200 / 2);
  REQUIRE(items.value() == 0);
}

TEST_CASE("Condition: notify_all wakes 3 waiting processes", "[condition]") {
  mp::Condition cv;
  mp::Value<int> go(0), ready(0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    kids.push_back(fork_child([&] {
      std::lock_guard g(cv);
      ++ready.value();
      cv.notify_all();
      return cv.wait_for([&] { return go.value() == 1; }, 10s) ? 0 : 1;
    }));
  }
  {
    std::lock_guard g(cv);
    REQUIRE(cv.wait_for([&] { return ready.value() == 3; }, 10s));
    go.value() = 1;
    cv.notify_all();
  }
  for (pid_t k : kids) REQUIRE(exited_with(wait_child(k), 0));
}

TEST_CASE("Condition: timeouts hold the lock again, wait without the lock throws", "[condition]") {
  mp::Condition cv;
  REQUIRE_THROWS_AS(cv.wait(1ms), std::logic_error);
  cv.acquire();
  REQUIRE_FALSE(cv.wait(5ms));
  REQUIRE_FALSE(cv.wait_for([] { return false; }, 5ms));
  cv.release();  // still held after the timeouts
  REQUIRE_THROWS_AS(cv.release(), std::logic_error);
}

TEST_CASE("Condition: a notify() killed between its bump and its wake strands no waiter", "[condition][robust]") {
  mp::Condition c;
  pid_t k = mp_test::fork_child([&] {
    c.acquire();
    c.wait();  // no timeout: only a notify can end it
    c.release();
    return 0;
  });
  while (mp::detail::TestAccess::layout(c).waiters.load() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);  // asleep in the futex now
  mp::detail::TestAccess::layout(c).seq.fetch_add(1);  // all a notify() killed before its FUTEX_WAKE did
  CHECK(mp_test::exited_with(mp_test::wait_child_within(k, 5s), 0));
}
