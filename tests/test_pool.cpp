// Tests of mp::Pool: every method on edge-sized inputs, results of many
// types, errors, shutdown, worker death, leaks (the options: test_pool_options).
#include <catch2/catch.hpp>

#include <mp/pool.hpp>
#include <mp/barrier.hpp>
#include <mp/condition.hpp>
#include <mp/event.hpp>
#include <mp/semaphore.hpp>
#include <mp/sharedctypes.hpp>
#include <mp/process.hpp>
#include <mp/queue.hpp>

#include "fork_helpers.hpp"
#include "test_access.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <chrono>
#include <csignal>
#include <map>
#include <numeric>
#include <ranges>
#include <set>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int identity(int x) { return x; }
void nothing(int) {}
void nothing2(int, int) {}
std::string repeat(std::string s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}
std::vector<std::map<std::string, std::vector<int>>> nested(int n) {
  return {{{"a", std::vector<int>(static_cast<std::size_t>(n), n)}}, {{"b", {1, 2}}}};
}
struct Point {
  double x = 0, y = 0;
  std::string label;
  template <class A>
  void serialize(A& ar) { ar(x, y, label); }
  bool operator==(const Point&) const = default;
};
Point make_point(int i) { return {i * 1.0, i * 2.0, "p" + std::to_string(i)}; }
std::vector<char> big(int mib) { return std::vector<char>(static_cast<std::size_t>(mib) << 20, 'x'); }

struct CustomError : std::exception {
  const char* what() const noexcept override { return "custom failure"; }
};
int throw_kind(int k) {
  switch (k) {
    case 0: throw std::runtime_error("rt");
    case 1: throw std::logic_error("lg");
    case 2: throw std::invalid_argument("ia");
    case 3: throw std::domain_error("dm");
    case 4: throw std::length_error("le");
    case 5: throw std::out_of_range("oor");
    case 6: throw std::range_error("re");
    case 7: throw std::overflow_error("of");
    case 8: throw std::underflow_error("uf");
    case 9: throw std::bad_alloc();
    case 10: throw CustomError();
    case 11: throw 42;
    default: return k;
  }
}
int fail_on(int x) {
  if (x == 7 || x == 90) throw std::runtime_error("bad item " + std::to_string(x));
  return x;
}
int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int suicide(int sig) {
  ::raise(sig);
  return 0;
}


int count_within(std::array<int, 5> row, int lo, int hi) {
  int c = 0;
  for (int v : row) c += (lo <= v && v <= hi);
  return c;
}

template <class Pool, class F>
void check_sizes(Pool& pool, F f) {
  // empty; one item; fewer than workers; chunksize 1; chunksize > input
  for (int n : {0, 1, static_cast<int>(pool.size()) - 1, 50}) {
    for (std::size_t cs : {std::size_t{0}, std::size_t{1}, std::size_t{1000}}) {
      std::vector<int> in(static_cast<std::size_t>(std::max(n, 0)));
      std::iota(in.begin(), in.end(), 0);
      f(in, cs);
    }
  }
}

}  // namespace

TEST_CASE("Pool(0) and Pool(-1) throw invalid_argument, size() is the count", "[pool]") {
  CHECK_THROWS_AS(mp::Pool(0), std::invalid_argument);
  CHECK_THROWS_AS(mp::Pool(-1), std::invalid_argument);
  mp::Pool p(3);
  CHECK(p.size() == 3);
  mp::PoolOptions o;
  o.factor = 1.0;
  mp::Pool q(o);
  CHECK(q.size() == std::max(1u, mp::cpu_count()));
  // the default is 1.5 workers per CPU, rounded half up (3 on 2 CPUs)
  CHECK(mp::PoolOptions{}.factor == 1.5);
  mp::Pool d;
  CHECK(d.size() == std::max(1u, (3 * mp::cpu_count() + 1) / 2));
  for (double bad : {0.0, -1.0, std::nan("")}) {
    mp::PoolOptions b;
    b.factor = bad;
    CHECK_THROWS_AS(mp::Pool(b), std::invalid_argument);
  }
}

TEST_CASE("apply and apply_async: values, void, lambdas, functors", "[pool]") {
  mp::Pool pool(2);
  CHECK(pool.apply(add, 2, 3) == 5);
  CHECK(pool.apply([](int a) { return a * 10; }, 4) == 40);
  const int k = 7;  // a lambda's captures cannot be sent: the value goes as an argument
  CHECK(pool.apply([](int a, int plus) { return a + plus; }, 1, k) == 8);
  struct Mul {
    int m;
    int operator()(int a) const { return a * m; }
  };
  CHECK(pool.apply(Mul{6}, 7) == 42);
  pool.apply(nothing, 1);
  auto r = pool.apply_async(nothing, 2);
  r.get();
  CHECK(r.successful());
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 100; ++i) rs.push_back(pool.apply_async(square, i));
  for (int i = 0; i < 100; ++i) CHECK(rs[static_cast<std::size_t>(i)].get() == i * i);
}

