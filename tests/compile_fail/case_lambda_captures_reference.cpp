// expect: A lambda with captures cannot be sent
// expect: so mp cannot see whether it holds an address
// A reference capture is trivially copyable, but it is an address.
#include <mp/codec.hpp>

int main() {
  int k = 3;
  auto f = [&k](int x) { return x + k; };
  return static_cast<int>(mp::dumps(f).size());
}
