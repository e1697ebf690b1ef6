// examples/example_check.hpp - what the teaching examples share: a stopwatch
// and a tally of checks. Each example compares every parallel answer with a
// serial one, prints "CHECK FAILED: ..." for a mismatch, and ends with
// finish(), which prints "<name>: all checks passed" and returns 0, or
// returns 1. Timings are printed, never checked: they vary from run to run.
#pragma once

#include <chrono>
#include <cstdio>

namespace example {

/// Seconds since construction, as a double.
class Stopwatch {
public:
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  [[nodiscard]] double ms() const { return seconds() * 1e3; }

private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// Counts failed checks; finish() turns them into the exit code.
class Checks {
public:
  /// Records one check; prints what failed when ok is false.
  void operator()(bool ok, const char* what) {
    if (!ok) {
      std::printf("CHECK FAILED: %s\n", what);
      ++failed_;
    }
  }
  /// Prints the verdict line and returns the process exit code.
  int finish(const char* name) const {
    if (failed_ == 0) std::printf("%s: all checks passed\n", name);
    else std::printf("%s: %d checks FAILED\n", name, failed_);
    return failed_ == 0 ? 0 : 1;
  }

private:
  int failed_ = 0;
};

}  // namespace example