TEST_CASE("results: strings, nested containers, user structs, 64 MiB", "[pool]") {
  mp::Pool pool(2);
  CHECK(pool.apply(repeat, std::string("ab"), 3) == "ababab");
  CHECK(pool.apply(nested, 3) == nested(3));
  CHECK(pool.apply(make_point, 5) == make_point(5));
  auto pts = pool.map(make_point, std::views::iota(0, 100));
  REQUIRE(pts.size() == 100);
  CHECK(pts[42] == make_point(42));
  auto strs = pool.starmap(repeat, std::vector<std::pair<std::string, int>>{{"x", 2}, {"yz", 1}});
  CHECK(strs == std::vector<std::string>{"xx", "yz"});
  auto b = pool.apply(big, 64);
  CHECK(b.size() == (64u << 20));
  CHECK(std::count(b.begin(), b.end(), 'x') == static_cast<long>(b.size()));
  // and a big argument through the task channel
  CHECK(pool.apply([](std::vector<char> v) { return v.size(); }, std::vector<char>(20u << 20, 'y')) == (20u << 20));
}

namespace {
struct Item {  // an aggregate: argument and result without serialize
  std::string name;
  int n = 0;
  std::vector<double> xs;
  bool operator==(const Item&) const = default;
};
Item grow(Item it) {
  it.name += "!";
  it.xs.push_back(it.n);
  return it;
}
}  // namespace

TEST_CASE("aggregates travel as arguments and results", "[pool]") {
  mp::Pool pool(2);
  const Item in{"a", 3, {0.5}};
  CHECK(pool.apply(grow, in) == Item{"a!", 3, {0.5, 3.0}});
  const auto out = pool.map(grow, std::vector<Item>{in, Item{"b", 1, {}}});
  CHECK(out == std::vector<Item>{Item{"a!", 3, {0.5, 3.0}}, Item{"b!", 1, {1.0}}});
}

TEST_CASE("map, starmap, imap, imap_unordered on edge sizes and chunksizes", "[pool]") {
  mp::Pool pool(3);
  check_sizes(pool, [&](const std::vector<int>& in, std::size_t cs) {
    std::vector<int> want;
    for (int x : in) want.push_back(x * x);
    CHECK(pool.map(square, in, cs) == want);
    CHECK(pool.map_async(square, in, cs).get() == want);
    std::vector<std::tuple<int, int>> pairs;
    for (int x : in) pairs.emplace_back(x, x);
    std::vector<int> sums;
    for (int x : in) sums.push_back(2 * x);
    CHECK(pool.starmap(add, pairs, cs) == sums);
    CHECK(pool.starmap_async(add, pairs, cs).get() == sums);
    std::vector<int> got;
    for (int v : pool.imap(square, in, cs)) got.push_back(v);
    CHECK(got == want);
    got.clear();
    for (int v : pool.imap_unordered(square, in, cs)) got.push_back(v);
    std::sort(got.begin(), got.end());
    CHECK(got == want);
  });
}

TEST_CASE("map over unsized ranges, bool results, array rows", "[pool]") {
  mp::Pool pool(2);
  auto evens = std::views::iota(0, 1000) | std::views::filter([](int x) { return x % 2 == 0; });
  auto r = pool.map(identity, evens);
  REQUIRE(r.size() == 500);
  CHECK(r[499] == 998);
  auto odd = pool.map([](int x) { return x % 2 == 1; }, std::views::iota(0, 10));
  CHECK(odd == std::vector<bool>{false, true, false, true, false, true, false, true, false, true});
  std::vector<std::tuple<std::array<int, 5>, int, int>> rows{{{1, 4, 5, 9, 8}, 4, 8}, {{0, 0, 0, 0, 4}, 4, 8}};
  CHECK(pool.starmap(count_within, rows) == std::vector<int>{3, 1});
}

TEST_CASE("100k small tasks through apply_async and map", "[pool]") {
  mp::Pool pool(2);
  std::vector<mp::AsyncResult<int>> rs;
  rs.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) rs.push_back(pool.apply_async(identity, i));
  long long sum = 0;
  for (auto& r : rs) sum += r.get();
  CHECK(sum == 100'000LL * 99'999 / 2);
  auto m = pool.map(identity, std::views::iota(0, 100'000), 1);
  CHECK(std::accumulate(m.begin(), m.end(), 0LL) == 100'000LL * 99'999 / 2);
}

TEST_CASE("standard exceptions keep type and what(), others become RemoteError", "[pool][errors]") {
  mp::Pool pool(2);
  CHECK_THROWS_MATCHES(pool.apply(throw_kind, 0), std::runtime_error, Catch::Message("rt"));
  CHECK_THROWS_AS(pool.apply(throw_kind, 1), std::logic_error);
  CHECK_THROWS_MATCHES(pool.apply(throw_kind, 2), std::invalid_argument, Catch::Message("ia"));
  CHECK_THROWS_AS(pool.apply(throw_kind, 3), std::domain_error);
  CHECK_THROWS_AS(pool.apply(throw_kind, 4), std::length_error);
  CHECK_THROWS_MATCHES(pool.apply(throw_kind, 5), std::out_of_range, Catch::Message("oor"));
  CHECK_THROWS_AS(pool.apply(throw_kind, 6), std::range_error);
  CHECK_THROWS_AS(pool.apply(throw_kind, 7), std::overflow_error);
  CHECK_THROWS_AS(pool.apply(throw_kind, 8), std::underflow_error);
  CHECK_THROWS_AS(pool.apply(throw_kind, 9), std::bad_alloc);
  try {
    pool.apply(throw_kind, 10);
    FAIL("no throw");
  } catch (const mp::RemoteError& e) {
    CHECK(std::string(e.what()) == "custom failure");
    CHECK(e.type_name().find("CustomError") != std::string::npos);
  }
  try {
    pool.apply(throw_kind, 11);
    FAIL("no throw");
  } catch (const mp::RemoteError& e) {
    CHECK(e.type_name() == "int");
  }
  // the exact type, not merely a base: invalid_argument is not a plain logic_error
  try {
    pool.apply(throw_kind, 1);
  } catch (const std::invalid_argument&) {
    FAIL("logic_error came back as invalid_argument");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == "lg");
  }
  CHECK(pool.apply(throw_kind, 12) == 12);  // still usable
}

