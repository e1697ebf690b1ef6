// expect: mp cannot send an aggregate with a reference member
// expect-gnu: F = int&
// A reference member would not refer to the same object in another process.
#include <mp/codec.hpp>

struct Ref {
  int& r;
  int n;
};

int main() {
  int x = 1;
  return static_cast<int>(mp::dumps(Ref{x, 2}).size());
}
