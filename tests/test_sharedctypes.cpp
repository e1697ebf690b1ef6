// Tests of mp::Value and mp::Array: shared in place across fork, guarded by
// their locks, constructed from values and ranges.
#include <catch2/catch.hpp>

#include <mutex>
#include <numeric>
#include <vector>

#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"

using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Value: 4 processes x 20,000 increments under get_lock() -> exactly 80,000", "[sharedctypes][value]") {
  mp::Value<long> v(0);
  constexpr int procs = 4, per = 20'000;
  std::vector<pid_t> kids;
  for (int p = 0; p < procs; ++p) {
    kids.push_back(fork_child([&] {
      for (int i = 0; i < per; ++i) {
        std::lock_guard g(v.get_lock());
        ++v.value();
      }
      return 0;
    }));
  }
  for (pid_t k : kids) REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(v.load() == procs * per);
}

TEST_CASE("Value: holds structs, load/store, a shared or recursive lock", "[sharedctypes][value]") {
  struct Point {
    double x, y;
  };
  mp::Value<Point> p(Point{1.5, -2.0});
  REQUIRE(p.value().x == 1.5);
  pid_t k = fork_child([&] {
    p.store(Point{p.load().x * 2, 7});
    return 0;
  });
  REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE(p.load().x == 3.0);
  REQUIRE(p.load().y == 7.0);

  mp::Lock shared;
  mp::Value<int> a(1, shared), b(2, shared);
  a.get_lock().acquire();
  REQUIRE_FALSE(b.get_lock().try_lock());  // the same lock
  a.get_lock().release();

  mp::Value<int, mp::RLock> r(5);
  std::lock_guard g1(r.get_lock());
  REQUIRE(r.load() == 5);  // load() takes the recursive lock again
}

TEST_CASE("Value: a writer that died holding the lock -> OwnerDeadError, value readable", "[sharedctypes][robust]") {
  mp::Value<int> v(0);
  pid_t k = fork_child([&] {
    v.get_lock().acquire();
    v.value() = 41;
    return 0;  // dies holding the lock
  });
  REQUIRE(exited_with(wait_child(k), 0));
  REQUIRE_THROWS_AS(v.store(1), mp::OwnerDeadError);
  v.store(v.value() + 1);
  REQUIRE(v.load() == 42);
}

TEST_CASE("Array: constructors, indexing, iteration, writes seen across fork", "[sharedctypes][array]") {
  mp::Array<int> zeros(5);
  REQUIRE(zeros.size() == 5);
  REQUIRE(std::accumulate(zeros.begin(), zeros.end(), 0) == 0);
  mp::Array<int> filled(3, 7);
  REQUIRE(std::vector<int>(filled.begin(), filled.end()) == std::vector<int>{7, 7, 7});
  mp::Array<double> listed{1.0, 2.0, 3.5};
  REQUIRE(listed.size() == 3);
  REQUIRE(listed[2] == 3.5);
  std::vector<int> src(1000);
  std::iota(src.begin(), src.end(), 0);
  mp::Array<int> a(src);
  REQUIRE(a.size() == 1000);
  REQUIRE_THROWS_AS(a.at(1000), std::out_of_range);
  mp::Array<int> none(0);
  REQUIRE(none.empty());

  // Two children each double half of the array in place.
  pid_t k1 = fork_child([&] {
    for (std::size_t i = 0; i < 500; ++i) a[i] *= 2;
    return 0;
  });
  pid_t k2 = fork_child([&] {
    for (int& x : a.span().subspan(500)) x *= 2;
    return 0;
  });
  REQUIRE(exited_with(wait_child(k1), 0));
  REQUIRE(exited_with(wait_child(k2), 0));
  REQUIRE(std::accumulate(a.begin(), a.end(), 0L) == 2L * 999 * 1000 / 2);
  mp::Array<int> copy = a;  // a handle: same memory
  copy[0] = 123;
  REQUIRE(a[0] == 123);
}
