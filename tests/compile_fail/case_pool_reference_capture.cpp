// expect: Bind the captured values with mp::partial
// expect: pool.map(mp::partial(f, s), xs)
// expect-gnu: [with F = main()::<lambda(int)>]
// A reference capture made after the pool would reach the workers as an address.
#include <mp/pool.hpp>

#include <string>
#include <vector>

int main() {
  mp::Pool pool(2);
  std::string s = "abc";
  std::vector<int> xs{1, 2, 3};
  auto r = pool.map([&s](int x) { return s.size() + static_cast<std::size_t>(x); }, xs);
  return static_cast<int>(r.size());
}
