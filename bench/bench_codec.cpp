// Round trip (encode + decode) of mp's codec beside cereal's binary archive.
//
//   cmake --preset release && cmake --build build/release --target bench_codec -j2
//   build/release/bench/bench_codec --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// cereal creates its archives (and string streams) per message, as a queue
// would for each message; notes.md measured 183 ns / 28 us that way on the
// machine where the targets (25 ns / 8 us) were set: compare cereal's figure
// here with those to see how much slower this machine is.
//
// BM_mp_*_dumps / _loads split the round trip; BM_floor_*_bytes + _result is
// the least any codec with these types can do here (allocate and fill the
// bytes; build and destroy the decoded value), the floor mp is measured against.
#include <mp/codec.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if MP_BENCH_HAVE_CEREAL
#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <sstream>
#endif

namespace {

std::vector<int> five_ints() { return {1, 2, 3, 4, 5}; }

/// 1,000 strings of 8 to 16 characters (fixed seed).
std::vector<std::string> short_strings() {
  std::mt19937 rng(42);
  std::vector<std::string> v;
  v.reserve(1000);
  for (int i = 0; i < 1000; ++i) {
    std::string s(8 + rng() % 9, 'a');
    for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
    v.push_back(std::move(s));
  }
  return v;
}

template <class T>
void mp_round_trip(benchmark::State& state, const T& value) {
  for (auto _ : state) {
    std::vector<std::byte> bytes = mp::dumps(value);
    T back = mp::loads<T>(bytes);
    benchmark::DoNotOptimize(back);
  }
  state.SetItemsProcessed(state.iterations());
}

/// What the ring does: size, encode in place into a preallocated buffer, decode.
template <class T>
void mp_encode_to_round_trip(benchmark::State& state, const T& value) {
  std::vector<std::byte> buf(mp::detail::encoded_size(value) + 64);
  for (auto _ : state) {
    const std::size_t n = mp::detail::encoded_size(value);
    mp::detail::encode_to(buf.data(), value);
    mp::detail::Reader r(std::span<const std::byte>(buf.data(), n));
    T back = mp::detail::decode<T>(r);
    r.expect_end();
    benchmark::DoNotOptimize(back);
  }
  state.SetItemsProcessed(state.iterations());
}

/// The two halves of the round trip, to see which one the time is in.
template <class T>
void mp_dumps_only(benchmark::State& state, const T& value) {
  for (auto _ : state) {
    std::vector<std::byte> bytes = mp::dumps(value);
    benchmark::DoNotOptimize(bytes.data());
  }
}
template <class T>
void mp_loads_only(benchmark::State& state, const T& value) {
  const std::vector<std::byte> bytes = mp::dumps(value);
  for (auto _ : state) {
    T back = mp::loads<T>(bytes);
    benchmark::DoNotOptimize(back);
  }
}

void BM_mp_vector_int5(benchmark::State& s) { mp_round_trip(s, five_ints()); }
void BM_mp_vector_int5_dumps(benchmark::State& s) { mp_dumps_only(s, five_ints()); }
void BM_mp_vector_int5_loads(benchmark::State& s) { mp_loads_only(s, five_ints()); }
void BM_mp_vector_string1000_dumps(benchmark::State& s) { mp_dumps_only(s, short_strings()); }
void BM_mp_vector_string1000_loads(benchmark::State& s) { mp_loads_only(s, short_strings()); }
BENCHMARK(BM_mp_vector_int5_dumps);
BENCHMARK(BM_mp_vector_int5_loads);
BENCHMARK(BM_mp_vector_string1000_dumps);
BENCHMARK(BM_mp_vector_string1000_loads);
void BM_mp_vector_int5_encode_to(benchmark::State& s) { mp_encode_to_round_trip(s, five_ints()); }
void BM_mp_vector_string1000(benchmark::State& s) { mp_round_trip(s, short_strings()); }
void BM_mp_vector_string1000_encode_to(benchmark::State& s) { mp_encode_to_round_trip(s, short_strings()); }
BENCHMARK(BM_mp_vector_int5);
BENCHMARK(BM_mp_vector_int5_encode_to);
BENCHMARK(BM_mp_vector_string1000);
BENCHMARK(BM_mp_vector_string1000_encode_to);

/// Baseline: a hand-written memcpy codec for exactly these two types (what
/// notes.md measured at 11 ns / 5.7 us), to compare ratios within one run.
// GCC 12 -O3 false positives on std::vector's sizes in these plain memcpy loops.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
std::vector<std::byte> hand_dumps(const std::vector<int>& v) {
  std::vector<std::byte> out(8 + v.size() * sizeof(int));
  const std::uint64_t n = v.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, v.data(), v.size() * sizeof(int));
  return out;
}
std::vector<int> hand_loads_ints(const std::vector<std::byte>& b) {
  std::uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  std::vector<int> v(n);
  std::memcpy(v.data(), b.data() + 8, n * sizeof(int));
  return v;
}
std::vector<std::byte> hand_dumps(const std::vector<std::string>& v) {
  std::size_t size = 8;
  for (const auto& s : v) size += 8 + s.size();
  std::vector<std::byte> out(size);
  std::byte* p = out.data();
  const std::uint64_t n = v.size();
  std::memcpy(p, &n, 8);
  p += 8;
  for (const auto& s : v) {
    const std::uint64_t len = s.size();
    std::memcpy(p, &len, 8);
    std::memcpy(p + 8, s.data(), len);
    p += 8 + len;
  }
  return out;
}
std::vector<std::string> hand_loads_strings(const std::vector<std::byte>& b) {
  const std::byte* p = b.data();
  std::uint64_t n = 0;
  std::memcpy(&n, p, 8);
  p += 8;
  std::vector<std::string> v;
  v.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t len = 0;
    std::memcpy(&len, p, 8);
    v.emplace_back(reinterpret_cast<const char*>(p + 8), len);
    p += 8 + len;
  }
  return v;
}
#pragma GCC diagnostic pop

