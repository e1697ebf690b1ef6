// Tests of <mp/errors.hpp>: a task's exception comes back to the parent as
// the same type when it is registered (mp::register_exception,
// MP_REGISTER_EXCEPTION), with its fields when it has a codec, and as
// mp::RemoteError otherwise; a registration made after the pool exists
// holds in its workers; fields that do not decode give mp::DecodeError.
#include <catch2/catch.hpp>

#include <mp/errors.hpp>
#include <mp/pool.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Registered: a registered base must not catch it.
struct SubRecord : BadRecord {
  using BadRecord::BadRecord;
};

// Never registered anywhere in this program.
struct Unregistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Never registered; derives from the registered BadRecord.
struct DerivedRecord : BadRecord {
  using BadRecord::BadRecord;
};

// Keeps its fields through serialize().
struct FieldError : std::runtime_error {
  explicit FieldError(const std::string& what) : std::runtime_error(what) {}
  FieldError(const std::string& what, int l, std::string f) : std::runtime_error(what), line(l), file(std::move(f)) {}
  int line = 0;
  std::string file;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(line, file);
  }
};

// No constructor from a string: default-constructed, then its fields read.
struct CountedError : std::exception {
  int count = 0;
  std::string text = "counted";
  const char* what() const noexcept override { return text.c_str(); }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(count, text);
  }
};

// No constructor from a string, no default constructor: an mp::codec.
class CodeError : public std::exception {
public:
  explicit CodeError(int code) : code_(code), text_("error code " + std::to_string(code)) {}
  [[nodiscard]] int code() const noexcept { return code_; }
  const char* what() const noexcept override { return text_.c_str(); }

private:
  int code_;
  std::string text_;
};

// Its save() and load() disagree: the parent cannot decode what it sent.
struct Lopsided : std::runtime_error {
  using std::runtime_error::runtime_error;
  template <class Archive>
  void save(Archive& ar) const {
    ar(std::int32_t{5});
  }
  template <class Archive>
  void load(Archive& ar) {
    std::string s;
    ar(s);
  }
};

// Its fields cannot be encoded: it travels as mp::RemoteError.
struct Unsendable : std::runtime_error {
  using std::runtime_error::runtime_error;
  template <class Archive>
  void save(Archive&) const {
    throw std::length_error("cannot encode");
  }
  template <class Archive>
  void load(Archive&) {}
};

// Registered only after a pool exists (LateError) or only at namespace scope
// (ScopedError): nothing else in the program names them.
struct LateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ScopedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

template <>
struct mp::codec<CodeError> {
  using wire_type = int;
  static int to_wire(const CodeError& e) { return e.code(); }
  static CodeError from_wire(int&& c) { return CodeError(c); }
};

namespace {

MP_REGISTER_EXCEPTION(ScopedError);

int throw_bad(int i) { throw BadRecord("bad record " + std::to_string(i)); }

int check_record(int i) {
  if (i == 4 || i == 7) throw BadRecord("bad record " + std::to_string(i));
  return i * 2;
}

int throw_kind(int k) {
  switch (k) {
    case 0: throw SubRecord("sub");
    case 1: throw Unregistered("not registered");
    case 2: throw DerivedRecord("derived");
    case 3: throw FieldError("field error", 42, "rows.csv");
    case 4: {
      CountedError e;
      e.count = 9;
      e.text = "counted 9";
      throw e;
    }
    case 5: throw CodeError(7);
    case 6: throw Lopsided("lopsided");
    case 7: throw LateError("late");
    case 8: throw ScopedError("scoped");
    case 9: throw Unsendable("unsendable");
    default: return k;
  }
}

// Throws SubRecord, caught as std::exception and rethrown: the exact type
// travels, not the static type of the handler.
int rethrow_as_base(int) {
  try {
    throw SubRecord("caught as std::exception");
  } catch (const std::exception&) {
    throw;
  }
}

}  // namespace

TEST_CASE("a registered exception comes back as itself from apply and apply_async", "[errors]") {
  mp::register_exception<BadRecord>();
  mp::Pool pool(2);
  CHECK_THROWS_MATCHES(pool.apply(throw_bad, 3), BadRecord, Catch::Message("bad record 3"));
  auto r = pool.apply_async(throw_bad, 5);
  CHECK_THROWS_MATCHES(r.get(), BadRecord, Catch::Message("bad record 5"));
  CHECK(pool.apply(throw_kind, 100) == 100);  // the pool still works
}

TEST_CASE("map rethrows the registered exception of the first failing item", "[errors]") {
  mp::register_exception<BadRecord>();
  mp::Pool pool(2);
  std::vector<int> items(10);
  std::iota(items.begin(), items.end(), 0);
  for (std::size_t chunksize : {std::size_t{1}, std::size_t{3}, std::size_t{10}}) {
    CAPTURE(chunksize);
    CHECK_THROWS_MATCHES(pool.map(check_record, items, chunksize), BadRecord, Catch::Message("bad record 4"));
  }
  auto m = pool.map_async(check_record, items, 2);
  CHECK_THROWS_MATCHES(m.get(), BadRecord, Catch::Message("bad record 4"));
}

