// What the two translation units of the ODR test share: one sendable type and
// the functions each unit defines for the other.
#pragma once

#include <cstddef>
#include <mp/mp.hpp>
#include <string>
#include <vector>

namespace odr {

struct Record {
  std::string name;
  std::vector<int> values;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values);
  }
  friend bool operator==(const Record&, const Record&) = default;
};

// Defined in a.cpp.
int square(int x);
std::vector<std::byte> dump_in_a(const Record& r);

// Defined in b.cpp.
int negate(int x);
Record load_in_b(const std::vector<std::byte>& bytes);
/// Runs `square` (a.cpp's function) and `negate` (b.cpp's) on `pool` from b.cpp.
std::vector<int> map_in_b(mp::Pool& pool, const std::vector<int>& xs);
int apply_in_b(mp::Pool& pool, int x);

}  // namespace odr
