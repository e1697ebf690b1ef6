// expect: mp::register_exception<T>: T must be a copy-constructible, non-abstract class
// expect-gnu: [with T = Pinned]
// Every thrown type is copied into the exception object; the parent throws
// a rebuilt Pinned, so it must be copyable.
#include <mp/codec.hpp>

#include <stdexcept>

struct Pinned : std::runtime_error {
  using std::runtime_error::runtime_error;
  Pinned(const Pinned&) = delete;
};

int main() { mp::register_exception<Pinned>(); }
