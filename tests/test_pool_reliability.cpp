// Reliability of mp::Pool (issue 5): a fault costs the task it hit and
// nothing else. Worker deaths by every cause, a chaos run of random SIGKILLs,
// the parent's death and Ctrl-C, leaks, encode errors, threads.
//
// The chaos test reads its size from the environment:
//   MP_CHAOS_KILLS (default 20), MP_CHAOS_TASKS (default 5000): the CI size.
//   MP_CHAOS_KILLS=300 MP_CHAOS_TASKS=120000 build/dev/tests/test_pool_reliability "[chaos]"
// is the full run whose figures the README quotes.
#include <catch2/catch.hpp>

#include <mp/pool.hpp>
#include <mp/queue.hpp>

#include "fork_helpers.hpp"
#include "test_access.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <ranges>
#include <set>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// ---- tasks -------------------------------------------------------------------

int square(int x) { return x * x; }
int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int die_sigkill(int) {
  ::raise(SIGKILL);
  return 0;
}
int die_segv(int zero) {  // a real invalid access (zero is 0 at run time)
  volatile int* p = reinterpret_cast<volatile int*>(static_cast<std::uintptr_t>(zero));
  *p = 1;
  return *p;
}
int die_abort(int) { std::abort(); }
int die_exit(int code) { std::exit(code); }
int die_underscore_exit(int code) { ::_exit(code); }
int die_terminate(int) { std::terminate(); }  // what an exception escaping the worker's loop ends in

/// Sets SIGSEGV/SIGABRT/... to SIG_DFL while a pool is built, so that its
/// spawner and workers do not inherit Catch's handlers (which would print a
/// FAILED line from the worker before re-raising).
class DefaultFatalSignals {
public:
  DefaultFatalSignals() {
    for (std::size_t i = 0; i < std::size(sigs_); ++i) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(sigs_[i], &dfl, &saved_[i]);
    }
  }
  ~DefaultFatalSignals() {
    for (std::size_t i = 0; i < std::size(sigs_); ++i) ::sigaction(sigs_[i], &saved_[i], nullptr);
  }
  DefaultFatalSignals(const DefaultFatalSignals&) = delete;
  DefaultFatalSignals& operator=(const DefaultFatalSignals&) = delete;

private:
  static constexpr int sigs_[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGTERM};
  struct sigaction saved_[std::size(sigs_)] {};
};

std::unique_ptr<mp::Pool> make_pool(mp::PoolOptions o) {
  DefaultFatalSignals dfl;
  return std::make_unique<mp::Pool>(o);
}
std::unique_ptr<mp::Pool> make_pool(unsigned n) {
  mp::PoolOptions o;
  o.processes = n;
  return make_pool(o);
}

// ---- process and resource accounting -------------------------------------------

/// Whether /proc has no entry for pid: not running and not a zombie either.
bool no_trace(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d", static_cast<int>(pid));
  return ::access(path, F_OK) != 0;
}

/// Not running (gone, or a zombie whose parent has not reaped it yet).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return true;
  char buf[512] = {};
  const std::size_t got = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[got] = '\0';
  const char* rp = std::strrchr(buf, ')');
  char state = '?';
  return rp != nullptr && std::sscanf(rp + 1, " %c", &state) == 1 && (state == 'Z' || state == 'X');
}

template <class Pred>
bool eventually(std::chrono::milliseconds limit, Pred&& pred) {
  const auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// Whether workers 0..n-1 of pool have each begun a task.
bool workers_busy(mp::Pool& pool, unsigned n) {
  for (unsigned i = 0; i < n; ++i)
    if (mp::detail::TestAccess::tasks_begun(pool.backend(), i) == 0) return false;
  return true;
}

/// The pool's worker pids now (0 for a slot being forked).
std::vector<pid_t> worker_pids(mp::Pool& pool) { return pool.pids(); }

/// Waits until every slot has a live worker; returns their pids.
std::vector<pid_t> live_worker_pids(mp::Pool& pool) {
  std::vector<pid_t> p;
  eventually(5000ms, [&] {
    p = worker_pids(pool);
    return std::none_of(p.begin(), p.end(), [](pid_t x) { return x == 0; });
  });
  return p;
}

/// SIGKILLs pid only if it is still a child of `parent` (through a pidfd, so
/// a pid reused by an unrelated process is never signalled).
bool kill_child_of(pid_t pid, pid_t parent) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return false;
  const auto kids = mp_test::children_of(parent);
  bool ok = false;
  if (std::find(kids.begin(), kids.end(), pid) != kids.end())
    ok = ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0) == 0;
  ::close(fd);
  return ok;
}

