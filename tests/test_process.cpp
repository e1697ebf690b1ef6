// Tests of mp::Process with real children: exit codes (normal, throwing
// target, terminate, kill), join with timeouts, names, the process-tree
// functions, and the destructor's join.
#include <catch2/catch.hpp>

#include <csignal>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <mp/event.hpp>
#include <mp/process.hpp>
#include <mp/sharedctypes.hpp>

#include "fork_helpers.hpp"

using namespace std::chrono_literals;

namespace {

struct CustomError : std::exception {
  const char* what() const noexcept override { return "custom failure"; }
};

// Runs p.start() with the child's stderr captured; returns what it printed.
std::string start_capturing_stderr(mp::Process& p) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  int saved = ::dup(2);
  ::dup2(fds[1], 2);
  p.start();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fds[1]);
  p.join();
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  return out;
}

}  // namespace

TEST_CASE("Process: target with arguments runs in a child, exitcode 0", "[process]") {
  mp::Value<long> out(0);
  mp::Process p([](mp::Value<long> v, int a, const std::string& s) { v.value() = a * static_cast<long>(s.size()); },
                out, 6, std::string("seven!!"));
  REQUIRE(p.pid() == 0);
  REQUIRE_FALSE(p.exitcode().has_value());
  REQUIRE_FALSE(p.is_alive());
  p.start();
  REQUIRE(p.pid() > 0);
  p.join();
  REQUIRE(p.exitcode() == 0);
  REQUIRE_FALSE(p.is_alive());
  REQUIRE(out.value() == 42);
  REQUIRE_THROWS_AS(p.start(), std::logic_error);
}

TEST_CASE("Process: a throwing target exits 1 and prints its type and what()", "[process]") {
  mp::Process p1([] { throw std::runtime_error("boom in child"); });
  std::string err = start_capturing_stderr(p1);
  REQUIRE(p1.exitcode() == 1);
  REQUIRE_THAT(err, Catch::Contains("Process " + p1.name() + ": std::runtime_error: boom in child"));

  mp::Process p2([] { throw CustomError(); });
  err = start_capturing_stderr(p2);
  REQUIRE(p2.exitcode() == 1);
  REQUIRE_THAT(err, Catch::Contains("CustomError: custom failure"));

  mp::Process p3([] { throw 17; });
  err = start_capturing_stderr(p3);
  REQUIRE(p3.exitcode() == 1);
  REQUIRE_THAT(err, Catch::Contains(": int:"));

  mp::Process p4([] {
    std::fflush(nullptr);
    ::_exit(7);
  });
  p4.start();
  p4.join();
  REQUIRE(p4.exitcode() == 7);
}

TEST_CASE("Process: terminate and kill give -SIGTERM and -SIGKILL", "[process]") {
  mp::Event ready;
  auto sleeper = [](mp::Event r) {
    mp_test::reset_child_signals();  // Catch's handlers are inherited across fork
    r.set();
    for (;;) ::pause();
  };
  mp::Process t(sleeper, ready);
  t.start();
  REQUIRE(ready.wait(10s));
  REQUIRE(t.is_alive());
  REQUIRE_FALSE(t.join(20ms));
  REQUIRE_FALSE(t.exitcode().has_value());
  t.terminate();
  REQUIRE(t.join(10s));
  REQUIRE(t.exitcode() == -SIGTERM);
  t.terminate();  // already gone: nothing happens

  ready.clear();
  mp::Process k(sleeper, ready);
  k.start();
  REQUIRE(ready.wait(10s));
  k.kill();
  k.join();
  REQUIRE(k.exitcode() == -SIGKILL);
  REQUIRE_FALSE(k.is_alive());
}

TEST_CASE("Process: misuse throws std::logic_error", "[process]") {
  mp::Process p([] {});
  REQUIRE_THROWS_AS(p.join(), std::logic_error);
  REQUIRE_THROWS_AS(p.terminate(), std::logic_error);
  p.daemon(true);
  p.start();
  REQUIRE_THROWS_AS(p.daemon(false), std::logic_error);
  p.join();
}

TEST_CASE("Process: names, current_process, parent_process, active_children", "[process]") {
  REQUIRE(mp::current_process().name() == "MainProcess");
  REQUIRE(mp::current_process().pid() == ::getpid());
  REQUIRE_FALSE(mp::parent_process().has_value());

  mp::Process a([] {});
  mp::Process b([] {});
  REQUIRE(a.name().rfind("Process-", 0) == 0);
  REQUIRE(a.name() != b.name());
  b.name("worker-b");
  REQUIRE(b.name() == "worker-b");

  // In the child: its own name, the parent's pid, and a grandchild named "<child>:1".
  mp::Array<int> checks(4);
  mp::Event release;
  std::string default_name;
  mp::Process c([&] {
    checks[0] = mp::current_process().name() == "worker-c";
    checks[1] = mp::parent_process() && mp::parent_process()->pid() == ::getppid() &&
                mp::parent_process()->name() == "MainProcess";
    mp::Process g([] {});
    checks[2] = g.name() == default_name + ":1";  // as Python: "Process-N:1"
    g.start();
    g.join();
    checks[3] = mp::active_children().empty() && g.exitcode() == 0;
    release.wait(10s);
  });
  default_name = c.name();
  c.name("worker-c");
  c.start();
  auto kids = mp::active_children();
  REQUIRE(kids.size() == 1);
  REQUIRE(kids[0].pid() == c.pid());
  REQUIRE(kids[0].name() == "worker-c");
  release.set();
  c.join();
  REQUIRE(c.exitcode() == 0);
  REQUIRE(mp::active_children().empty());
  REQUIRE(checks[0] == 1);
  REQUIRE(checks[1] == 1);
  REQUIRE(checks[2] == 1);
  REQUIRE(checks[3] == 1);
}

TEST_CASE("Process: the destructor joins (daemon: terminates first), no zombie remains", "[process]") {
  mp::Value<int> done(0);
  pid_t pid = 0;
  {
    mp::Process p([](mp::Value<int> d) {
      std::this_thread::sleep_for(30ms);
      d.value() = 1;
    }, done);
    p.start();
    pid = p.pid();
  }
  REQUIRE(done.value() == 1);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, WNOHANG) == -1);  // already reaped
  REQUIRE(errno == ECHILD);

  mp::Event ready;
  auto t0 = std::chrono::steady_clock::now();
  {
    mp::Process d([](mp::Event r) {
      mp_test::reset_child_signals();
      r.set();
      for (;;) ::pause();
    }, ready);
    d.daemon(true);
    d.start();
    REQUIRE(ready.wait(10s));
    pid = d.pid();
  }
  REQUIRE(::waitpid(pid, &status, WNOHANG) == -1);
  REQUIRE(std::chrono::steady_clock::now() - t0 < 10s);
}

TEST_CASE("Process: start() drops the parent's copy of the arguments (as Python)", "[process]") {
  auto token = std::make_shared<int>(5);
  std::weak_ptr<int> watch = token;
  mp::Process p([](std::shared_ptr<int> t) { return *t; }, std::move(token));
  REQUIRE_FALSE(watch.expired());
  p.start();
  REQUIRE(watch.expired());
  p.join();
  REQUIRE(p.exitcode() == 0);
}
