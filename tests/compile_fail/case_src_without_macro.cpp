// expect: belongs to a program built with MP_SEPARATE_COMPILATION
// <mp/src.hpp> compiles the engine once for a program built with
// MP_SEPARATE_COMPILATION; without the macro mp is header-only and the
// include is a mistake that would define the engine twice.
#include <mp/src.hpp>

int main() { return 0; }
