// expect: Bind the captured values with mp::partial
// expect: where f takes the captured value s as its first parameter
// expect-gnu: [with F = main()::<lambda(std::size_t)>]
// A lambda's captures cannot be inspected: even a vector captured by value is rejected.
#include <mp/pool.hpp>

#include <cstddef>
#include <vector>

int main() {
  mp::Pool pool(2);
  std::vector<int> v{1, 2, 3};
  auto r = pool.map([v](std::size_t i) { return v[i]; }, std::vector<std::size_t>{0, 1});
  return static_cast<int>(r.size());
}
