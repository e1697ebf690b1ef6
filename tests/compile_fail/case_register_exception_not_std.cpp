// expect: mp::register_exception<T>: T must derive publicly from std::exception
// expect-gnu: [with T = Record]
// A type that is not a std::exception cannot be registered: mp reads what()
// and rethrows it. The message shows the fix, the note names the type.
#include <mp/codec.hpp>

#include <string>

struct Record {
  explicit Record(const std::string&) {}
};

int main() { mp::register_exception<Record>(); }