TEST_CASE("a registered exception keeps its fields", "[errors]") {
  mp::register_exception<FieldError>();
  mp::register_exception<CountedError>();
  mp::register_exception<CodeError>();
  mp::Pool pool(1);
  try {
    pool.apply(throw_kind, 3);
    FAIL("no throw");
  } catch (const FieldError& e) {
    CHECK(std::string(e.what()) == "field error");
    CHECK(e.line == 42);
    CHECK(e.file == "rows.csv");
  }
  try {
    pool.apply(throw_kind, 4);
    FAIL("no throw");
  } catch (const CountedError& e) {
    CHECK(e.count == 9);
    CHECK(std::string(e.what()) == "counted 9");
  }
  try {
    pool.apply(throw_kind, 5);
    FAIL("no throw");
  } catch (const CodeError& e) {
    CHECK(e.code() == 7);
    CHECK(std::string(e.what()) == "error code 7");
  }
}

TEST_CASE("an unregistered type stays RemoteError with its type name", "[errors]") {
  mp::Pool pool(1);
  try {
    pool.apply(throw_kind, 1);
    FAIL("no throw");
  } catch (const mp::RemoteError& e) {
    CHECK(std::string(e.what()) == "not registered");
    CHECK(e.type_name() == "(anonymous namespace)::Unregistered");
  }
}

TEST_CASE("the exact type is matched: never sliced to a registered base", "[errors]") {
  mp::register_exception<BadRecord>();
  mp::register_exception<SubRecord>();
  mp::Pool pool(1);
  try {
    pool.apply(throw_kind, 2);  // DerivedRecord: its base BadRecord is registered, it is not
    FAIL("no throw");
  } catch (const BadRecord&) {
    FAIL("DerivedRecord came back sliced to BadRecord");
  } catch (const mp::RemoteError& e) {
    CHECK(e.type_name() == "(anonymous namespace)::DerivedRecord");
    CHECK(std::string(e.what()) == "derived");
  }
  CHECK_THROWS_MATCHES(pool.apply(throw_kind, 0), SubRecord, Catch::Message("sub"));
  CHECK_THROWS_MATCHES(pool.apply(rethrow_as_base, 0), SubRecord, Catch::Message("caught as std::exception"));
}

TEST_CASE("MP_REGISTER_EXCEPTION registers at namespace scope", "[errors]") {
  mp::Pool pool(1);
  CHECK_THROWS_MATCHES(pool.apply(throw_kind, 8), ScopedError, Catch::Message("scoped"));
}

TEST_CASE("registering after the pool's workers exist still works", "[errors]") {
  mp::Pool pool(2);
  CHECK(pool.apply(throw_kind, 100) == 100);  // the workers run before the call below
  mp::register_exception<LateError>();
  CHECK_THROWS_MATCHES(pool.apply(throw_kind, 7), LateError, Catch::Message("late"));
}

TEST_CASE("fields that do not decode give DecodeError", "[errors]") {
  mp::register_exception<Lopsided>();
  mp::Pool pool(1);
  CHECK_THROWS_AS(pool.apply(throw_kind, 6), mp::DecodeError);
  CHECK(pool.apply(throw_kind, 100) == 100);
}

TEST_CASE("fields that cannot be encoded: RemoteError with the type and what()", "[errors]") {
  mp::register_exception<Unsendable>();
  mp::Pool pool(1);
  try {
    pool.apply(throw_kind, 9);
    FAIL("no throw");
  } catch (const mp::RemoteError& e) {
    CHECK(e.type_name() == "(anonymous namespace)::Unsendable");
    CHECK(std::string(e.what()) == "unsendable");
  }
}

namespace {

// The error body a worker would send for FieldError("f", 3, "a.csv").
mp::detail::WireError field_error_body() {
  try {
    throw FieldError("f", 3, "a.csv");
  } catch (...) {
    return mp::detail::current_wire_error();
  }
}

}  // namespace

TEST_CASE("a registered error body: corrupt fields, unknown names", "[errors]") {
  mp::register_exception<FieldError>();
  mp::detail::WireError w = field_error_body();
  REQUIRE(w.kind == mp::detail::ErrorKind::registered);
  CHECK_THROWS_AS(std::rethrow_exception(mp::detail::make_exception(w)), FieldError);

  auto truncated = w;
  truncated.fields.pop_back();
  CHECK_THROWS_AS(std::rethrow_exception(mp::detail::make_exception(truncated)), mp::DecodeError);
  auto trailing = w;
  trailing.fields.push_back(std::byte{0});
  CHECK_THROWS_AS(std::rethrow_exception(mp::detail::make_exception(trailing)), mp::DecodeError);
  auto huge = w;
  huge.fields.at(4 + 7) = std::byte{0xff};  // the top byte of the file name's length
  CHECK_THROWS_AS(std::rethrow_exception(mp::detail::make_exception(huge)), mp::DecodeError);

  auto unknown = w;
  unknown.key = "no such type";
  try {
    std::rethrow_exception(mp::detail::make_exception(unknown));
  } catch (const mp::RemoteError& e) {
    CHECK(e.type_name() == "(anonymous namespace)::FieldError");
    CHECK(std::string(e.what()) == "f");
  }
}

TEST_CASE("a type is listed once, however often it is registered", "[errors]") {
  mp::register_exception<BadRecord>();
  mp::register_exception<const BadRecord&>();
  const mp::detail::ExceptionEntry* first = mp::detail::find_exception_entry(typeid(BadRecord));
  REQUIRE(first != nullptr);
  mp::detail::ExceptionEntry copy{&typeid(BadRecord), first->encode, first->decode, nullptr};
  CHECK(mp::detail::add_exception_entry(copy));
  CHECK(mp::detail::find_exception_entry(typeid(BadRecord)) == first);
  CHECK(mp::detail::find_exception_entry(std::string(typeid(BadRecord).name())) == first);
  CHECK(mp::detail::find_exception_entry(typeid(Unregistered)) == nullptr);
}
