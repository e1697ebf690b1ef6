// Tests of mp::Lock and mp::RLock with real processes: exclusion, ownership,
// timeouts, and the defined outcome when an owner dies holding the lock.
#include <catch2/catch.hpp>

#include <csignal>
#include <mutex>
#include <stdexcept>
#include <string>

#include <mp/event.hpp>
#include <mp/lock.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Lock: acquire, release, try_lock in one process", "[lock]") {
  mp::Lock lock;
  REQUIRE(lock.try_lock());
  lock.release();
  lock.acquire();
  REQUIRE(lock.acquire(0ms) == false);  // held by this thread; non-recursive
  lock.release();
  {
    std::lock_guard g(lock);
  }
  REQUIRE(lock.acquire(10ms));
  lock.release();
  REQUIRE_THROWS_AS(lock.release(), std::logic_error);  // not held
}

TEST_CASE("Lock: a copy of the handle is the same lock, across fork", "[lock]") {
  mp::Lock lock;
  mp::Lock copy = lock;
  mp::Event held, done;
  copy.acquire();
  pid_t child = fork_child([&] {
    if (lock.try_lock()) return 1;               // parent holds it
    if (lock.acquire(20ms)) return 2;            // still held: times out
    held.set();
    lock.acquire();                              // parent releases below
    lock.release();
    done.set();
    return 0;
  });
  REQUIRE(held.wait(5s));
  pid_t other = fork_child([&] {  // a process that does not hold it cannot release it
    try {
      lock.release();
    } catch (const std::logic_error&) {
      return 0;
    }
    return 1;
  });
  REQUIRE(exited_with(wait_child(other), 0));
  copy.release();
  REQUIRE(exited_with(wait_child(child), 0));
  REQUIRE(done.is_set());
}

TEST_CASE("Lock: counts stay exact under contention from 3 processes", "[lock]") {
  mp::Lock lock;
  mp::Array<long> counter(1);
  constexpr int per = 5000;
  pid_t kids[3];
  for (pid_t& k : kids) {
    k = fork_child([&] {
      for (int i = 0; i < per; ++i) {
        std::lock_guard g(lock);
        long v = counter[0];
        counter[0] = v + 1;
      }
      return 0;
    });
  }
  for (pid_t k : kids) REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(counter[0] == 3 * per);
}

TEST_CASE("Lock: the owner died holding it -> OwnerDeadError once, then usable", "[lock][robust]") {
  mp::Lock lock;
  SECTION("owner exits") {
    pid_t child = fork_child([&] {
      lock.acquire();
      return 0;  // _exit with the lock held
    });
    REQUIRE(exited_with(wait_child(child), 0));
    try {
      lock.acquire();
      FAIL("acquire should have thrown OwnerDeadError");
    } catch (const mp::OwnerDeadError& e) {
      REQUIRE_THAT(e.what(), Catch::Contains(std::to_string(child)));
      REQUIRE_THAT(e.what(), Catch::Contains("died holding the lock"));
    }
  }
  SECTION("owner killed by SIGKILL; try_lock and acquire(timeout) see it too") {
    mp::Event held;
    pid_t child = fork_child([&] {
      lock.acquire();
      held.set();
      ::pause();
      return 0;
    });
    REQUIRE(held.wait(5s));
    REQUIRE_FALSE(lock.acquire(10ms));
    ::kill(child, SIGKILL);
    REQUIRE(mp_test::killed_by(wait_child(child), SIGKILL));
    REQUIRE_THROWS_AS(lock.acquire(1s), mp::OwnerDeadError);
  }
  // After the error the lock is free and healthy.
  REQUIRE(lock.try_lock());
  lock.release();
  {
    std::lock_guard g(lock);
  }
  REQUIRE(lock.acquire(0ms));
  lock.release();
}

TEST_CASE("RLock: recursion, ownership and owner death", "[lock][rlock]") {
  mp::RLock r;
  r.acquire();
  r.acquire();
  REQUIRE(r.try_lock());
  pid_t child = fork_child([&] { return r.try_lock() ? 1 : 0; });  // held by the parent
  REQUIRE(exited_with(wait_child(child), 0));
  r.release();
  r.release();
  child = fork_child([&] { return r.acquire(20ms) ? 1 : 0; });  // still held once
  REQUIRE(exited_with(wait_child(child), 0));
  r.release();
  REQUIRE_THROWS_AS(r.release(), std::logic_error);
  child = fork_child([&] {
    std::lock_guard g(r);
    return r.acquire(0ms) ? 0 : 1;  // re-entry; exits holding it twice
  });
  REQUIRE(exited_with(wait_child(child), 0));
  REQUIRE_THROWS_AS(r.acquire(), mp::OwnerDeadError);
  r.acquire();
  r.acquire();
  r.release();
  r.release();
  child = fork_child([&] {
    if (!r.try_lock()) return 1;
    r.release();
    return 0;
  });
  REQUIRE(exited_with(wait_child(child), 0));
}
