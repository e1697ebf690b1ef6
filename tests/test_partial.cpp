// Tests of mp::partial and mp::inherited (<mp/partial.hpp>): bound state
// through the codec, member functions (virtual and not), argument
// conversion, and both in Pool, Process and initializers.
#include <catch2/catch.hpp>

#include <mp/partial.hpp>
#include <mp/pool.hpp>
#include <mp/process.hpp>
#include <mp/sharedctypes.hpp>

#include <cstddef>
#include <numeric>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

int add(int a, int b) { return a + b; }
long weighted_sum(const std::vector<int>& w, int scale) {
  return std::accumulate(w.begin(), w.end(), 0L) * scale;
}
std::size_t nth_length(const std::vector<std::string>& words, std::size_t i) { return words.at(i).size(); }
std::string greet(std::string name, std::string greeting) { return greeting + ", " + name; }
std::size_t count_chars(std::string_view s) { return s.size(); }
long sum_span(std::span<const int> v) { return std::accumulate(v.begin(), v.end(), 0L); }

// An aggregate with a non-virtual member function (sendable as its bytes).
struct Scaler {
  int factor;
  int scale(int x) const { return x * factor; }
  int bump(int x) { return factor += x; }  // non-const: runs on the worker's copy
};

// A polymorphic class hierarchy: the object is sent through serialize(); the
// member pointer names a vtable slot, so the derived override runs.
struct Shape {
  int side = 0;
  virtual ~Shape() = default;
  virtual int area(int extra) const { return side + extra; }
  template <class A>
  void serialize(A& ar) { ar(side); }
};
struct Square : Shape {
  int area(int extra) const override { return side * side + extra; }
};

// Multiple inheritance: a member of the second base needs a this-adjustment.
struct Left {
  int l = 1;
};
struct Right {
  int r = 100;
  int get_r(int x) const { return r + x; }
};
struct Both : Left, Right {
  template <class A>
  void serialize(A& ar) { ar(l, r); }
};

int set_flag(mp::Value<int> flag, int v) {
  flag.store(v);
  return v;
}

}  // namespace

TEST_CASE("partial calls f with the bound arguments first", "[partial]") {
  auto p = mp::partial(add, 40);
  CHECK(p(2) == 42);
  CHECK(std::get<0>(p.args()) == 40);
  CHECK(p.func() == &add);
  auto g = mp::partial(greet, "Ada");  // a literal bound to a std::string parameter
  static_assert(std::is_same_v<std::tuple_element_t<0, std::remove_cvref_t<decltype(g.args())>>, std::string>);
  CHECK(g("hello") == "hello, Ada");
}

TEST_CASE("partial round-trips through the codec", "[partial]") {
  const auto p = mp::partial(weighted_sum, std::vector<int>{1, 2, 3});
  const auto bytes = mp::dumps(p);
  const auto q = mp::loads<std::remove_cv_t<decltype(p)>>(bytes);
  CHECK(q(10) == 60);
  const auto m = mp::partial(&Scaler::scale, Scaler{7});
  CHECK(mp::loads<std::remove_cv_t<decltype(m)>>(mp::dumps(m))(3) == 21);
}

TEST_CASE("a vector bound after the pool exists reaches the workers with its current value", "[partial][pool]") {
  mp::Pool pool(2);
  std::vector<std::string> words{"a", "bb", "ccc", "dddd"};  // made after the pool
  words.push_back("eeeee");
  auto lens = pool.map(mp::partial(nth_length, words), std::views::iota(std::size_t{0}, words.size()));
  CHECK(lens == std::vector<std::size_t>{1, 2, 3, 4, 5});
  std::vector<int> w(1000, 1);
  CHECK(pool.apply(mp::partial(weighted_sum, w), 3) == 3000);
  w.assign(10, 2);  // changed: the next task carries the new value
  CHECK(pool.apply(mp::partial(weighted_sum, w), 3) == 60);
  CHECK(pool.apply_async(mp::partial(add, 1), 2).get() == 3);
  CHECK(pool.starmap(mp::partial(weighted_sum), std::vector<std::pair<std::vector<int>, int>>{{{1, 2}, 2}}) ==
        std::vector<long>{6});
  std::vector<int> seen;
  for (int x : pool.imap(mp::partial(add, 100), std::vector<int>{1, 2, 3})) seen.push_back(x);
  CHECK(seen == std::vector<int>{101, 102, 103});
}

TEST_CASE("member functions with their object: non-virtual, virtual, adjusted", "[partial][pool]") {
  mp::Pool pool(2);
  CHECK(pool.map(mp::partial(&Scaler::scale, Scaler{3}), std::vector<int>{1, 2, 3}) == std::vector<int>{3, 6, 9});
  CHECK(pool.map(mp::partial(&Scaler::bump, Scaler{10}), std::vector<int>{1}) == std::vector<int>{11});
  Square sq;
  sq.side = 4;
  CHECK(pool.apply(mp::partial(&Shape::area, sq), 1) == 17);  // Square::area through the vtable slot
  Shape plain;
  plain.side = 4;
  CHECK(pool.apply(mp::partial(&Shape::area, plain), 1) == 5);
  CHECK(pool.apply(mp::partial(&Both::get_r, Both{}), 5) == 105);  // Right's member, this adjusted
}

TEST_CASE("string literals, string_view and span parameters are sent as owning types", "[partial][pool]") {
  mp::Pool pool(2);
  CHECK(pool.apply(greet, "Bob", "hi") == "hi, Bob");
  CHECK(pool.map(count_chars, std::vector<const char*>{"a", "abc", ""}) == std::vector<std::size_t>{1, 3, 0});
  const std::string text = "hello";
  CHECK(pool.apply(count_chars, std::string_view(text)) == 5);
  const std::vector<int> v{1, 2, 3, 4};
  CHECK(pool.apply(sum_span, std::span<const int>(v)) == 10);
  CHECK(pool.map(sum_span, std::vector<std::span<const int>>{std::span<const int>(v).first(2)}) ==
        std::vector<long>{3});
  CHECK(pool.starmap(greet, std::vector<std::pair<const char*, const char*>>{{"Cy", "yo"}}) ==
        std::vector<std::string>{"yo, Cy"});
}

TEST_CASE("partial in a Process and in a pool initializer", "[partial][process]") {
  mp::Value<int> flag(0);
  mp::Process p(mp::partial(set_flag, flag, 7));
  p.start();
  p.join();
  CHECK(p.exitcode() == 0);
  CHECK(flag.load() == 7);

  mp::Value<int> ready(0);
  mp::PoolOptions opt;
  opt.processes = 2;
  opt.initializer = mp::initializer(mp::partial(set_flag, ready), 9);
  mp::Pool pool(opt);
  CHECK(pool.apply(add, 1, 1) == 2);  // a task ran: the initializer ran before it
  CHECK(ready.load() == 9);
}

TEST_CASE("inherited sends captured addresses of objects made before the pool", "[partial][pool]") {
  static_assert(mp::detail::is_inherited<decltype(mp::inherited([] {}))>);
  static_assert(!mp::detail::is_inherited<decltype(mp::partial(add, 1))>);
  const std::vector<int> rows{5, 6, 7};  // made before the pool, unchanged since
  mp::Pool pool(2);
  auto got = pool.map(mp::inherited([&rows](std::size_t i) { return rows[i] * 2; }),
                      std::views::iota(std::size_t{0}, rows.size()));
  CHECK(got == std::vector<int>{10, 12, 14});
}