TEST_CASE("map fails with the first error in input order, the pool stays usable", "[pool][errors]") {
  mp::Pool pool(2);
  for (std::size_t cs : {std::size_t{1}, std::size_t{5}, std::size_t{0}}) {
    CHECK_THROWS_MATCHES(pool.map(fail_on, std::views::iota(0, 100), cs), std::runtime_error,
                         Catch::Message("bad item 7"));
  }
  CHECK(pool.starmap(add, std::vector<std::pair<int, int>>{}).empty());
  CHECK(pool.map(square, std::vector<int>{3}) == std::vector<int>{9});
  std::vector<int> got;
  bool threw = false;
  try {
    for (int v : pool.imap(fail_on, std::views::iota(0, 20), 1)) got.push_back(v);
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()) == "bad item 7";
  }
  CHECK(threw);
  CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("an input range that throws: the same exception, the pool usable", "[pool][errors]") {
  mp::Pool pool(2);
  auto throwing = std::views::iota(0, 100) | std::views::transform([](int x) {
                    if (x == 50) throw std::domain_error("input broke");
                    return x;
                  });
  CHECK_THROWS_MATCHES(pool.map(identity, throwing), std::domain_error, Catch::Message("input broke"));
  auto unsized = throwing | std::views::filter([](int) { return true; });
  CHECK_THROWS_MATCHES(pool.map(identity, unsized), std::domain_error, Catch::Message("input broke"));
  CHECK_THROWS_MATCHES(
      [&] {
        for (int v : pool.imap(identity, throwing, 4)) (void)v;
      }(),
      std::domain_error, Catch::Message("input broke"));
  CHECK(pool.map(square, std::views::iota(0, 10))[9] == 81);
}

TEST_CASE("imap whose input throws yields every earlier item's result, then rethrows", "[pool][imap][errors]") {
  mp::Pool pool(2);
  auto throwing = std::views::iota(0, 100) | std::views::transform([](int x) {
                    if (x == 50) throw std::domain_error("input broke");
                    return x;
                  });
  for (int cs : {1, 4, 7, 64}) {
    std::vector<int> got;
    CHECK_THROWS_MATCHES(
        [&] {
          for (int v : pool.imap(square, throwing, cs)) got.push_back(v);
        }(),
        std::domain_error, Catch::Message("input broke"));
    std::vector<int> want;
    for (int x = 0; x < 50; ++x) want.push_back(x * x);
    CHECK(got == want);
    got.clear();
    CHECK_THROWS_AS(
        [&] {
          for (int v : pool.imap_unordered(square, throwing, cs)) got.push_back(v);
        }(),
        std::domain_error);
    std::sort(got.begin(), got.end());
    CHECK(got == want);
  }
  std::vector<int> got;  // the first item throws: begin() rethrows, nothing before it
  auto at_once = std::views::iota(0, 3) | std::views::transform([](int) -> int { throw std::domain_error("first"); });
  CHECK_THROWS_MATCHES(
      [&] {
        for (int v : pool.imap(square, at_once)) got.push_back(v);
      }(),
      std::domain_error, Catch::Message("first"));
  CHECK(got.empty());
}

TEST_CASE("AsyncResult: get(timeout), wait(timeout), ready, successful, then", "[pool][async]") {
  mp::Pool pool(2);
  auto slow = pool.apply_async(sleepy, 300);
  CHECK_FALSE(slow.ready());
  CHECK_THROWS_AS(slow.successful(), std::logic_error);
  CHECK_THROWS_AS(slow.get(10ms), mp::TimeoutError);
  CHECK_FALSE(slow.wait(1ms));
  slow.wait();
  CHECK(slow.ready());
  CHECK(slow.successful());
  CHECK(slow.get(1s) == 300);

  std::atomic<int> ok{0}, err{0}, on_waiter{0};
  std::atomic<bool> in_then{false};
  const auto me = std::this_thread::get_id();
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 20; ++i) {
    auto r = pool.apply_async(fail_on, i);
    in_then = true;  // a result already there runs its callback here, at once
    r.then([&](const int& v) {
      ok += v >= 0;
      on_waiter += std::this_thread::get_id() == me && !in_then;  // waiters read results, not callbacks
    }, [&](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::runtime_error&) {
        ++err;
      }
    });
    in_then = false;
    rs.push_back(r);
  }
  for (auto& r : rs) r.wait();  // callbacks run before the results are ready: each once
  CHECK(ok + err == 20);
  CHECK(ok == 19);
  CHECK(err == 1);
  CHECK(on_waiter == 0);
  int now = 0;
  rs[3].then([&](const int& v) { now = v; });  // already ready: runs here, at once
  CHECK(now == 3);
  auto m = pool.map_async(square, std::vector<int>{1, 2, 3});
  std::atomic<int> total{0}, runs{0};
  m.then([&](const std::vector<int>& v) {
    total = v[0] + v[1] + v[2];
    ++runs;
  });
  m.wait();
  CHECK(runs == 1);
  CHECK(total == 14);
  CHECK(pool.apply(square, 2) == 4);  // the result thread went on: no second run came meanwhile
  CHECK(runs == 1);
}

