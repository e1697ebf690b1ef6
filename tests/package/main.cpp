// Builds against an installed (or add_subdirectory'd, or pkg-config'd) mp and
// uses it for real: the codec and a pool.
#include <mp/mp.hpp>

#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

static_assert(MP_VERSION == MP_VERSION_MAJOR * 10000 + MP_VERSION_MINOR * 100 + MP_VERSION_PATCH,
              "MP_VERSION is major * 10000 + minor * 100 + patch.");
#ifdef MP_SEPARATE_COMPILATION  // mp_separate_compilation(): the engine is compiled in the generated source
static_assert(std::is_same_v<mp::Pool, mp::basic_pool<mp::detail::CompiledForkBackend>>);
#define MP_BUILT "separately compiled"
#else
#define MP_BUILT "header-only"
#endif

int square(int x) { return x * x; }

int main() {
  std::vector<std::string> words{"fork", "queue", "pool"};
  auto back = mp::loads<std::vector<std::string>>(mp::dumps(words));
  if (back != words) return 1;
  mp::Pool pool(2);
  if (pool.map(square, std::vector<int>{1, 2, 3}) != std::vector<int>{1, 4, 9}) return 2;
  std::printf("mp %s: round trip ok, map ok, %s\n", MP_VERSION_STRING, MP_BUILT);
  return 0;
}
