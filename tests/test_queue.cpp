// Tests of mp::Queue<T> (<mp/queue.hpp>): semantics, sizes, processes,
// named queues, and recovery from processes killed in the middle of a put/get.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <mp/queue.hpp>

#include "fork_helpers.hpp"
#include "test_access.hpp"

using namespace std::chrono_literals;
using mp::detail::Segment;

namespace {

/// What this process holds of /dev/shm: mappings (/proc/self/maps) and open
/// descriptors (/proc/self/fd). Unlike the global listing, other tests
/// running beside this one cannot change it.
std::vector<std::string> own_dev_shm() {
  std::vector<std::string> held;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find("/dev/shm/") != std::string::npos) held.push_back(line);
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind("/dev/shm/", 0) == 0) held.push_back(target);
  }
  return held;
}

/// Shared counters for children to report into (anonymous, inherited).
struct Shared {
  explicit Shared(std::size_t n) : seg(Segment::anonymous(64 + n * sizeof(std::atomic<std::uint64_t>))), size(n) {
    for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(&(*this)[i])) std::atomic<std::uint64_t>(0);
  }
  std::atomic<std::uint64_t>& operator[](std::size_t i) const { return seg.at<std::atomic<std::uint64_t>>(64)[i]; }
  Segment seg;
  std::size_t size;
};

std::string unique_name(const char* what) {
  return std::string("mp_test_") + what + "_" + std::to_string(::getpid());
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  mp_test::wait_child(pid);
}

}  // namespace

TEST_CASE("FIFO order, qsize, empty, full and maxsize", "[queue]") {
  mp::Queue<int> q(3);
  CHECK(q.maxsize() == 3);
  CHECK(q.empty());
  CHECK_FALSE(q.full());
  q.put(1);
  q.put(2);
  q.put(3);
  CHECK(q.qsize() == 3);
  CHECK(q.full());
  CHECK_THROWS_AS(q.put_nowait(4), mp::Full);
  CHECK_THROWS_AS(q.put(4, 10ms), mp::Full);
  CHECK(q.get() == 1);
  q.put_nowait(4);
  CHECK(q.get() == 2);
  CHECK(q.get_nowait() == 3);
  CHECK(q.get(1s) == 4);
  CHECK(q.empty());
  CHECK_THROWS_AS(q.get_nowait(), mp::Empty);
  CHECK_THROWS_AS(q.get(10ms), mp::Empty);
}

TEST_CASE("values of several types round-trip through the codec", "[queue]") {
  mp::Queue<std::vector<std::string>> q;
  std::vector<std::string> v{"", "a", std::string(1000, 'x')};
  q.put(v);
  q.put({});
  CHECK(q.get() == v);
  CHECK(q.get().empty());
  mp::Queue<std::pair<int, double>> p;
  p.put({7, 2.5});
  CHECK(p.get() == std::pair<int, double>{7, 2.5});
}

namespace {
struct Item {  // an aggregate: sent field by field, no serialize needed
  std::string name;
  int n = 0;
  std::vector<double> xs;
  bool operator==(const Item&) const = default;
};
}  // namespace

TEST_CASE("an aggregate item crosses between processes unchanged", "[queue][fork]") {
  mp::Queue<Item> q;
  const Item sent{"row", 7, {1.5, -2.0, 1e300}};
  pid_t pid = mp_test::fork_child([&] {
    q.put(sent);
    q.put(Item{});
    return 0;
  });
  CHECK(q.get(60s) == sent);
  CHECK(q.get(10s) == Item{});
  CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
}

TEST_CASE("close: later puts throw logic_error, gets drain what is left", "[queue]") {
  mp::Queue<int> q;
  q.put(1);
  mp::Queue<int> copy = q;  // a copy shares the queue and its closed flag in this process
  copy.close();
  CHECK_THROWS_AS(q.put(2), std::logic_error);
  CHECK_THROWS_AS(q.put_nowait(2), std::logic_error);
  CHECK(q.get() == 1);
  CHECK_THROWS_AS(q.get_nowait(), mp::Empty);
}

TEST_CASE("get blocks until a value arrives, a waiting put resumes when space frees", "[queue]") {
  mp::Queue<int> q(1);
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    q.put(5);
    q.put(6);  // waits until the main thread got 5
  });
  CHECK(q.get() == 5);
  CHECK(q.get(5s) == 6);
  t.join();
}

