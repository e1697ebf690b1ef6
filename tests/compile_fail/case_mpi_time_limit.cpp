// expect: cannot stop a running task
// MpiPool cannot kill a task on another rank: it refuses a per-call limit.
#include <mp/mpi.hpp>

#include <chrono>
#include <vector>

int work(int x) { return x; }

int main() {
  mp::MpiPool pool;
  auto v = pool.map(work, std::vector<int>{1, 2}, mp::time_limit(std::chrono::seconds(1)));
  return static_cast<int>(v.size());
}
