# ctest's package_find_package: install wshub from the source tree into a fresh
# prefix, then build and run tests/package/consumer against that prefix only,
# with find_package(wshub 0.1 REQUIRED) as a user would.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

set(prefix "${WORK_DIR}/prefix")
wshub_install_into("${prefix}")

foreach(file include/wshub/wshub.hpp share/cmake/wshub/wshubConfig.cmake
             share/cmake/wshub/wshubConfigVersion.cmake share/cmake/wshub/wshubTargets.cmake
             share/cmake/wshub/wshubDependencies.cmake)
  if(NOT EXISTS "${prefix}/${file}")
    message(FATAL_ERROR "package test: the install lacks ${file}")
  endif()
endforeach()

wshub_configure("configure the consumer" "${WSHUB_SOURCE_DIR}/tests/package/consumer" "${WORK_DIR}/consumer-build"
  "-DCMAKE_PREFIX_PATH=${prefix}")
# The consumer must have found this install, not some other wshub.
if(NOT configure_output MATCHES "wshub_DIR=([^\n]*)")
  message(FATAL_ERROR "package test: the consumer did not report wshub_DIR:\n${configure_output}")
endif()
file(REAL_PATH "${CMAKE_MATCH_1}" found_dir)
file(REAL_PATH "${prefix}/share/cmake/wshub" expected_dir)
if(NOT found_dir STREQUAL expected_dir)
  message(FATAL_ERROR "package test: the consumer found wshub in ${found_dir}, not in ${expected_dir}")
endif()

wshub_build_and_run_consumer("${WORK_DIR}/consumer-build")
