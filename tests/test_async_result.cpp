// Tests of mp::AsyncResult on its own shared state (no pool): get, timeouts,
// ready/successful, then() before and after completion, errors, void,
// callback order and errors, done/running/cancelled/exception.
#include <catch2/catch.hpp>

#include <mp/async_result.hpp>
#include <mp/detail/pool_map.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("value set from another thread wakes get(), callbacks run once", "[async]") {
  auto st = std::make_shared<mp::detail::ApplyState<int>>();
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
  auto st = std::make_shared<mp::detail::ApplyState<std::string>>();
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
  auto st = std::make_shared<mp::detail::ApplyState<void>>();
  mp::AsyncResult<void> r(st);
  int n = 0;
  r.then([&] { ++n; });
  const std::byte ok[1] = {std::byte{0}};
  st->on_result(0, ok);
  r.get();
  CHECK(n == 1);
  auto bad = std::make_shared<mp::detail::ApplyState<int>>();
  const std::byte truncated[2] = {std::byte{0}, std::byte{1}};
  bad->on_result(0, truncated);
  CHECK_THROWS_AS(mp::AsyncResult<int>(bad).get(), mp::DecodeError);
}

namespace {

/// A ResultOut that keeps the result message it is given.
class BytesOut final : public mp::detail::ResultOut {
public:
  void write(std::size_t n, mp::detail::EncodeRef enc) override {
    bytes.resize(n);
    enc(bytes.data());
  }
  std::vector<std::byte> bytes;
};

}  // namespace

TEST_CASE("a pool error result keeps mp's error type, pid and where it happened", "[async]") {
  BytesOut lost;
  mp::detail::write_error_result(lost, std::make_exception_ptr(mp::WorkerLostError(42, "lost")), " (rank 3)");
  auto st = std::make_shared<mp::detail::ApplyState<int>>();
  st->on_result(0, lost.bytes);
  try {
    mp::AsyncResult<int>(st).get();
    FAIL("get() did not throw");
  } catch (const mp::WorkerLostError& e) {
    CHECK(e.pid() == 42);
    CHECK(std::string(e.what()) == "lost (rank 3)");
  }
  BytesOut timeout;
  mp::detail::write_error_result(timeout, std::make_exception_ptr(mp::TaskTimeoutError("slow")), "");
  auto st2 = std::make_shared<mp::detail::ApplyState<int>>();
  st2->on_result(0, timeout.bytes);
  CHECK_THROWS_AS(mp::AsyncResult<int>(st2).get(), mp::TaskTimeoutError);
  BytesOut other;  // not one of mp's pool errors: an ordinary error result, where not added
  mp::detail::write_error_result(other, std::make_exception_ptr(std::out_of_range("nope")), " (rank 3)");
  auto st3 = std::make_shared<mp::detail::ApplyState<int>>();
  st3->on_result(0, other.bytes);
  CHECK_THROWS_AS(mp::AsyncResult<int>(st3).get(), std::out_of_range);
  CHECK_THROWS_WITH(mp::AsyncResult<int>(st3).get(), "nope");
  lost.bytes[1] = std::byte{200};  // no such pool error kind
  auto st4 = std::make_shared<mp::detail::ApplyState<int>>();
  st4->on_result(0, lost.bytes);
  CHECK_THROWS_AS(mp::AsyncResult<int>(st4).get(), mp::DecodeError);
}

namespace {

/// Runs body with fd 2 sent to a temporary file; returns what was written.
template <class Body>
std::string capture_stderr(Body body) {
  std::fflush(stderr);
  FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  const int saved = ::dup(2);
  REQUIRE(::dup2(::fileno(tmp), 2) == 2);
  body();
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  for (int c; (c = std::fgetc(tmp)) != EOF;) out.push_back(static_cast<char>(c));
  std::fclose(tmp);
  return out;
}

struct OddError : std::exception {
  const char* what() const noexcept override { return "odd thing"; }
};

}  // namespace

