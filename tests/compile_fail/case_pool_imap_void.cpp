// expect: use pool.map(f, range)
// expect-gnu: void (*)(int)
// imap yields results; a void function has none.
#include <mp/pool.hpp>

#include <vector>

void work(int) {}

int main() {
  mp::Pool pool(2);
  for (auto&& r : pool.imap(work, std::vector<int>{1, 2})) (void)r;
  return 0;
}
