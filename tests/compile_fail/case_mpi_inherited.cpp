// expect: mp::MpiPool cannot send mp::inherited(...) or a shared-memory object
// expect: pass the values as task arguments or bind them with mp::partial
// expect-gnu: [with Backend = MpiBackend; F = mp::Inherited<
// mp::inherited's captures are addresses in rank 0's memory: other ranks have none of it.
#include <mp/mpi.hpp>

#include <cstddef>
#include <vector>

int main() {
  std::vector<int> rows{1, 2, 3};
  mp::MpiPool pool;
  auto r = pool.map(mp::inherited([&rows](std::size_t i) { return rows[i]; }), std::vector<std::size_t>{0, 1});
  return static_cast<int>(r.size());
}
