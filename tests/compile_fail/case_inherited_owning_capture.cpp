// expect: mp::inherited(f) sends f as its bytes
// expect-gnu: main()::<lambda(std::size_t)>
// A vector captured by value owns heap memory: its bytes are not a copy of it.
#include <mp/partial.hpp>

#include <cstddef>
#include <vector>

int main() {
  std::vector<int> v{1, 2};
  auto w = mp::inherited([v](std::size_t i) { return v[i]; });
  return w(0);
}
