// The one file of test_src that compiles mp's engine (MP_SEPARATE_COMPILATION).
#include <mp/src.hpp>
