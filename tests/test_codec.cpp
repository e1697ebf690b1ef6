// Tests of <mp/codec.hpp>: round trips of every family, hostile input, function
// pointers, and what Sendable accepts.
#include <mp/codec.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <complex>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

// --- largest single allocation, to prove hostile lengths allocate nothing big --
namespace {
std::size_t g_largest_alloc = 0;

template <class T>
struct TrackingAllocator {
  using value_type = T;
  TrackingAllocator() = default;
  template <class U>
  TrackingAllocator(const TrackingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    g_largest_alloc = std::max(g_largest_alloc, n * sizeof(T));
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const TrackingAllocator&, const TrackingAllocator&) = default;
};
template <class T>
using TVector = std::vector<T, TrackingAllocator<T>>;
using TString = std::basic_string<char, std::char_traits<char>, TrackingAllocator<char>>;
}  // namespace

namespace {

using Bytes = std::vector<std::byte>;

template <class T>
T round_trip(const T& v) {
  Bytes b = mp::dumps(v);
  CHECK(b.size() == mp::detail::encoded_size(v));
  return mp::loads<T>(b);
}

template <class T>
void check_every_prefix_throws(const T& v);  // in "hostile input" below

#define CHECK_ROUND_TRIP(...)                \
  do {                                       \
    const auto value_ = __VA_ARGS__;         \
    CHECK(round_trip(value_) == value_);     \
  } while (false)

enum class Color : std::uint16_t { red = 1, green = 700 };
enum Plain : int { plain_a, plain_b = 42 };  // unscoped, fixed underlying type: every int is valid
enum Unfixed { unfixed_a, unfixed_b, unfixed_c };  // no fixed type: valid values are 0..3 only
enum Checked { checked_a, checked_b };              // no fixed type, sent through mp::codec below

struct Pod {  // an aggregate with padding: sent field by field
  int a;
  double b;
  std::array<char, 3> c;
  bool operator==(const Pod&) const = default;
};

struct Person {  // cereal style
  std::string name;
  int age = 0;
  std::vector<std::string> tags;
  int scores[3] = {0, 0, 0};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, age, tags, scores);
  }
  friend bool operator==(const Person& l, const Person& r) {
    return l.name == r.name && l.age == r.age && l.tags == r.tags && std::memcmp(l.scores, r.scores, sizeof l.scores) == 0;
  }
};

struct Versioned {  // cereal's versioned serialize
  std::string s;
  template <class Archive>
  void serialize(Archive& ar, std::uint32_t /*version*/) {
    ar(s);
  }
  bool operator==(const Versioned&) const = default;
};

class SaveLoad {  // cereal's split save/load
public:
  SaveLoad() = default;
  explicit SaveLoad(std::string s) : s_(std::move(s)), n_(s_.size()) {}
  template <class Archive>
  void save(Archive& ar) const {
    ar(s_);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(s_);
    n_ = s_.size();  // derived state rebuilt on load
  }
  bool operator==(const SaveLoad&) const = default;

private:
  std::string s_;
  std::size_t n_ = 0;
};

namespace adl {
struct Free {  // cereal's non-member serialize
  std::map<int, std::string> m;
  bool operator==(const Free&) const = default;
};
template <class Archive>
void serialize(Archive& ar, Free& f) {
  ar(f.m);
}
}  // namespace adl

struct Tree {  // recursive through a container
  int value = 0;
  std::vector<Tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
  bool operator==(const Tree&) const = default;
};

// Types "we cannot change", one per mp::codec form.
class Closed {
public:
  Closed() = default;
  Closed(int a, std::string b) : a_(a), b_(std::move(b)) {}
  int a_ = 0;
  std::string b_;
  bool operator==(const Closed&) const = default;
};
class Celsius {
public:
  explicit Celsius(double v) : v_(v) {}  // no default constructor
  [[nodiscard]] double value() const { return v_; }
  bool operator==(const Celsius&) const = default;

private:
  double v_;
};
class Blob {
public:
  explicit Blob(std::vector<std::byte> b) : b_(std::move(b)) {}
  [[nodiscard]] const std::vector<std::byte>& bytes() const { return b_; }
  bool operator==(const Blob&) const = default;

private:
  std::vector<std::byte> b_;
};

class NotSendable {  // not an aggregate, not trivially copyable, no serialize
public:
  explicit NotSendable(std::string s) : s_(std::move(s)) {}

private:
  std::string s_;
};

// Aggregates: sent field by field, no serialize needed.
struct Item {
  std::string name;
  int n = 0;
  std::vector<double> xs;
  bool operator==(const Item&) const = default;
};
struct Nested {
  Item item;
  Color color = Color::red;
  Plain plain = plain_a;
  std::optional<Item> maybe;
  std::map<std::string, std::array<int, 2>> table;
  bool flag = false;
  bool operator==(const Nested&) const = default;
};
struct WithConst {  // const fields: decoded by aggregate initialisation
  const int id;
  const std::string label;
  bool operator==(const WithConst&) const = default;
};
struct Padded {  // 7 bytes of padding after c
  char c;
  double d;
  bool operator==(const Padded&) const = default;
};
struct Row {  // no padding, every field bytes: one memcpy
  int a, b, c, d, e;
  bool operator==(const Row&) const = default;
};
struct Flags {  // bit-fields travel as their declared type
  unsigned low : 3;
  unsigned high : 5;
  int n;
};
struct AddK {  // a function object that is an aggregate
  int k;
  int operator()(int x) const { return x + k; }
};
struct Scale {
  std::vector<double> factors;
  std::string name;
  std::vector<double> operator()(double x) const {
    std::vector<double> out;
    for (double f : factors) out.push_back(f * x);
    return out;
  }
};

