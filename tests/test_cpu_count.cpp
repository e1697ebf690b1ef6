// Tests of mp::cpu_count(): affinity mask, cgroup v2 cpu.max parsing, >= 1.
#include <catch2/catch.hpp>

#include <mp/cpu_count.hpp>

#include "fork_helpers.hpp"

#include <filesystem>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sched.h>
#include <unistd.h>

TEST_CASE("cpu_count is at least 1 and at most the affinity mask", "[cpu_count]") {
  const unsigned n = mp::cpu_count();
  CHECK(n >= 1);
  CHECK(n <= mp::detail::affinity_cpu_count());
}

TEST_CASE("cpu_count under taskset -c 0 is 1", "[cpu_count]") {
  // The child pins itself to CPU 0, as `taskset -c 0` would, then counts.
  pid_t pid = mp_test::fork_child([] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (::sched_setaffinity(0, sizeof(set), &set) != 0) return 2;
    return mp::cpu_count() == 1 ? 0 : 1;
  });
  CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
}

TEST_CASE("cpu_count is 1 when the test binary is re-exec'd under taskset -c 0", "[cpu_count]") {
  // The re-exec'd copy runs only this test case, with MP_EXPECT_ONE_CPU set.
  if (std::getenv("MP_EXPECT_ONE_CPU") != nullptr) {
    CHECK(mp::cpu_count() == 1);
    return;
  }
  if (::access("/usr/bin/taskset", X_OK) != 0) return;
  pid_t pid = mp_test::fork_child([] {
    ::setenv("MP_EXPECT_ONE_CPU", "1", 1);
    char self[4096] = {};
    if (::readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) return 3;
    const char* argv[] = {"taskset", "-c", "0", self,
                          "cpu_count is 1 when the test binary is re-exec'd under taskset -c 0", nullptr};
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::execv("/usr/bin/taskset", const_cast<char* const*>(argv));
    return 4;
  });
  CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
}

TEST_CASE("cpu.max lines parse as ceil(quota / period)", "[cpu_count]") {
  using mp::detail::parse_cpu_max;
  CHECK(parse_cpu_max("max 100000") == 0);
  CHECK(parse_cpu_max("100000 100000") == 1);
  CHECK(parse_cpu_max("150000 100000") == 2);
  CHECK(parse_cpu_max("50000 100000") == 1);
  CHECK(parse_cpu_max("400000 100000") == 4);
  CHECK(parse_cpu_max("") == 0);
  CHECK(parse_cpu_max("garbage") == 0);
  CHECK(parse_cpu_max("100 0") == 0);
}

TEST_CASE("the tightest cpu.max from the cgroup up to the root wins", "[cpu_count]") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("mp_cgroup_test_" + std::to_string(::getpid()));
  fs::create_directories(root / "a" / "b");
  auto put = [](const fs::path& p, const char* s) { std::ofstream(p) << s << "\n"; };
  put(root / "cpu.max", "max 100000");
  put(root / "a" / "cpu.max", "150000 100000");
  put(root / "a" / "b" / "cpu.max", "max 100000");
  CHECK(mp::detail::cgroup_cpu_limit(root.string(), "/a/b") == 2);
  put(root / "a" / "b" / "cpu.max", "50000 100000");
  CHECK(mp::detail::cgroup_cpu_limit(root.string(), "/a/b") == 1);
  CHECK(mp::detail::cgroup_cpu_limit(root.string(), "/") == 0);
  fs::remove_all(root);
}