TEST_CASE("submitting to a closed or terminated pool throws logic_error", "[pool]") {
  mp::Pool pool(2);
  pool.close();
  CHECK_THROWS_AS(pool.apply(square, 1), std::logic_error);
  CHECK_THROWS_AS(pool.map(square, std::vector<int>{}), std::logic_error);
  CHECK_THROWS_AS(pool.imap(square, std::vector<int>{1}), std::logic_error);
  pool.join();
  mp::Pool p2(2);
  CHECK_THROWS_AS(p2.join(), std::logic_error);  // join before close, as Python
  p2.terminate();
  CHECK_THROWS_AS(p2.apply_async(square, 1), std::logic_error);
}

TEST_CASE("close + join with work pending runs it all", "[pool]") {
  mp::Pool pool(2);
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 2000; ++i) rs.push_back(pool.apply_async(identity, i));
  auto slow = pool.apply_async(sleepy, 100);
  pool.close();
  pool.join();
  CHECK(slow.ready());
  for (int i = 0; i < 2000; ++i) CHECK(rs[static_cast<std::size_t>(i)].get() == i);
}

TEST_CASE("terminate with thousands queued returns promptly, futures fail", "[pool]") {
  mp::Pool pool(2);
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 5000; ++i) rs.push_back(pool.apply_async(sleepy, 5));
  auto m = pool.map_async(sleepy, std::vector<int>(100, 5));
  pool.terminate();
  int failed = 0;
  for (auto& r : rs) {
    CHECK(r.wait(5s));
    if (!r.successful()) ++failed;
  }
  CHECK(failed > 4000);
  CHECK_THROWS_AS(m.get(5s), mp::ClosedError);
  CHECK_THROWS_AS(rs.back().get(), mp::ClosedError);
}