// Rejected: each may hold an address, or cannot be listed field by field.
struct Named {
  const char* name;
  int n;
};
struct HoldsRef {
  int& r;
};
struct HoldsArray {
  int a[3];
  int b;
};
struct HoldsOneArray {
  int a[1];
};
struct Base {
  int q;
};
struct Derived : Base {
  int x;
};
struct Wide32 {  // the most fields mp lists
  int f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
      f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31;
};
struct Wide33 {
  int f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15,
      f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32;
};
union Either {
  int i;
  float f;
};
class Opaque {  // trivially copyable, private state: not an aggregate
public:
  Opaque() = default;
  explicit Opaque(int v) : v_(v) {}
  [[nodiscard]] int value() const { return v_; }

private:
  int v_ = 0;
};
class Pixel {  // the same shape, opted in below with mp::is_address_free
public:
  Pixel() = default;
  Pixel(std::uint8_t r, std::uint8_t g, std::uint8_t b) : rgb_{r, g, b} {}
  bool operator==(const Pixel&) const = default;

private:
  std::uint8_t rgb_[3] = {};
};

int twice(int x) { return 2 * x; }
int thrice(int x) { return 3 * x; }

}  // namespace

template <>
inline constexpr bool mp::is_address_free<Pixel> = true;

template <>
struct mp::codec<Closed> {
  template <class Archive>
  static void serialize(Archive& ar, Closed& c) {
    ar(c.a_, c.b_);
  }
};
template <>
struct mp::codec<Celsius> {
  using wire_type = double;
  static double to_wire(const Celsius& c) { return c.value(); }
  static Celsius from_wire(double&& d) { return Celsius(d); }
};
template <>
struct mp::codec<Blob> {
  static std::size_t size(const Blob& b) { return mp::detail::encoded_size(b.bytes()); }
  static std::byte* encode(std::byte* out, const Blob& b) { return mp::detail::encode_to(out, b.bytes()); }
  static Blob decode(mp::detail::Reader& r) { return Blob(r.read<std::vector<std::byte>>()); }
};

// Opting in an enum without a fixed underlying type: travel as int, range-checked.
template <>
struct mp::codec<Checked> {
  using wire_type = int;
  static int to_wire(Checked c) { return static_cast<int>(c); }
  static Checked from_wire(int&& v) {
    if (v < checked_a || v > checked_b) throw mp::DecodeError("Checked out of range");
    return static_cast<Checked>(v);
  }
};

TEST_CASE("scalars and trivially copyable types round-trip", "[codec]") {
  CHECK_ROUND_TRIP(0);
  CHECK_ROUND_TRIP(-123456789);
  CHECK_ROUND_TRIP(std::numeric_limits<std::uint64_t>::max());
  CHECK_ROUND_TRIP(3.25);
  CHECK_ROUND_TRIP(-1.5f);
  CHECK_ROUND_TRIP('x');
  CHECK_ROUND_TRIP(true);
  CHECK_ROUND_TRIP(false);
  CHECK_ROUND_TRIP(std::byte{0xAB});
  CHECK_ROUND_TRIP(Color::green);
  CHECK_ROUND_TRIP(plain_b);
  CHECK_ROUND_TRIP(Pod{7, 2.5, {'a', 'b', 'c'}});
  CHECK(mp::dumps(42).size() == sizeof(int));
  CHECK(mp::dumps(Color::green).size() == sizeof(std::uint16_t));
  CHECK(mp::dumps(std::monostate{}).empty());
  CHECK(round_trip(std::monostate{}) == std::monostate{});
}

// Regression (fuzz finding): mp::loads<Unfixed> of the byte 7 produced a
// value no Unfixed may hold (UBSan: load of invalid value). Such enums are now
// rejected at compile time; enums with a fixed underlying type accept every
// value of that type, which is defined behaviour.
TEST_CASE("only enums with a fixed underlying type are decoded, and every underlying value is valid", "[codec]") {
  STATIC_REQUIRE(!mp::Sendable<Unfixed>);
  STATIC_REQUIRE(!mp::Sendable<const Unfixed&>);
  STATIC_REQUIRE(!mp::Sendable<std::vector<Unfixed>>);
  STATIC_REQUIRE(!mp::Sendable<std::optional<Unfixed>>);
  STATIC_REQUIRE(!mp::Sendable<std::array<Unfixed, 2>>);
  STATIC_REQUIRE(!mp::Sendable<Unfixed[2]>);
  STATIC_REQUIRE(!mp::Sendable<std::map<Unfixed, int>>);
  STATIC_REQUIRE(mp::detail::kind_of<Unfixed>() == mp::detail::Kind::unfixed_enum);
  STATIC_REQUIRE(mp::detail::kind_of<Unfixed[2]>() == mp::detail::Kind::unfixed_enum);
  STATIC_REQUIRE(mp::Sendable<Plain>);
  STATIC_REQUIRE(mp::Sendable<Color>);
  STATIC_REQUIRE(mp::Sendable<std::byte>);
  STATIC_REQUIRE(mp::Sendable<Checked>);

  // A fixed underlying type: any int is a valid Plain, also one that names no enumerator.
  CHECK(static_cast<int>(mp::loads<Plain>(mp::dumps(7))) == 7);
  CHECK(static_cast<int>(mp::loads<Plain>(mp::dumps(-1))) == -1);
  CHECK(static_cast<std::uint16_t>(mp::loads<Color>(mp::dumps(std::uint16_t{65535}))) == 65535);
  CHECK(mp::loads<std::vector<Plain>>(mp::dumps(std::vector<int>{7, 42})) == std::vector<Plain>{Plain{7}, plain_b});
  CHECK_THROWS_AS(mp::loads<Plain>(mp::dumps(std::int16_t{7})), mp::DecodeError);  // truncated

  // The documented escape for an enum without a fixed type: mp::codec with a range check.
  CHECK(mp::loads<Checked>(mp::dumps(checked_b)) == checked_b);
  CHECK(mp::loads<std::vector<Checked>>(mp::dumps(std::vector<Checked>{checked_b, checked_a})) ==
        std::vector<Checked>{checked_b, checked_a});
  CHECK_THROWS_AS(mp::loads<Checked>(mp::dumps(7)), mp::DecodeError);
}

