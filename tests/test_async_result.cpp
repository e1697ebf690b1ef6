// Tests of mp::AsyncResult on its own shared state (no pool): get, timeouts,
// ready/successful, then() before and after completion, errors, void.
#include <catch2/catch.hpp>

#include <mp/async_result.hpp>

#include <chrono>
#include <memory>
#include <thread>

using namespace std::chrono_literals;

TEST_CASE("value set from another thread wakes get(), callbacks run once", "[async]") {
  auto st = std::make_shared<mp::detail::ResultState<int>>();
  mp::AsyncResult<int> r(st);
  int before = 0, after = 0, errs = 0;
  r.then([&](const int& v) { before = v; }, [&](std::exception_ptr) { ++errs; });
  CHECK_FALSE(r.ready());
  CHECK_THROWS_AS(r.successful(), std::logic_error);
  CHECK_THROWS_AS(r.get(5ms), mp::TimeoutError);
  CHECK_FALSE(r.wait(1ms));
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    st->set_value(7);
  });
  CHECK(r.get() == 7);
  t.join();
  CHECK(r.successful());
  CHECK(before == 7);
  r.then([&](const int& v) { after = v; });
  CHECK(after == 7);
  CHECK(errs == 0);
  CHECK(std::move(r).get() == 7);
}

TEST_CASE("an error is rethrown by every get and reaches the error callback", "[async]") {
  auto st = std::make_shared<mp::detail::ResultState<std::string>>();
  mp::AsyncResult<std::string> r(st);
  bool got = false;
  r.then([](const std::string&) {}, [&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::out_of_range& x) {
      got = std::string(x.what()) == "nope";
    }
  });
  st->fail(std::make_exception_ptr(std::out_of_range("nope")));
  CHECK(got);
  CHECK_FALSE(r.successful());
  CHECK_THROWS_AS(r.get(), std::out_of_range);
  CHECK_THROWS_AS(r.get(1s), std::out_of_range);
}

TEST_CASE("AsyncResult<void> and result messages decode", "[async]") {
  auto st = std::make_shared<mp::detail::ResultState<void>>();
  mp::AsyncResult<void> r(st);
  int n = 0;
  r.then([&] { ++n; });
  const std::byte ok[1] = {std::byte{0}};
  st->on_result(0, ok);
  r.get();
  CHECK(n == 1);
  auto bad = std::make_shared<mp::detail::ResultState<int>>();
  const std::byte truncated[2] = {std::byte{0}, std::byte{1}};
  bad->on_result(0, truncated);
  CHECK_THROWS_AS(mp::AsyncResult<int>(bad).get(), mp::DecodeError);
}
