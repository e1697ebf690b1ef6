// tests/mpi/test_mpi.cpp - mp::MpiPool under mpirun --oversubscribe -np 4.
//
// Every rank runs main(): ranks 1..3 serve inside the pool's constructor and
// exit there; rank 0 runs the Catch2 cases against that one pool (one
// MpiPool per run), then ends the pool with close() + join(), with
// terminate() when given --end-with-terminate, or with close() and a timed
// join(d) when given --end-with-timed-join, and checks what that did.
// CTest runs it through mpirun and checks mpirun's exit code.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <mp/mpi.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

mp::MpiPool* pool = nullptr;
constexpr unsigned local_processes = 2;
constexpr auto task_timeout = std::chrono::seconds(8);  // well above the 64 MiB task in a loaded Debug run

struct Unregistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int add(int a, int b) { return a + b; }
int square(int x) { return x * x; }
std::int64_t twice(std::int64_t x) { return 2 * x; }
void nothing(int) {}
int throw_out_of_range(int) { throw std::out_of_range("index 7 is out of range"); }
int throw_unregistered(int) { throw Unregistered("not a standard type"); }

/// The MPI rank of the process running the task: mpirun puts it in the
/// environment of each rank, and forked workers inherit it.
int rank_here(int) {
  const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
  return r != nullptr ? std::atoi(r) : -1;
}

int crash(int how) {
  if (how == 0) {
    std::signal(SIGSEGV, SIG_DFL);
    std::raise(SIGSEGV);
  } else if (how == 1) {
    std::signal(SIGABRT, SIG_DFL);
    std::abort();
  }
  ::_exit(3);
}

/// n bytes, byte i = i * 7 + 3 (mod 256): 256 of them, then doubled by copies
/// (a byte loop over 64 MiB is slow in a Debug build).
std::vector<std::uint8_t> big_result(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  const std::size_t first = std::min<std::size_t>(n, 256);
  for (std::size_t i = 0; i < first; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + 3);
  for (std::size_t done = first; done < n; done *= 2) std::memcpy(v.data() + done, v.data(), std::min(done, n - done));
  return v;
}

/// Writes `path` (the test's sign that the task runs), then sleeps long.
int announce_and_sleep(std::string path) {
  std::ofstream(path) << "running";
  std::this_thread::sleep_for(std::chrono::seconds(30));
  return 1;
}

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

int sleep_long(int) {
  std::this_thread::sleep_for(std::chrono::seconds(30));
  return 1;
}

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

