// mp/mp.hpp - everything in mp, in one include.
#pragma once

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.1.0"

#include <mp/errors.hpp>
