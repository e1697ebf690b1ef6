// expect: mp::register_exception<T>: mp cannot rebuild T in the parent
// expect: a specialization of mp::codec<T>
// expect-gnu: [with T = CodeOnly]
// Neither a constructor from std::string nor a codec: the parent could not
// make a CodeOnly from what travelled.
#include <mp/codec.hpp>

#include <exception>

struct CodeOnly : std::exception {
  explicit CodeOnly(int c) : code(c) {}
  int code;
};

MP_REGISTER_EXCEPTION(CodeOnly);

int main() {}
