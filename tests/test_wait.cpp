// Tests of mp::wait and mp::as_completed: each return_when, timeouts,
// futures already ended, waiters abandoned early, futures from a pool.
#include <catch2/catch.hpp>

#include <mp/mp.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using State = mp::detail::ApplyState<int>;

struct Futures {
  std::vector<std::shared_ptr<State>> states;
  std::vector<mp::AsyncResult<int>> fs;
  explicit Futures(int n) {
    for (int i = 0; i < n; ++i) {
      states.push_back(std::make_shared<State>());
      fs.emplace_back(states.back());
    }
  }
};

int slow_id(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int fail_if_odd(int x) {
  if (x % 2 != 0) throw std::domain_error("odd");
  return x;
}

}  // namespace

TEST_CASE("wait FIRST_COMPLETED returns once one future ended", "[wait]") {
  Futures f(3);
  std::thread t([&] { f.states[1]->set_value(11); });
  auto [done, not_done] = mp::wait(f.fs, mp::FIRST_COMPLETED);
  t.join();
  REQUIRE(done.size() == 1);
  CHECK(done[0].ready());
  CHECK(done[0].get() == 11);
  CHECK(not_done.size() == 2);
  for (auto& x : not_done) CHECK_FALSE(x.ready());
}

TEST_CASE("wait with a timeout returns what ended, without throwing", "[wait]") {
  Futures f(3);
  f.states[2]->set_value(2);
  auto r = mp::wait(f.fs, mp::ALL_COMPLETED, 20ms);
  REQUIRE(r.done.size() == 1);
  CHECK(r.done[0].get() == 2);
  CHECK(r.not_done.size() == 2);
  auto none = mp::wait(Futures(2).fs, mp::FIRST_COMPLETED, 1ms);
  CHECK(none.done.empty());
  CHECK(none.not_done.size() == 2);
}

TEST_CASE("wait FIRST_EXCEPTION returns at the first failure, else when all ended", "[wait]") {
  Futures f(3);
  f.states[0]->set_value(0);
  std::thread t([&] { f.states[2]->fail(std::make_exception_ptr(std::runtime_error("x"))); });
  auto r = mp::wait(f.fs, mp::FIRST_EXCEPTION);
  t.join();
  CHECK(r.done.size() == 2);
  CHECK(r.not_done.size() == 1);
  CHECK_THROWS_AS(r.done[1].get(), std::runtime_error);

  Futures ok(2);
  std::thread t2([&] {
    ok.states[0]->set_value(1);
    ok.states[1]->set_value(2);
  });
  auto all = mp::wait(ok.fs, mp::FIRST_EXCEPTION);
  t2.join();
  CHECK(all.done.size() == 2);
  CHECK(all.not_done.empty());
}

TEST_CASE("wait ALL_COMPLETED, empty input, and a future with no task", "[wait]") {
  Futures f(4);
  std::thread t([&] {
    for (int i = 3; i >= 0; --i) f.states[static_cast<std::size_t>(i)]->set_value(i);
  });
  auto r = mp::wait(f.fs);
  t.join();
  REQUIRE(r.done.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(r.done[static_cast<std::size_t>(i)].get() == i);  // input order
  CHECK(mp::wait(std::vector<mp::AsyncResult<int>>{}, mp::FIRST_COMPLETED).done.empty());
  std::vector<mp::AsyncResult<int>> bad(1);
  CHECK_THROWS_AS(mp::wait(bad), std::invalid_argument);
  CHECK_THROWS_AS(mp::as_completed(bad), std::invalid_argument);
}

TEST_CASE("as_completed yields ended futures first, then in completion order", "[wait]") {
  Futures f(4);
  f.states[3]->set_value(3);
  std::atomic<int> yielded{0};
  std::thread t([&] {
    for (int want = 1; want <= 3; ++want) {  // the next ends once the previous was seen
      while (yielded.load() < want) std::this_thread::yield();
      const std::size_t idx = want == 1 ? 1 : want == 2 ? 0 : 2;
      f.states[idx]->set_value(static_cast<int>(idx));
    }
  });
  static_assert(std::ranges::input_range<decltype(mp::as_completed(f.fs))>);
  std::vector<int> order;
  for (mp::AsyncResult<int> x : mp::as_completed(f.fs)) {
    CHECK(x.ready());
    order.push_back(x.get());
    ++yielded;
  }
  t.join();
  CHECK(order == std::vector<int>{3, 1, 0, 2});
}

TEST_CASE("as_completed with a timeout throws TimeoutError, an abandoned waiter is safe", "[wait]") {
  Futures f(2);
  f.states[0]->set_value(0);
  {
    auto range = mp::as_completed(f.fs, 20ms);
    auto it = range.begin();
    CHECK((*it).get() == 0);
    CHECK_THROWS_AS(++it, mp::TimeoutError);
    auto r = mp::wait(f.fs, mp::ALL_COMPLETED, 1ms);
    CHECK(r.not_done.size() == 1);
  }
  // Both waiters are gone; their callbacks still fire, into live memory.
  f.states[1]->set_value(1);
  CHECK(f.fs[1].get() == 1);
}

TEST_CASE("wait and as_completed on a pool's futures", "[wait][pool]") {
  mp::Pool pool(2);
  std::vector<mp::AsyncResult<int>> fs;
  for (int ms : {300, 1, 150}) fs.push_back(pool.apply_async(slow_id, ms));
  auto first = mp::wait(fs, mp::FIRST_COMPLETED);
  REQUIRE_FALSE(first.done.empty());
  CHECK(first.done[0].get() < 300);
  int sum = 0, count = 0;
  for (auto x : mp::as_completed(fs)) {
    sum += x.get();
    ++count;
  }
  CHECK(count == 3);
  CHECK(sum == 451);
  std::vector<mp::AsyncResult<int>> gs;
  for (int x : {2, 4, 5}) gs.push_back(pool.apply_async(fail_if_odd, x));
  auto r = mp::wait(gs, mp::FIRST_EXCEPTION);
  bool saw_error = false;
  for (auto& x : r.done) saw_error = saw_error || x.exception() != nullptr;
  CHECK(saw_error);
  auto v = pool.map_async(fail_if_odd, std::vector<int>{2, 4});
  CHECK(mp::wait(std::vector{v}).done.at(0).get() == std::vector<int>{2, 4});
}