/// Waits (up to 10 s) until the file exists.
bool wait_for_file(const std::string& path) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    if (std::ifstream(path).good()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace

TEST_CASE("MpiPool: size, pids and the ranks behind them", "[mpi]") {
  REQUIRE(pool->size() == 3 * local_processes);
  const auto pids = pool->pids();
  REQUIRE(pids.size() == pool->size());
  std::set<pid_t> distinct(pids.begin(), pids.end());
  CHECK(distinct.size() == 3);
  CHECK(distinct.count(::getpid()) == 0);
  CHECK(pool->backend().worker_rank(0) == 1);
  CHECK(pool->backend().worker_rank(pool->size() - 1) == 3);
}

TEST_CASE("MpiPool: apply, apply_async and then", "[mpi]") {
  CHECK(pool->apply(add, 1, 2) == 3);
  pool->apply(nothing, 5);
  auto r = pool->apply_async(square, 12);
  std::atomic<int> seen{0};
  r.then([&](const int& v) { seen = v; });
  CHECK(r.get() == 144);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (seen != 144 && std::chrono::steady_clock::now() < until) std::this_thread::yield();  // runs on the MPI thread
  CHECK(seen == 144);
  std::vector<mp::AsyncResult<int>> many;
  for (int i = 0; i < 1000; ++i) many.push_back(pool->apply_async(add, i, 1));
  for (int i = 0; i < 1000; ++i) REQUIRE(many[static_cast<std::size_t>(i)].get() == i + 1);
}

TEST_CASE("MpiPool: map, starmap, their async forms, imap, imap_unordered", "[mpi]") {
  const auto in = std::views::iota(0, 10'000);
  const auto squares = pool->map(square, in, 100);
  REQUIRE(squares.size() == 10'000);
  for (int i = 0; i < 10'000; ++i) REQUIRE(squares[static_cast<std::size_t>(i)] == i * i);
  CHECK(pool->map(square, in) == squares);
  CHECK(pool->map_async(square, in, 7).get() == squares);
  const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  CHECK(pool->starmap(add, pairs) == std::vector<int>{3, 7, 11});
  CHECK(pool->starmap_async(add, pairs, 1).get() == std::vector<int>{3, 7, 11});
  std::vector<int> ordered;
  for (int v : pool->imap(square, in, 50)) ordered.push_back(v);
  CHECK(ordered == squares);
  std::multiset<int> unordered;
  for (int v : pool->imap_unordered(square, in, 50)) unordered.insert(v);
  CHECK(unordered == std::multiset<int>(squares.begin(), squares.end()));
  CHECK(pool->map(square, std::vector<int>{}).empty());
}

TEST_CASE("MpiPool: mp::progress counts per result message and ends at the total", "[mpi]") {
  std::vector<std::size_t> seen;  // the calls never overlap
  auto cb = mp::progress([&](std::size_t done, std::size_t total) {
    if (total == 1000) seen.push_back(done);
  });
  CHECK(pool->map(square, std::views::iota(0, 1000), 10, cb).size() == 1000);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back() == 1000);
  CHECK(std::count(seen.begin(), seen.end(), std::size_t{1000}) == 1);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
}

TEST_CASE("MpiPool: exceptions keep their type across ranks", "[mpi]") {
  CHECK_THROWS_MATCHES(pool->apply(throw_out_of_range, 1), std::out_of_range,
                       Catch::Matchers::Message("index 7 is out of range"));
  try {
    pool->apply(throw_unregistered, 1);
    FAIL("no exception");
  } catch (const mp::RemoteError& e) {
    CHECK(std::string(e.what()) == "not a standard type");
    CHECK(e.type_name().find("Unregistered") != std::string::npos);
  }
  CHECK_THROWS_AS(pool->map(throw_out_of_range, std::views::iota(0, 100), 10), std::out_of_range);
}

TEST_CASE("MpiPool: a crashing task fails alone and the job goes on", "[mpi]") {
  for (int how = 0; how < 3; ++how) {
    try {
      pool->apply(crash, how);
      FAIL("no exception");
    } catch (const mp::WorkerLostError& e) {
      const std::string what = e.what();
      CHECK(e.pid() > 0);
      CHECK(what.find("MPI rank") != std::string::npos);
      CHECK(what.find(how == 0 ? "SEGV" : how == 1 ? "ABRT" : "3") != std::string::npos);
    }
    CHECK(pool->apply(add, how, 1) == how + 1);
  }
  CHECK(pool->map(square, std::views::iota(0, 1000), 10).size() == 1000);
}

TEST_CASE("MpiPool: a 64 MiB result is split into MPI messages, not truncated", "[mpi][slow]") {
  const std::size_t n = std::size_t{64} << 20;
  static_assert(std::size_t{64} << 20 > mp::detail::mpi_part_bytes);
  const auto v = pool->apply(big_result, n);
  REQUIRE(v.size() == n);
  bool same = true;
  for (std::size_t i = 0; i < n; i += 4093) same = same && v[i] == static_cast<std::uint8_t>(i * 7 + 3);
  CHECK(same);
  CHECK(v[n - 1] == static_cast<std::uint8_t>((n - 1) * 7 + 3));
  const std::vector<std::int64_t> big_args(std::size_t{3} << 20, 5);  // 24 MiB of task
  CHECK(pool->apply([](const std::vector<std::int64_t>& x) { return x.size(); }, big_args) == big_args.size());
}

TEST_CASE("MpiPool: imap over a lazy 10^7 range keeps rank 0's memory flat", "[mpi][slow]") {
  const std::size_t before = rss_bytes();
  std::int64_t sum = 0, count = 0;
  for (std::int64_t v : pool->imap(twice, std::views::iota(std::int64_t{0}, std::int64_t{10'000'000}), 20'000)) {
    sum += v;
    ++count;
  }
  CHECK(count == 10'000'000);
  CHECK(sum == std::int64_t{10'000'000} * 9'999'999);
  CHECK(rss_bytes() < before + (std::size_t{32} << 20));  // the input alone would be 80 MB
}

TEST_CASE("MpiPool: every worker rank runs tasks, rank 0 none", "[mpi]") {
  const auto ranks = pool->map(rank_here, std::views::iota(0, 3000), 1);
  const std::set<int> seen(ranks.begin(), ranks.end());
  CHECK(seen == std::set<int>{1, 2, 3});
}

TEST_CASE("MpiPool: task_timeout and cancel(true) reach the worker ranks", "[mpi][slow]") {
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(pool->apply(sleep_long, 0), mp::TaskTimeoutError);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  const std::string path = "/tmp/mp_test_mpi_cancel_" + std::to_string(::getpid());
  auto r = pool->apply_async(announce_and_sleep, path);
  REQUIRE(wait_for_file(path));
  std::remove(path.c_str());
  CHECK(r.cancel(true));
  CHECK_THROWS_AS(r.get(), mp::CancelledError);
  CHECK(pool->apply(add, 2, 2) == 4);
}

TEST_CASE("MpiPool: a second pool and factor are refused with a sentence", "[mpi]") {
  mp::PoolOptions bad;
  bad.factor = 2.0;
  CHECK_THROWS_AS(mp::MpiPool(bad), std::invalid_argument);
  CHECK_THROWS_AS(mp::MpiPool(), std::logic_error);
}

namespace {

/// close(), then join(d): false (nothing stopped, the task still runs)
/// while a task is out, true once it ended. Returns the failures.
int end_with_join_timeout(mp::MpiPool& p) {
  int failed = 0;
  auto slow = p.apply_async(sleep_ms, 1500);
  p.close();
  const auto t0 = std::chrono::steady_clock::now();
  if (p.join(std::chrono::milliseconds(100))) failed += 1;
  const auto waited = std::chrono::steady_clock::now() - t0;
  if (waited < std::chrono::milliseconds(100) || waited > std::chrono::milliseconds(1400)) failed += 1;
  if (slow.ready() || p.backend().running()) failed += 1;
  if (!p.join(std::chrono::seconds(60))) failed += 1;
  if (!slow.ready() || slow.get() != 1500) failed += 1;
  return failed;
}

}  // namespace

int main(int argc, char** argv) {
  bool end_with_terminate = false, end_with_timed_join = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--end-with-terminate") == 0) {
      end_with_terminate = true;
    } else if (std::strcmp(argv[i], "--end-with-timed-join") == 0) {
      end_with_timed_join = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  mp::PoolOptions o;
  o.processes = local_processes;
  o.task_timeout = task_timeout;
  mp::MpiPool the_pool(o);  // ranks 1..3 never return from here
  pool = &the_pool;
  int failed = Catch::Session().run(static_cast<int>(args.size()), args.data());
  if (end_with_terminate) {
    auto left = the_pool.apply_async(sleep_long, 0);
    the_pool.terminate();
    try {
      left.get();
      failed += 1;
    } catch (const mp::ClosedError&) {
    }
  } else if (end_with_timed_join) {
    failed += end_with_join_timeout(the_pool);
  } else {
    auto last = the_pool.apply_async(add, 20, 22);
    the_pool.close();
    the_pool.join();
    if (!last.ready() || last.get() != 42) failed += 1;
  }
  try {
    the_pool.apply(add, 1, 1);
    failed += 1;
  } catch (const std::logic_error&) {
  }
  if (failed != 0) std::fprintf(stderr, "test_mpi: %d failure(s)\n", failed);
  return failed == 0 ? 0 : 1;
}
