// expect: mp::ThreadPool has no worker processes
// expect: Use mp::Pool for processes
// A ThreadPool's workers are threads: pids() has nothing to return.
#include <mp/thread_pool.hpp>

int main() {
  mp::ThreadPool pool(2);
  return static_cast<int>(pool.pids().size());
}
