// Tests of mp::JoinableQueue with real processes: join() returns only after
// every task_done(), misuse, and consumers that die with unfinished tasks.
#include <catch2/catch.hpp>

#include <csignal>
#include <stdexcept>
#include <thread>
#include <vector>

#include <mp/event.hpp>
#include <mp/joinable_queue.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("JoinableQueue: join returns only after every task_done (2 consumers, 200 tasks)", "[joinable_queue]") {
  mp::JoinableQueue<int> q;
  mp::Value<int> done(0);
  mp::Value<long> sum(0);
  auto consumer = [&] {
    for (;;) {
      int x = q.get();
      if (x < 0) {
        q.task_done();
        return 0;
      }
      std::this_thread::sleep_for(50us);  // "work"
      {
        std::lock_guard g(done.get_lock());
        ++done.value();
        sum.value() += x;
      }
      q.task_done();
    }
  };
  pid_t c1 = fork_child(consumer), c2 = fork_child(consumer);
  for (int i = 0; i < 200; ++i) q.put(i);
  q.join();
  REQUIRE(done.load() == 200);  // nothing was still being worked on
  REQUIRE(sum.load() == 199 * 200 / 2);
  REQUIRE(q.unfinished_tasks() == 0);
  q.put(-1);
  q.put(-1);
  REQUIRE(q.join(10s));
  REQUIRE(exited_with(wait_child(c1), 0));
  REQUIRE(exited_with(wait_child(c2), 0));
}

TEST_CASE("JoinableQueue: join(timeout), task_done too often, put/get variants", "[joinable_queue]") {
  mp::JoinableQueue<int> q(2);
  REQUIRE(q.join(0ms));
  REQUIRE_THROWS_AS(q.task_done(), std::logic_error);
  q.put(1);
  q.put_nowait(2);
  REQUIRE_THROWS_AS(q.put_nowait(3), mp::Full);  // maxsize 2: count unchanged
  REQUIRE_THROWS_AS(q.put(3, 5ms), mp::Full);
  REQUIRE(q.unfinished_tasks() == 2);
  REQUIRE_FALSE(q.join(10ms));
  REQUIRE(q.get() == 1);
  REQUIRE(q.get_nowait() == 2);
  REQUIRE_THROWS_AS(q.get(5ms), mp::Empty);
  q.task_done();
  REQUIRE_FALSE(q.join(5ms));
  q.task_done();
  REQUIRE(q.join(0ms));
  REQUIRE_THROWS_AS(q.task_done(), std::logic_error);
}

TEST_CASE("JoinableQueue: a consumer that dies with unfinished tasks -> WorkerLostError, then join works",
          "[joinable_queue][robust]") {
  mp::JoinableQueue<int> q;
  for (int i = 0; i < 5; ++i) q.put(i);
  pid_t k = fork_child([&] {
    (void)q.get();
    (void)q.get();
    q.task_done();  // one done, one still owed when it exits
    return 0;
  });
  REQUIRE(exited_with(wait_child(k), 0));
  for (int i = 0; i < 3; ++i) {
    (void)q.get();
    q.task_done();
  }
  try {
    q.join();
    FAIL("join should have thrown WorkerLostError");
  } catch (const mp::WorkerLostError& e) {
    REQUIRE(e.pid() == k);
    REQUIRE_THAT(e.what(), Catch::Contains("1 got but unfinished"));
  }
  REQUIRE(q.unfinished_tasks() == 0);
  REQUIRE(q.join(0ms));
}

TEST_CASE("JoinableQueue: consumer killed while blocked in get, 20 times, join stays exact",
          "[joinable_queue][robust]") {
  mp::JoinableQueue<int> q;
  for (int round = 0; round < 20; ++round) {
    mp::Event started;
    pid_t k = fork_child([&] {
      started.set();
      (void)q.get();
      return 1;
    });
    REQUIRE(started.wait(10s));
    std::this_thread::sleep_for(1ms);
    ::kill(k, SIGKILL);
    REQUIRE(mp_test::killed_by(wait_child(k), SIGKILL));
  }
  pid_t worker = fork_child([&] {
    for (int i = 0; i < 50; ++i) {
      if (q.get() != i) return 1;
      q.task_done();
    }
    return 0;
  });
  for (int i = 0; i < 50; ++i) q.put(i);
  q.join();
  REQUIRE(exited_with(wait_child(worker), 0));
  REQUIRE(q.unfinished_tasks() == 0);
}