TEST_CASE("standard containers round-trip, empty and not", "[codec]") {
  using namespace std::string_literals;
  CHECK_ROUND_TRIP(std::string{});
  CHECK_ROUND_TRIP("hello"s);
  CHECK_ROUND_TRIP("with\0nul and a long tail past the small-string buffer"s);
  CHECK_ROUND_TRIP(std::u16string(u"wide"));
  CHECK_ROUND_TRIP(std::vector<int>{});
  CHECK_ROUND_TRIP(std::vector<int>{1, 2, 3, 4, 5});
  CHECK_ROUND_TRIP(std::vector<bool>{true, false, true});
  CHECK_ROUND_TRIP(std::vector<std::byte>{std::byte{1}, std::byte{255}});
  CHECK_ROUND_TRIP(std::vector<std::string>{"a", "", "ccc"});
  CHECK_ROUND_TRIP(std::array<int, 3>{1, 2, 3});
  CHECK_ROUND_TRIP(std::array<std::string, 2>{"x", "yy"});
  CHECK_ROUND_TRIP(std::array<bool, 2>{true, false});
  CHECK_ROUND_TRIP(std::pair<int, std::string>{1, "one"});
  CHECK_ROUND_TRIP(std::tuple<int, std::string, double, bool>{1, "two", 3.0, true});
  CHECK_ROUND_TRIP(std::tuple<std::string, std::string>{"first", "second"});  // evaluation order
  CHECK_ROUND_TRIP(std::tuple<>{});
  CHECK_ROUND_TRIP(std::tuple<std::tuple<int>>{std::tuple<int>{5}});
  CHECK_ROUND_TRIP(std::optional<int>{});
  CHECK_ROUND_TRIP(std::optional<int>{9});
  CHECK_ROUND_TRIP(std::optional<std::string>{"opt"});
  CHECK_ROUND_TRIP(std::variant<int, std::string>{7});
  CHECK_ROUND_TRIP(std::variant<int, std::string>{"seven"});
  CHECK_ROUND_TRIP(std::variant<std::monostate, int>{});
  CHECK_ROUND_TRIP(std::variant<int, int>{std::in_place_index<1>, 4});
  CHECK_ROUND_TRIP(std::map<std::string, int>{});
  CHECK_ROUND_TRIP(std::map<std::string, int>{{"a", 1}, {"b", 2}});
  CHECK_ROUND_TRIP(std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}, {3, ""}});
  CHECK_ROUND_TRIP(std::set<int>{5, 1, 3});
  CHECK_ROUND_TRIP(std::unordered_set<std::string>{"p", "q"});
  CHECK_ROUND_TRIP(std::deque<int>{1, 2});
  CHECK_ROUND_TRIP(std::list<std::string>{"l1", "l2"});
  CHECK_ROUND_TRIP(std::vector<std::monostate>(3));
}

TEST_CASE("nested combinations round-trip", "[codec]") {
  using V = std::variant<int, std::string>;
  std::map<std::string, std::vector<std::optional<V>>> m{
      {"k1", {V{1}, std::nullopt, V{"s"}}}, {"k2", {}}, {"", {std::nullopt}}};
  CHECK(round_trip(m) == m);
  std::vector<std::map<int, std::set<std::string>>> vm{{{1, {"a", "b"}}}, {}, {{2, {}}, {3, {"c"}}}};
  CHECK(round_trip(vm) == vm);
  std::tuple<std::vector<std::pair<int, std::string>>, std::optional<std::array<int, 3>>, std::deque<bool>> t{
      {{1, "x"}, {2, "yy"}}, std::array<int, 3>{7, 8, 9}, {true, false}};
  CHECK(round_trip(t) == t);
  std::unordered_map<std::string, std::variant<std::monostate, std::vector<double>, Color>> u{
      {"none", std::monostate{}}, {"vec", std::vector<double>{1.5, 2.5}}, {"col", Color::red}};
  CHECK(round_trip(u) == u);
}

