// expect: cannot stop a running task
// expect: use mp::Pool
// A thread cannot be killed: ThreadPool refuses a per-call time limit.
#include <mp/thread_pool.hpp>

#include <chrono>

int work(int x) { return x; }

int main() {
  mp::ThreadPool pool(2);
  auto r = pool.apply_async(mp::time_limit(std::chrono::seconds(1)), work, 1);
  return r.get();
}
