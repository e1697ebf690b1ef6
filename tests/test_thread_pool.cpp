// Tests of mp::ThreadPool: mp::Pool's API over threads (every method, results
// checked), the options threads refuse, terminate and cancel of tasks a
// thread cannot stop, and a ThreadPool inside a Pool task.
#include <catch2/catch.hpp>

#include <mp/thread_pool.hpp>
#include <mp/pool.hpp>
#include <mp/sharedctypes.hpp>
#include <mp/wait.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
long long widen(int x) { return static_cast<long long>(x) * 3; }
int throw_long(int n) { throw std::runtime_error(std::string(static_cast<std::size_t>(n), 'e')); }
std::string repeat(std::string s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::atomic<long long> g_sum{0};
void accumulate(int x) { g_sum += x; }

struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};
MP_REGISTER_EXCEPTION(BadRecord);

int fail_on(int x) {
  if (x == 3) throw std::out_of_range("item 3");
  if (x == 5) throw BadRecord("record 5");
  return x;
}

// A gate tasks block on until the test opens it (same address space).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int inside = 0;
};
Gate g_gate;

void reset_gate() {
  std::lock_guard lock(g_gate.mu);
  g_gate.open = false;
  g_gate.inside = 0;
}
int wait_gate(int x) {
  std::unique_lock lock(g_gate.mu);
  ++g_gate.inside;
  g_gate.cv.notify_all();
  g_gate.cv.wait(lock, [] { return g_gate.open; });
  return x;
}
void wait_inside(int n) {
  std::unique_lock lock(g_gate.mu);
  g_gate.cv.wait(lock, [n] { return g_gate.inside >= n; });
}
void open_gate() {
  std::lock_guard lock(g_gate.mu);
  g_gate.open = true;
  g_gate.cv.notify_all();
}

int thread_local_value(int) {
  thread_local int v = 0;
  return ++v;
}
std::atomic<int> g_init{0};
void init_thread(int v) { g_init += v; }  // each thread adds v
void init_throws(int) { throw BadRecord("init failed"); }

int nested_thread_pool(int n) {
  mp::ThreadPool tp(2);
  auto v = tp.map(square, std::views::iota(0, n));
  return std::accumulate(v.begin(), v.end(), 0);
}

int bump(mp::Value<int> v, int by) {
  std::lock_guard lock(v.get_lock());
  v.value() += by;
  return by;
}

}  // namespace

TEST_CASE("ThreadPool: size, default size, apply with conversions", "[thread_pool]") {
  CHECK_THROWS_AS(mp::ThreadPool(0), std::invalid_argument);
  mp::ThreadPool pool(3);
  CHECK(pool.size() == 3);
  mp::ThreadPool dflt;
  CHECK(dflt.size() == std::max(1u, std::thread::hardware_concurrency()));
  CHECK(pool.apply(square, 7) == 49);
  CHECK(pool.apply(add, 2, 40) == 42);
  CHECK(pool.apply(repeat, "ab", 3) == "ababab");
}

TEST_CASE("ThreadPool: apply_async with then runs the callback on a pool thread", "[thread_pool]") {
  mp::ThreadPool pool(2);
  std::atomic<int> seen{0};
  std::atomic<bool> on_caller{false};
  const auto caller = std::this_thread::get_id();
  reset_gate();
  auto r = pool.apply_async(wait_gate, 3).then([&](int v) {  // registered before the task can end
    seen = v;
    on_caller = std::this_thread::get_id() == caller;
  });
  open_gate();
  CHECK(r.get() == 3);
  CHECK(seen == 3);
  CHECK_FALSE(on_caller);
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 1000; ++i) rs.push_back(pool.apply_async(square, i));
  for (int i = 0; i < 1000; ++i) CHECK(rs[static_cast<std::size_t>(i)].get() == i * i);
}

