// expect: mp cannot send this aggregate: the type of one of its fields
// expect: mp cannot encode a pointer
// expect-gnu: [with T = Named; F = const char*]
// expect-gnu: [with T = const char*]
// An aggregate with a pointer field would send an address: the message and the
// instantiation notes name the field's type.
#include <mp/codec.hpp>

struct Named {
  const char* name;
  int n;
};

int main() { return static_cast<int>(mp::dumps(Named{"x", 1}).size()); }
