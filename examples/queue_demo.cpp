// queue_demo: producer and consumer processes over one mp::Queue.
//
// 3 producer processes each put 200,000 (producer, i) pairs; 2 consumer
// processes take them until they get a stop marker and report how many they
// got and their sum through a second queue. The parent checks that every
// message arrived exactly once (count and sum) and prints the rate.
//
//   cmake --build build/release --target queue_demo && build/release/examples/queue_demo
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <mp/queue.hpp>

namespace {

constexpr int producers = 3, consumers = 2;
constexpr long per_producer = 200'000;

template <class Body>
pid_t spawn(Body body) {
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
      code = 1;
    }
    ::_exit(code);
  }
  return pid;
}

bool reap(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main() {
  mp::Queue<std::pair<int, long>> work(10'000);       // bounded: producers wait when consumers lag
  mp::Queue<std::pair<long, long>> reports;          // (count, sum) from each consumer
  const auto t0 = std::chrono::steady_clock::now();

  std::vector<pid_t> cons, prods;
  for (int c = 0; c < consumers; ++c)
    cons.push_back(spawn([&] {
      long count = 0, sum = 0;
      for (;;) {
        auto [who, value] = work.get();
        if (who < 0) break;
        ++count;
        sum += value;
      }
      reports.put({count, sum});
    }));
  for (int p = 0; p < producers; ++p)
    prods.push_back(spawn([&, p] {
      for (long i = 0; i < per_producer; ++i) work.put({p, i});
    }));

  bool ok = true;
  for (pid_t pid : prods) ok = reap(pid) && ok;
  for (int c = 0; c < consumers; ++c) work.put({-1, 0});
  long count = 0, sum = 0;
  for (int c = 0; c < consumers; ++c) {
    auto [n, s] = reports.get(std::chrono::seconds(10));
    std::printf("consumer %d: %ld messages, sum %ld\n", c, n, s);
    count += n;
    sum += s;
  }
  for (pid_t pid : cons) ok = reap(pid) && ok;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const long expect_count = producers * per_producer;
  const long expect_sum = producers * (per_producer * (per_producer - 1) / 2);
  std::printf("total: %ld messages (expected %ld), sum %ld (expected %ld), %.3f s, %.2f M msg/s\n", count,
              expect_count, sum, expect_sum, secs, static_cast<double>(count) / secs / 1e6);
  ok = ok && count == expect_count && sum == expect_sum && work.empty();
  std::printf("check: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