TEST_CASE("every size class, including just under/at/over the ring capacity", "[queue]") {
  mp::QueueOptions o;
  o.capacity = 4096;
  mp::Queue<std::string> q(o);
  const std::size_t cap = q.capacity();
  // std::string encodes as u64 length + bytes; the ring keeps 16 B headroom and 8 B per frame header.
  const std::size_t whole = cap - 16 - 8 - 8;
  const std::vector<std::size_t> sizes{0, 1, 7, 8, 9, whole - 1, whole, whole + 1, cap - 1, cap, cap + 1, 5 * cap + 3};
  std::vector<std::string> got;
  std::thread reader([&] {
    for (std::size_t i = 0; i < sizes.size(); ++i) got.push_back(q.get());
  });
  for (std::size_t i = 0; i < sizes.size(); ++i) q.put(std::string(sizes[i], static_cast<char>('a' + i)));
  reader.join();
  REQUIRE(got.size() == sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    INFO("size " << sizes[i]);
    CHECK(got[i] == std::string(sizes[i], static_cast<char>('a' + i)));
  }
  CHECK(q.empty());
}

TEST_CASE("256 MiB through a 1 MiB ring, between processes", "[queue][big]") {
  mp::QueueOptions o;
  o.capacity = 1 << 20;
  mp::Queue<std::vector<std::uint64_t>> q(o);
  const std::size_t n = (std::size_t{256} << 20) / sizeof(std::uint64_t);
  pid_t pid = mp_test::fork_child([&] {
    std::vector<std::uint64_t> v(n);
    std::iota(v.begin(), v.end(), std::uint64_t{1});
    q.put(v);
    q.put({42});
    return 0;
  });
  {
    auto v = q.get(60s);
    REQUIRE(v.size() == n);
    CHECK(std::accumulate(v.begin(), v.end(), std::uint64_t{0}) == std::uint64_t{n} * (n + 1) / 2);
    CHECK(v.back() == n);
  }
  CHECK(q.get(10s) == std::vector<std::uint64_t>{42});
  CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
  CHECK(q.empty());
}

TEST_CASE("4 producer x 4 consumer processes, 100k messages each: none lost or duplicated", "[queue][fork]") {
  constexpr int producers = 4, consumers = 4;
  constexpr std::uint64_t per = 100'000;
  mp::Queue<std::int64_t> q;
  Shared out(consumers * 3);  // count, sum, sum of squares per consumer
  std::vector<pid_t> pids;
  for (int c = 0; c < consumers; ++c)
    pids.push_back(mp_test::fork_child([&, c] {
      std::uint64_t count = 0, sum = 0, sq = 0;
      for (;;) {
        const std::int64_t v = q.get();
        if (v < 0) break;
        const auto u = static_cast<std::uint64_t>(v);
        ++count, sum += u, sq += u * u;
      }
      out[3 * static_cast<std::size_t>(c)] = count;
      out[3 * static_cast<std::size_t>(c) + 1] = sum;
      out[3 * static_cast<std::size_t>(c) + 2] = sq;
      return 0;
    }));
  std::vector<pid_t> prod;
  for (int p = 0; p < producers; ++p)
    prod.push_back(mp_test::fork_child([&, p] {
      for (std::uint64_t i = 0; i < per; ++i) q.put(static_cast<std::int64_t>(static_cast<std::uint64_t>(p) * per + i));
      return 0;
    }));
  for (pid_t pid : prod) CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
  for (int c = 0; c < consumers; ++c) q.put(-1);
  for (pid_t pid : pids) CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
  std::uint64_t count = 0, sum = 0, sq = 0;
  for (std::size_t c = 0; c < consumers; ++c) count += out[3 * c], sum += out[3 * c + 1], sq += out[3 * c + 2];
  const std::uint64_t n = producers * per;
  CHECK(count == n);
  CHECK(sum == n * (n - 1) / 2);
  CHECK(sq == (n - 1) * n * (2 * n - 1) / 6);
  CHECK(q.empty());
}

