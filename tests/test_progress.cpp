// Tests of mp::progress: the callback form (per item, never decreasing, the
// total exactly once at the end, before the result is ready) for map,
// imap and unsized inputs, and the bar drawn on a pseudo-terminal.
#include <catch2/catch.hpp>

#include <mp/pool.hpp>
#include <mp/progress.hpp>

#include "fork_helpers.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <pty.h>
#include <ranges>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

int slow_square(int x) {
  std::this_thread::sleep_for(1ms);
  return x * x;
}
int square(int x) { return x * x; }

/// Every (done, total) a callback got.
struct Calls {
  std::mutex m;
  std::vector<std::pair<std::size_t, std::size_t>> seen;
  mp::Progress option() {
    return mp::progress([this](std::size_t done, std::size_t total) {
      std::lock_guard lock(m);
      seen.emplace_back(done, total);
    });
  }
  std::vector<std::pair<std::size_t, std::size_t>> get() {
    std::lock_guard lock(m);
    return seen;
  }
};

/// Checks the calls of a run over n items whose total is `total`: never
/// decreasing, done == n exactly once and last.
void check_calls(const std::vector<std::pair<std::size_t, std::size_t>>& seen, std::size_t n, std::size_t total) {
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back() == std::pair<std::size_t, std::size_t>{n, n});
  std::size_t at_n = 0;
  for (std::size_t k = 0; k < seen.size(); ++k) {
    if (k > 0) CHECK(seen[k].first >= seen[k - 1].first);
    if (k + 1 < seen.size()) CHECK(seen[k].second == total);
    if (seen[k].first == n) ++at_n;
  }
  CHECK(at_n == 1);
}

}  // namespace

TEST_CASE("progress callback: per item inside one chunk of 1000, the total once at the end", "[progress]") {
  mp::Pool pool(2);
  Calls calls;
  auto r = pool.map_async(slow_square, std::views::iota(0, 1000), 1000, calls.option());
  const auto v = r.get(60s);
  CHECK(v[999] == 999 * 999);
  const auto seen = calls.get();  // the last call came before the result was ready
  check_calls(seen, 1000, 1000);
  const bool intermediate =
      std::any_of(seen.begin(), seen.end(), [](const auto& c) { return c.first > 0 && c.first < 1000; });
  CHECK(intermediate);
}

TEST_CASE("progress callback on starmap, imap and an unsized input", "[progress]") {
  mp::Pool pool(2);
  {
    Calls calls;
    std::vector<std::pair<int, int>> pairs(300, {2, 3});
    auto v = pool.starmap([](int a, int b) { return a * b; }, pairs, 7, calls.option());
    CHECK(v == std::vector<int>(300, 6));
    check_calls(calls.get(), 300, 300);
  }
  {
    Calls calls;
    std::vector<int> got;
    for (int x : pool.imap(slow_square, std::views::iota(0, 200), calls.option())) got.push_back(x);
    CHECK(got.size() == 200);
    check_calls(calls.get(), 200, 200);
  }
  {
    Calls calls;
    auto unsized = std::views::iota(0, 500) | std::views::filter([](int x) { return x % 2 == 0; });
    std::size_t n = 0;
    for (int x : pool.imap_unordered(square, unsized, 10, calls.option())) n += x >= 0 ? 1 : 0;
    CHECK(n == 250);
    check_calls(calls.get(), 250, 0);  // total 0 until the last call
  }
  {
    Calls calls;
    CHECK(pool.map(square, std::vector<int>{}, calls.option()).empty());
    CHECK(calls.get() == std::vector<std::pair<std::size_t, std::size_t>>{{0, 0}});
  }
}

TEST_CASE("the bar on a pseudo-terminal ends with a line at 100% and the count", "[progress]") {
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    mp_test::reset_child_signals();
    int code = 1;
    try {
      mp::Pool pool(2);
      const auto v = pool.map(slow_square, std::views::iota(0, 400), 50, mp::progress());
      code = v[399] == 399 * 399 ? 0 : 2;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO once the child's side closed
    }
  }
  ::close(master);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  INFO(out);
  REQUIRE(out.size() > 2);
  CHECK(out.back() == '\n');  // the final line is left (the terminal shows "\n" as "\r\n")
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  const auto last_cr = out.rfind('\r');
  REQUIRE(last_cr != std::string::npos);
  const std::string last = out.substr(last_cr + 1);
  CHECK(last.find("100%") != std::string::npos);
  CHECK(last.find("400/400") != std::string::npos);
  CHECK(last.find("it/s") != std::string::npos);
}

TEST_CASE("bar_text shows count, total, percent, rate and ETA, or count and rate when unsized", "[progress]") {
  const std::string sized = mp::detail::bar_text(450, 1000, 2.0);
  CHECK(sized.find(" 45%|") == 0);
  CHECK(sized.find("450/1000") != std::string::npos);
  CHECK(sized.find("[00:02<00:02, 225.00 it/s]") != std::string::npos);
  CHECK(mp::detail::bar_text(450, 0, 2.0) == "450 it [00:02, 225.00 it/s]");
}

TEST_CASE("the bar draws nothing when stderr is not a terminal", "[progress]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = mp_test::fork_child([&] {
    ::close(fds[0]);
    if (::dup2(fds[1], STDERR_FILENO) < 0) return 4;
    ::close(fds[1]);
    mp::Pool pool(2);
    const auto v = pool.map(slow_square, std::views::iota(0, 300), 10, mp::progress());
    return v[299] == 299 * 299 && mp::detail::ProgressTracker::make(mp::progress(), 1) == nullptr ? 0 : 2;
  });
  ::close(fds[1]);
  std::string err;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      err.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(fds[0]);
  const int status = mp_test::wait_child(pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(err.empty());
}