TEST_CASE("ThreadPool: map of 10^5 items, starmap, zipped map, void map", "[thread_pool]") {
  mp::ThreadPool pool(2);
  auto v = pool.map(widen, std::views::iota(0, 100'000));
  REQUIRE(v.size() == 100'000);
  for (int i = 0; i < 100'000; ++i) REQUIRE(v[static_cast<std::size_t>(i)] == i * 3LL);
  CHECK(pool.map(square, std::vector<int>{}).empty());
  CHECK(pool.map(square, std::vector<int>{1, 2, 3}, 1) == std::vector<int>{1, 4, 9});
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  CHECK(pool.starmap(add, pairs) == std::vector<int>{3, 7, 11});
  CHECK(pool.map(add, std::vector<int>{1, 2, 3}, std::vector<int>{10, 20}) == std::vector<int>{11, 22});
  CHECK(pool.starmap_async(add, pairs).get() == std::vector<int>{3, 7, 11});
  g_sum = 0;
  pool.map(accumulate, std::views::iota(1, 1001), 7);
  CHECK(g_sum == 500'500);
}

TEST_CASE("ThreadPool: imap in order, imap_unordered as a set, istarmap", "[thread_pool]") {
  mp::ThreadPool pool(3);
  std::vector<int> in(5000);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> got;
  for (int x : pool.imap(square, in, 13)) got.push_back(x);
  REQUIRE(got.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(got[i] == in[i] * in[i]);
  std::multiset<int> un;
  for (int x : pool.imap_unordered(square, in, 7)) un.insert(x);
  std::multiset<int> want;
  for (int x : in) want.insert(x * x);
  CHECK(un == want);
  std::vector<std::tuple<int, int>> pairs;
  for (int i = 0; i < 100; ++i) pairs.emplace_back(i, 1000);
  std::vector<int> st;
  for (int x : pool.istarmap(add, pairs, 3)) st.push_back(x);
  REQUIRE(st.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(st[static_cast<std::size_t>(i)] == i + 1000);
  std::multiset<int> su;
  for (int x : pool.istarmap_unordered(add, pairs)) su.insert(x);
  CHECK(su.size() == 100);
  CHECK(*su.begin() == 1000);
}

TEST_CASE("ThreadPool: exceptions keep their type, registered ones too", "[thread_pool]") {
  mp::ThreadPool pool(2);
  CHECK_THROWS_AS(pool.apply(fail_on, 3), std::out_of_range);
  CHECK_THROWS_AS(pool.apply(fail_on, 5), BadRecord);
  CHECK_THROWS_WITH(pool.apply(fail_on, 5), "record 5");
  CHECK_THROWS_AS(pool.map(fail_on, std::views::iota(0, 10), 1), std::out_of_range);  // first in input order
  std::vector<int> got;
  CHECK_THROWS_AS([&] { for (int x : pool.imap(fail_on, std::vector<int>{5, 1})) got.push_back(x); }(), BadRecord);
  CHECK(pool.apply(square, 4) == 16);  // the pool goes on
}

TEST_CASE("ThreadPool: results above max_result_bytes fail with length_error", "[thread_pool]") {
  mp::PoolOptions o;
  o.processes = 1;
  o.max_result_bytes = 64;
  mp::ThreadPool pool(o);
  CHECK_THROWS_AS(pool.apply(repeat, "x", 1000), std::length_error);
  CHECK(pool.apply(repeat, "x", 3) == "xxx");
}

TEST_CASE("ThreadPool: an error larger than max_result_bytes still arrives whole", "[thread_pool]") {
  mp::PoolOptions o;
  o.processes = 1;
  o.max_result_bytes = 16;
  mp::ThreadPool pool(o);
  CHECK_THROWS_WITH(pool.apply(repeat, "x", 1000), Catch::Contains("max_result_bytes (16)"));
  CHECK_THROWS_WITH(pool.apply(throw_long, 5000), std::string(5000, 'e'));
  CHECK(pool.apply(repeat, "x", 2) == "xx");
}

TEST_CASE("ThreadPool: close then join waits for every task", "[thread_pool]") {
  mp::ThreadPool pool(2);
  g_sum = 0;
  std::vector<mp::AsyncResult<void>> rs;
  for (int i = 1; i <= 200; ++i) rs.push_back(pool.apply_async(accumulate, i));
  pool.close();
  CHECK_THROWS_AS(pool.apply(square, 1), std::logic_error);
  pool.join();
  CHECK(g_sum == 20'100);
  for (auto& r : rs) CHECK(r.ready());
  mp::ThreadPool open(1);
  CHECK_THROWS_AS(open.join(), std::logic_error);
}

TEST_CASE("ThreadPool: join(timeout) returns false while a task blocks", "[thread_pool]") {
  reset_gate();
  mp::ThreadPool pool(1);
  auto r = pool.apply_async(wait_gate, 9);
  wait_inside(1);
  pool.close();
  CHECK_FALSE(pool.join(30ms));
  open_gate();
  CHECK(pool.join(60s));
  CHECK(r.get() == 9);
}

TEST_CASE("ThreadPool: terminate fails queued tasks with ClosedError, running ones finish", "[thread_pool]") {
  reset_gate();
  mp::ThreadPool pool(1);
  auto running = pool.apply_async(wait_gate, 1);
  wait_inside(1);
  std::vector<mp::AsyncResult<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.apply_async(square, i));
  std::thread opener([&queued] {
    for (auto& q : queued) q.wait();  // terminate() failed the queued tasks at once
    open_gate();                      // and now waits for the running one: let it end
  });
  pool.terminate();
  opener.join();
  CHECK(running.ready());  // terminate returned after the running task ended
  CHECK(running.get() == 1);
  for (auto& q : queued) CHECK_THROWS_AS(q.get(), mp::ClosedError);
  CHECK_THROWS_AS(pool.apply(square, 1), std::logic_error);
  pool.terminate();  // idempotent
  pool.join();
}

TEST_CASE("ThreadPool: cancel of a queued task, cancel(true) cannot stop a running one", "[thread_pool]") {
  reset_gate();
  mp::ThreadPool pool(1);
  auto running = pool.apply_async(wait_gate, 1);
  wait_inside(1);
  auto queued = pool.apply_async(square, 3);
  CHECK(queued.cancel());
  CHECK(queued.cancelled());
  CHECK_THROWS_AS(queued.get(), mp::CancelledError);
  CHECK_FALSE(running.cancel(true));  // a thread cannot be killed
  CHECK_FALSE(running.ready());
  open_gate();
  CHECK(running.get() == 1);
  CHECK(pool.apply(square, 5) == 25);
}

TEST_CASE("ThreadPool: wait and as_completed on its futures", "[thread_pool]") {
  reset_gate();
  mp::ThreadPool pool(2);
  std::vector<mp::AsyncResult<int>> fs;
  fs.push_back(pool.apply_async(wait_gate, 100));
  fs.push_back(pool.apply_async(square, 3));
  auto first = mp::wait(fs, mp::FIRST_COMPLETED);
  REQUIRE(first.done.size() == 1);
  CHECK(first.done[0].get() == 9);
  open_gate();
  int sum = 0;
  for (auto x : mp::as_completed(fs)) sum += x.get();
  CHECK(sum == 109);
}

TEST_CASE("ThreadPool: options threads cannot honour throw invalid_argument naming the field", "[thread_pool]") {
  auto refused = [](auto set, const char* field) {
    mp::PoolOptions o;
    o.processes = 1;
    set(o);
    try {
      mp::ThreadPool pool(o);
      FAIL("no exception for " << field);
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains(field));
    }
  };
  refused([](mp::PoolOptions& o) { o.task_timeout = 1s; }, "task_timeout");
  refused([](mp::PoolOptions& o) { o.memory_limit = 1u << 30; }, "memory_limit");
  refused([](mp::PoolOptions& o) { o.retries = 1; }, "retries");
  refused([](mp::PoolOptions& o) { o.maxtasksperchild = 5; }, "maxtasksperchild");
  refused([](mp::PoolOptions& o) { o.factor = 1.0; }, "factor");
}

TEST_CASE("ThreadPool: the initializer runs in each thread, one that throws fails the constructor", "[thread_pool]") {
  mp::PoolOptions o;
  o.processes = 3;
  g_init = 0;
  o.initializer = mp::initializer(init_thread, 2);
  {
    mp::ThreadPool pool(o);
    CHECK(pool.apply(square, 2) == 4);
  }
  CHECK(g_init == 6);
  o.initializer = mp::initializer(init_throws, 0);
  CHECK_THROWS_AS(mp::ThreadPool(o), BadRecord);
}

TEST_CASE("ThreadPool: tasks run on the pool's own threads, shared objects work", "[thread_pool]") {
  mp::ThreadPool pool(2);
  auto v = pool.map(thread_local_value, std::views::iota(0, 100), 1);
  CHECK(*std::max_element(v.begin(), v.end()) > 1);  // a thread's thread_local lives across its tasks
  mp::Value<int> total(0);
  auto r = pool.starmap(bump, std::vector<std::tuple<mp::Value<int>, int>>(50, {total, 2}));
  CHECK(total.value() == 100);
}

TEST_CASE("ThreadPool: a ThreadPool inside a Pool task", "[thread_pool][pool]") {
  mp::Pool pool(1);
  CHECK(pool.apply(nested_thread_pool, 10) == 285);
  mp::ThreadPool tp(1);
  CHECK(tp.apply(nested_thread_pool, 4) == 14);
}
