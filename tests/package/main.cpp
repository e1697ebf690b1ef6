// Builds against an installed (or add_subdirectory'd) mp and uses it for real.
#include <mp/mp.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  std::vector<std::string> words{"fork", "queue", "pool"};
  auto back = mp::loads<std::vector<std::string>>(mp::dumps(words));
  if (back != words) return 1;
  std::printf("mp %s: round trip ok\n", MP_VERSION_STRING);
  return 0;
}
