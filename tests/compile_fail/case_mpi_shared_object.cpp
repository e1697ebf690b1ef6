// expect: mp::MpiPool cannot send mp::inherited(...) or a shared-memory object
// expect-gnu: mp::Value<long int
// expect-gnu: [with Backend = MpiBackend
// An mp::Value names a shared segment on rank 0's machine, as an argument or bound by mp::partial.
#include <mp/mpi.hpp>
#include <mp/sharedctypes.hpp>

#include <vector>

long add(mp::Value<long> total, int x) { return total.load() + x; }

int main() {
  mp::Value<long> total(0);
  mp::MpiPool pool;
  long a = pool.apply(add, total, 1);
  auto r = pool.map(mp::partial(add, total), std::vector<int>{1, 2});
  return static_cast<int>(a + r[0]);
}
