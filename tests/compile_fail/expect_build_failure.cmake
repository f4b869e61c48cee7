# Run by ctest for each tests/compile_fail/<name>.cpp (see tests/CMakeLists.txt):
#   cmake -DBUILD_DIR=<build tree> -DTARGET=<target> -DCONFIG=<config>
#         -DSOURCE=<the .cpp> -P expect_build_failure.cmake
# Builds TARGET and passes only if the build fails AND its output matches the
# regex on SOURCE's first line, `// expect: <regex>`. The regex is read here, at
# test time, so editing it needs no reconfigure.
foreach(var BUILD_DIR TARGET SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_build_failure.cmake: -D${var}=... is required")
  endif()
endforeach()

file(STRINGS "${SOURCE}" first_line LIMIT_COUNT 1)
if(NOT first_line MATCHES "^// expect: (.+)$")
  message(FATAL_ERROR "${SOURCE}: the first line must be `// expect: <regex>`")
endif()
set(expect "${CMAKE_MATCH_1}")

set(config_args "")
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target "${TARGET}" ${config_args}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)

if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but ${SOURCE} must not compile.\n${output}")
endif()
if(NOT output MATCHES "${expect}")
  message(FATAL_ERROR
    "${TARGET} failed to build as it should, but its output does not match\n"
    "  ${expect}\n"
    "Output:\n${output}")
endif()
message(STATUS "${TARGET} failed to compile as expected (matched: ${expect})")