TEST_CASE("user types: serialize, save/load, ADL serialize, mp::codec", "[codec]") {
  Person p{"Ada", 36, {"math", "engines"}, {1, 2, 3}};
  CHECK(round_trip(p) == p);
  CHECK(round_trip(std::vector<Person>{p, Person{}, p}) == std::vector<Person>{p, Person{}, p});
  CHECK(round_trip(Versioned{"v"}) == Versioned{"v"});
  CHECK(round_trip(SaveLoad("saved")) == SaveLoad("saved"));
  CHECK(round_trip(adl::Free{{{1, "one"}}}) == adl::Free{{{1, "one"}}});
  Tree tree{1, {Tree{2, {}}, Tree{3, {Tree{4, {}}}}}};
  CHECK(round_trip(tree) == tree);
  CHECK(round_trip(Closed(5, "five")) == Closed(5, "five"));
  CHECK(round_trip(Celsius(21.5)) == Celsius(21.5));
  CHECK(mp::dumps(Celsius(1.0)).size() == sizeof(double));
  CHECK(round_trip(std::optional<Celsius>(Celsius(-4))) == std::optional<Celsius>(Celsius(-4)));
  Blob blob({std::byte{1}, std::byte{2}});
  CHECK(round_trip(blob) == blob);
  CHECK(round_trip(std::map<int, Closed>{{1, Closed(1, "a")}}) == std::map<int, Closed>{{1, Closed(1, "a")}});
}