template <class T>
std::string error_of(mp::AsyncResult<T>& r, pid_t* pid = nullptr) {
  try {
    r.get(10s);
  } catch (const mp::WorkerLostError& e) {
    if (pid != nullptr) *pid = e.pid();
    return std::string("WorkerLostError: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
  return "no error";
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool asan = true;
#else
constexpr bool asan = false;
#endif

}  // namespace

// ---- 1. a worker dies while it runs a task -------------------------------------------

TEST_CASE("a worker's death by each cause fails only its task, with WorkerLostError naming it",
          "[pool][reliability]") {
  auto pool = make_pool(2);
  struct Cause {
    const char* name;
    int (*fn)(int);
    int arg;
    const char* says;  // what the message must name
  };
  const Cause causes[] = {
      {"SIGKILL", die_sigkill, 0, "SIGKILL"},
      {"SIGSEGV", die_segv, 0, "SIGSEGV"},  // ASan turns it into an exit with status 1
      {"abort()", die_abort, 0, "SIGABRT"},
      {"std::terminate (an escaping exception)", die_terminate, 0, "SIGABRT"},
      {"std::exit(5)", die_exit, 5, "exited with status 5"},
      {"_exit(9)", die_underscore_exit, 9, "exited with status 9"},
  };
  for (const Cause& c : causes) {
    INFO(c.name);
    std::vector<mp::AsyncResult<int>> others;
    for (int i = 0; i < 20; ++i) others.push_back(pool->apply_async(sleepy, 2));
    std::atomic<long long> failed_at{0};
    const auto t0 = Clock::now();
    auto victim = pool->apply_async(c.fn, c.arg);
    victim.then([](const int&) {},
                [&](std::exception_ptr) { failed_at = (Clock::now() - t0).count(); });
    for (int i = 0; i < 20; ++i) others.push_back(pool->apply_async(sleepy, 2));
    pid_t pid = 0;
    const std::string err = error_of(victim, &pid);
    CHECK(err.rfind("WorkerLostError", 0) == 0);
    CHECK(pid > 0);
    CHECK(err.find(std::to_string(pid)) != std::string::npos);
    const bool named = err.find(c.says) != std::string::npos;
    if (asan) {
      CHECK((named || err.find("exited with status") != std::string::npos));
    } else {
      CHECK(named);
    }
    for (auto& r : others) CHECK(r.get(10s) == 2);
    REQUIRE(eventually(10'000ms, [&] { return failed_at.load() != 0; }));
    // The issue asks 100 ms; 1 s is generous on 2 noisy cores. Under ASan the dying
    // worker first symbolizes its stack, which alone can take over a second.
    CHECK(std::chrono::nanoseconds(failed_at.load()) < (asan ? 10s : 1s));
  }
  CHECK(pool->map(square, std::views::iota(0, 200))[199] == 199 * 199);  // replaced: full strength
}

TEST_CASE("a worker SIGKILLed from outside (as the OOM killer does) fails the task it ran",
          "[pool][reliability]") {
  auto pool = make_pool(2);
  const auto before = live_worker_pids(*pool);
  auto a = pool->apply_async(sleepy, 1000);
  auto b = pool->apply_async(sleepy, 1000);
  REQUIRE(eventually(10'000ms, [&] { return workers_busy(*pool, 2); }));  // both are inside their task
  REQUIRE(kill_child_of(before[0], pool->backend().spawner_pid()));
  pid_t pa = 0, pb = 0;
  const std::string ea = error_of(a, &pa), eb = error_of(b, &pb);
  // exactly one of the two was on the killed worker
  const int lost = (ea.rfind("WorkerLostError", 0) == 0) + (eb.rfind("WorkerLostError", 0) == 0);
  CHECK(lost == 1);
  CHECK((pa == before[0] || pb == before[0]));
  CHECK(((ea.find("SIGKILL") != std::string::npos) || (eb.find("SIGKILL") != std::string::npos)));
  CHECK(pool->apply(square, 7) == 49);
}

TEST_CASE("a map that contained a lost task fails with WorkerLostError, the pool stays usable",
          "[pool][reliability]") {
  auto pool = make_pool(2);
  for (std::size_t cs : {std::size_t{1}, std::size_t{7}}) {
    INFO("chunksize " << cs);
    try {
      pool->map([](int x) { return x == 33 ? die_sigkill(x) : x; }, std::views::iota(0, 200), cs);
      FAIL("no error");
    } catch (const mp::WorkerLostError& e) {
      CHECK(std::string(e.what()).find("SIGKILL") != std::string::npos);
      CHECK(e.pid() > 0);
    }
    auto ok = pool->map(square, std::views::iota(0, 1000), cs);
    CHECK(std::accumulate(ok.begin(), ok.end(), 0LL) == 332'833'500LL);
  }
}

TEST_CASE("thousands of tasks queued behind a dying task all complete", "[pool][reliability]") {
  auto pool = make_pool(2);
  std::vector<mp::AsyncResult<int>> rs;
  std::vector<mp::AsyncResult<int>> victims;
  for (int i = 0; i < 5000; ++i) {
    if (i % 1000 == 500) victims.push_back(pool->apply_async(die_sigkill, 0));
    rs.push_back(pool->apply_async(square, i % 1000));
  }
  long long sum = 0;
  for (auto& r : rs) sum += r.get(30s);
  CHECK(sum == 5 * 332'833'500LL);
  for (auto& v : victims) CHECK(error_of(v).rfind("WorkerLostError", 0) == 0);
}

// ---- 2. chaos: SIGKILL random workers at random moments ----------------------------------

namespace {

/// A multi-MiB result whose every word depends on i (so a torn or mixed-up
/// result is detected).
std::vector<std::uint32_t> chaos_big(int i) {
  const std::size_t words = (std::size_t{1} + static_cast<std::size_t>(i) % 4) << 18;  // 1-4 MiB
  std::vector<std::uint32_t> v(words);
  for (std::size_t k = 0; k < words; ++k) v[k] = static_cast<std::uint32_t>(i) * 2654435761u ^ static_cast<std::uint32_t>(k);
  return v;
}
bool chaos_big_ok(int i, const std::vector<std::uint32_t>& v) {
  const std::size_t words = (std::size_t{1} + static_cast<std::size_t>(i) % 4) << 18;
  if (v.size() != words) return false;
  for (std::size_t k = 0; k < words; ++k)
    if (v[k] != (static_cast<std::uint32_t>(i) * 2654435761u ^ static_cast<std::uint32_t>(k))) return false;
  return true;
}
std::uint64_t chaos_small(int i) {
  // a few microseconds of work, so that kills land inside tasks too
  std::uint64_t x = static_cast<std::uint64_t>(i);
  for (int k = 0; k < 200; ++k) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

long env_or(const char* name, long dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atol(v) : dflt;
}

struct ChaosCounts {
  long tasks = 0, correct = 0, lost = 0, lost_big = 0, wrong = 0, hung = 0, other_error = 0, duplicate_callbacks = 0,
       missing_callbacks = 0, maps = 0, maps_ok = 0, maps_lost = 0;
};

}  // namespace

TEST_CASE("chaos: random SIGKILLs during many tasks, every future resolves exactly once", "[pool][chaos]") {
  const long want_kills = env_or("MP_CHAOS_KILLS", 20);
  const long want_tasks = env_or("MP_CHAOS_TASKS", 5000);
  const int fds_before = mp_test::open_fd_count();
  const auto shm_before = mp_test::dev_shm_names();
  const auto kids_before = mp_test::children_of(::getpid()).size();
  std::set<pid_t> seen_workers;
  std::vector<double> latency_ms;
  ChaosCounts c;
  long kills = 0;
  {
    auto pool = make_pool(3);
    const pid_t spawner = pool->backend().spawner_pid();
    std::mutex mu;                       // guards kill_times, latency_ms, seen_workers
    std::map<pid_t, Clock::time_point> kill_times;
    std::atomic<bool> stop{false};
    std::atomic<long> killed{0};
    std::thread killer([&] {
      std::mt19937 rng(12345);
      std::uniform_int_distribution<int> pause_us(0, 12'000);
      while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
        const auto pids = worker_pids(*pool);
        const pid_t victim = pids[static_cast<std::size_t>(rng()) % pids.size()];
        if (victim == 0) continue;
        {
          std::lock_guard lock(mu);  // before the kill: its WorkerLostError may come at once
          kill_times[victim] = Clock::now();
        }
        if (!kill_child_of(victim, spawner)) continue;
        std::lock_guard lock(mu);
        seen_workers.insert(victim);
        ++killed;
      }
    });
    auto on_lost = [&](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const mp::WorkerLostError& w) {
        const auto now = Clock::now();
        std::lock_guard lock(mu);
        auto it = kill_times.find(w.pid());
        if (it != kill_times.end())
          latency_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
      } catch (...) {
      }
    };
    constexpr int window = 2000;
    int next = 0;
    while (c.tasks < want_tasks || killed.load() < want_kills) {
      std::vector<mp::AsyncResult<std::uint64_t>> small;
      std::vector<std::pair<int, mp::AsyncResult<std::vector<std::uint32_t>>>> bigs;
      std::vector<std::atomic<int>> calls(window);
      small.reserve(window);
      for (int k = 0; k < window; ++k, ++next) {
        std::atomic<int>* cnt = &calls[static_cast<std::size_t>(k)];
        auto on_err = [cnt, &on_lost](std::exception_ptr e) {
          ++*cnt;
          on_lost(e);
        };
        if (k % 250 == 7) {
          auto r = pool->apply_async(chaos_big, next);
          r.then([cnt](const std::vector<std::uint32_t>&) { ++*cnt; }, on_err);
          bigs.emplace_back(next, r);
          continue;
        }
        auto r = pool->apply_async(chaos_small, next);
        r.then([cnt](const std::uint64_t&) { ++*cnt; }, on_err);
        small.push_back(r);
      }
      const int base = next - window;
      auto m = pool->map_async(chaos_small, std::views::iota(base, base + 300), 10);
      std::size_t si = 0;
      for (int k = 0; k < window; ++k) {
        if (k % 250 == 7) continue;
        auto& r = small[si++];
        ++c.tasks;
        try {
          const std::uint64_t v = r.get(60s);
          if (v == chaos_small(base + k)) ++c.correct; else ++c.wrong;
        } catch (const mp::WorkerLostError&) {
          ++c.lost;
        } catch (const mp::TimeoutError&) {
          ++c.hung;
        } catch (...) {
          ++c.other_error;
        }
      }
      for (auto& [i, r] : bigs) {
        ++c.tasks;
        try {
          if (chaos_big_ok(i, r.get(60s))) ++c.correct; else ++c.wrong;
        } catch (const mp::WorkerLostError&) {
          ++c.lost;
          ++c.lost_big;
        } catch (const mp::TimeoutError&) {
          ++c.hung;
        } catch (...) {
          ++c.other_error;
        }
      }
      ++c.maps;
      try {
        const auto v = m.get(60s);
        bool ok = v.size() == 300;
        for (std::size_t k = 0; ok && k < v.size(); ++k) ok = v[k] == chaos_small(base + static_cast<int>(k));
        if (ok) ++c.maps_ok; else ++c.wrong;
      } catch (const mp::WorkerLostError&) {
        ++c.maps_lost;
      } catch (const mp::TimeoutError&) {
        ++c.hung;
      } catch (...) {
        ++c.other_error;
      }
      // callbacks run on the result thread just after completion: wait for
      // a missing one, then count
      for (int k = 0; k < window; ++k) {
        const int n = calls[static_cast<std::size_t>(k)].load();
        if (n > 1) ++c.duplicate_callbacks;
        if (n == 0 && !eventually(5000ms, [&] { return calls[static_cast<std::size_t>(k)].load() != 0; }))
          ++c.missing_callbacks;
      }
      if (c.hung != 0) break;
    }
    stop = true;
    killer.join();
    kills = killed.load();
    if (c.hung != 0) pool->terminate();
    // afterwards the pool still maps correctly
    auto after = pool->map(square, std::views::iota(0, 10'000));
    long long sum = 0;
    for (int v : after) sum += v;
    CHECK(sum == 333'283'335'000LL);
    for (pid_t p : worker_pids(*pool)) seen_workers.insert(p);
  }
  // nothing left behind
  const int fds_after = mp_test::open_fd_count();
  const auto shm_after = mp_test::dev_shm_names();
  const auto kids_after = mp_test::children_of(::getpid()).size();
  long leaked_procs = 0;
  for (pid_t p : seen_workers)
    if (p > 0 && !no_trace(p)) ++leaked_procs;
  std::sort(latency_ms.begin(), latency_ms.end());
  const double med = latency_ms.empty() ? 0 : latency_ms[latency_ms.size() / 2];
  const double p99 = latency_ms.empty() ? 0 : latency_ms[latency_ms.size() * 99 / 100];
  const double mx = latency_ms.empty() ? 0 : latency_ms.back();
  std::printf(
      "chaos: kills %ld, tasks %ld (correct %ld, WorkerLostError %ld (%ld multi-MiB), wrong %ld, other errors %ld), maps %ld "
      "(ok %ld, lost %ld), hung %ld, duplicate callbacks %ld, missing callbacks %ld; leaks: processes %ld, fds %d, "
      "/dev/shm %zd, children %zd; WorkerLostError latency ms median %.2f p99 %.2f max %.2f (n=%zu)\n",
      kills, c.tasks, c.correct, c.lost, c.lost_big, c.wrong, c.other_error, c.maps, c.maps_ok, c.maps_lost, c.hung,
      c.duplicate_callbacks, c.missing_callbacks, leaked_procs, fds_after - fds_before,
      static_cast<std::ptrdiff_t>(shm_after.size()) - static_cast<std::ptrdiff_t>(shm_before.size()),
      static_cast<std::ptrdiff_t>(kids_after) - static_cast<std::ptrdiff_t>(kids_before), med, p99, mx,
      latency_ms.size());
  CHECK(kills >= want_kills);
  CHECK(c.tasks >= want_tasks);
  CHECK(c.correct + c.lost == c.tasks);
  CHECK(c.wrong == 0);
  CHECK(c.other_error == 0);
  CHECK(c.hung == 0);
  CHECK(c.duplicate_callbacks == 0);
  CHECK(c.missing_callbacks == 0);
  CHECK(c.lost <= kills);  // a kill costs at most the one task its worker ran
  CHECK(c.maps_ok + c.maps_lost == c.maps);
  CHECK(leaked_procs == 0);
  CHECK(fds_after == fds_before);
  CHECK(shm_after == shm_before);
  CHECK(kids_after == kids_before);
}

// ---- 4. the parent and signals -------------------------------------------------------

namespace {

/// Runs body(pool) in a forked child that first sends its pool's pids
/// (spawner, workers) through a pipe; returns {child pid, those pids}.
template <class Body>
std::pair<pid_t, std::vector<pid_t>> child_with_pool(bool own_group, Body body) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  std::fflush(nullptr);  // the child must not print our buffered output again
  const pid_t child = mp_test::fork_child([&] {
    ::close(fds[0]);
    if (own_group) ::setpgid(0, 0);
    mp::Pool pool(2);
    std::vector<pid_t> pids{pool.backend().spawner_pid()};
    for (pid_t p : live_worker_pids(pool)) pids.push_back(p);
    if (pool.apply(square, 3) != 9) return 3;
    if (::write(fds[1], pids.data(), pids.size() * sizeof(pid_t)) != static_cast<ssize_t>(pids.size() * sizeof(pid_t)))
      return 4;
    ::close(fds[1]);
    return body(pool);
  });
  if (own_group) ::setpgid(child, child);  // also from here: no race with the signal below
  ::close(fds[1]);
  std::vector<pid_t> pids(3);
  const ssize_t got = ::read(fds[0], pids.data(), pids.size() * sizeof(pid_t));
  ::close(fds[0]);
  if (got != static_cast<ssize_t>(pids.size() * sizeof(pid_t))) pids.clear();
  return {child, pids};
}

}  // namespace

TEST_CASE("the parent SIGKILLed during a map: spawner and busy workers exit within a second",
          "[pool][reliability]") {
  auto [child, pids] = child_with_pool(false, [](mp::Pool& pool) {
    pool.map(sleepy, std::vector<int>(1000, 20), 1);
    return 0;
  });
  REQUIRE(pids.size() == 3);
  std::this_thread::sleep_for(100ms);  // the workers are inside tasks now
  ::kill(child, SIGKILL);
  CHECK(mp_test::killed_by(mp_test::wait_child(child), SIGKILL));
  CHECK(eventually(1000ms, [&] { return std::all_of(pids.begin(), pids.end(), process_gone); }));
}

TEST_CASE("Ctrl-C (SIGINT to the process group) during a map: the caller is interrupted, no worker survives",
          "[pool][reliability]") {
  auto [child, pids] = child_with_pool(true, [](mp::Pool& pool) {
    pool.map(sleepy, std::vector<int>(1000, 20), 1);
    return 0;  // not reached: SIGINT's default action ends the process
  });
  REQUIRE(pids.size() == 3);
  std::this_thread::sleep_for(100ms);
  REQUIRE(::kill(-child, SIGINT) == 0);  // as a terminal does: the whole foreground group
  const int st = mp_test::wait_child(child);
  CHECK(mp_test::killed_by(st, SIGINT));
  CHECK(eventually(1000ms, [&] { return std::all_of(pids.begin(), pids.end(), process_gone); }));
}

TEST_CASE("terminate() and the destructor leave no zombie and no process", "[pool][reliability]") {
  for (int mode = 0; mode < 3; ++mode) {
    INFO("mode " << mode);
    std::vector<pid_t> pids;
    {
      auto pool = make_pool(3);
      pids = live_worker_pids(*pool);
      pids.push_back(pool->backend().spawner_pid());
      std::vector<mp::AsyncResult<int>> rs;
      for (int i = 0; i < 50; ++i) rs.push_back(pool->apply_async(sleepy, 2));
      if (mode == 0) pool->terminate();
      if (mode == 1) {
        pool->close();
        pool->join();
      }
      if (mode != 2) {
        for (pid_t p : pids) CHECK(no_trace(p));  // reaped, not zombies, at once
      }
    }  // mode 2: the destructor waits for the tasks, then reaps
    for (pid_t p : pids) CHECK(no_trace(p));
    CHECK(mp_test::children_of(::getpid()).empty());
  }
}

// ---- the spawner dies: the pool heals ------------------------------------------------

namespace {

/// The process, fd and /dev/shm accounting of a test: check() after the
/// pools it made are gone.
struct NothingLeft {
  int fds = mp_test::open_fd_count();
  std::set<std::string> shm = mp_test::dev_shm_names();
  void check(const std::vector<pid_t>& seen) const {
    CHECK(mp_test::open_fd_count() == fds);
    // Other programs (an MPI run, say) may add entries meanwhile: only those
    // whose name ends in this test's pid would be ours.
    const std::string mine = std::to_string(::getpid());
    for (const auto& name : mp_test::dev_shm_names())
      if (shm.count(name) == 0) CHECK(name.find(mine) == std::string::npos);
    CHECK(mp_test::children_of(::getpid()).empty());
    for (pid_t p : seen) CHECK(eventually(5000ms, [&] { return process_gone(p); }));
  }
};

/// Runs body(seen), which makes pools and adds the pids it saw to `seen`;
/// then checks that nothing of them is left.
template <class Body>
void leaves_nothing(Body body) {
  NothingLeft before;
  std::vector<pid_t> seen;
  body(seen);
  before.check(seen);
}

/// Waits until the pool has a new active spawner (not `old`), a standby and
/// a live worker in every slot (none of them in `old_workers`); returns
/// whether it did within 10 s. Adds every pid it saw to `seen`.
bool healed(mp::Pool& pool, pid_t old, const std::vector<pid_t>& old_workers, std::vector<pid_t>& seen) {
  const bool ok = eventually(10'000ms, [&] {
    const pid_t sp = pool.backend().spawner_pid();
    if (sp <= 0 || sp == old || pool.backend().standby_pid() <= 0) return false;
    for (pid_t w : pool.pids())
      if (w == 0 || process_gone(w) || std::count(old_workers.begin(), old_workers.end(), w) != 0) return false;
    return true;
  });
  seen.push_back(pool.backend().spawner_pid());
  seen.push_back(pool.backend().standby_pid());
  for (pid_t w : pool.pids()) seen.push_back(w);
  return ok;
}

/// The write end of a pipe that began_then_sleep writes one byte to as it
/// begins (set before the pool is made, so its workers inherit it).
int began_fd = -1;
int began_then_sleep(int ms) {
  const char b = 1;
  if (::write(began_fd, &b, 1) != 1) return -1;
  return sleepy(ms);
}

/// Reads n bytes from fd (blocks).
void read_bytes(int fd, int n) {
  char b = 0;
  for (int i = 0; i < n; ++i) REQUIRE(::read(fd, &b, 1) == 1);
}

/// Kills the pool's active spawner; returns its pid.
pid_t kill_spawner(mp::Pool& pool) {
  const pid_t sp = pool.backend().spawner_pid();
  REQUIRE(::kill(sp, SIGKILL) == 0);
  return sp;
}

/// n futures of f(arg(i)) and the value each should have, want(i).
struct Batch {
  std::vector<mp::AsyncResult<int>> rs;
  std::vector<int> want;
};
template <class Arg, class Want>
Batch submit_batch(mp::Pool& pool, int n, int (*f)(int), Arg arg, Want want) {
  Batch b;
  for (int i = 0; i < n; ++i) {
    b.rs.push_back(pool.apply_async(f, arg(i)));
    b.want.push_back(want(i));
  }
  return b;
}

/// Every future resolves: with its value, or WorkerLostError; counts both.
std::pair<int, int> values_and_losses(std::vector<mp::AsyncResult<int>>& rs, const std::vector<int>& want) {
  int values = 0, losses = 0;
  for (std::size_t i = 0; i < rs.size(); ++i) {
    try {
      const int v = rs[i].get(20s);
      CHECK(v == want[i]);
      ++values;
    } catch (const mp::WorkerLostError&) {
      ++losses;
    }
  }
  return {values, losses};
}

/// Kills the active spawner while batch b runs; checks that every future of
/// b resolves, at most max_lost of them with WorkerLostError (the tasks the
/// workers ran). Returns the dead spawner's pid, also added to `seen`.
pid_t kill_spawner_under(mp::Pool& pool, Batch& b, int max_lost, std::vector<pid_t>& seen) {
  const pid_t old = kill_spawner(pool);
  seen.push_back(old);
  const auto [values, losses] = values_and_losses(b.rs, b.want);
  CHECK(values + losses == static_cast<int>(b.rs.size()));
  CHECK(losses <= max_lost);
  return old;
}

}  // namespace

TEST_CASE("the spawner killed while the pool is idle: the standby takes over, the pool is whole again",
          "[pool][reliability][heal]") {
  leaves_nothing([](std::vector<pid_t>& seen) {
    auto pool = make_pool(2);
    const auto workers = live_worker_pids(*pool);
    seen = workers;
    const pid_t standby = pool->backend().standby_pid();
    const pid_t old = kill_spawner(*pool);
    seen.push_back(old);
    REQUIRE(healed(*pool, old, workers, seen));
    CHECK(pool->backend().spawner_pid() == standby);  // the standby took over
    CHECK(pool->apply(square, 7) == 49);
    const auto v = pool->map(square, std::views::iota(0, 1000));
    for (int i = 0; i < 1000; ++i) CHECK(v[static_cast<std::size_t>(i)] == i * i);
  });
}

TEST_CASE("the spawner killed during a map: each future resolves once, the pool heals and maps correctly",
          "[pool][reliability][heal]") {
  leaves_nothing([](std::vector<pid_t>& seen) {
    auto pool = make_pool(3);
    const auto workers = live_worker_pids(*pool);
    seen = workers;
    auto b = submit_batch(*pool, 300, sleepy, [](int i) { return i % 3; }, [](int i) { return i % 3; });
    auto m = pool->map_async(sleepy, std::vector<int>(60, 5), 1);
    std::this_thread::sleep_for(20ms);  // let the tasks begin (a pause, not a wait on a result)
    const pid_t old = kill_spawner_under(*pool, b, 3, seen);
    try {
      const std::vector<int> mv = m.get(20s);
      CHECK(mv == std::vector<int>(60, 5));
    } catch (const mp::WorkerLostError& e) {
      CHECK(std::string(e.what()).find("spawner process " + std::to_string(old) + " died (killed by SIGKILL)") !=
            std::string::npos);
    }
    REQUIRE(healed(*pool, old, workers, seen));
    const auto v = pool->map(square, std::views::iota(0, 10'000));
    for (int i = 0; i < 10'000; ++i) REQUIRE(v[static_cast<std::size_t>(i)] == i * i);
  });
}

TEST_CASE("the spawner killed while it forks workers: every future resolves, the pool heals",
          "[pool][reliability][heal]") {
  NothingLeft before;
  std::vector<pid_t> seen;
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    mp::PoolOptions o;
    o.processes = 2;
    o.maxtasksperchild = 1;  // every task ends its worker: the spawner forks all the time
    auto pool = make_pool(o);
    const auto workers = live_worker_pids(*pool);
    seen.insert(seen.end(), workers.begin(), workers.end());
    auto b = submit_batch(*pool, 200, square, [](int i) { return i; }, [](int i) { return i * i; });
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20'000)(rng)));
    const pid_t old = kill_spawner_under(*pool, b, 2, seen);
    REQUIRE(healed(*pool, old, {}, seen));
    CHECK(pool->apply(square, 9) == 81);
  }
  before.check(seen);
}

TEST_CASE("the spawner killed during terminate(): unfinished futures fail with ClosedError",
          "[pool][reliability][heal]") {
  NothingLeft before;
  std::vector<pid_t> seen;
  int began[2];
  REQUIRE(::pipe2(began, O_CLOEXEC) == 0);
  began_fd = began[1];
  for (int round = 0; round < 5; ++round) {
    auto pool = make_pool(2);
    const auto workers = live_worker_pids(*pool);
    seen.insert(seen.end(), workers.begin(), workers.end());
    seen.push_back(pool->backend().standby_pid());
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 20; ++i) rs.push_back(pool->apply_async(began_then_sleep, 5000));
    read_bytes(began[0], 2);  // both workers run a task now
    const pid_t sp = pool->backend().spawner_pid();
    seen.push_back(sp);
    std::thread killer([&] {
      if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100 * round));
      ::kill(sp, SIGKILL);
    });
    pool->terminate();
    killer.join();
    for (auto& r : rs) CHECK_THROWS_AS(r.get(10s), mp::ClosedError);
  }
  ::close(began[0]);
  ::close(began[1]);
  before.check(seen);
}

TEST_CASE("the spawner and a worker killed together: each future resolves once, the pool heals",
          "[pool][reliability][heal]") {
  leaves_nothing([](std::vector<pid_t>& seen) {
    auto pool = make_pool(2);
    const auto workers = live_worker_pids(*pool);
    seen = workers;
    auto b = submit_batch(*pool, 100, sleepy, [](int) { return 2; }, [](int) { return 2; });
    REQUIRE(kill_child_of(workers[0], pool->backend().spawner_pid()));
    const pid_t old = kill_spawner_under(*pool, b, 2, seen);
    REQUIRE(healed(*pool, old, workers, seen));
    CHECK(pool->map(square, std::vector<int>{1, 2, 3}) == std::vector<int>{1, 4, 9});
  });
}

TEST_CASE("20 rounds of spawner kills on one pool, then a correct map", "[pool][reliability][heal]") {
  leaves_nothing([](std::vector<pid_t>& seen) {
    auto pool = make_pool(2);
    for (int round = 0; round < 20; ++round) {
      const auto workers = live_worker_pids(*pool);
      seen.insert(seen.end(), workers.begin(), workers.end());
      auto r = pool->apply_async(square, round);
      const pid_t old = kill_spawner(*pool);
      seen.push_back(old);
      try {
        const int v = r.get(20s);
        CHECK(v == round * round);
      } catch (const mp::WorkerLostError&) {
      }
      REQUIRE(healed(*pool, old, workers, seen));
    }
    const auto v = pool->map(square, std::views::iota(0, 5000));
    for (int i = 0; i < 5000; ++i) REQUIRE(v[static_cast<std::size_t>(i)] == i * i);
  });
}

TEST_CASE("the standby killed: the active spawner makes another", "[pool][reliability][heal]") {
  leaves_nothing([](std::vector<pid_t>& seen) {
    auto pool = make_pool(2);
    const auto workers = live_worker_pids(*pool);
    seen = workers;
    const pid_t standby = pool->backend().standby_pid();
    seen.push_back(standby);
    REQUIRE(::kill(standby, SIGKILL) == 0);
    CHECK(eventually(10'000ms, [&] {
      const pid_t s = pool->backend().standby_pid();
      return s > 0 && s != standby;
    }));
    CHECK(pool->pids() == workers);  // the workers were not touched
    const pid_t old = kill_spawner(*pool);  // the new standby takes over
    seen.push_back(old);
    REQUIRE(healed(*pool, old, workers, seen));
    CHECK(pool->apply(square, 5) == 25);
  });
}

TEST_CASE("the spawner and its standby killed together: the pool is broken and says why",
          "[pool][reliability][heal]") {
  leaves_nothing([](std::vector<pid_t>& seen) {
    auto pool = make_pool(2);
    seen = live_worker_pids(*pool);
    CHECK(pool->apply(square, 3) == 9);
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 20; ++i) rs.push_back(pool->apply_async(sleepy, 300));
    auto m = pool->map_async(sleepy, std::vector<int>(50, 10), 1);
    const pid_t standby = pool->backend().standby_pid();
    seen.push_back(standby);
    REQUIRE(::kill(standby, SIGKILL) == 0);
    const pid_t spawner = kill_spawner(*pool);
    seen.push_back(spawner);
    const auto t0 = Clock::now();
    int lost = 0;
    for (auto& r : rs) {
      const std::string e = error_of(r);
      if (e == "no error") continue;  // finished before its worker died
      ++lost;
      CHECK(e.find("spawner process " + std::to_string(spawner) + " died (killed by SIGKILL)") != std::string::npos);
    }
    CHECK(lost >= 18);  // at most the 2 running tasks could have finished
    CHECK_THROWS_AS(m.get(10s), mp::WorkerLostError);
    CHECK(Clock::now() - t0 < 5s);
    try {
      pool->apply(square, 2);
      FAIL("no error");
    } catch (const std::logic_error& e) {
      const std::string what = e.what();
      CHECK(what.find("standby spawner") != std::string::npos);
      CHECK(what.find("no process is left that can make workers, so the pool is broken") != std::string::npos);
    }
    CHECK_THROWS_AS(pool->map(square, std::views::iota(0, 10)), std::logic_error);
    pool->close();
    pool->join();  // returns: nothing is outstanding
  });
}

// ---- 5. nothing left behind ----------------------------------------------------------

TEST_CASE("pools and queues destroyed normally or by terminate leave no process, fd or /dev/shm entry",
          "[pool][reliability]") {
  const int fds = mp_test::open_fd_count();
  const auto shm = mp_test::dev_shm_names();
  std::set<pid_t> all;
  for (int i = 0; i < 10; ++i) {
    auto pool = make_pool(2);
    for (pid_t p : live_worker_pids(*pool)) all.insert(p);
    all.insert(pool->backend().spawner_pid());
    mp::Queue<std::string> q;
    q.put("x" + std::to_string(i));
    const std::string name = "mp_rel_" + std::to_string(::getpid()) + "_" + std::to_string(i);
    auto named = mp::Queue<int>::create(name);
    named.put(i);
    CHECK(pool->apply(square, i) == i * i);
    CHECK(q.get() == "x" + std::to_string(i));
    CHECK(named.get() == i);
    CHECK(mp::Queue<int>::remove(name));
    if (i % 3 == 0) pool->terminate();
    if (i % 3 == 1) (void)pool->apply_async(sleepy, 50);  // destroyed with a task running
  }
  CHECK(mp_test::open_fd_count() == fds);
  CHECK(mp_test::dev_shm_names() == shm);
  CHECK(mp_test::children_of(::getpid()).empty());
  for (pid_t p : all) CHECK(no_trace(p));
}

// ---- 6. bad input ------------------------------------------------------------------

namespace {

/// A result type whose encoding throws in the worker: in the size pass
/// (mode 1) or midway through writing into the ring (mode 2).
struct Fragile {
  int mode = 0;
  std::vector<char> payload;
  template <class A>
  void serialize(A& a) {
    if (mode == 1 && std::is_same_v<A, mp::detail::SizeArchive>) throw std::runtime_error("cannot size");
    a(mode, payload);
    if (mode == 2 && std::is_same_v<A, mp::detail::OutputArchive>) throw std::runtime_error("cannot encode");
  }
};
Fragile make_fragile(int mode, int mib) {
  return Fragile{mode, std::vector<char>(static_cast<std::size_t>(mib) << 20, 'f')};
}

}  // namespace

TEST_CASE("a result that throws while being encoded in the worker fails only its own future",
          "[pool][reliability]") {
  auto pool = make_pool(2);
  for (int mib : {0, 12}) {  // in place, and a result larger than the ring (fragmented)
    INFO(mib << " MiB");
    std::vector<mp::AsyncResult<int>> others;
    for (int i = 0; i < 50; ++i) others.push_back(pool->apply_async(square, i));
    auto a = pool->apply_async(make_fragile, 1, mib);
    auto b = pool->apply_async(make_fragile, 2, mib);
    auto ok = pool->apply_async(make_fragile, 0, mib);
    for (int i = 0; i < 50; ++i) others.push_back(pool->apply_async(square, i));
    CHECK_THROWS_MATCHES(a.get(10s), std::runtime_error, Catch::Message("cannot size"));
    CHECK_THROWS_MATCHES(b.get(10s), std::runtime_error, Catch::Message("cannot encode"));
    CHECK(ok.get(10s).payload.size() == (static_cast<std::size_t>(mib) << 20));
    long long sum = 0;
    for (auto& r : others) sum += r.get(10s);
    CHECK(sum == 2 * 40425);
  }
}

// ---- 7. fork and threads -------------------------------------------------------------

TEST_CASE("a pool built while other threads run, used from 4 threads at once", "[pool][reliability]") {
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  std::mutex held;  // a lock held by another thread at fork time
  std::atomic<bool> holding{false};
  busy.emplace_back([&] {
    std::lock_guard lock(held);
    holding = true;
    while (!stop) std::this_thread::sleep_for(1ms);
  });
  for (int i = 0; i < 2; ++i)
    busy.emplace_back([&] {
      std::vector<std::string> junk;  // malloc traffic while the spawner is forked
      while (!stop) {
        junk.emplace_back(100, 'x');
        if (junk.size() > 1000) junk.clear();
      }
    });
  while (!holding) std::this_thread::yield();
  {
    mp::Pool pool(2);
    std::atomic<long long> total{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> users;
    for (int t = 0; t < 4; ++t) {
      users.emplace_back([&, t] {
        long long mine = 0;
        for (int round = 0; round < 20; ++round) {
          std::vector<mp::AsyncResult<int>> rs;
          for (int i = 0; i < 100; ++i) rs.push_back(pool.apply_async(square, t * 1000 + i));
          for (auto& r : rs) mine += r.get(30s);
          auto m = pool.map(square, std::views::iota(0, 100), 7);
          mine += std::accumulate(m.begin(), m.end(), 0LL);
          if (m[99] != 9801) ++failures;
        }
        total += mine;
      });
    }
    for (auto& u : users) u.join();
    long long want = 0;
    for (int t = 0; t < 4; ++t)
      for (int i = 0; i < 100; ++i) want += 20LL * (t * 1000 + i) * (t * 1000 + i);
    want += 4LL * 20 * 328'350;
    CHECK(total == want);
    CHECK(failures == 0);
  }
  stop = true;
  for (auto& b : busy) b.join();
}

// ---- stdio at fork -------------------------------------------------------------------

// Before the spawner discarded inherited stdio buffers, each worker's exit
// flush printed MARK again (11 copies were seen).
TEST_CASE("output buffered in the parent when the pool is built is not printed again by workers",
          "[pool][reliability]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t child = mp_test::fork_child([&] {
    ::close(fds[0]);
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[1]);
    static char buf[4096];
    std::setvbuf(stdout, buf, _IOFBF, sizeof buf);
    std::printf("MARK");  // sits in this process's stdio buffer
    {
      mp::PoolOptions o;
      o.processes = 2;
      o.maxtasksperchild = 1;  // workers that exit (and flush) on their own
      mp::Pool pool(o);
      auto r = pool.map(square, std::views::iota(0, 10), 1);
      if (r[9] != 81) return 3;
    }
    std::fflush(stdout);
    return 0;
  });
  ::close(fds[1]);
  std::string out;
  char b[256];
  for (ssize_t n; (n = ::read(fds[0], b, sizeof b)) > 0;) out.append(b, static_cast<std::size_t>(n));
  ::close(fds[0]);
  CHECK(mp_test::exited_with(mp_test::wait_child(child), 0));
  std::size_t marks = 0;
  for (std::size_t p = out.find("MARK"); p != std::string::npos; p = out.find("MARK", p + 1)) ++marks;
  CHECK(marks == 1);
}

// ---- 3. timeouts and cancellation ------------------------------------------------------

TEST_CASE("a task past PoolOptions::task_timeout: its worker is killed and replaced, TimeoutError",
          "[pool][reliability]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.task_timeout = 300ms;
  auto pool = make_pool(o);
  const auto t0 = Clock::now();
  auto slow = pool->apply_async(sleepy, 20'000);
  std::vector<mp::AsyncResult<int>> quick;
  for (int i = 0; i < 50; ++i) quick.push_back(pool->apply_async(sleepy, 5));
  try {
    slow.get(10s);
    FAIL("no error");
  } catch (const mp::TaskTimeoutError& e) {
    const std::string what = e.what();
    CHECK(what.find("longer than") != std::string::npos);
    CHECK(what.find("killed and replaced") != std::string::npos);
  }
  CHECK(Clock::now() - t0 < 10s);
  for (auto& r : quick) CHECK(r.get(10s) == 5);
  // a map with one slow item fails with the timeout; the pool maps on
  std::vector<int> items(40, 1);
  items[17] = 20'000;
  CHECK_THROWS_AS(pool->map(sleepy, items, 1), mp::TaskTimeoutError);
  static_assert(std::is_base_of_v<mp::TimeoutError, mp::TaskTimeoutError>);
  CHECK(pool->map(square, std::views::iota(0, 100))[99] == 9801);
}

TEST_CASE("AsyncResult::cancel: a task not started is removed, a running one only by killing its worker",
          "[pool][reliability]") {
  mp::PoolOptions o;
  o.processes = 1;
  o.window = 1;  // one task in the worker's channel, the rest wait in the parent
  auto pool = make_pool(o);
  auto running = pool->apply_async(sleepy, 300);
  REQUIRE(eventually(10'000ms, [&] { return workers_busy(*pool, 1); }));
  auto queued = pool->apply_async(sleepy, 10);    // in the worker's channel
  auto waiting = pool->apply_async(sleepy, 10);   // in the parent
  auto waiting2 = pool->apply_async(sleepy, 11);
  CHECK(waiting.cancel());
  CHECK_THROWS_AS(waiting.get(1s), mp::CancelledError);
  CHECK(waiting.cancel());  // cancelled already: true again, as in concurrent.futures
  CHECK(waiting.cancel());
  CHECK_FALSE(running.cancel());  // running: not without kill_if_running
  CHECK(running.cancel(true));
  CHECK(running.cancel(true));
  CHECK_THROWS_AS(running.get(10s), mp::CancelledError);
  CHECK(queued.get(10s) == 10);   // the replacement ran it
  CHECK(waiting2.get(10s) == 11);
  CHECK_FALSE(waiting2.cancel());
  CHECK(pool->apply(square, 9) == 81);
}

TEST_CASE("cancelling a map_async cancels its unstarted chunks, the map fails with CancelledError",
          "[pool][reliability]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.window = 1;
  auto pool = make_pool(o);
  auto m = pool->map_async(sleepy, std::vector<int>(200, 20), 1);
  REQUIRE(eventually(10'000ms, [&] { return workers_busy(*pool, 2); }));
  const auto t0 = Clock::now();
  CHECK(m.cancel());
  CHECK_THROWS_AS(m.get(10s), mp::CancelledError);
  CHECK(Clock::now() - t0 < 2s);  // 200 x 20 ms on 2 workers would take 2 s
  // from a callback on the result thread: no deadlock
  auto first = pool->apply_async(sleepy, 100);
  auto other = pool->map_async(sleepy, std::vector<int>(100, 20), 1);
  std::atomic<int> cancelled{-1};
  first.then([&](const int&) { cancelled = other.cancel() ? 1 : 0; });
  CHECK(first.get(10s) == 100);
  CHECK(eventually(5000ms, [&] { return cancelled.load() != -1; }));
  CHECK(cancelled == 1);
  CHECK_THROWS_AS(other.get(10s), mp::CancelledError);
  CHECK(pool->map(square, std::views::iota(0, 50))[7] == 49);
}

TEST_CASE("cancel(true) on a map_async fails it at once, without running its other chunks",
          "[pool][reliability]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.window = 4;  // chunks wait in the workers' channels too
  int began[2];
  REQUIRE(::pipe2(began, O_CLOEXEC) == 0);
  began_fd = began[1];
  auto pool2 = make_pool(o);  // made after began_fd is set: its workers write to it
  auto m = pool2->map_async(began_then_sleep, std::vector<int>(40, 2000), 1);
  read_bytes(began[0], 2);  // both workers run a chunk
  const auto t0 = Clock::now();
  CHECK(m.cancel(true));
  CHECK_THROWS_AS(m.get(10s), mp::CancelledError);
  CHECK(Clock::now() - t0 < 1s);  // a chunk takes 2 s
  CHECK(m.cancel(true));          // idempotent
  CHECK(pool2->apply(square, 4) == 16);
  pool2.reset();
  ::close(began[0]);
  ::close(began[1]);
}

// ---- shutdown from anywhere ------------------------------------------------------------

TEST_CASE("terminate() and close() from a then() callback, join() from one throws logic_error",
          "[pool][reliability]") {
  NothingLeft before;
  {
    auto pool = make_pool(2);
    auto quick = pool->apply_async(sleepy, 300);  // ends while the slow ones run or wait
    std::vector<mp::AsyncResult<int>> slow;
    for (int i = 0; i < 6; ++i) slow.push_back(pool->apply_async(sleepy, 5000));
    std::atomic<int> runs{0};
    std::string join_error;
    quick.then([&](const int&) {  // registered well within the 300 ms: runs on the result thread
      try {
        pool->join();
      } catch (const std::logic_error& e) {
        join_error = e.what();
      }
      pool->close();
      pool->terminate();
      pool->terminate();
      ++runs;
    });
    CHECK(quick.get(10s) == 300);
    REQUIRE(eventually(10'000ms, [&] { return runs.load() == 1; }));
    CHECK(join_error.find("then() callback") != std::string::npos);
    for (auto& r : slow) CHECK_THROWS_AS(r.get(10s), mp::ClosedError);
    CHECK_THROWS_AS(pool->apply_async(square, 1), std::logic_error);
    pool->join();  // from this thread: returns
    CHECK(runs.load() == 1);
  }  // the destructor joins the result thread
  before.check({});
}

TEST_CASE("terminate() from another thread: every unfinished future fails with ClosedError",
          "[pool][reliability]") {
  int began[2];
  REQUIRE(::pipe2(began, O_CLOEXEC) == 0);
  began_fd = began[1];
  for (int round = 0; round < 3; ++round) {
    auto pool = make_pool(2);
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 10; ++i) rs.push_back(pool->apply_async(began_then_sleep, 5000));
    read_bytes(began[0], 2);  // two tasks run: terminate kills their workers
    std::thread([&] { pool->terminate(); }).join();
    for (auto& r : rs) CHECK_THROWS_AS(r.get(10s), mp::ClosedError);
  }
  ::close(began[0]);
  ::close(began[1]);
}

namespace {
int began_pid_then_sleep(int ms) {
  const pid_t me = ::getpid();
  if (::write(began_fd, &me, sizeof me) != static_cast<ssize_t>(sizeof me)) return -1;
  return sleepy(ms);
}
}  // namespace

TEST_CASE("pids() names a worker that runs a task, never 0", "[pool][reliability]") {
  int began[2];
  REQUIRE(::pipe2(began, O_CLOEXEC) == 0);
  began_fd = began[1];
  mp::PoolOptions o;
  o.processes = 2;
  o.maxtasksperchild = 1;  // a fresh worker for every task
  auto pool = make_pool(o);
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 20; ++i) rs.push_back(pool->apply_async(began_pid_then_sleep, 20));
  for (int i = 0; i < 20; ++i) {
    pid_t pid = 0;
    REQUIRE(::read(began[0], &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid));
    const auto now = pool->pids();
    CHECK(std::count(now.begin(), now.end(), pid) == 1);
  }
  for (auto& r : rs) CHECK(r.get(10s) == 20);
  pool.reset();
  ::close(began[0]);
  ::close(began[1]);
}

// ---- 1. retries -------------------------------------------------------------------------

namespace {

/// Appends a byte to the file `path` and dies if the file was shorter than
/// `survive_after` bytes: a task that kills its first workers.
int die_until(std::string path, int survive_after) {
  FILE* f = std::fopen(path.c_str(), "a+");
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fputc('x', f);
  std::fclose(f);
  if (n < survive_after) ::raise(SIGKILL);
  return static_cast<int>(n);
}
long file_size(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return 0;
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fclose(f);
  return n;
}

}  // namespace

TEST_CASE("PoolOptions::retries re-runs a lost task a bounded number of times", "[pool][reliability]") {
  const std::string a = "/tmp/mp_retry_a_" + std::to_string(::getpid());
  const std::string b = "/tmp/mp_retry_b_" + std::to_string(::getpid());
  std::remove(a.c_str());
  std::remove(b.c_str());
  mp::PoolOptions o;
  o.processes = 2;
  o.retries = 2;
  auto pool = make_pool(o);
  CHECK(pool->apply(die_until, a, 2) == 2);  // died twice, the third run lived
  auto r = pool->apply_async(die_until, b, 100);  // dies every time
  CHECK_THROWS_AS(r.get(10s), mp::WorkerLostError);
  CHECK(file_size(b) == 3);  // 1 run + 2 retries, never more
  CHECK(pool->map(square, std::views::iota(0, 100))[10] == 100);
  std::remove(a.c_str());
  std::remove(b.c_str());
  auto plain = make_pool(2);  // off by default
  CHECK_THROWS_AS(plain->apply(die_until, a, 1), mp::WorkerLostError);
  CHECK(file_size(a) == 1);
  std::remove(a.c_str());
}

// ---- 6. bad input and limits ------------------------------------------------------------

TEST_CASE("a corrupt result frame gives that task a DecodeError, the pool continues", "[pool][reliability]") {
  auto pool = make_pool(1);
  CHECK(pool->apply(square, 2) == 4);
  bool corrupted = false;
  for (int attempt = 0; attempt < 5 && !corrupted; ++attempt) {
    auto r = pool->apply_async(sleepy, 100);
    corrupted = mp::detail::TestAccess::corrupt_next_result(pool->backend(), 0, std::chrono::seconds(5));
    if (corrupted) CHECK_THROWS_AS(r.get(10s), mp::DecodeError);
    else CHECK(r.get(10s) == 100);
  }
  CHECK(corrupted);
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 100; ++i) rs.push_back(pool->apply_async(square, i));
  for (int i = 0; i < 100; ++i) CHECK(rs[static_cast<std::size_t>(i)].get(10s) == i * i);
}

namespace {
std::size_t allocate_mib(int mib) {
  std::vector<char> v(static_cast<std::size_t>(mib) << 20, 'a');
  return v.size();
}
std::vector<char> result_of_mib(int mib) { return std::vector<char>(static_cast<std::size_t>(mib) << 20, 'r'); }
int throw_long(int n) { throw std::runtime_error(std::string(static_cast<std::size_t>(n), 'e')); }
}  // namespace

TEST_CASE("PoolOptions::memory_limit: a task past it fails with bad_alloc, the pool stays", "[pool][reliability]") {
  if (asan) {
    WARN("skipped under ASan: it reserves terabytes of address space, so RLIMIT_AS cannot apply");
    return;
  }
  // RLIMIT_AS counts the whole address space, which a worker inherits from
  // this process: allow 512 MiB beyond what it has now.
  std::size_t vm_kib = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::sscanf(line, "VmSize: %zu kB", &vm_kib) == 1) break;
    std::fclose(f);
  }
  REQUIRE(vm_kib > 0);
  mp::PoolOptions o;
  o.processes = 2;
  o.memory_limit = (vm_kib << 10) + (std::size_t{512} << 20);
  auto pool = make_pool(o);
  CHECK(pool->apply(allocate_mib, 64) == (std::size_t{64} << 20));
  CHECK_THROWS_AS(pool->apply(allocate_mib, 2048), std::bad_alloc);
  CHECK(pool->apply(allocate_mib, 64) == (std::size_t{64} << 20));
  CHECK(pool->map(square, std::views::iota(0, 100))[10] == 100);
}

TEST_CASE("PoolOptions::max_result_bytes: a larger result fails with a clear length_error", "[pool][reliability]") {
  mp::PoolOptions o;
  o.processes = 2;
  o.max_result_bytes = std::size_t{1} << 20;
  auto pool = make_pool(o);
  CHECK(pool->apply(result_of_mib, 0).empty());
  try {
    pool->apply(result_of_mib, 2);
    FAIL("no error");
  } catch (const std::length_error& e) {
    CHECK(std::string(e.what()).find("max_result_bytes") != std::string::npos);
  }
  CHECK(pool->apply(square, 4) == 16);
}

TEST_CASE("PoolOptions::max_result_bytes below an error's size: errors still arrive whole", "[pool][reliability]") {
  mp::PoolOptions o;
  o.processes = 1;
  o.max_result_bytes = 16;  // smaller than any error message
  auto pool = make_pool(o);
  CHECK(pool->apply(square, 2) == 4);
  const auto before = pool->pids();
  CHECK_THROWS_WITH(pool->apply(result_of_mib, 1), Catch::Contains("max_result_bytes (16)"));
  try {
    pool->apply(throw_long, 100'000);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == std::string(100'000, 'e'));
  }
  CHECK_THROWS_AS(pool->map(throw_long, std::vector<int>{10, 20}), std::runtime_error);
  CHECK(pool->apply(square, 3) == 9);
  CHECK(pool->pids() == before);  // the same worker: it did not abort
}

TEST_CASE("a 1 GiB result comes back whole", "[.][big][pool][reliability]") {
  if (asan) return;
  auto pool = make_pool(1);
  const auto t0 = Clock::now();
  auto v = pool->apply(result_of_mib, 1024);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  CHECK(v.size() == (std::size_t{1} << 30));
  CHECK(std::count(v.begin(), v.end(), 'r') == static_cast<std::ptrdiff_t>(v.size()));
  std::printf("1 GiB result: %.2f s\n", s);
}
