// expect: it has a C-array field
// expect: Make a C-array field a std::array, or add `template <class Archive> void serialize
// expect-gnu: [with T = Arr;
// GCC counts a C array's elements as fields, so such an aggregate needs serialize().
#include <mp/codec.hpp>

struct Arr {
  int a[3];
  int b;
};

int main() { return static_cast<int>(mp::dumps(Arr{{1, 2, 3}, 4}).size()); }
