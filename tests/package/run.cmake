# Usage: cmake -DMP_SOURCE_DIR=... -DMP_BINARY_DIR=... -DWORK_DIR=... -DMODE=install|subdirectory|pkg-config
#              [-DCXX=<c++ compiler>] -P run.cmake
# Installs mp from its build tree into a scratch prefix (MODE=install) or uses
# its source tree directly (MODE=subdirectory), then configures, builds and
# runs a consumer project against it. MODE=pkg-config installs, then compiles
# the consumer with `CXX -std=c++20 main.cpp $(pkg-config --cflags --libs mp)`
# and no CMake at all, and checks that `pkg-config --modversion mp` is the
# version the headers define.
file(REMOVE_RECURSE "${WORK_DIR}")

function(run_checked what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  string(STRIP "${out}" out)
  set(out "${out}" PARENT_SCOPE)
endfunction()

if(NOT MODE STREQUAL "subdirectory")
  run_checked("cmake --install" ${CMAKE_COMMAND} --install "${MP_BINARY_DIR}" --prefix "${WORK_DIR}/prefix")
endif()

if(MODE STREQUAL "pkg-config")
  find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
  set(pc ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${WORK_DIR}/prefix/share/pkgconfig" ${PKG_CONFIG})
  run_checked("pkg-config --cflags --libs mp" ${pc} --cflags --libs mp)
  separate_arguments(flags UNIX_COMMAND "${out}")
  message(STATUS "pkg-config --cflags --libs mp: ${out}")
  run_checked("pkg-config --modversion mp" ${pc} --modversion mp)
  set(pc_version "${out}")
  run_checked("compiling the consumer with pkg-config's flags"
    ${CXX} -std=c++20 "${CMAKE_CURRENT_LIST_DIR}/main.cpp" ${flags} -o "${WORK_DIR}/consumer")
  run_checked("the consumer" "${WORK_DIR}/consumer")
  if(NOT out MATCHES "^mp ${pc_version}:")
    message(FATAL_ERROR "pkg-config says mp ${pc_version}, the headers say: ${out}")
  endif()
  message(STATUS "${out}")
  return()
endif()

set(consumer_args)
if(MODE STREQUAL "install")
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
else()
  list(APPEND consumer_args "-DMP_SOURCE_DIR=${MP_SOURCE_DIR}")
endif()
run_checked("consumer configure" ${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}" -B "${WORK_DIR}/build" ${consumer_args})
run_checked("consumer build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run_checked("consumer run" "${WORK_DIR}/build/consumer")
if(NOT out MATCHES "map ok, header-only$")
  message(FATAL_ERROR "the consumer was not built header-only: ${out}")
endif()
message(STATUS "${out}")
run_checked("separately compiled consumer run" "${WORK_DIR}/build/consumer_separate")
if(NOT out MATCHES "map ok, separately compiled$")
  message(FATAL_ERROR "mp_separate_compilation(consumer_separate) did not build it separately compiled: ${out}")
endif()
message(STATUS "${out}")
