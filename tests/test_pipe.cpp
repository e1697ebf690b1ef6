// Tests of mp::Pipe / mp::Connection with real processes: ping-pong, one-way
// pipes, poll, large messages, and the defined outcome when the other end is
// closed (ClosedError, never a hang, never SIGPIPE).
#include <catch2/catch.hpp>

#include <csignal>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <mp/pipe.hpp>
#include <mp/process.hpp>

#include "fork_helpers.hpp"

using namespace std::chrono_literals;
using mp_test::exited_with;
using mp_test::fork_child;
using mp_test::wait_child;

TEST_CASE("Pipe: ping-pong of 2000 ints between two processes", "[pipe]") {
  auto [a, b] = mp::Pipe<int>();
  pid_t k = fork_child([&a = a, &b = b] {  // init-captures: clang 14 cannot capture bindings
    a.close();  // the parent's end: close our inherited copy
    for (;;) {
      int x = 0;
      try {
        x = b.recv();
      } catch (const mp::ClosedError&) {
        return 0;  // the parent closed its end: done
      }
      b.send(x + 1);
    }
  });
  b.close();
  int x = 0;
  for (int i = 0; i < 2000; ++i) {
    a.send(x);
    x = a.recv();
  }
  REQUIRE(x == 2000);
  a.close();
  REQUIRE(exited_with(wait_child(k), 0));
}

TEST_CASE("Pipe: structured values, duplex both ways, poll with timeout", "[pipe]") {
  using Msg = std::map<std::string, std::vector<int>>;
  auto [a, b] = mp::Pipe<Msg>();
  REQUIRE_FALSE(a.poll());
  REQUIRE_FALSE(a.poll(10ms));
  b.send(Msg{{"x", {1, 2, 3}}});
  REQUIRE(a.poll(1s));
  REQUIRE(a.recv() == Msg{{"x", {1, 2, 3}}});
  a.send(Msg{{"y", {}}});
  REQUIRE(b.recv().count("y") == 1);
}

TEST_CASE("Pipe(false): one way, wrong-direction calls throw", "[pipe]") {
  auto [r, w] = mp::Pipe<std::string>(false);
  REQUIRE(r.readable());
  REQUIRE_FALSE(r.writable());
  REQUIRE(w.writable());
  REQUIRE_FALSE(w.readable());
  REQUIRE_THROWS_AS(r.send("x"), std::logic_error);
  REQUIRE_THROWS_AS(w.recv(), std::logic_error);
  // poll() on the send-only end throws as recv() does (it used to answer true
  // at once, since a socket shut for reading always polls readable).
  REQUIRE_THROWS_WITH(w.poll(), Catch::Contains("only sends"));
  REQUIRE_THROWS_AS(w.poll(std::chrono::milliseconds(10)), std::logic_error);
  REQUIRE_FALSE(r.poll());
  w.send("hello");
  REQUIRE(r.poll(std::chrono::seconds(5)));
  REQUIRE(r.recv() == "hello");
}

TEST_CASE("Pipe: a large message (8 MiB) goes through partial writes intact", "[pipe]") {
  auto [a, b] = mp::Pipe<std::vector<std::uint32_t>>();
  std::vector<std::uint32_t> big(2 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint32_t>(i * 2654435761u);
  pid_t k = fork_child([&a = a, &b = b] {  // init-captures: clang 14 cannot capture bindings
    a.close();
    auto v = b.recv();
    b.send(v);
    return 0;
  });
  b.close();
  a.send(big);
  REQUIRE(a.recv() == big);
  REQUIRE(exited_with(wait_child(k), 0));
}

TEST_CASE("Pipe: recv on a pipe whose other end is closed throws ClosedError", "[pipe][closed]") {
  SECTION("closed after sending: buffered messages first, then ClosedError") {
    auto [a, b] = mp::Pipe<int>();
    b.send(1);
    b.send(2);
    b.close();
    REQUIRE(a.poll());
    REQUIRE(a.recv() == 1);
    REQUIRE(a.recv() == 2);
    REQUIRE_THROWS_WITH(a.recv(), Catch::Contains("other end of the pipe is closed"));
    REQUIRE_THROWS_AS(a.send(3), mp::ClosedError);  // no SIGPIPE: this process lives on
  }
  SECTION("the peer process is SIGKILLed while we wait in recv") {
    auto [a, b] = mp::Pipe<int>();
    pid_t k = fork_child([&a = a] {  // init-captures: clang 14 cannot capture bindings
      a.close();
      ::pause();
      return 0;
    });
    b.close();
    ::kill(k, SIGKILL);
    REQUIRE_THROWS_AS(a.recv(), mp::ClosedError);
    REQUIRE(mp_test::killed_by(wait_child(k), SIGKILL));
  }
  SECTION("an end moved into an mp::Process is closed in the parent at start()") {
    auto [a, b] = mp::Pipe<int>();
    mp::Process p([](mp::Connection<int> c) { c.send(7); }, std::move(b));
    REQUIRE(b.closed());  // moved from
    p.start();
    REQUIRE(a.recv() == 7);
    REQUIRE_THROWS_AS(a.recv(), mp::ClosedError);  // the child exited: nobody holds the end
    p.join();
    REQUIRE(p.exitcode() == 0);
  }
  SECTION("using a closed end") {
    auto [a, b] = mp::Pipe<int>();
    a.close();
    a.close();
    REQUIRE(a.closed());
    REQUIRE(a.fileno() == -1);
    REQUIRE_THROWS_WITH(a.recv(), Catch::Contains("was closed"));
    REQUIRE_THROWS_AS(a.poll(), mp::ClosedError);
  }
}
