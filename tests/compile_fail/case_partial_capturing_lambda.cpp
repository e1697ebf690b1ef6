// expect: Bind the captured values with mp::partial
// expect-gnu: [with F = main()::<lambda(int, int)>]
// mp::partial checks its function as the pool does: a capturing lambda is not sendable.
#include <mp/partial.hpp>

int main() {
  int k = 2;
  auto p = mp::partial([&k](int a, int b) { return a + b + k; }, 1);
  return p(2);
}
