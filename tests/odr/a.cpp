// Two translation units that both include <mp/mp.hpp> and instantiate the same
// Pool and codec templates, linked into one program: the link fails if a
// header defines a non-inline function or variable, and the run fails if the
// two units disagree about a type's encoding or a function's identity (a
// function defined in one unit is sent from the other).
#include "odr.hpp"

#include <cstdio>

namespace odr {

int square(int x) { return x * x; }

std::vector<std::byte> dump_in_a(const Record& r) { return mp::dumps(r); }

}  // namespace odr

int main() {
  odr::Record r{"odr", {1, 2, 3}};
  if (!(odr::load_in_b(odr::dump_in_a(r)) == r)) {
    std::puts("FAIL: a Record encoded in a.cpp does not decode in b.cpp");
    return 1;
  }
  mp::Pool pool(2);
  std::vector<int> xs{1, 2, 3, 4};
  std::vector<int> here = pool.map(odr::negate, xs);    // b.cpp's function, sent from a.cpp
  std::vector<int> there = odr::map_in_b(pool, xs);     // a.cpp's function, sent from b.cpp
  int applied = odr::apply_in_b(pool, 7);
  if (here != std::vector<int>{-1, -2, -3, -4} || there != std::vector<int>{1, 4, 9, 16} || applied != -49) {
    std::puts("FAIL: the two translation units disagree about a task");
    return 1;
  }
  std::printf("odr: PASS (MP_VERSION %d)\n", MP_VERSION);
  return 0;
}
