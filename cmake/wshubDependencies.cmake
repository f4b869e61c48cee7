# wshubDependencies.cmake: finds what wshub's headers include and gives each
# dependency a target. Used twice: by wshub's own build and, installed next to
# wshubConfig.cmake, by every find_package(wshub).
#
# Targets (IMPORTED, visible in the including directory and below):
#   Threads::Threads          from FindThreads
#   wshub_deps::asio          standalone Asio headers          (Debian: libasio-dev)
#   wshub_deps::websocketpp   websocketpp 0.8 headers          (Debian: libwebsocketpp-dev)
#   wshub_deps::rapidjson     RapidJSON headers                (Debian: rapidjson-dev)
#   wshub_deps::hiredis       hiredis headers + library        (Debian: libhiredis-dev)
#
# Debian ships no usable targets for Asio, RapidJSON and hiredis, so they are
# found with find_path/find_library; a prefix outside the default paths can be
# given through CMAKE_PREFIX_PATH or the cache variables WSHUB_*_INCLUDE_DIR and
# WSHUB_HIREDIS_LIBRARY.
#
# websocketpp's own config does an unguarded add_library(websocketpp::websocketpp)
# and so breaks when it runs twice in one directory. This file therefore never
# runs it: it reuses websocketpp::websocketpp when the includer already has it
# and otherwise finds the headers itself. Users may call find_package(websocketpp)
# before or after find_package(wshub).
#
# Every add_library is guarded, so including this file twice is harmless.
#
# Sets WSHUB_DEPENDENCIES_FOUND. Missing dependencies: by default a FATAL_ERROR that lists the Debian packages
# to install. When wshubConfig.cmake includes this file it sets
# WSHUB_DEPENDENCIES_NOT_FATAL first; then wshub_FOUND becomes FALSE with
# wshub_NOT_FOUND_MESSAGE, as find_dependency() would do, so that
# find_package(wshub QUIET) stays quiet and REQUIRED fails with the message.

set(_wshub_missing "")

# Threads: websocketpp, Asio and the tests start threads.
if(NOT TARGET Threads::Threads)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  if(wshub_FIND_QUIETLY)
    find_package(Threads QUIET)
  else()
    find_package(Threads)
  endif()
endif()
if(NOT TARGET Threads::Threads)
  list(APPEND _wshub_missing "a threads library (Threads::Threads)")
endif()

# Standalone Asio (not Boost.Asio).
if(NOT TARGET wshub_deps::asio)
  find_path(WSHUB_ASIO_INCLUDE_DIR NAMES asio.hpp
    DOC "Directory that holds standalone Asio's asio.hpp")
  if(WSHUB_ASIO_INCLUDE_DIR)
    add_library(wshub_deps::asio INTERFACE IMPORTED)
    set_target_properties(wshub_deps::asio PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${WSHUB_ASIO_INCLUDE_DIR}")
  else()
    list(APPEND _wshub_missing "standalone Asio (asio.hpp): apt-get install libasio-dev")
  endif()
endif()

# websocketpp.
if(NOT TARGET wshub_deps::websocketpp)
  if(TARGET websocketpp::websocketpp)
    add_library(wshub_deps::websocketpp INTERFACE IMPORTED)
    set_target_properties(wshub_deps::websocketpp PROPERTIES
      INTERFACE_LINK_LIBRARIES websocketpp::websocketpp)
  else()
    find_path(WSHUB_WEBSOCKETPP_INCLUDE_DIR NAMES websocketpp/version.hpp
      DOC "Directory that holds websocketpp/version.hpp")
    if(WSHUB_WEBSOCKETPP_INCLUDE_DIR)
      add_library(wshub_deps::websocketpp INTERFACE IMPORTED)
      set_target_properties(wshub_deps::websocketpp PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${WSHUB_WEBSOCKETPP_INCLUDE_DIR}")
    else()
      list(APPEND _wshub_missing "websocketpp (websocketpp/version.hpp): apt-get install libwebsocketpp-dev")
    endif()
  endif()
endif()

# RapidJSON: its Debian config only sets RAPIDJSON_INCLUDE_DIRS, so find the header.
if(NOT TARGET wshub_deps::rapidjson)
  find_path(WSHUB_RAPIDJSON_INCLUDE_DIR NAMES rapidjson/document.h
    HINTS ${RAPIDJSON_INCLUDE_DIRS}
    DOC "Directory that holds rapidjson/document.h")
  if(WSHUB_RAPIDJSON_INCLUDE_DIR)
    add_library(wshub_deps::rapidjson INTERFACE IMPORTED)
    set_target_properties(wshub_deps::rapidjson PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${WSHUB_RAPIDJSON_INCLUDE_DIR}")
  else()
    list(APPEND _wshub_missing "RapidJSON (rapidjson/document.h): apt-get install rapidjson-dev")
  endif()
endif()

# hiredis: its Debian config only sets variables. Headers are included as
# <hiredis/hiredis.h> and <hiredis/async.h>, so the include directory is the
# parent of hiredis/.
if(NOT TARGET wshub_deps::hiredis)
  find_path(WSHUB_HIREDIS_INCLUDE_DIR NAMES hiredis/hiredis.h hiredis/async.h
    DOC "Directory that holds hiredis/hiredis.h")
  find_library(WSHUB_HIREDIS_LIBRARY NAMES hiredis
    DOC "The hiredis library (libhiredis.so or .a)")
  if(WSHUB_HIREDIS_INCLUDE_DIR AND WSHUB_HIREDIS_LIBRARY)
    add_library(wshub_deps::hiredis UNKNOWN IMPORTED)
    set_target_properties(wshub_deps::hiredis PROPERTIES
      IMPORTED_LOCATION "${WSHUB_HIREDIS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${WSHUB_HIREDIS_INCLUDE_DIR}")
  else()
    list(APPEND _wshub_missing "hiredis (hiredis/hiredis.h and libhiredis): apt-get install libhiredis-dev")
  endif()
endif()

if(NOT _wshub_missing)
  set(WSHUB_DEPENDENCIES_FOUND TRUE)
else()
  set(WSHUB_DEPENDENCIES_FOUND FALSE)
  list(JOIN _wshub_missing "\n  - " _wshub_missing_text)
  string(CONCAT _wshub_missing_text
    "wshub: missing dependencies:\n  - ${_wshub_missing_text}\n"
    "On Debian 12: sudo apt-get install libasio-dev libwebsocketpp-dev rapidjson-dev libhiredis-dev")
  if(WSHUB_DEPENDENCIES_NOT_FATAL)
    set(wshub_FOUND FALSE)
    set(wshub_NOT_FOUND_MESSAGE "${_wshub_missing_text}")
  else()
    message(FATAL_ERROR "${_wshub_missing_text}")
  endif()
endif()
unset(_wshub_missing)
unset(_wshub_missing_text)
