// expect: mp::register_exception<T>: T is a standard exception type that mp already rethrows as itself
// expect-gnu: [with T = std::out_of_range]
// The standard exceptions come back as themselves without registration;
// registering one is refused rather than ignored.
#include <mp/codec.hpp>

#include <stdexcept>

int main() { mp::register_exception<std::out_of_range>(); }
