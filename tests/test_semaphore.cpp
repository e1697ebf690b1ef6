// Tests of mp::Semaphore and mp::BoundedSemaphore with real processes: the
// count bounds concurrency exactly, over-release throws, and units held by a
// dead process come back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <mp/event.hpp>
#include <mp/semaphore.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Semaphore: counts, timeouts, try_lock, lock_guard", "[semaphore]") {
  mp::Semaphore s(2);
  REQUIRE(s.get_value() == 2);
  s.acquire();
  REQUIRE(s.try_lock());
  REQUIRE_FALSE(s.try_lock());
  REQUIRE_FALSE(s.acquire(10ms));
  s.release();
  {
    std::lock_guard g(s);
    REQUIRE(s.get_value() == 0);
  }
  s.release();
  s.release();  // a plain Semaphore may grow past its initial value
  REQUIRE(s.get_value() == 3);
}

TEST_CASE("Semaphore(2): 4 processes, observed peak concurrency is exactly 2", "[semaphore]") {
  mp::Semaphore s(2);
  mp::Value<int> active(0), peak(0), total(0);
  std::vector<pid_t> kids;
  for (int p = 0; p < 4; ++p) {
    kids.push_back(fork_child([&] {
      for (int i = 0; i < 20; ++i) {
        std::lock_guard g(s);
        {
          std::lock_guard g2(active.get_lock());
          ++active.value();
          ++total.value();
          peak.value() = std::max(peak.value(), active.value());
        }
        std::this_thread::sleep_for(1ms);
        std::lock_guard g2(active.get_lock());
        --active.value();
      }
      return 0;
    }));
  }
  for (pid_t k : kids) REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(total.load() == 80);
  REQUIRE(active.load() == 0);
  REQUIRE(peak.load() == 2);
  REQUIRE(s.get_value() == 2);
}

TEST_CASE("Semaphore(0) as a signal between processes", "[semaphore]") {
  mp::Semaphore s(0);
  pid_t k = fork_child([&] { return s.acquire(10s) ? 0 : 1; });
  std::this_thread::sleep_for(5ms);
  s.release();
  REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(s.get_value() == 0);
}

TEST_CASE("BoundedSemaphore: releasing more often than acquiring throws", "[semaphore][bounded]") {
  mp::BoundedSemaphore b(2);
  REQUIRE_THROWS_AS(b.release(), std::logic_error);
  b.acquire();
  b.release();
  REQUIRE_THROWS_WITH(b.release(), Catch::Contains("released more often than acquired"));
  REQUIRE(b.get_value() == 2);
  // A unit taken in one process may be released by another.
  b.acquire();
  pid_t k = fork_child([&] {
    b.release();
    try {
      b.release();
    } catch (const std::logic_error&) {
      return 0;
    }
    return 1;
  });
  REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(b.get_value() == 2);
}

TEST_CASE("Semaphore: units of a holder that died come back to a waiter", "[semaphore][robust]") {
  SECTION("BoundedSemaphore(1), holder exits without releasing") {
    mp::BoundedSemaphore b(1);
    pid_t k = fork_child([&] {
      b.acquire();
      return 0;
    });
    REQUIRE(exited_with(wait_child(k), 0));
    REQUIRE(b.acquire(5s));
    b.release();
    REQUIRE(b.get_value() == 1);
  }
  SECTION("Semaphore(2), two holders SIGKILLed; the waiter is their unreaped parent") {
    mp::Semaphore s(2);
    mp::Semaphore started(0);
    pid_t k1 = fork_child([&] { s.acquire(); started.release(); ::pause(); return 0; });
    pid_t k2 = fork_child([&] { s.acquire(); started.release(); ::pause(); return 0; });
    started.acquire();
    started.acquire();
    REQUIRE_FALSE(s.acquire(30ms));  // both holders alive
    ::kill(k1, SIGKILL);
    ::kill(k2, SIGKILL);
    REQUIRE(s.acquire(5s));  // they are zombies until reaped below
    REQUIRE(s.acquire(5s));
    REQUIRE(mp_test::killed_by(wait_child(k1), SIGKILL));
    REQUIRE(mp_test::killed_by(wait_child(k2), SIGKILL));
    s.release();
    s.release();
    REQUIRE(s.get_value() == 2);
  }
  SECTION("Semaphore(0) used as a signal: a dead consumer creates no phantom unit") {
    mp::Semaphore s(0);
    s.release();
    pid_t k = fork_child([&] { return s.acquire(5s) ? 0 : 1; });
    REQUIRE(exited_with(wait_child(k), 0));
    REQUIRE_FALSE(s.acquire(60ms));
  }
}
