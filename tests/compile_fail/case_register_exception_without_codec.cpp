// expect: mp::register_exception<T> is completed by the codec: include <mp/codec.hpp>
// expect-gnu: [with T = BadRecord]
// <mp/errors.hpp> alone declares register_exception; the codec completes it.
#include <mp/errors.hpp>

#include <stdexcept>

struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int main() { mp::register_exception<BadRecord>(); }
