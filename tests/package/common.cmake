# Helpers for the package tests' cmake -P scripts. Expects WSHUB_SOURCE_DIR,
# WORK_DIR, WSHUB_GENERATOR and WSHUB_CXX_COMPILER (see tests/CMakeLists.txt).
foreach(var WSHUB_SOURCE_DIR WORK_DIR WSHUB_GENERATOR WSHUB_CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${CMAKE_SCRIPT_MODE_FILE}: -D${var}=... is required")
  endif()
endforeach()

# Runs one step; on failure prints its output and fails the test. The output is
# left in the variable named by OUTPUT_VAR when given.
function(wshub_step what)
  cmake_parse_arguments(arg "" "OUTPUT_VAR" "COMMAND" ${ARGN})
  message(STATUS "package test: ${what}")
  execute_process(COMMAND ${arg_COMMAND}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "package test: '${what}' failed (${result}):\n${output}")
  endif()
  if(arg_OUTPUT_VAR)
    set(${arg_OUTPUT_VAR} "${output}" PARENT_SCOPE)
  endif()
endfunction()

# Configures SOURCE into BINARY with the parent build's generator and compiler.
function(wshub_configure what source binary)
  wshub_step("${what}" OUTPUT_VAR output COMMAND
    "${CMAKE_COMMAND}" -S "${source}" -B "${binary}"
      -G "${WSHUB_GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${WSHUB_CXX_COMPILER}"
      -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      ${ARGN})
  set(configure_output "${output}" PARENT_SCOPE)
endfunction()

# Builds the consumer in BINARY and runs it. tests/package/consumer/main.cpp checks
# what it did itself: it must exit 0 and print the line "consumer: ok".
function(wshub_build_and_run_consumer binary)
  wshub_step("build the consumer" COMMAND "${CMAKE_COMMAND}" --build "${binary}" --config Release)
  set(exe "${binary}/consumer")
  if(NOT EXISTS "${exe}" AND EXISTS "${binary}/Release/consumer")
    set(exe "${binary}/Release/consumer")
  endif()
  wshub_step("run the consumer" OUTPUT_VAR output COMMAND "${exe}")
  if(NOT output MATCHES "(^|\n)consumer: ok\n")
    message(FATAL_ERROR "package test: the consumer exited 0 but did not print 'consumer: ok':\n${output}")
  endif()
  message(STATUS "package test: consumer says:\n${output}")
endfunction()

# Installs wshub from the source tree into PREFIX (tests, examples, bench off).
function(wshub_install_into prefix)
  wshub_configure("configure wshub for install" "${WSHUB_SOURCE_DIR}" "${WORK_DIR}/wshub-build"
    "-DCMAKE_INSTALL_PREFIX=${prefix}"
    -DWSHUB_BUILD_TESTS=OFF -DWSHUB_BUILD_EXAMPLES=OFF -DWSHUB_BUILD_BENCH=OFF)
  wshub_step("install wshub into ${prefix}" COMMAND
    "${CMAKE_COMMAND}" --install "${WORK_DIR}/wshub-build" --config Release)
endfunction()

# Every run starts from an empty WORK_DIR.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