TEST_CASE("imap is lazy, leaving early neither hangs nor reads the whole input", "[pool][imap]") {
  mp::Pool pool(2);
  std::atomic<long> read{0};
  auto counted = std::views::iota(0, 100'000'000) | std::views::transform([&](int x) {
                   ++read;
                   return x;
                 });
  long seen = 0;
  for (int v : pool.imap(identity, counted)) {
    CHECK(v == seen);
    if (++seen == 200'000) break;
  }
  CHECK(read < 200'000 + 8 * 4096 + 4096);
  seen = 0;
  for (int v : pool.imap_unordered(identity, counted, 100)) {
    (void)v;
    if (++seen == 1000) break;
  }
  CHECK(pool.apply(square, 3) == 9);
}

// Set by the parent once it holds imap's first result; later items wait for it.
mp::Event* first_result_seen = nullptr;

/// Item 0 takes 60 ms; every other item waits (up to 20 s) for the parent to
/// hold item 0's result, and says whether it saw that.
bool first_then_wait(int i) {
  if (i == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    return true;
  }
  return first_result_seen->wait(std::chrono::seconds(20));
}

TEST_CASE("imap streams: the first result arrives before the second item ends", "[pool][imap]") {
  mp::Event seen;  // before the pool: its workers inherit it
  first_result_seen = &seen;
  mp::Pool pool(1);
  std::vector<int> in(6);
  std::iota(in.begin(), in.end(), 0);
  std::size_t n = 0;
  for (bool ok : pool.imap(first_then_wait, in)) {
    CHECK(ok);  // false: item 0 came back only with a later item, after that one's wait ran out
    seen.set();
    ++n;
  }
  CHECK(n == in.size());
}

TEST_CASE("imap's default chunks start at one item and grow on tiny tasks", "[pool][imap]") {
  mp::Pool pool(2);
  auto r = pool.imap(identity, std::views::iota(0, 1'000'000));
  auto it = r.begin();
  CHECK(*it == 0);
  CHECK(mp::detail::TestAccess::imap_next_chunk(r) <= 2);
  long long sum = 0;
  for (; it != r.end(); ++it) sum += *it;
  CHECK(sum == 1'000'000LL * 999'999 / 2);
  CHECK(mp::detail::TestAccess::imap_next_chunk(r) >= 256);
  auto fixed = pool.imap(identity, std::views::iota(0, 1000), 7);
  CHECK(*fixed.begin() == 0);
  CHECK(mp::detail::TestAccess::imap_next_chunk(fixed) == 7);
}

TEST_CASE("imap's default chunks grow by the workers' time per item, whatever the time between chunks",
          "[pool][imap]") {
  // The consumer spends at least 1 ms on each result, so at least 1 ms per
  // item passes between two chunks: time per item outside the workers, as a
  // slow parent (under valgrind, or with many workers per parent) spends per
  // chunk. The items take microseconds in a worker, so chunks double anyway.
  mp::Pool pool(2);
  auto r = pool.imap(identity, std::views::iota(0, 100'000));
  std::size_t n = 0;
  for (auto it = r.begin(); it != r.end() && mp::detail::TestAccess::imap_next_chunk(r) < 64 && n < 1000; ++it) {
    CHECK(*it == static_cast<int>(n++));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(mp::detail::TestAccess::imap_next_chunk(r) >= 64);
  CHECK(n < 100);
}

std::vector<double> scaled(std::vector<double> row) {
  for (double& x : row) x *= 2;
  return row;
}

TEST_CASE("map's default chunks stay a small part of the channel, whatever the item size", "[pool][map]") {
  using mp::detail::default_chunk_bytes;
  using mp::detail::default_map_chunksize;
  CHECK(default_map_chunksize(10'000'000, sizeof(int), 2) * sizeof(int) <= default_chunk_bytes);
  CHECK(default_map_chunksize(20'000, 808, 3) * 808 <= default_chunk_bytes);
  CHECK(default_map_chunksize(20'000, 808, 3) >= 100);
  CHECK(default_map_chunksize(100, 4, 2) == 13);              // few small items: about 4 chunks per worker
  CHECK(default_map_chunksize(10, 1u << 20, 2) == 1);         // an item above the budget goes alone
  const std::vector<int> ints(1000, 3);
  CHECK(mp::detail::mean_item_bytes<int>(ints.begin(), ints.size()) == sizeof(int));
  const std::vector<std::vector<double>> rows(3000, std::vector<double>(100, 1.5));
  CHECK(mp::detail::mean_item_bytes<std::vector<double>>(rows.begin(), rows.size()) ==
        mp::detail::encoded_size(rows[0]));
  mp::Pool pool(2);
  const auto out = pool.map(scaled, rows);
  REQUIRE(out.size() == rows.size());
  CHECK(std::all_of(out.begin(), out.end(), [](const auto& r) { return r == std::vector<double>(100, 3.0); }));
}

long sum_row(const std::vector<int>& row) { return std::accumulate(row.begin(), row.end(), 0L); }

std::vector<int> reversed_row(std::vector<int> row) {
  std::reverse(row.begin(), row.end());
  return row;
}

TEST_CASE("vector rows of changing lengths decode right in a worker that reuses their storage", "[pool][map]") {
  std::vector<std::vector<int>> rows;
  for (int i = 0; i < 3000; ++i) {
    const int len = (i * 37) % 11;  // long, short and empty rows in turn
    std::vector<int> r(static_cast<std::size_t>(len));
    std::iota(r.begin(), r.end(), i);
    rows.push_back(std::move(r));
  }
  mp::Pool pool(2);
  for (std::size_t cs : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
    const auto sums = pool.map(sum_row, rows, cs);
    const auto revs = pool.map(reversed_row, rows, cs);
    REQUIRE(sums.size() == rows.size());
    REQUIRE(revs.size() == rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      CHECK(sums[i] == sum_row(rows[i]));
      CHECK(revs[i] == reversed_row(rows[i]));
    }
  }
}

TEST_CASE("imap over 10^7 items keeps memory flat", "[pool][imap]") {
  mp::Pool pool(2);
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  long long sum = 0;
  for (int v : pool.imap(identity, std::views::iota(0, 10'000'000))) sum += v;
  CHECK(sum == 10'000'000LL * 9'999'999 / 2);
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
#if defined(__SANITIZE_ADDRESS__)
  // ASan's quarantine keeps up to 256 MiB of freed chunks mapped: allow it.
  CHECK(after.ru_maxrss - before.ru_maxrss < (256 + 64) * 1024);
#else
  CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024);  // KiB: far below the 40 MB a list would take
#endif
}

TEST_CASE("a worker killed mid-task fails only that task with WorkerLostError", "[pool][robust]") {
  mp::Pool pool(2);
  std::vector<mp::AsyncResult<int>> before;
  for (int i = 0; i < 10; ++i) before.push_back(pool.apply_async(sleepy, 20));
  auto victim = pool.apply_async(suicide, SIGKILL);
  std::vector<mp::AsyncResult<int>> after;
  for (int i = 0; i < 10; ++i) after.push_back(pool.apply_async(sleepy, 20));
  try {
    victim.get(10s);
    FAIL("no error");
  } catch (const mp::WorkerLostError& e) {
    CHECK(std::string(e.what()).find("SIGKILL") != std::string::npos);
    CHECK(e.pid() > 0);
  }
  for (auto& r : before) CHECK(r.get(10s) == 20);
  for (auto& r : after) CHECK(r.get(10s) == 20);
  try {
    pool.apply([](int code) { ::_exit(code); return 0; }, 3);
    FAIL("no error");
  } catch (const mp::WorkerLostError& e) {
    CHECK(std::string(e.what()).find("exited with status 3") != std::string::npos);
  }
  CHECK(pool.map(square, std::views::iota(0, 100))[10] == 100);  // replaced, full strength
}

TEST_CASE("one pool reused for 1000 consecutive maps", "[pool]") {
  mp::Pool pool(2);
  std::vector<int> in(64);
  std::iota(in.begin(), in.end(), 0);
  int wrong = 0;
  for (int i = 0; i < 1000; ++i) wrong += pool.map(identity, in) != in;
  CHECK(wrong == 0);
}

TEST_CASE("50 pools in sequence leak no process, fd or /dev/shm entry", "[pool][leak]") {
  const int fds = mp_test::open_fd_count();
  const std::size_t shm = mp_test::dev_shm_names().size();
  const std::size_t kids = mp_test::children_of(::getpid()).size();
  for (int i = 0; i < 50; ++i) {
    mp::Pool pool(2);
    CHECK(pool.apply(square, i) == i * i);
    if (i % 2 == 1) pool.terminate();
  }
  CHECK(mp_test::open_fd_count() == fds);
  CHECK(mp_test::dev_shm_names().size() == shm);
  CHECK(mp_test::children_of(::getpid()).size() == kids);
}

TEST_CASE("a pool built in a thread that has exited keeps its workers", "[pool][robust]") {
  std::unique_ptr<mp::Pool> pool;
  pid_t tid = 0;
  std::thread([&] {
    tid = ::gettid();
    pool = std::make_unique<mp::Pool>(2);
    CHECK(pool->apply(square, 2) == 4);
  }).join();
  // A PR_SET_PDEATHSIG tied to that thread is sent before the kernel drops
  // the thread from /proc: wait until it is gone.
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (::access(task.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(::access(task.c_str(), F_OK) != 0);
  CHECK(pool->apply_async(square, 3).get(10s) == 9);
  auto r = pool->map_async(square, std::views::iota(0, 100), 1);
  CHECK(r.get(10s)[99] == 99 * 99);
  std::set<int> pids;
  for (int i = 0; i < 2; ++i) pids.insert(pool->backend().worker_pid(static_cast<unsigned>(i)));
  CHECK(pids.size() == 2);
  CHECK(pids.count(0) == 0);
}

namespace {

/// Whether pid no longer runs (gone, or a zombie nobody reaped yet).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return true;
  char state = '?';
  const int got = std::fscanf(f, "%*d %*s %c", &state);
  std::fclose(f);
  return got == 1 && (state == 'Z' || state == 'X');
}

}  // namespace

TEST_CASE("SIGKILL of the process that owns a pool ends its spawners and workers", "[pool][robust]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t owner = mp_test::fork_child([&] {
    ::close(fds[0]);
    mp::Pool pool(2);
    pid_t pids[4] = {pool.backend().spawner_pid(), 0, 0, pool.backend().standby_pid()};
    for (int tries = 0; tries < 5000 && (pids[1] == 0 || pids[2] == 0); ++tries) {
      pids[1] = pool.backend().worker_pid(0);
      pids[2] = pool.backend().worker_pid(1);
      std::this_thread::sleep_for(1ms);
    }
    if (pool.apply(square, 4) != 16) return 3;
    if (::write(fds[1], pids, sizeof pids) != static_cast<ssize_t>(sizeof pids)) return 4;
    for (;;) ::pause();
  });
  ::close(fds[1]);
  pid_t pids[4] = {0, 0, 0, 0};
  const ssize_t got = ::read(fds[0], pids, sizeof pids);
  ::close(fds[0]);
  REQUIRE(got == static_cast<ssize_t>(sizeof pids));
  for (pid_t p : pids) REQUIRE(p > 0);
  for (pid_t p : pids) CHECK_FALSE(process_gone(p));
  ::kill(owner, SIGKILL);
  CHECK(mp_test::killed_by(mp_test::wait_child(owner), SIGKILL));
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  bool all_gone = false;
  while (!all_gone && std::chrono::steady_clock::now() < deadline) {
    all_gone = std::all_of(std::begin(pids), std::end(pids), process_gone);
    if (!all_gone) std::this_thread::sleep_for(5ms);
  }
  CHECK(all_gone);
  for (pid_t p : pids) CHECK(process_gone(p));
}

// ---- void map, shared objects as task arguments ----------------------------

namespace {

// Adds x to the shared total; items 7 and 13 throw (when `fail` is set).
void add_to(mp::Value<long> total, bool fail, int x) {
  if (fail && (x == 7 || x == 13)) throw std::runtime_error("item " + std::to_string(x));
  std::lock_guard g(total.get_lock());
  total.value() += x;
}
void add_pair(mp::Value<long> total, int a, int b) { add_to(total, false, a * b); }
int fill_row(mp::Array<int> out, std::size_t i) { return out[i] = static_cast<int>(i) * 3; }
void touch_primitives(mp::Event e, mp::Semaphore s, mp::Lock l, mp::Condition c, mp::RLock r, mp::Barrier b) {
  { std::lock_guard g(l); }
  { std::lock_guard g(c); }
  { std::lock_guard g(r); }
  b.wait();  // a party of one
  s.release();
  e.set();
}
long read_value(mp::Value<long> v) { return v.load(); }

}  // namespace

TEST_CASE("void map, starmap and map_async run every item", "[pool][void]") {
  mp::Value<long> total(0);  // before the pool: its workers inherit it
  mp::Pool pool(2);
  static_assert(std::is_void_v<decltype(pool.map(mp::partial(add_to, total, false), std::vector<int>{}))>);
  pool.map(mp::partial(add_to, total, false), std::views::iota(1, 101));
  CHECK(total.load() == 5050);
  pool.starmap(mp::partial(add_pair, total), std::vector<std::pair<int, int>>{{2, 3}, {4, 5}});
  CHECK(total.load() == 5050 + 6 + 20);
  mp::AsyncResult<void> r = pool.map_async(mp::partial(add_to, total, false), std::vector<int>{1, 2, 3});
  r.get();
  CHECK(total.load() == 5082);
  mp::AsyncResult<void> s = pool.starmap_async(mp::partial(add_pair, total), std::vector<std::pair<int, int>>{{1, 1}});
  s.get();
  CHECK(total.load() == 5083);
}

TEST_CASE("void map rethrows the first error in input order after every chunk ran", "[pool][void]") {
  mp::Value<long> total(0);  // before the pool: its workers inherit it
  mp::Pool pool(2);
  CHECK_THROWS_WITH(pool.map(mp::partial(add_to, total, true), std::views::iota(1, 21), 1), "item 7");
  CHECK(total.load() == 210 - 7 - 13);  // every other item ran, each in its own chunk
  auto r = pool.map_async(mp::partial(add_to, total, true), std::views::iota(13, 14));
  CHECK_THROWS_WITH(r.get(), "item 13");
}

TEST_CASE("a Value and an Array passed as arguments are the parent's objects", "[pool][shared]") {
  mp::Value<long> total(0);
  mp::Array<int> rows(50);
  mp::Pool pool(2);
  pool.apply(add_to, total, false, 5);
  CHECK(total.load() == 5);
  CHECK(pool.apply(read_value, total) == 5);
  auto got = pool.map(mp::partial(fill_row, rows), std::views::iota(std::size_t{0}, rows.size()), 7);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i] == static_cast<int>(i) * 3);
    CHECK(got[i] == rows[i]);
  }
}

TEST_CASE("every primitive can be passed to a task", "[pool][shared]") {
  mp::Event e;
  mp::Semaphore s(0);
  mp::Lock l;
  mp::Condition c;
  mp::RLock r;
  mp::Barrier b(1);
  mp::Pool pool(2);
  pool.apply(touch_primitives, e, s, l, c, r, b);
  CHECK(e.is_set());
  CHECK(s.get_value() == 1);
}

TEST_CASE("a shared object made after the pool throws logic_error in the worker", "[pool][shared]") {
  mp::Pool pool(2);
  CHECK(pool.apply(square, 2) == 4);  // the workers exist
  mp::Value<long> late(1);
  CHECK_THROWS_AS(pool.apply(read_value, late), std::logic_error);
  CHECK_THROWS_WITH(pool.apply(read_value, late), Catch::Matchers::Contains("created after this process was forked"));
  mp::Array<int> late_rows(4);
  CHECK_THROWS_AS(pool.map(mp::partial(fill_row, late_rows), std::vector<std::size_t>{0, 1}), std::logic_error);
  CHECK(late_rows[0] == 0);
  CHECK(pool.apply(square, 3) == 9);  // the pool is unharmed
}

// Nested pools: a task is an ordinary forked process, so it may build its own
// Pool (whose spawner and workers are its children) or start an mp::Process.
namespace {

int inner_pool_sum_of_squares(int n) {
  mp::Pool inner(2);
  std::vector<int> xs(static_cast<std::size_t>(n));
  std::iota(xs.begin(), xs.end(), 1);
  const std::vector<int> squares = inner.map(square, xs);
  return std::accumulate(squares.begin(), squares.end(), 0) + inner.apply(identity, 1000);
}

int via_child_process(int n) {
  mp::Queue<int> q;  // made in the task, before the child: the child shares it
  mp::Process child([&q, n] { q.put(n * 10); });
  child.start();
  const int got = q.get();
  child.join();
  return child.exitcode() == 0 ? got : -1;
}

void block_forever(int) {
  for (;;) ::pause();
}

/// Builds an inner pool, writes (own pid, inner spawner, inner workers) to
/// fd, then blocks in the inner pool until killed.
int report_inner_pool_then_block(int fd) {
  mp::Pool inner(2);
  pid_t pids[4] = {::getpid(), inner.backend().spawner_pid(), 0, 0};
  while (pids[2] == 0 || pids[3] == 0) {
    pids[2] = inner.backend().worker_pid(0);
    pids[3] = inner.backend().worker_pid(1);
    std::this_thread::sleep_for(1ms);
  }
  if (::write(fd, pids, sizeof pids) != static_cast<ssize_t>(sizeof pids)) return -1;
  inner.apply(block_forever, 0);
  return 0;
}

}  // namespace

TEST_CASE("nested: a task may build its own Pool and start an mp::Process", "[pool][nested]") {
  mp::Pool outer(2);
  const std::vector<int> sums = outer.map(inner_pool_sum_of_squares, std::vector<int>{1, 2, 3, 4, 5}, 1);
  CHECK(sums == std::vector<int>{1001, 1005, 1014, 1030, 1055});
  CHECK(outer.apply(inner_pool_sum_of_squares, 10) == 1385);
  CHECK(outer.map(via_child_process, std::vector<int>{1, 2, 3}, 1) == std::vector<int>{10, 20, 30});
}

TEST_CASE("nested: killing the worker that runs an inner pool ends that pool's spawner and workers",
          "[pool][nested]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);  // before the outer pool, so its workers inherit it
  mp::Pool outer(1);
  auto running = outer.apply_async(report_inner_pool_then_block, fds[1]);
  pid_t pids[4] = {0, 0, 0, 0};
  const ssize_t got = ::read(fds[0], pids, sizeof pids);
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(got == static_cast<ssize_t>(sizeof pids));
  for (pid_t p : pids) REQUIRE(p > 0);
  for (pid_t p : pids) CHECK_FALSE(process_gone(p));
  REQUIRE(running.cancel(true));  // kills the outer worker, pids[0]
  CHECK_THROWS_AS(running.get(10s), mp::CancelledError);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool all_gone = false;
  while (!all_gone && std::chrono::steady_clock::now() < deadline) {
    all_gone = std::all_of(std::begin(pids), std::end(pids), process_gone);
    if (!all_gone) std::this_thread::sleep_for(5ms);
  }
  for (pid_t p : pids) CHECK(process_gone(p));
  CHECK(outer.apply(square, 7) == 49);  // the outer pool replaced its worker
}

namespace {

mp::Pool* g_parent_pool = nullptr;  // set before that pool forks, so its workers hold it too
int submit_to_parent_pool(int x) { return g_parent_pool->apply(square, x); }

}  // namespace

TEST_CASE("nested: a task or a child process that submits to its parent's pool gets logic_error", "[pool][nested]") {
  alignas(mp::Pool) static unsigned char storage[sizeof(mp::Pool)];
  g_parent_pool = reinterpret_cast<mp::Pool*>(storage);
  mp::Pool& pool = *::new (storage) mp::Pool(2);
  CHECK_THROWS_AS(pool.apply(submit_to_parent_pool, 3), std::logic_error);
  CHECK_THROWS_WITH(pool.apply(submit_to_parent_pool, 3), Catch::Matchers::Contains("cannot submit to it"));
  mp::Process child([&pool] {
    try {
      (void)pool.map(square, std::vector<int>{1, 2});
    } catch (const std::logic_error& e) {
      std::_Exit(std::string(e.what()).find("make a Pool inside the task") != std::string::npos ? 7 : 3);
    }
    std::_Exit(1);
  });
  child.start();
  child.join();
  CHECK(child.exitcode() == 7);
  CHECK(pool.apply(square, 4) == 16);  // the pool is unharmed
  std::destroy_at(&pool);
  g_parent_pool = nullptr;
}

namespace {
int to_int(std::string s) { return std::stoi(s); }
std::string tag(std::string s, int n, char c) { return s + std::to_string(n) + c; }
}  // namespace

// CPython's _TestPool.test_map_async_callbacks: results collected in a
// callback are there once wait() returns, every time.
TEST_CASE("map_async callbacks have run when wait() returns", "[pool][async][callbacks]") {
  mp::Pool pool(2);
  for (int round = 0; round < 200; ++round) {
    std::mutex mu;
    std::vector<std::vector<int>> values;
    std::vector<std::exception_ptr> errors;
    auto append = [&](const std::vector<int>& v) {
      std::lock_guard lock(mu);
      values.push_back(v);
    };
    auto append_error = [&](std::exception_ptr e) {
      std::lock_guard lock(mu);
      errors.push_back(e);
    };
    pool.map_async(to_int, std::vector<std::string>{"1"}).then(append, append_error).wait();
    REQUIRE(values.size() == 1);
    CHECK(values[0] == std::vector<int>{1});
    pool.map_async(to_int, std::vector<std::string>{"a"}).then(append, append_error).wait();
    REQUIRE(errors.size() == 1);
    CHECK_THROWS_AS(std::rethrow_exception(errors[0]), std::invalid_argument);
  }
}

TEST_CASE("istarmap and istarmap_unordered: the lazy starmap", "[pool][imap]") {
  mp::Pool pool(3);
  check_sizes(pool, [&](const std::vector<int>& in, std::size_t cs) {
    std::vector<std::tuple<int, int>> pairs;
    std::vector<int> sums;
    for (int x : in) {
      pairs.emplace_back(x, 1);
      sums.push_back(x + 1);
    }
    std::vector<int> got;
    for (int v : pool.istarmap(add, pairs, cs)) got.push_back(v);
    CHECK(got == sums);
    got.clear();
    for (int v : pool.istarmap_unordered(add, pairs, cs)) got.push_back(v);
    std::sort(got.begin(), got.end());
    CHECK(got == sums);
  });
  // Unsized input, conversion of each element to f's parameter types.
  auto rows = std::views::iota(0, 50) | std::views::transform([](int i) { return std::tuple("r", i, 'x'); });
  std::vector<std::string> got;
  for (const std::string& v : pool.istarmap(tag, rows)) got.push_back(v);
  REQUIRE(got.size() == 50);
  CHECK(got[7] == "r7x");
  std::vector<std::pair<int, int>> bad{{1, 1}, {2, 0}, {3, 3}};
  auto divide = [](int a, int b) {
    if (b == 0) throw std::domain_error("division by zero");
    return a / b;
  };
  auto quotients = pool.istarmap(divide, bad, 1);
  auto it = quotients.begin();
  CHECK(*it == 1);
  CHECK_THROWS_AS(++it, std::domain_error);
}

TEST_CASE("map over several ranges zips them and stops at the shortest", "[pool]") {
  mp::Pool pool(2);
  const std::vector<int> a{1, 2, 3, 4};
  CHECK(pool.map(add, a, std::views::iota(10, 13)) == std::vector<int>{11, 13, 15});
  CHECK(pool.map_async(add, std::views::iota(0, 1000), a).get() == std::vector<int>{1, 3, 5, 7});
  std::vector<std::string> words{"a", "b"};
  CHECK(pool.map(tag, words, a, std::string("!?")) == std::vector<std::string>{"a1!", "b2?"});
  CHECK(pool.map(add, a, std::vector<int>{}).empty());
  CHECK(pool.map(square, a, 2) == std::vector<int>{1, 4, 9, 16});  // one range and a chunksize
  std::atomic<int> n{0};
  pool.map(nothing2, a, a);
  n = static_cast<int>(pool.map(add, std::vector<long>{1, 2}, std::vector<short>{3, 4}).size());
  CHECK(n == 2);
}

TEST_CASE("join(timeout) returns false while tasks run, true once they ended", "[pool]") {
  mp::Pool pool(1);
  CHECK_THROWS_AS(pool.join(1ms), std::logic_error);
  auto r = pool.apply_async(sleepy, 300);
  pool.close();
  CHECK_FALSE(pool.join(10ms));
  CHECK_FALSE(r.ready());
  CHECK(pool.join(60s));
  CHECK(r.get() == 300);
  CHECK(pool.join(0ms));  // joined already
}
