# Runs one compile-fail case: compiles SOURCE with the project's compiler and
# include path, expects the compilation to fail, and reads the whole compiler
# output for every string the case names in its leading comment lines:
#   // expect: <text>        must appear with every compiler
#   // expect-gnu: <text>    must appear when the compiler is GCC
# Variables: CXX, CXX_ID (CMAKE_CXX_COMPILER_ID), INCLUDE_DIR, EXTRA_INCLUDES, SOURCE.
file(STRINGS "${SOURCE}" expect_lines REGEX "^// expect(-[a-z]+)?: ")
if(NOT expect_lines)
  message(FATAL_ERROR "${SOURCE}: no `// expect: <text>` line says what the compiler must print.")
endif()

# EXTRA_INCLUDES: more include directories, separated by '|' (MPI's, for
# the case_mpi_* cases).
set(extra "")
if(EXTRA_INCLUDES)
  string(REPLACE "|" ";" dirs "${EXTRA_INCLUDES}")
  foreach(d IN LISTS dirs)
    list(APPEND extra -isystem "${d}")
  endforeach()
endif()
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only -DOMPI_SKIP_MPICXX=1 -I "${INCLUDE_DIR}" ${extra} "${SOURCE}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not.")
endif()

set(missing "")
foreach(line IN LISTS expect_lines)
  string(REGEX MATCH "^// expect(-[a-z]+)?: (.*)$" _ "${line}")
  set(only "${CMAKE_MATCH_1}")
  set(text "${CMAKE_MATCH_2}")
  if(only STREQUAL "-gnu" AND NOT CXX_ID STREQUAL "GNU")
    continue()
  endif()
  string(FIND "${out}" "${text}" at)
  if(at EQUAL -1)
    string(APPEND missing "\n  ${text}")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "${SOURCE} failed to compile, but the output lacks:${missing}\nThe compiler said:\n${out}")
endif()
