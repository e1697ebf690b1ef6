// expect: A lambda with captures cannot be sent
// expect: pass the captured values as task arguments
// A lambda's captures cannot be inspected, so it is not sent.
#include <mp/codec.hpp>

#include <vector>

int main() {
  std::vector<int> v{1, 2, 3};
  auto f = [v](std::size_t i) { return v[i]; };
  return static_cast<int>(mp::dumps(f).size());
}
