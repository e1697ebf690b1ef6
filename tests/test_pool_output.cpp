// tests/test_pool_output.cpp - workers' stdout and stderr reach the parent's
// fds 1 and 2 in whole lines, while the pool runs, even when they are pipes.
//
// Each test runs a pool in a child process whose fds 1 and 2 are pipes this
// process reads. The child holds its pool open until this process has seen
// the lines it waits for (or gave up), so output that only came out when the
// pool closes fails the test.
#include <mp/pool.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "fork_helpers.hpp"

namespace {

constexpr int lines_per_task = 40;
constexpr std::size_t long_line = 10'000;

/// Many << per line on unbuffered std::cerr, and buffered lines on std::cout.
int chatter(int id) {
  for (int k = 0; k < lines_per_task; ++k) {
    std::cerr << "err " << id << ' ' << k << ' ' << std::string(40, 'x') << ' ' << "end\n";
    std::cout << "out " << id << ' ' << k << " end\n";
  }
  for (int piece = 0; piece < 100; ++piece) std::cerr << std::string(long_line / 100, static_cast<char>('a' + id));
  std::cerr << '\n';
  return id;
}

/// Writes half a line and is killed.
int dies_mid_line(int id) {
  std::cerr << "half a line from task " << id;
  std::raise(SIGKILL);
  return id;
}

struct Captured {
  bool in_time = false;  // done() held while the child still held its pool open
  int status = 0;
  std::string out, err;
};

/// Reads what is there on fd into s; false at end of file.
bool read_some(int fd, std::string& s) {
  char buf[65536];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) s.append(buf, static_cast<std::size_t>(n));
  return n > 0 || (n < 0 && errno == EINTR);
}

/// Runs body(wait_go) in a child whose fds 1 and 2 are pipes; reads them
/// until done(out, err) or 30 s, then lets the child go on (wait_go returns)
/// and reads to the end.
template <class Body, class Done>
Captured capture(Body body, Done done) {
  int out[2], err[2], go[2];
  REQUIRE(::pipe(out) == 0);
  REQUIRE(::pipe(err) == 0);
  REQUIRE(::pipe(go) == 0);
  std::fflush(nullptr);  // what this process buffered is not the child's to print
  const pid_t pid = mp_test::fork_child([&] {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {out[0], out[1], err[0], err[1], go[1]}) ::close(fd);
    auto wait_go = [&] {
      char c;
      while (::read(go[0], &c, 1) != 0) {
      }
    };
    return body(wait_go);
  });
  for (int fd : {out[1], err[1], go[0]}) ::close(fd);
  Captured c;
  bool out_open = true, err_open = true;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((out_open || err_open) && std::chrono::steady_clock::now() < until) {
    if (!c.in_time && done(c.out, c.err)) {
      c.in_time = true;
      ::close(go[1]);
    }
    pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    if (p[0].revents != 0) out_open = read_some(out[0], c.out);
    if (p[1].revents != 0) err_open = read_some(err[0], c.err);
  }
  if (!c.in_time) ::close(go[1]);
  c.status = mp_test::wait_child_within(pid, std::chrono::seconds(30));
  ::close(out[0]);
  ::close(err[0]);
  return c;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) v.push_back(line);
  return v;
}

/// One of chatter()'s short lines.
bool is_chat(const std::string& line, bool err) {
  int id = -1, k = -1;
  if (std::sscanf(line.c_str(), err ? "err %d %d" : "out %d %d", &id, &k) != 2) return false;
  const std::string head = std::string(err ? "err " : "out ") + std::to_string(id) + ' ' + std::to_string(k);
  return line == head + (err ? ' ' + std::string(40, 'x') + " end" : std::string(" end"));
}

/// Counts the whole lines of `text`; each must be one chatter() writes.
std::size_t expected_lines(const std::string& text, bool err) {
  std::size_t n = 0;
  for (const std::string& line : lines_of(text.substr(0, text.rfind('\n') + 1))) {
    const bool long_ok = err && line.size() == long_line && line.find_first_not_of(line[0]) == std::string::npos;
    INFO("line: " << line.substr(0, 120));
    CHECK((is_chat(line, err) || long_ok));
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("worker lines reach a piped stdout and stderr whole, while the pool runs", "[pool][output]") {
  constexpr int tasks = 6;
  const std::size_t err_lines = tasks * (lines_per_task + 1);
  const std::size_t out_lines = tasks * lines_per_task;
  const Captured c = capture(
      [&](auto wait_go) {
        mp::Pool pool(2);
        std::vector<mp::AsyncResult<int>> rs;
        for (int id = 0; id < tasks; ++id) rs.push_back(pool.apply_async(chatter, id));
        int sum = 0;
        for (auto& r : rs) sum += r.get();
        wait_go();  // the pool stays open until the test saw every line
        return sum == tasks * (tasks - 1) / 2 ? 0 : 1;
      },
      [&](const std::string& out, const std::string& err) {
        return lines_of(out).size() >= out_lines && lines_of(err).size() >= err_lines;
      });
  CHECK(c.in_time);
  CHECK(mp_test::exited_with(c.status, 0));
  CHECK(expected_lines(c.out, false) == out_lines);
  CHECK(expected_lines(c.err, true) == err_lines);
  for (int id = 0; id < tasks; ++id)
    CHECK(c.err.find('\n' + std::string(long_line, static_cast<char>('a' + id)) + '\n') != std::string::npos);
}

TEST_CASE("a killed worker's partial line reaches the parent, and the pool goes on", "[pool][output]") {
  const std::string half = "half a line from task 7";
  const Captured c = capture(
      [&](auto wait_go) {
        mp::Pool pool(1);
        int code = 1;
        try {
          pool.apply(dies_mid_line, 7);
        } catch (const mp::WorkerLostError&) {
          code = pool.apply(chatter, 1) == 1 ? 0 : 2;  // the replacement forwards too
        }
        wait_go();
        return code;
      },
      [&](const std::string&, const std::string& err) {
        return err.find(half) != std::string::npos && lines_of(err).size() >= lines_per_task + 2;
      });
  CHECK(c.in_time);
  CHECK(mp_test::exited_with(c.status, 0));
  // The dead worker's half line comes first and alone: a newline ends it.
  CHECK(c.err.rfind(half + '\n', 0) == 0);
  CHECK(expected_lines(c.err.substr(half.size() + 1), true) == lines_per_task + 1);
}

namespace {
void init_fails(int code) { throw std::runtime_error("cannot open rows.db, code " + std::to_string(code)); }
}  // namespace

TEST_CASE("an initializer's exception reaches the parent's stderr, and the pool's error points there", "[pool][output]") {
  const std::string said = "its initializer threw: cannot open rows.db, code 5";
  const Captured c = capture(
      [&](auto wait_go) {
        mp::PoolOptions o;
        o.processes = 1;
        o.initializer = mp::initializer(init_fails, 5);
        mp::Pool pool(o);
        int code = 1;
        try {
          pool.apply(chatter, 1);
        } catch (const mp::WorkerLostError& e) {
          code = std::string(e.what()).find("initializer threw (its message is on stderr)") != std::string::npos ? 0 : 2;
        }
        wait_go();
        return code;
      },
      [&](const std::string&, const std::string& err) { return err.find(said) != std::string::npos; });
  CHECK(c.in_time);
  CHECK(mp_test::exited_with(c.status, 0));
  const auto lines = lines_of(c.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("mp::Pool worker ", 0) == 0);
  CHECK(lines[0].find(said) != std::string::npos);
}
