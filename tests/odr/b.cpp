// The second translation unit of the ODR test (see a.cpp).
#include "odr.hpp"

namespace odr {

int negate(int x) { return -x; }

Record load_in_b(const std::vector<std::byte>& bytes) { return mp::loads<Record>(bytes); }

std::vector<int> map_in_b(mp::Pool& pool, const std::vector<int>& xs) { return pool.map(square, xs); }

int apply_in_b(mp::Pool& pool, int x) { return pool.apply_async(negate, pool.apply(square, x)).get(); }

}  // namespace odr
