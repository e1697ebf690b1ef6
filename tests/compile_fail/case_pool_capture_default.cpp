// expect: Drop the capture-default
// expect-gnu: [with F = main()::<lambda(int)>]
// [&] with nothing captured is still a closure with a capture-default, which
// is not default-constructible, so the worker could not recreate it.
#include <mp/pool.hpp>

int main() {
  mp::Pool pool(2);
  return pool.apply([&](int x) { return x + 1; }, 1);
}
