// expect: Results come back through the return value
// expect-gnu: [with F = void (*)(int&)]
// The worker would write to its own copy of the argument: the write is lost.
#include <mp/pool.hpp>

void increment(int& x) { ++x; }

int main() {
  mp::Pool pool(2);
  int n = 1;
  pool.apply(increment, n);
  return n;
}