TEST_CASE("callbacks finish before the result is ready", "[async][callbacks]") {
  auto st = std::make_shared<mp::detail::ApplyState<int>>();
  mp::AsyncResult<int> r(st);
  std::atomic<bool> in_cb{false}, release{false}, cb_done{false};
  r.then([&](const int&) {
    in_cb = true;
    while (!release) std::this_thread::yield();
    cb_done = true;
  });
  std::thread t([&] { st->set_value(3); });
  while (!in_cb) std::this_thread::yield();
  CHECK_FALSE(r.ready());      // the outcome is decided, the callback still runs
  CHECK_FALSE(r.wait(10ms));   // and waiters still wait
  CHECK(r.running());
  release = true;
  CHECK(r.get() == 3);
  CHECK(cb_done);  // get() returned: the callback finished
  t.join();
}

TEST_CASE("then() inside a callback runs before ready, without deadlock", "[async][callbacks]") {
  auto st = std::make_shared<mp::detail::ApplyState<int>>();
  mp::AsyncResult<int> r(st);
  std::vector<int> seen;
  r.then([&](const int& v) {
    seen.push_back(v);
    r.then([&](const int& w) { seen.push_back(w + 1); });
    CHECK_FALSE(r.cancel());  // ending: nothing to cancel, and no deadlock
  });
  st->set_value(10);
  CHECK(r.ready());
  CHECK(seen == std::vector<int>{10, 11});
  r.then([&](const int& v) { seen.push_back(v + 2); });  // ready: runs at once
  CHECK(seen == std::vector<int>{10, 11, 12});
}

TEST_CASE("a throwing callback never makes then() throw, it is reported on stderr", "[async][callbacks]") {
  auto st = std::make_shared<mp::detail::ApplyState<int>>();
  mp::AsyncResult<int> r(st);
  int later = 0;
  const std::string pending_out = capture_stderr([&] {
    r.then([](const int&) { throw std::runtime_error("callback broke"); });
    r.then([&](const int& v) { later = v; });
    st->set_value(5);
  });
  CHECK(r.get() == 5);
  CHECK(later == 5);  // the next callback still ran
  CHECK(pending_out == "mp: an AsyncResult callback threw std::runtime_error: callback broke; ignored\n");

  const std::string ready_out = capture_stderr([&] {
    CHECK_NOTHROW(r.then([](const int&) { throw OddError(); }));
    CHECK_NOTHROW(r.then([](const int&) { throw 42; }));
  });
  CHECK(ready_out.find("threw (anonymous namespace)::OddError: odd thing; ignored\n") != std::string::npos);
  CHECK(ready_out.find("threw int; ignored\n") != std::string::npos);

  auto bad = std::make_shared<mp::detail::ApplyState<int>>();
  mp::AsyncResult<int> f(bad);
  bad->fail(std::make_exception_ptr(std::logic_error("task")));
  const std::string err_out = capture_stderr([&] {
    CHECK_NOTHROW(f.then([](const int&) {}, [](std::exception_ptr) { throw std::range_error("ecb"); }));
  });
  CHECK(err_out == "mp: an AsyncResult callback threw std::range_error: ecb; ignored\n");
}

TEST_CASE("done, running, cancelled and exception", "[async][futures]") {
  mp::AsyncResult<int> none;
  CHECK_FALSE(none.running());
  CHECK_FALSE(none.cancelled());

  auto st = std::make_shared<mp::detail::ApplyState<int>>();
  mp::AsyncResult<int> r(st);
  CHECK(r.running());
  CHECK_FALSE(r.done());
  CHECK_FALSE(r.cancelled());
  CHECK_THROWS_AS(r.exception(1ms), mp::TimeoutError);
  std::thread t([&] { st->set_value(1); });
  CHECK(r.exception() == nullptr);  // blocks until the value is there
  t.join();
  CHECK(r.done());
  CHECK_FALSE(r.running());
  CHECK(r.exception(0ms) == nullptr);

  auto c = std::make_shared<mp::detail::ApplyState<void>>();
  mp::AsyncResult<void> rc(c);
  c->fail(std::make_exception_ptr(mp::CancelledError("cancelled")));
  CHECK(rc.cancelled());
  CHECK(rc.done());
  CHECK_THROWS_AS(std::rethrow_exception(rc.exception()), mp::CancelledError);

  auto e = std::make_shared<mp::detail::ApplyState<int>>();
  mp::AsyncResult<int> re(e);
  e->fail(std::make_exception_ptr(std::out_of_range("oops")));
  CHECK_FALSE(re.cancelled());
  CHECK_THROWS_AS(std::rethrow_exception(re.exception()), std::out_of_range);
}
