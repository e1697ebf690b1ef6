// expect: give it first, before f
// A time limit after f would be an argument of f: apply_async refuses it.
#include <mp/pool.hpp>

#include <chrono>

int work(int x) { return x; }

int main() {
  mp::Pool pool(2);
  auto r = pool.apply_async(work, 1, mp::time_limit(std::chrono::seconds(1)));
  return r.get();
}
