// expect: it has a base class
// expect: void serialize(Archive& ar)
// expect-gnu: [with T = Derived;
// Fields of a class with bases cannot be listed through structured bindings.
#include <mp/codec.hpp>

struct Base {
  int q;
};
struct Derived : Base {
  int x;
};

int main() { return static_cast<int>(mp::dumps(Derived{{1}, 2}).size()); }