TEST_CASE("large values round-trip", "[codec]") {
  std::vector<int> big(10'000'000 / sizeof(int));
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<int>(i * 2654435761u);
  CHECK(round_trip(big) == big);
  std::string s(10'000'000, 'z');
  s[12345] = 'a';
  CHECK(round_trip(s) == s);
  std::vector<std::string> many(100'000, "0123456789abcdef-too-long-for-sso");
  CHECK(round_trip(many) == many);
}

TEST_CASE("captureless lambdas are sent as zero bytes and default-constructed", "[codec]") {
  auto captureless = [](int x) { return x + 1; };
  CHECK(mp::dumps(captureless).empty());
  auto back = mp::loads<decltype(captureless)>(mp::dumps(captureless));
  CHECK(back(41) == 42);
  auto generic = [](auto x) { return x + x; };
  auto back2 = round_trip(generic);
  CHECK(back2(21) == 42);
  CHECK(back2(std::string("ab")) == "abab");
  STATIC_REQUIRE(mp::detail::kind_of<decltype(generic)>() == mp::detail::Kind::stateless);
  STATIC_REQUIRE(mp::detail::is_stateless_callable<std::less<>>);
  // In a container: zero bytes per element, the count alone.
  const std::vector<decltype(captureless)> several(3, captureless);
  CHECK(mp::dumps(several).size() == sizeof(std::uint64_t));
  CHECK(round_trip(several).size() == 3);
}

TEST_CASE("lambdas with captures are not sent, an aggregate function object is", "[codec]") {
  int k = 10;
  std::vector<int> v{1, 2};
  auto by_value = [k](int x) { return x * k; };
  auto by_reference = [&k](int x) { return x * k; };
  auto capture_default = [&] { return 1; };  // captures nothing, yet not default-constructible
  auto holds_vector = [v](std::size_t i) { return v[i]; };
  STATIC_REQUIRE(!mp::Sendable<decltype(by_value)>);
  STATIC_REQUIRE(!mp::Sendable<decltype(by_reference)>);
  STATIC_REQUIRE(!mp::Sendable<decltype(capture_default)>);
  STATIC_REQUIRE(!mp::Sendable<decltype(holds_vector)>);
  STATIC_REQUIRE(!mp::detail::is_stateless_callable<decltype(capture_default)>);
  STATIC_REQUIRE(mp::detail::kind_of<decltype(by_reference)>() == mp::detail::Kind::opaque);
  CHECK(by_value(1) + by_reference(1) + capture_default() + holds_vector(0) == 22);

  const AddK add{5};
  CHECK(mp::dumps(add).size() == sizeof(int));
  CHECK(round_trip(add)(1) == 6);
  const Scale scale{{1.0, 2.0}, "twice"};
  const Scale back = round_trip(scale);
  CHECK(back(3) == std::vector<double>{3.0, 6.0});
  CHECK(back.name == "twice");
}

TEST_CASE("aggregates are sent field by field without serialize", "[codec]") {
  const Item item{"name", 7, {1.5, -2.25}};
  CHECK(round_trip(item) == item);
  CHECK(mp::dumps(item).size() == (8 + 4) + sizeof(int) + (8 + 2 * sizeof(double)));
  const Nested nested{item, Color::green, plain_b, Item{"inner", -1, {}}, {{"k", {1, 2}}}, true};
  CHECK(round_trip(nested) == nested);
  CHECK(round_trip(std::vector<Item>{item, Item{}, item}) == std::vector<Item>{item, Item{}, item});
  const WithConst with_const{42, "const"};
  const WithConst back = round_trip(with_const);
  CHECK(back.id == 42);
  CHECK(back.label == "const");
  const Flags flags{5, 17, -3};
  const Flags flags_back = round_trip(flags);
  CHECK(flags_back.low == 5);
  CHECK(flags_back.high == 17);
  CHECK(flags_back.n == -3);
  STATIC_REQUIRE(mp::detail::kind_of<Item>() == mp::detail::Kind::aggregate);
  STATIC_REQUIRE(mp::Sendable<Nested>);
  check_every_prefix_throws(item);
  check_every_prefix_throws(nested);
  // A bool field is validated as a bool, even inside an aggregate.
  Bytes bad = mp::dumps(nested);
  bad.back() = std::byte{2};
  CHECK_THROWS_AS(mp::loads<Nested>(bad), mp::DecodeError);
}

TEST_CASE("an aggregate with padding is sent without its padding bytes", "[codec]") {
  STATIC_REQUIRE(sizeof(Padded) == 16);
  STATIC_REQUIRE(!mp::detail::Codec<Padded>::bitwise);
  CHECK(mp::dumps(Padded{'x', 2.5}).size() == sizeof(char) + sizeof(double));
  CHECK(round_trip(Padded{'x', 2.5}) == Padded{'x', 2.5});
  // The same values over different padding bytes encode to the same bytes.
  alignas(Padded) unsigned char one[sizeof(Padded)];
  alignas(Padded) unsigned char two[sizeof(Padded)];
  std::memset(one, 0xAA, sizeof one);
  std::memset(two, 0x55, sizeof two);
  auto* p1 = new (one) Padded;
  auto* p2 = new (two) Padded;
  p1->c = p2->c = 'q';
  p1->d = p2->d = -1.0;
  CHECK(mp::dumps(*p1) == mp::dumps(*p2));
  CHECK(mp::dumps(std::vector<Padded>{*p1, *p2}).size() == 8 + 2 * 9);
}

TEST_CASE("aggregates of bytes without padding stay one memcpy", "[codec]") {
  STATIC_REQUIRE(mp::detail::Codec<Row>::bitwise);
  STATIC_REQUIRE(mp::detail::Codec<std::array<int, 5>>::bitwise);
  STATIC_REQUIRE(mp::detail::Codec<std::array<Row, 2>>::bitwise);
  STATIC_REQUIRE(mp::detail::Codec<AddK>::bitwise);
  const Row row{1, 2, 3, 4, 5};
  const Bytes b = mp::dumps(row);
  REQUIRE(b.size() == sizeof(Row));
  CHECK(std::memcmp(b.data(), &row, sizeof row) == 0);
  CHECK(round_trip(row) == row);
  const std::vector<Row> rows{row, Row{6, 7, 8, 9, 10}};
  const Bytes vb = mp::dumps(rows);
  REQUIRE(vb.size() == 8 + 2 * sizeof(Row));
  CHECK(std::memcmp(vb.data() + 8, rows.data(), 2 * sizeof(Row)) == 0);
  CHECK(round_trip(rows) == rows);
}

TEST_CASE("std::complex and std::chrono values round-trip", "[codec]") {
  CHECK_ROUND_TRIP(std::complex<double>(1.5, -2.0));
  CHECK_ROUND_TRIP(std::complex<float>(0.25f, 4.0f));
  CHECK(mp::dumps(std::complex<double>(1, 2)).size() == 2 * sizeof(double));
  CHECK_ROUND_TRIP(std::chrono::milliseconds(-1234));
  CHECK_ROUND_TRIP(std::chrono::duration<double>(2.5));
  CHECK(mp::dumps(std::chrono::seconds(1)).size() == sizeof(std::chrono::seconds::rep));
  const auto now = std::chrono::system_clock::now();
  CHECK(round_trip(now) == now);
  const auto steady = std::chrono::steady_clock::now();
  CHECK(round_trip(steady) == steady);
  CHECK_ROUND_TRIP(std::vector<std::complex<double>>{{1, 2}, {3, 4}});
  CHECK_ROUND_TRIP(std::map<std::string, std::chrono::nanoseconds>{{"a", std::chrono::nanoseconds(5)}});
  CHECK_THROWS_AS(mp::loads<std::complex<double>>(mp::dumps(1.0)), mp::DecodeError);
}

TEST_CASE("mp::is_address_free opts a trivially copyable class in, as its bytes", "[codec]") {
  STATIC_REQUIRE(mp::Sendable<Pixel>);
  STATIC_REQUIRE(mp::detail::Codec<Pixel>::bitwise);
  CHECK(mp::dumps(Pixel(1, 2, 3)).size() == sizeof(Pixel));
  CHECK(round_trip(Pixel(1, 2, 3)) == Pixel(1, 2, 3));
  CHECK(round_trip(std::vector<Pixel>{Pixel(4, 5, 6), Pixel()}) == std::vector<Pixel>{Pixel(4, 5, 6), Pixel()});
  // The same shape without the opt-in is refused: mp cannot see its fields.
  STATIC_REQUIRE(!mp::Sendable<Opaque>);
  STATIC_REQUIRE(mp::detail::kind_of<Opaque>() == mp::detail::Kind::opaque);
  CHECK(Opaque(3).value() == 3);
}

TEST_CASE("types that may hold an address, or whose fields cannot be listed, are not Sendable", "[codec]") {
  STATIC_REQUIRE(!mp::Sendable<Named>);
  STATIC_REQUIRE(!mp::Sendable<std::vector<Named>>);
  STATIC_REQUIRE(!mp::Sendable<std::pair<int, Named>>);
  STATIC_REQUIRE(!mp::Sendable<HoldsRef>);
  STATIC_REQUIRE(!mp::Sendable<HoldsArray>);
  STATIC_REQUIRE(!mp::Sendable<HoldsOneArray>);
  STATIC_REQUIRE(!mp::Sendable<Derived>);
  STATIC_REQUIRE(!mp::Sendable<Either>);
  STATIC_REQUIRE(!mp::Sendable<Opaque>);
  STATIC_REQUIRE(mp::detail::aggregate_shape<HoldsArray>() == mp::detail::AggregateShape::uncountable);
  STATIC_REQUIRE(mp::detail::aggregate_shape<Derived>() == mp::detail::AggregateShape::base_class);
  STATIC_REQUIRE(mp::detail::aggregate_shape<Either>() == mp::detail::AggregateShape::union_type);
  STATIC_REQUIRE(mp::detail::aggregate_shape<HoldsOneArray>() == mp::detail::AggregateShape::ok);
  STATIC_REQUIRE(mp::detail::aggregate_shape<Wide33>() == mp::detail::AggregateShape::too_many_fields);
  STATIC_REQUIRE(!mp::Sendable<Wide33>);
  STATIC_REQUIRE(mp::Sendable<Wide32>);
  Wide32 wide{};
  wide.f31 = 31;
  CHECK(round_trip(wide).f31 == 31);
  STATIC_REQUIRE(std::is_same_v<mp::detail::field_types<Named>, mp::detail::TypeList<const char*, int>>);
  STATIC_REQUIRE(std::is_same_v<mp::detail::field_types<HoldsRef>, mp::detail::TypeList<int&>>);
  STATIC_REQUIRE(std::is_same_v<mp::detail::field_types<WithConst>, mp::detail::TypeList<const int, const std::string>>);
}

TEST_CASE("views encode as their owning type", "[codec]") {
  std::vector<int> v{1, 2, 3};
  CHECK(mp::loads<std::vector<int>>(mp::dumps(std::span<const int>(v))) == v);
  CHECK(mp::loads<std::string>(mp::dumps(std::string_view("view"))) == "view");
  Bytes raw{std::byte{9}, std::byte{8}};
  Bytes enc = mp::dumps(std::span<const std::byte>(raw));
  mp::detail::Reader r(enc);
  auto view = r.read_view();
  r.expect_end();
  CHECK(Bytes(view.begin(), view.end()) == raw);
}

TEST_CASE("Writer and Reader put several values back to back", "[codec]") {
  const std::string s = "abc";
  const std::vector<int> v{4, 5};
  const std::optional<double> o = 2.5;
  const std::size_t n = mp::detail::encoded_size(s, v, o);
  CHECK(n == mp::detail::encoded_size(s) + mp::detail::encoded_size(v) + mp::detail::encoded_size(o));
  Bytes buf(n);
  mp::detail::Writer w{std::span<std::byte>(buf)};
  w.write(s);
  w.write(v);
  w.write(o);
  CHECK(w.position() == buf.data() + n);
  Bytes buf2(n);
  CHECK(mp::detail::encode_to(buf2.data(), s, v, o) == buf2.data() + n);
  CHECK(buf2 == buf);

  mp::detail::Reader r(buf);
  CHECK(r.read<std::string>() == s);
  CHECK(r.read<std::vector<int>>() == v);
  CHECK(r.read<std::optional<double>>() == o);
  CHECK_NOTHROW(r.expect_end());
  mp::detail::Reader short_read(std::span<const std::byte>(buf).first(n - 1));
  short_read.read<std::string>();
  short_read.read<std::vector<int>>();
  CHECK_THROWS_AS(short_read.read<std::optional<double>>(), mp::DecodeError);
}

// --- hostile input ------------------------------------------------------------
namespace {

template <class T>
void check_every_prefix_throws(const T& v) {
  const Bytes b = mp::dumps(v);
  for (std::size_t n = 0; n < b.size(); ++n) {
    INFO("prefix of " << n << " of " << b.size() << " bytes");
    CHECK_THROWS_AS(mp::loads<T>(std::span<const std::byte>(b).first(n)), mp::DecodeError);
  }
  Bytes longer = b;
  longer.push_back(std::byte{0});
  CHECK_THROWS_AS(mp::loads<T>(longer), mp::DecodeError);
  CHECK(mp::loads<T>(b) == v);
}

Bytes u64_bytes(std::uint64_t x) {
  Bytes b(8);
  std::memcpy(b.data(), &x, 8);
  return b;
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

// The encoder copies blocks of up to 32 bytes inline, in size classes (0, 1-3,
// 4-7, 8-15, 16-32, more); the decoder builds strings and vectors in place
// inside sequences. Every size across those boundaries must produce exactly
// the length and the bytes, and read them back.
TEST_CASE("every block size across the inline-copy classes round-trips byte for byte", "[codec]") {
  for (std::size_t n = 0; n <= 70; ++n) {
    INFO("n = " << n);
    std::string s(n, ' ');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('A' + i % 50);
    const Bytes b = mp::dumps(s);
    REQUIRE(b.size() == 8 + n);
    CHECK(b == concat(u64_bytes(n), Bytes(reinterpret_cast<const std::byte*>(s.data()),
                                          reinterpret_cast<const std::byte*>(s.data()) + n)));
    CHECK(mp::loads<std::string>(b) == s);
    std::vector<std::int16_t> shorts(n);
    for (std::size_t i = 0; i < n; ++i) shorts[i] = static_cast<std::int16_t>(1000 + i);
    CHECK(round_trip(shorts) == shorts);
    CHECK(round_trip(std::u16string(n, u'\u263a')) == std::u16string(n, u'\u263a'));
    CHECK(round_trip(std::vector<std::uint8_t>(n, 0xA5)) == std::vector<std::uint8_t>(n, 0xA5));
  }
  std::vector<std::string> strings;
  std::vector<std::vector<int>> int_vectors;
  for (std::size_t n = 0; n <= 40; ++n) {
    strings.emplace_back(n, static_cast<char>('a' + n % 26));
    int_vectors.emplace_back(n, static_cast<int>(n) * 7);
  }
  CHECK(round_trip(strings) == strings);
  CHECK(round_trip(int_vectors) == int_vectors);
  const std::deque<std::string> dq(strings.begin(), strings.end());
  CHECK(round_trip(dq) == dq);
  const std::list<std::vector<int>> li(int_vectors.begin(), int_vectors.end());
  CHECK(round_trip(li) == li);
  CHECK(round_trip(std::vector<std::u16string>{u"", u"x", u"longer than sixteen bytes"}) ==
        std::vector<std::u16string>{u"", u"x", u"longer than sixteen bytes"});
  CHECK(round_trip(std::vector<std::vector<std::byte>>{{}, {std::byte{1}}, Bytes(40, std::byte{9})}) ==
        std::vector<std::vector<std::byte>>{{}, {std::byte{1}}, Bytes(40, std::byte{9})});
}

TEST_CASE("every truncation and trailing bytes throw DecodeError", "[codec]") {
  using V = std::variant<int, std::string>;
  check_every_prefix_throws(std::vector<int>{1, 2, 3, 4, 5});
  check_every_prefix_throws(std::string("truncate me"));
  check_every_prefix_throws(std::vector<std::string>{"", "a", "0123456789abcdef", "past the small-string buffer"});
  check_every_prefix_throws(std::deque<std::vector<int>>{{}, {1}, {1, 2, 3, 4, 5, 6, 7, 8, 9}});
  check_every_prefix_throws(std::map<std::string, std::vector<std::optional<V>>>{
      {"a", {V{1}, std::nullopt, V{"x"}}}, {"b", {}}});
  check_every_prefix_throws(Person{"Bob", 3, {"t"}, {1, 2, 3}});
  check_every_prefix_throws(std::tuple<bool, std::set<int>, std::array<std::string, 2>>{true, {1, 2}, {"p", "q"}});
  check_every_prefix_throws(Celsius(3.5));
  check_every_prefix_throws(std::optional<std::pair<int, double>>({1, 2.0}));
  CHECK_THROWS_AS(mp::loads<int>(Bytes{}), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<std::tuple<>>(Bytes{std::byte{0}}), mp::DecodeError);
}

TEST_CASE("a declared length of 2^60 throws without allocating", "[codec]") {
  const Bytes huge = u64_bytes(std::uint64_t{1} << 60);
  const Bytes with_tail = concat(huge, Bytes(64, std::byte{1}));
  g_largest_alloc = 0;
  CHECK_THROWS_AS(mp::loads<TVector<int>>(huge), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<TVector<int>>(with_tail), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<TString>(with_tail), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<TVector<TString>>(with_tail), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<TVector<TVector<double>>>(with_tail), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<TVector<std::monostate>>(with_tail), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<TVector<int>>(u64_bytes(~std::uint64_t{0})), mp::DecodeError);
  // A count the bytes could hold if the elements were 1 byte: reserve stays bounded.
  CHECK_THROWS_AS(mp::loads<TVector<TString>>(concat(u64_bytes(64), Bytes(64, std::byte{0}))), mp::DecodeError);
  CHECK(g_largest_alloc <= 64 * sizeof(TString));
  CHECK_THROWS_AS((mp::loads<std::map<int, std::string>>(with_tail)), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<std::deque<std::vector<int>>>(with_tail), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<std::vector<Person>>(with_tail), mp::DecodeError);
}

TEST_CASE("invalid flags, indices, bools and duplicate keys throw DecodeError", "[codec]") {
  CHECK_THROWS_AS(mp::loads<bool>(Bytes{std::byte{2}}), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<std::vector<bool>>(concat(u64_bytes(1), Bytes{std::byte{7}})), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<std::optional<int>>(Bytes(5, std::byte{2})), mp::DecodeError);
  CHECK_THROWS_AS((mp::loads<std::variant<int, float>>(Bytes{std::byte{2}, {}, {}, {}, {}})), mp::DecodeError);
  CHECK_THROWS_AS(mp::loads<std::set<int>>(concat(u64_bytes(2), Bytes(8, std::byte{0}))), mp::DecodeError);
  const Bytes dup_map = concat(u64_bytes(2), Bytes(16, std::byte{0}));
  CHECK_THROWS_AS((mp::loads<std::map<int, int>>(dup_map)), mp::DecodeError);
  CHECK_THROWS_AS((mp::loads<std::unordered_map<int, int>>(dup_map)), mp::DecodeError);
  try {
    (void)mp::loads<bool>(Bytes{std::byte{2}});
  } catch (const mp::DecodeError& e) {
    CHECK(std::string(e.what()).find("bool") != std::string::npos);
  }
}

namespace {

template <class T>
std::size_t fuzz(std::mt19937_64& rng, const T& sample, int rounds) {
  const Bytes valid = mp::dumps(sample);
  std::size_t decoded = 0;
  Bytes in;
  for (int i = 0; i < rounds; ++i) {
    if (i % 2 == 0) {  // random bytes
      in.resize(rng() % 48);
      for (auto& b : in) b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 4);
    } else {  // a valid encoding with a few bytes changed, maybe cut short
      in = valid;
      if (!in.empty()) {
        for (int k = 0; k < 3; ++k) in[rng() % in.size()] = static_cast<std::byte>(rng());
        if (rng() % 4 == 0) in.resize(rng() % in.size());
      }
    }
    try {
      (void)mp::loads<T>(in);
      ++decoded;
    } catch (const mp::DecodeError&) {
    }
  }
  return decoded;
}

}  // namespace

TEST_CASE("random and corrupted bytes decode or throw DecodeError, never crash", "[codec]") {
  std::mt19937_64 rng(20240611);
  using V = std::variant<int, std::string>;
  constexpr int rounds = 40'000;
  std::size_t decoded = 0;
  decoded += fuzz(rng, std::vector<int>{1, 2, 3}, rounds);
  decoded += fuzz(rng, std::string("fuzz"), rounds);
  decoded += fuzz(rng, std::map<std::string, std::vector<std::optional<V>>>{{"k", {V{1}, std::nullopt, V{"s"}}}}, rounds);
  decoded += fuzz(rng, std::tuple<bool, std::optional<int>, std::set<std::uint8_t>>{true, 3, {1, 2}}, rounds);
  decoded += fuzz(rng, Person{"P", 1, {"a", "b"}, {1, 2, 3}}, rounds);
  decoded += fuzz(rng, std::vector<std::vector<std::string>>{{"a"}, {}, {"b", "c"}}, rounds);
  decoded += fuzz(rng, std::unordered_map<std::uint16_t, std::list<char>>{{1, {'x'}}}, rounds);
  decoded += fuzz(rng, Tree{1, {Tree{2, {}}}}, rounds);
  CHECK(decoded > 0);  // some inputs are valid encodings (e.g. empty containers)
}

// --- function pointers ----------------------------------------------------------
TEST_CASE("function pointers travel as module-relative ids", "[codec]") {
  using Fn = int (*)(int);
  Fn f = &twice;
  const Bytes b = mp::dumps(f);
  REQUIRE(b.size() == 16);
  Fn back = mp::loads<Fn>(b);
  CHECK(back == f);
  CHECK(back(21) == 42);
  CHECK(mp::loads<Fn>(mp::dumps(Fn{&thrice}))(2) == 6);
  CHECK(mp::loads<Fn>(mp::dumps(Fn{nullptr})) == nullptr);

  const auto id = mp::detail::function_id(&twice);
  CHECK(id.module == mp::detail::main_module_id());  // in the executable
  CHECK(id.offset != 0);
  for (int i = 0; i < 1000; ++i) CHECK(mp::detail::resolve_function_as<Fn>(id) == f);

  using StrLen = std::size_t (*)(const char*);
  StrLen sl = &std::strlen;  // lives in libc, another module
  CHECK(mp::detail::function_id(sl).module != id.module);
  CHECK(mp::loads<StrLen>(mp::dumps(sl))("four") == 4);
  std::vector<std::pair<std::string, Fn>> table{{"twice", &twice}, {"thrice", &thrice}};
  CHECK(round_trip(table) == table);
}

TEST_CASE("forged function ids throw DecodeError", "[codec]") {
  using Fn = int (*)(int);
  const auto id = mp::detail::function_id(&twice);
  const Bytes bad_module = concat(u64_bytes(id.module ^ 0x5555), u64_bytes(id.offset));
  CHECK_THROWS_AS(mp::loads<Fn>(bad_module), mp::DecodeError);
  const Bytes bad_offset = concat(u64_bytes(id.module), u64_bytes(std::uint64_t{1} << 62));
  CHECK_THROWS_AS(mp::loads<Fn>(bad_offset), mp::DecodeError);
  const Bytes zero_module = concat(u64_bytes(0), u64_bytes(5));
  CHECK_THROWS_AS(mp::loads<Fn>(zero_module), mp::DecodeError);
  CHECK_THROWS_AS(mp::detail::resolve_function({123, 456}), mp::DecodeError);
  // The good id still resolves after the failures (the caches were not spoiled).
  CHECK(mp::detail::resolve_function_as<Fn>(id) == &twice);
}

// --- what Sendable accepts ----------------------------------------------------
// Each type below that is not Sendable also fails to compile in mp::dumps /
// mp::loads, through a static_assert whose message says what cannot be encoded
// and how to opt in (a serialize member or a specialisation of mp::codec<T>).
TEST_CASE("Sendable accepts encodable types and rejects the rest", "[codec]") {
  STATIC_REQUIRE(mp::Sendable<int>);
  STATIC_REQUIRE(mp::Sendable<const int&>);
  STATIC_REQUIRE(mp::Sendable<Pod>);
  STATIC_REQUIRE(mp::Sendable<int (*)(int)>);
  STATIC_REQUIRE(mp::Sendable<std::map<std::string, std::vector<std::optional<std::variant<int, std::string>>>>>);
  STATIC_REQUIRE(mp::Sendable<Person>);
  STATIC_REQUIRE(mp::Sendable<Closed>);
  STATIC_REQUIRE(mp::Sendable<Celsius>);
  STATIC_REQUIRE(mp::Sendable<Blob>);
  STATIC_REQUIRE(mp::Sendable<Tree>);

  STATIC_REQUIRE(!mp::Sendable<int*>);
  STATIC_REQUIRE(!mp::Sendable<const char*>);
  STATIC_REQUIRE(!mp::Sendable<int Pod::*>);
  STATIC_REQUIRE(!mp::Sendable<std::unique_ptr<int>>);
  STATIC_REQUIRE(!mp::Sendable<std::shared_ptr<int>>);
  STATIC_REQUIRE(!mp::Sendable<std::vector<int*>>);
  STATIC_REQUIRE(!mp::Sendable<std::map<int, std::unique_ptr<int>>>);
  STATIC_REQUIRE(!mp::Sendable<std::tuple<int, std::unique_ptr<int>>>);
  STATIC_REQUIRE(!mp::Sendable<std::optional<int*>>);
  STATIC_REQUIRE(!mp::Sendable<std::variant<int, NotSendable>>);
  STATIC_REQUIRE(!mp::Sendable<NotSendable>);
  STATIC_REQUIRE(!mp::Sendable<std::function<int(int)>>);
  STATIC_REQUIRE(!mp::Sendable<std::string_view>);  // encodable, not decodable
  STATIC_REQUIRE(!mp::Sendable<int* [2]>);
}
