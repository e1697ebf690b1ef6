// examples/queue_batching.cpp - a producer/consumer pipeline on mp::Queue with
// mp::Process, and why batching matters.
//
// The advice, from a README of Python multiprocessing demo files (its
// "Queues" note): "Every function call on a queue will slow down your
// parallel processes by making them wait for the queue object to become
// free. Thus, you should try to call them infrequently." Here a producer
// process sends 200,000 numbers to a consumer process through one queue, one
// number per put() and then in batches of 10, 100 and 1,000 numbers per
// put(); the consumer sends back (count, sum) through a second queue, which
// the parent checks. The table shows the rate for each batch size.
//
//   build/dev/examples/queue_batching [items]
#include <mp/process.hpp>
#include <mp/queue.hpp>

#include "example_check.hpp"

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

using Batch = std::vector<long>;

struct Outcome {
  long count = 0, sum = 0;
  double seconds = 0;
  bool exited_cleanly = false;
};

/// Sends 0 .. items-1 in batches of `batch` from one process to another;
/// an empty batch means "no more". Both ends are mp::Process children; the
/// queues are made before them, so both share them.
Outcome pipeline(long items, long batch) {
  mp::Queue<Batch> work(64);  // bounded: a fast producer waits for the consumer
  mp::Queue<std::pair<long, long>> report;
  example::Stopwatch t;
  mp::Process producer([&work, items, batch] {
    Batch b;
    for (long i = 0; i < items; ++i) {
      b.push_back(i);
      if (static_cast<long>(b.size()) == batch) {
        work.put(b);
        b.clear();
      }
    }
    if (!b.empty()) work.put(b);
    work.put(Batch{});
  });
  mp::Process consumer([&work, &report] {
    long count = 0, sum = 0;
    for (Batch b = work.get(); !b.empty(); b = work.get()) {
      count += static_cast<long>(b.size());
      for (long x : b) sum += x;
    }
    report.put({count, sum});
  });
  producer.start();
  consumer.start();
  const auto [count, sum] = report.get();
  producer.join();
  consumer.join();
  return {count, sum, t.seconds(), producer.exitcode() == 0 && consumer.exitcode() == 0};
}

int main(int argc, char** argv) {
  example::Checks check;
  const long items = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 200'000;
  const long expected_sum = items * (items - 1) / 2;
  std::printf("%ld numbers, producer process -> mp::Queue -> consumer process\n\n", items);
  std::printf("| numbers per put | puts | time (ms) | numbers/s |\n|---:|---:|---:|---:|\n");
  for (long batch : {1L, 10L, 100L, 1000L}) {
    const Outcome o = pipeline(items, batch);
    std::printf("| %ld | %ld | %.1f | %.2f M |\n", batch, (items + batch - 1) / batch, o.seconds * 1e3,
                static_cast<double>(o.count) / o.seconds / 1e6);
    check(o.count == items && o.sum == expected_sum, "every number arrived exactly once");
    check(o.exited_cleanly, "producer and consumer exited with status 0");
  }
  std::printf("\nEach put and get pays a fixed cost (the queue's lock, one message to encode and decode, a wake-up\n"
              "when the other side sleeps); a batch pays it once for many numbers.\n");
  return check.finish("queue_batching");
}