void BM_hand_vector_int5(benchmark::State& state) {
  const auto v = five_ints();
  for (auto _ : state) benchmark::DoNotOptimize(hand_loads_ints(hand_dumps(v)));
}
void BM_hand_vector_string1000(benchmark::State& state) {
  const auto v = short_strings();
  for (auto _ : state) benchmark::DoNotOptimize(hand_loads_strings(hand_dumps(v)));
}
BENCHMARK(BM_hand_vector_int5);
BENCHMARK(BM_hand_vector_string1000);

/// The floor on this machine, in two parts whose sum no codec returning
/// std::vector<std::byte> and decoding to the same std:: type can beat:
/// "bytes" allocates the encoded size, copies a ready-made encoding in with
/// one memcpy (no walk over the value, no zero-filling) and frees it;
/// "result" only copy-constructs the decoded value from the original (its
/// allocations, copies and destruction, with no bytes to read).
template <class T>
void floor_bytes(benchmark::State& state, const T& value) {
  const std::vector<std::byte> image = mp::dumps(value);
  for (auto _ : state) {
    auto* p = static_cast<std::byte*>(::operator new(image.size()));
    std::memcpy(p, image.data(), image.size());
    benchmark::DoNotOptimize(p);
    ::operator delete(p);
  }
}
template <class T>
void floor_result(benchmark::State& state, const T& value) {
  for (auto _ : state) {
    T copy(value);
    benchmark::DoNotOptimize(copy.data());
  }
}
void BM_floor_vector_int5_bytes(benchmark::State& s) { floor_bytes(s, five_ints()); }
void BM_floor_vector_int5_result(benchmark::State& s) { floor_result(s, five_ints()); }
void BM_floor_vector_string1000_bytes(benchmark::State& s) { floor_bytes(s, short_strings()); }
void BM_floor_vector_string1000_result(benchmark::State& s) { floor_result(s, short_strings()); }
BENCHMARK(BM_floor_vector_int5_bytes);
BENCHMARK(BM_floor_vector_int5_result);
BENCHMARK(BM_floor_vector_string1000_bytes);
BENCHMARK(BM_floor_vector_string1000_result);

/// resolve_function in the same process after the first call (cached module).
void BM_mp_resolve_function(benchmark::State& state) {
  const auto id = mp::detail::function_id(&five_ints);
  for (auto _ : state) benchmark::DoNotOptimize(mp::detail::resolve_function(id));
}
BENCHMARK(BM_mp_resolve_function);

#if MP_BENCH_HAVE_CEREAL
template <class T>
void cereal_round_trip(benchmark::State& state, const T& value) {
  for (auto _ : state) {
    std::ostringstream os;
    {
      cereal::BinaryOutputArchive out(os);
      out(value);
    }
    std::istringstream is(os.str());
    T back;
    {
      cereal::BinaryInputArchive in(is);
      in(back);
    }
    benchmark::DoNotOptimize(back);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_cereal_vector_int5(benchmark::State& s) { cereal_round_trip(s, five_ints()); }
void BM_cereal_vector_string1000(benchmark::State& s) { cereal_round_trip(s, short_strings()); }
BENCHMARK(BM_cereal_vector_int5);
BENCHMARK(BM_cereal_vector_string1000);
#endif

}  // namespace
