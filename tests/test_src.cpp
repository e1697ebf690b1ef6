// Tests of <mp/src.hpp>: a program built with MP_SEPARATE_COMPILATION. This
// file sees only the declarations of the pool's engine; separate/mp_src.cpp
// includes <mp/src.hpp> and compiles it. Every function of the backend seam
// is exercised through the public API, with the pool's usual outcomes.
#include <catch2/catch.hpp>

#include <mp/barrier.hpp>
#include <mp/codec.hpp>
#include <mp/condition.hpp>
#include <mp/event.hpp>
#include <mp/lock.hpp>
#include <mp/pipe.hpp>
#include <mp/pool.hpp>
#include <mp/process.hpp>
#include <mp/progress.hpp>
#include <mp/queue.hpp>
#include <mp/semaphore.hpp>
#include <mp/thread_pool.hpp>
#include <mp/time_limit.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

#ifndef MP_SEPARATE_COMPILATION
#error "test_src is built with MP_SEPARATE_COMPILATION (tests/CMakeLists.txt)"
#endif

namespace {

template <class T>
concept complete = requires { sizeof(T); };

// The engine's class is only declared in this file: its code is compiled in mp_src.cpp.
static_assert(std::is_same_v<mp::Pool, mp::basic_pool<mp::detail::CompiledForkBackend>>);
static_assert(!complete<mp::detail::ForkBackend>);
static_assert(std::is_same_v<mp::ThreadPool, mp::basic_pool<mp::detail::CompiledThreadBackend>>);
static_assert(!complete<mp::detail::ThreadBackend>);

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int pid_of(int) { return static_cast<int>(::getpid()); }
int nap(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int crash(int) {
  std::signal(SIGSEGV, SIG_DFL);
  std::raise(SIGSEGV);
  return 0;
}
int throws(int x) {
  if (x == 3) throw std::out_of_range("item 3");
  return x;
}

}  // namespace

TEST_CASE("separate compilation: apply, map, starmap, imap and their results", "[src]") {
  mp::Pool pool(2);
  CHECK(pool.size() == 2);
  CHECK(pool.apply(square, 7) == 49);
  CHECK(pool.apply_async(add, 2, 3).get(10s) == 5);
  const auto v = pool.map(square, std::views::iota(0, 1000));
  REQUIRE(v.size() == 1000);
  CHECK(v[999] == 999 * 999);
  CHECK(pool.starmap(add, std::vector<std::pair<int, int>>{{1, 2}, {3, 4}}) == std::vector<int>{3, 7});
  std::vector<int> got;
  for (int x : pool.imap(square, std::views::iota(0, 50))) got.push_back(x);
  CHECK(got.size() == 50);
  CHECK(got[49] == 49 * 49);
  const auto pids = pool.pids();
  const auto ran = pool.map(pid_of, std::views::iota(0, 200), 1);
  CHECK(std::all_of(ran.begin(), ran.end(), [&](int p) {
    return std::find(pids.begin(), pids.end(), static_cast<pid_t>(p)) != pids.end();
  }));
}

TEST_CASE("separate compilation: exceptions keep their type, a crash is WorkerLostError and the pool heals",
          "[src]") {
  mp::Pool pool(2);
  CHECK_THROWS_AS(pool.map(throws, std::views::iota(0, 8)), std::out_of_range);
  CHECK_THROWS_AS(pool.apply(crash, 0), mp::WorkerLostError);
  CHECK(pool.apply(square, 9) == 81);
}

TEST_CASE("separate compilation: time_limit, progress, cancel", "[src]") {
  mp::Pool pool(2);
  CHECK_THROWS_AS(pool.apply(mp::time_limit(200ms), nap, 20'000), mp::TaskTimeoutError);
  std::mutex m;
  std::vector<std::size_t> seen;
  const auto v = pool.map(nap, std::vector<int>(40, 1), 20, mp::progress([&](std::size_t done, std::size_t) {
                            std::lock_guard lock(m);
                            seen.push_back(done);
                          }));
  CHECK(v == std::vector<int>(40, 1));
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back() == 40);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  auto busy1 = pool.apply_async(nap, 300);
  auto busy2 = pool.apply_async(nap, 300);
  std::vector<mp::AsyncResult<int>> queued;
  for (int i = 0; i < 200; ++i) queued.push_back(pool.apply_async(nap, 300));
  CHECK(queued.back().cancel());  // still waiting in the parent (window 64 per worker)
  CHECK_THROWS_AS(queued.back().get(10s), mp::CancelledError);
  pool.terminate();
  CHECK_THROWS_AS(queued.front().get(10s), mp::ClosedError);
  (void)busy1, (void)busy2;
}

TEST_CASE("separate compilation: close, join with a timeout, join, and submitting after close", "[src]") {
  mp::Pool pool(2);
  auto r = pool.apply_async(nap, 300);
  pool.close();
  CHECK_THROWS_WITH(pool.apply(square, 1), Catch::Contains("closed"));
  CHECK_FALSE(pool.join(10ms));  // the task still runs
  CHECK(pool.join(30s));
  CHECK(r.get(0s) == 300);
}

TEST_CASE("separate compilation: ThreadPool runs the same calls in threads of this process", "[src]") {
  mp::ThreadPool pool(mp::PoolOptions{.processes = 2});
  CHECK(pool.size() == 2);
  CHECK(pool.apply(pid_of, 0) == static_cast<int>(::getpid()));
  CHECK(pool.map(square, std::views::iota(0, 100))[99] == 99 * 99);
  CHECK_THROWS_AS(pool.apply(throws, 3), std::out_of_range);
  auto r = pool.apply_async(nap, 50);
  pool.close();
  CHECK(pool.join(30s));
  CHECK(r.get(0s) == 50);
  CHECK_THROWS_WITH(mp::ThreadPool(mp::PoolOptions{.processes = 1, .maxtasksperchild = 3}),
                    Catch::Contains("maxtasksperchild"));
}

TEST_CASE("separate compilation: Process starts, names, joins and reports its children", "[src]") {
  mp::Process ok([](int code) {
    std::signal(SIGTERM, SIG_DFL);
    ::_exit(mp::current_process().name() == "worker" && mp::parent_process().has_value() ? code : 99);
  }, 7);
  ok.name("worker");
  ok.start();
  ok.join();
  CHECK(ok.exitcode() == 7);
  mp::Process thrower([] { throw std::runtime_error("from the child"); });
  thrower.start();
  CHECK(thrower.join(30s));
  CHECK(thrower.exitcode() == 1);
  mp::Process sleeper([] { std::this_thread::sleep_for(60s); });
  sleeper.start();
  CHECK(mp::active_children().size() == 1);
  sleeper.kill();
  CHECK(sleeper.join(30s));
  CHECK(sleeper.exitcode() == -SIGKILL);
  CHECK(mp::current_process().name() == "MainProcess");
}

TEST_CASE("separate compilation: malformed input is mp::DecodeError naming the byte", "[src]") {
  const std::vector<std::byte> bytes = mp::dumps(std::vector<int>{1, 2, 3});
  const std::vector<std::byte> cut(bytes.begin(), bytes.end() - 2);
  CHECK_THROWS_WITH(mp::loads<std::vector<int>>(cut), Catch::Contains("a length exceeds the bytes left (at byte 0)"));
  CHECK_THROWS_AS(mp::loads<std::vector<int>>(cut), mp::DecodeError);
  CHECK_THROWS_WITH(mp::loads<std::int32_t>(mp::dumps(std::int16_t{7})), Catch::Contains("it is truncated"));
}

TEST_CASE("separate compilation: queues, pipes and the locks work between processes", "[src]") {
  mp::Queue<int> q;
  mp::Lock lock;
  mp::RLock rlock;
  mp::Semaphore sem(0);
  mp::Event event;
  mp::Condition cond;
  mp::Barrier barrier(2);
  auto [here, there] = mp::Pipe<int>();
  mp::Process child([&] {
    std::signal(SIGTERM, SIG_DFL);
    q.put(1);
    there.send(2);
    sem.release();
    event.set();
    barrier.wait();
    lock.acquire();  // held by the parent until the queue says so
    lock.release();
    rlock.acquire();
    rlock.acquire();
    rlock.release();
    rlock.release();
    cond.acquire();
    cond.notify();
    cond.release();
  });
  lock.acquire();
  child.start();
  CHECK(q.get(30s) == 1);
  CHECK(here.recv() == 2);
  CHECK(sem.acquire(30s));
  CHECK(event.wait(30s));
  barrier.wait();
  lock.release();
  CHECK(child.join(30s));
  CHECK(child.exitcode() == 0);
  CHECK_THROWS_AS(lock.release(), std::logic_error);
}