TEST_CASE("a named queue is opened by name in another process and removed", "[queue][named]") {
  const std::string name = unique_name("named");
  mp::Queue<std::string>::remove(name);
  {
    auto q = mp::Queue<std::string>::create(name, mp::QueueOptions{0, 8192});
    CHECK(q.name() == name);
    CHECK_THROWS_AS(mp::Queue<std::string>::create(name), mp::Error);
    pid_t pid = mp_test::fork_child([&] {
      auto other = mp::Queue<std::string>::open(name);  // a fresh mapping, as an unrelated process would
      other.put("hello");
      other.put(std::string(100'000, 'z'));  // fragmented through the 8 KiB ring
      return other.get(10s) == "reply" ? 0 : 1;
    });
    CHECK(q.get(10s) == "hello");
    CHECK(q.get(10s) == std::string(100'000, 'z'));
    q.put("reply");
    CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
    CHECK(mp_test::dev_shm_names().count(name) == 1);
  }
  CHECK(mp::Queue<std::string>::remove(name));
  CHECK_FALSE(mp::Queue<std::string>::remove(name));
  CHECK(mp_test::dev_shm_names().count(name) == 0);
  CHECK_THROWS_AS(mp::Queue<std::string>::open(name), mp::Error);
}

TEST_CASE("a named queue's file is private, and its failures are mp::Error naming the call", "[queue][named]") {
  const std::string name = unique_name("private");
  mp::Queue<int>::remove(name);
  const mode_t old_umask = ::umask(0);  // the file is 0600 whatever the umask
  {
    auto q = mp::Queue<int>::create(name);
    ::umask(old_umask);
    CHECK((std::filesystem::status("/dev/shm/" + name).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    CHECK_THROWS_WITH(mp::Queue<int>::create(name),
                      "mp: cannot create shared memory '" + name + "': shm_open: File exists");
    auto other = mp::Queue<int>::open("/" + name);  // shm_open's own spelling names the same file
    other.put(5);
    CHECK(q.get(10s) == 5);
  }
  CHECK(mp::Queue<int>::remove(name));
  CHECK_THROWS_WITH(mp::Queue<int>::open(name),
                    "mp: cannot open shared memory '" + name + "': shm_open: No such file or directory");
  CHECK_THROWS_WITH(mp::Queue<int>::create("a/b"), Catch::Contains("shm_open: Invalid argument"));
  CHECK(mp_test::dev_shm_names().count(name) == 0);
}

TEST_CASE("anonymous queues leave nothing in /dev/shm", "[queue]") {
  REQUIRE(own_dev_shm().empty());
  {
    mp::Queue<int> a;
    mp::Queue<std::string> b(10);
    a.put(1);
    b.put("x");
    CHECK(own_dev_shm().empty());  // anonymous memory: no /dev/shm file, mapped or open
    pid_t pid = mp_test::fork_child([&] { return a.get() == 1 && b.get() == "x" && own_dev_shm().empty() ? 0 : 1; });
    CHECK(mp_test::exited_with(mp_test::wait_child(pid), 0));
  }
  CHECK(own_dev_shm().empty());
}

TEST_CASE("bytes that do not decode as T are a DecodeError, the queue goes on", "[queue]") {
  const std::string name = unique_name("decode");
  mp::Queue<std::string>::remove(name);
  auto as_string = mp::Queue<std::string>::create(name);
  auto as_vec = mp::Queue<std::vector<std::uint64_t>>::open(name);
  mp::Queue<std::string>::remove(name);
  as_string.put("abc");  // length 3 cannot be 3 u64
  as_vec.put({1, 2});
  CHECK_THROWS_AS(as_vec.get(1s), mp::DecodeError);
  CHECK(as_vec.get(1s) == std::vector<std::uint64_t>{1, 2});
  CHECK(as_vec.empty());
}

TEST_CASE("producers killed at random moments: everything fully put arrives once, in order", "[queue][robust]") {
  constexpr std::size_t max_ids = 32;
  mp::QueueOptions o;
  o.capacity = 1 << 14;
  mp::Queue<std::pair<std::uint32_t, std::uint64_t>> q(o);
  Shared done(max_ids), last(max_ids), disorder(1);
  pid_t consumer = mp_test::fork_child([&] {
    for (;;) {
      auto [id, seq] = q.get(30s);  // a lost wake fails the test (Empty: exit 98) instead of hanging it
      if (id == max_ids) return 0;
      if (seq != last[id] + 1) ++disorder[0];
      last[id] = seq;
    }
  });
  auto producer = [&](std::uint32_t id) {
    return mp_test::fork_child([&, id] {
      for (std::uint64_t i = 1;; ++i) {
        q.put({id, i});
        done[id] = i;
      }
      return 0;
    });
  };
  std::mt19937 rng(12345);
  std::vector<pid_t> live{producer(0), producer(1)};
  std::vector<std::uint32_t> live_ids{0, 1};
  std::uint32_t next_id = 2;
  for (int round = 0; round < 12; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 8000));
    const std::size_t k = rng() % live.size();
    kill_and_reap(live[k]);
    live[k] = producer(next_id);
    live_ids[k] = next_id++;
  }
  // The last two are killed only once each has put something, so the test
  // always checks delivered items, however slowly the producers start
  // (under valgrind a fork takes longer than the random sleeps above).
  const auto until = std::chrono::steady_clock::now() + 30s;
  for (std::uint32_t id : live_ids)
    while (done[id] == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  for (pid_t p : live) kill_and_reap(p);
  q.put({static_cast<std::uint32_t>(max_ids), 0}, 30s);
  CHECK(mp_test::exited_with(mp_test::wait_child(consumer), 0));
  CHECK(disorder[0] == 0);
  std::uint64_t total = 0;
  for (std::uint32_t id = 0; id < next_id; ++id) {
    INFO("producer " << id << ": put returned " << done[id] << " times, consumer saw " << last[id]);
    CHECK(last[id] >= done[id]);       // nothing that was fully put is lost...
    CHECK(last[id] <= done[id] + 1);   // ...and only the put it was killed after returning may add one
    total += last[id];
  }
  CHECK(total > 0);
  CHECK(q.empty());
  q.put({1, 1});
  CHECK(q.get(1s) == std::pair<std::uint32_t, std::uint64_t>{1, 1});
}

TEST_CASE("a producer killed in the middle of an 8 MiB put through a 64 KiB ring", "[queue][robust]") {
  mp::QueueOptions o;
  o.capacity = 1 << 16;
  mp::Queue<std::vector<std::uint8_t>> q(o);
  const std::size_t big = std::size_t{8} << 20;

  SECTION("nobody reading: the partial message is aborted by the next producer") {
    pid_t a = mp_test::fork_child([&] {
      q.put({1});
      q.put(std::vector<std::uint8_t>(big, 7));  // fills the ring with fragments and waits
      return 0;
    });
    std::this_thread::sleep_for(100ms);
    kill_and_reap(a);
    pid_t b = mp_test::fork_child([&] {
      q.put({2});
      q.put({3});
      return 0;
    });
    CHECK(q.get(5s) == std::vector<std::uint8_t>{1});
    CHECK(q.get(5s) == std::vector<std::uint8_t>{2});
    CHECK(q.get(5s) == std::vector<std::uint8_t>{3});
    CHECK(mp_test::exited_with(mp_test::wait_child(b), 0));
    CHECK(q.empty());
  }

  SECTION("a consumer mid-message: it drops the partial message and carries on") {
    Shared done(1), good(1), bad(1), small(1);
    pid_t c = mp_test::fork_child([&] {
      for (;;) {
        auto v = q.get();
        if (v.empty()) return 0;
        if (v.size() == 1) ++small[0];
        else if (v.size() == big && std::all_of(v.begin(), v.end(), [&](auto x) { return x == v[0]; })) ++good[0];
        else ++bad[0];
      }
    });
    pid_t a = mp_test::fork_child([&] {
      for (std::uint8_t i = 1;; ++i) {
        q.put(std::vector<std::uint8_t>(big, i));
        ++done[0];
      }
      return 0;
    });
    std::mt19937 rng(7);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 30));
    kill_and_reap(a);
    const std::uint64_t done_a = done[0];
    pid_t b = mp_test::fork_child([&] {
      q.put({9});
      q.put(std::vector<std::uint8_t>(big, 200));
      q.put({});
      return 0;
    });
    CHECK(mp_test::exited_with(mp_test::wait_child(b), 0));
    CHECK(mp_test::exited_with(mp_test::wait_child(c), 0));
    CHECK(bad[0] == 0);
    CHECK(small[0] == 1);
    CHECK(good[0] >= done_a + 1);
    CHECK(good[0] <= done_a + 2);
    CHECK(q.empty());
  }
}

TEST_CASE("a consumer killed in the middle of get, 20 times in a row, the queue still works", "[queue][robust]") {
  mp::QueueOptions o;
  o.capacity = 1 << 16;
  mp::Queue<std::vector<std::uint32_t>> q(o);
  constexpr std::uint32_t total = 1500;
  Shared got(total), bad(1);
  auto message = [](std::uint32_t i) {  // every third one is fragmented (100 KiB > 64 KiB ring)
    return std::vector<std::uint32_t>(i % 3 == 0 ? 25'000 : 10, i);
  };
  auto check = [&](const std::vector<std::uint32_t>& v) {
    if (v.empty() || v[0] >= total || v != message(v[0])) ++bad[0];
    else ++got[v[0]];
  };
  pid_t producer = mp_test::fork_child([&] {
    for (std::uint32_t i = 0; i < total; ++i) q.put(message(i));
    return 0;
  });
  std::mt19937 rng(99);
  for (int round = 0; round < 20; ++round) {
    pid_t c = mp_test::fork_child([&] {
      for (;;) check(q.get());
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 3000));
    kill_and_reap(c);
  }
  int status = 0;
  for (;;) {
    try {
      check(q.get(200ms));
    } catch (const mp::Empty&) {
      if (::waitpid(producer, &status, WNOHANG) == producer) break;
    }
  }
  CHECK(mp_test::exited_with(status, 0));
  while (!q.empty()) check(q.get(1s));
  std::uint64_t received = 0, dup = 0;
  for (std::uint32_t i = 0; i < total; ++i) {
    received += got[i];
    if (got[i] > 1) ++dup;
  }
  CHECK(bad[0] == 0);
  CHECK(dup == 0);
  CHECK(received >= total - 20);  // at most the one message each killed consumer was taking
  CHECK(received <= total);
  CHECK(q.qsize() == 0);
  std::thread reader([&] {
    CHECK(q.get(5s) == message(3));  // fragmented: needs a reader while it is put
    CHECK(q.get(5s) == message(4));
  });
  q.put(message(3));
  q.put(message(4));
  reader.join();
  CHECK(q.empty());
}

/// The shared header of a Queue's ring (positions, futex words, tickets).
static mp::detail::RingHeader& ring_header(mp::detail::QueueState& s) {
  return *std::launder(reinterpret_cast<mp::detail::RingHeader*>(s.seg.base() + mp::detail::queue_ring_offset));
}

/// Waits up to 10 s for a sleeper to leave its ticket in `waiters`.
static bool ticket_left(const std::atomic<std::uint32_t>& waiters) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (waiters.load() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  return waiters.load() != 0;
}

TEST_CASE("a consumer that dies after emptying the ring, before waking the producer: the next get wakes it",
          "[queue][robust]") {
  mp::QueueOptions o;
  o.capacity = 4096;
  mp::Queue<std::vector<char>> q(o);
  constexpr int total = 12;  // 1000-byte messages: about 4 fit
  auto message = [](int i) { return std::vector<char>(1000, static_cast<char>(i)); };
  auto& s = mp::detail::TestAccess::queue_state(q);
  mp::detail::RingHeader& ring = ring_header(s);
  pid_t producer = mp_test::fork_child([&] {
    for (int i = 0; i < total; ++i) q.put(message(i));
    return 0;
  });
  REQUIRE(ticket_left(ring.space_waiters));  // the producer sleeps until there is space
  // A consumer takes the lock, consumes everything, and dies holding the
  // lock before its wake (left out here by hiding the producer's ticket).
  pid_t consumer = mp_test::fork_child([&] {
    s.hdr->consumer.lock();
    const std::uint32_t ticket = ring.space_waiters.exchange(0);
    int n = 0;
    while (s.reader.read_batch([&](std::span<const std::byte>) { ++n; }, 64, s.cursor) > 0) {
    }
    ring.space_waiters.store(ticket);
    return n;
  });
  const int status = mp_test::wait_child(consumer);
  REQUIRE(WIFEXITED(status));
  const int taken = WEXITSTATUS(status);
  REQUIRE(taken > 0);
  REQUIRE(taken < total);
  // The next get takes the dead consumer's lock, repairs, and wakes the
  // producer: each remaining message arrives, in order, none lost.
  for (int i = taken; i < total; ++i) CHECK(q.get(10s) == message(i));
  CHECK(mp_test::exited_with(mp_test::wait_child_within(producer, 10s), 0));
  CHECK(q.empty());
}

TEST_CASE("a producer whose wake was lost: a get() without a timeout still returns its message", "[queue][robust]") {
  mp::Queue<int> q;
  auto& s = mp::detail::TestAccess::queue_state(q);
  mp::detail::RingHeader& ring = ring_header(s);
  pid_t consumer = mp_test::fork_child([&] { return q.get() == 42 ? 0 : 1; });
  REQUIRE(ticket_left(ring.data_waiters));  // the consumer sleeps until there is data
  {  // a put whose wake is lost (as if its producer died between publishing and waking)
    s.hdr->producer.lock();
    const std::uint32_t ticket = ring.data_waiters.exchange(0);
    const std::vector<std::byte> bytes = mp::dumps(42);
    CHECK(s.writer.write_bytes(bytes));
    ring.data_waiters.store(ticket);
    s.hdr->producer.unlock();
  }
  CHECK(mp_test::exited_with(mp_test::wait_child_within(consumer, mp::detail::lost_wake_recheck + 5s), 0));
}
