# ctest's package_add_subdirectory: build and run tests/package/subdirectory, a
# project that vendors the wshub source tree with add_subdirectory. That project
# itself checks that wshub's tests, examples, bench and install are OFF there.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

wshub_configure("configure the add_subdirectory consumer"
  "${WSHUB_SOURCE_DIR}/tests/package/subdirectory" "${WORK_DIR}/build"
  "-DWSHUB_SOURCE_DIR=${WSHUB_SOURCE_DIR}")
wshub_build_and_run_consumer("${WORK_DIR}/build")
