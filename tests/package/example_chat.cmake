# ctest's package_example_chat: users copy an example out of the tree as a
# starting point, so examples/chat must build on its own against an installed
# wshub. Install wshub into a fresh prefix, copy the example's folder alone
# somewhere else, configure it with find_package(wshub) from that prefix,
# build it and run `chat_server --help`.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

set(prefix "${WORK_DIR}/prefix")
wshub_install_into("${prefix}")

file(COPY "${WSHUB_SOURCE_DIR}/examples/chat" DESTINATION "${WORK_DIR}/copied")
wshub_configure("configure the copied example" "${WORK_DIR}/copied/chat" "${WORK_DIR}/chat-build"
  "-DCMAKE_PREFIX_PATH=${prefix}")
wshub_step("build the copied example" COMMAND
  "${CMAKE_COMMAND}" --build "${WORK_DIR}/chat-build" --config Release -j 2)
set(exe "${WORK_DIR}/chat-build/chat_server")
if(NOT EXISTS "${exe}" AND EXISTS "${WORK_DIR}/chat-build/Release/chat_server")
  set(exe "${WORK_DIR}/chat-build/Release/chat_server")
endif()
wshub_step("run chat_server --help" OUTPUT_VAR output COMMAND "${exe}" --help)
foreach(flag --host --port --redis --instance --prefix --max-message-bytes --max-queue-bytes
             --max-queue-messages --slow-policy --allowed-origin --ping-interval --pong-timeout
             --shutdown-timeout --log-level)
  if(NOT output MATCHES "${flag}")
    message(FATAL_ERROR "package test: chat_server --help does not list ${flag}:\n${output}")
  endif()
endforeach()
message(STATUS "package test: the copied chat example builds and runs against the installed wshub")
