// expect: must be the first mp header its file includes
// <mp/src.hpp> defines the functions it compiles once only where their
// headers are first included; after <mp/pool.hpp> they would be missing.
#define MP_SEPARATE_COMPILATION
#include <mp/pool.hpp>
#include <mp/src.hpp>

int main() { return 0; }
