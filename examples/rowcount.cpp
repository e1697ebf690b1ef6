// examples/rowcount.cpp - the row-counting tutorial (seeds 001/002) with mp::Pool.
//
// A 200,000 x 5 matrix of ints in [0, 10) from a fixed seed; for each row,
// count the values in [4, 8]. Solved serially and with every Pool method;
// each answer is checked against the serial one and timed.
//
//   rowcount [--rows N] [--processes N] [--factor F] [--variants a,b,...]
//   variants: serial apply map starmap apply_async map_async starmap_async imap_unordered
//             cpu_bound (not in the default list: a slow per-row task, for the factor choice)
#include <mp/pool.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using Row = std::array<int, 5>;

int howmany_within_range(Row row, int minimum, int maximum) {
  int count = 0;
  for (int n : row) count += (minimum <= n && n <= maximum) ? 1 : 0;
  return count;
}

int howmany_within_range_rowonly(Row row) { return howmany_within_range(row, 4, 8); }

/// The CPU-bound variant: the same count, found the slow way (~50 us a row),
/// to choose the pool-size factor for long tasks.
int slow_count(Row row) {
  unsigned h = 0;
  for (int k = 0; k < 20'000; ++k) h = h * 31u + static_cast<unsigned>(row[static_cast<std::size_t>(k % 5)] + k);
  __asm__ volatile("" : "+r"(h));  // keep the loop: its result is not otherwise used
  return howmany_within_range(row, 4, 8);
}

namespace {

struct Options {
  std::size_t rows = 200'000;
  unsigned processes = 0;
  double factor = 1.5;
  std::string variants = "serial,apply,map,starmap,apply_async,map_async,starmap_async,imap_unordered";
};

constexpr const char* known_variants[] = {"serial",        "apply",     "map",           "starmap",  "apply_async",
                                          "map_async",     "starmap_async", "imap_unordered", "cpu_bound"};

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    if (comma > pos) out.push_back(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

constexpr const char* usage =
    "usage: rowcount [--rows N] [--processes N] [--factor F] [--variants a,b,...]\n"
    "  --rows N        rows of the 5-column matrix (default 200000)\n"
    "  --processes N   pool size; 0 = cpu_count() * factor (default 0)\n"
    "  --factor F      workers per usable CPU when --processes is 0 (default 1.5)\n"
    "  --variants ...  comma-separated, from: serial apply map starmap apply_async map_async\n"
    "                  starmap_async imap_unordered cpu_bound (default: all but cpu_bound)\n";

[[noreturn]] void bad_usage(const std::string& why) {
  std::fprintf(stderr, "rowcount: %s\n%s", why.c_str(), usage);
  std::exit(2);
}

/// A whole number or a decimal from a command-line value, or a usage error.
template <class T>
T number(const std::string& key, const std::string& v) {
  try {
    std::size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && d >= 0) return static_cast<T>(d);
  } catch (const std::exception&) {
  }
  bad_usage(key + " needs a non-negative number, not '" + v + "'");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) bad_usage(k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--rows") o.rows = number<std::size_t>(k, v);
    else if (k == "--processes") o.processes = number<unsigned>(k, v);
    else if (k == "--factor") o.factor = number<double>(k, v);
    else if (k == "--variants") o.variants = v;
    else bad_usage("unknown option " + k);
  }
  if (o.rows == 0) bad_usage("--rows must be at least 1");
  for (const std::string& name : split(o.variants))
    if (std::find(std::begin(known_variants), std::end(known_variants), name) == std::end(known_variants))
      bad_usage("unknown variant " + name);
  return o;
}

std::vector<Row> make_data(std::size_t rows) {
  std::mt19937 gen(100);  // np.random.RandomState(100), in spirit
  std::uniform_int_distribution<int> dist(0, 9);
  std::vector<Row> data(rows);
  for (auto& r : data)
    for (int& v : r) v = dist(gen);
  return data;
}

using Results = std::vector<int>;

Results run_variant(const std::string& name, mp::Pool& pool, const std::vector<Row>& data) {
  Results out;
  if (name == "serial") {
    for (const Row& r : data) out.push_back(howmany_within_range(r, 4, 8));
  } else if (name == "apply") {
    for (const Row& r : data) out.push_back(pool.apply(howmany_within_range, r, 4, 8));
  } else if (name == "map") {
    out = pool.map(howmany_within_range_rowonly, data);
  } else if (name == "starmap" || name == "starmap_async") {
    std::vector<std::tuple<Row, int, int>> args;
    args.reserve(data.size());
    for (const Row& r : data) args.emplace_back(r, 4, 8);
    out = name == "starmap" ? pool.starmap(howmany_within_range, args)
                            : pool.starmap_async(howmany_within_range, args).get();
  } else if (name == "apply_async") {
    out.assign(data.size(), 0);
    std::vector<mp::AsyncResult<int>> rs;
    rs.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) {
      auto r = pool.apply_async(howmany_within_range, data[i], 4, 8);
      r.then([&out, i](const int& v) { out[i] = v; });  // collect through a callback
      rs.push_back(std::move(r));
    }
    for (auto& r : rs) r.wait();
  } else if (name == "map_async") {
    out = pool.map_async(howmany_within_range_rowonly, data).get();
  } else if (name == "cpu_bound") {  // every 50th row only: ~4,000 slow tasks
    std::vector<Row> some;
    for (std::size_t i = 0; i < data.size(); i += 50) some.push_back(data[i]);
    out = pool.map(slow_count, some, 1);
  } else if (name == "imap_unordered") {
    long long total = 0;  // completion order: compare the sum and the count
    for (int v : pool.imap_unordered(howmany_within_range_rowonly, data)) {
      total += v;
      out.push_back(v);
    }
    (void)total;
  } else {
    std::fprintf(stderr, "unknown variant %s\n", name.c_str());
    std::exit(2);
  }
  return out;
}

bool same_answer(const std::string& name, Results got, Results want) {
  if (name == "cpu_bound") {
    Results some;
    for (std::size_t i = 0; i < want.size(); i += 50) some.push_back(want[i]);
    want = some;
  }
  if (name == "imap_unordered") {
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
  }
  return got == want;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto data = make_data(o.rows);
  mp::PoolOptions po;
  po.processes = o.processes;
  po.factor = o.factor;
  const auto t0 = std::chrono::steady_clock::now();
  mp::Pool pool(po);
  const double create_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("rows %zu, pool of %u (cpu_count %u, factor %.2f), created in %.2f ms\n", o.rows, pool.size(),
              mp::cpu_count(), o.factor, create_ms);
  std::printf("| variant | time (ms) | per row (µs) | answer |\n|---|---:|---:|---|\n");
  const Results serial = run_variant("serial", pool, data);
  bool all_ok = true;
  for (const std::string& name : split(o.variants)) {
    const auto s = std::chrono::steady_clock::now();
    const Results r = run_variant(name, pool, data);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count();
    const bool ok = same_answer(name, r, serial);
    all_ok = all_ok && ok;
    const double rows_done = static_cast<double>(name == "cpu_bound" ? (data.size() + 49) / 50 : data.size());
    std::printf("| %s | %.2f | %.3f | %s |\n", name.c_str(), ms, ms * 1000.0 / rows_done, ok ? "= serial" : "WRONG");
  }
  std::printf("first rows: %d %d %d %d %d\n", serial[0], serial[1], serial[2], serial[3], serial[4]);
  return all_ok ? 0 : 1;
}
