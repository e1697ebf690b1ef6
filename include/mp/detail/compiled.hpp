// mp/detail/compiled.hpp - MP_COMPILED, how a non-template function that
// MP_SEPARATE_COMPILATION compiles once is declared.
//
// Header-only (the default), MP_COMPILED is `inline` and the header defines
// the function. With MP_SEPARATE_COMPILATION, the header declares it and its
// definition is compiled only in the file that includes <mp/src.hpp>, where
// MP_SOURCE is defined; such a header puts its definitions under
// `#if MP_DEFINE_COMPILED`.
#pragma once

#if !defined(MP_SEPARATE_COMPILATION)
#define MP_COMPILED inline
#define MP_DEFINE_COMPILED 1
#elif defined(MP_SOURCE)
#define MP_COMPILED
#define MP_DEFINE_COMPILED 1
#else
#define MP_COMPILED
#define MP_DEFINE_COMPILED 0
#endif
