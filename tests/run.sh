#!/usr/bin/env bash
# tests/run.sh: the whole wshub test suite in one command, the one README.md gives
# and .ci/run executes. Works from any directory on a fresh Debian 12 machine:
# installs the Debian packages that are missing, then configures, builds and runs
# ctest three times:
#   1. build/       -O2 -g (asserts on), -Wall -Wextra -Werror
#   2. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer
#   3. build-tsan/  ThreadSanitizer
# Exits non-zero as soon as a stage fails.
#
#   tests/run.sh                          everything (CI)
#   WSHUB_SKIP_SANITIZERS=1 tests/run.sh  stage 1 only, for a quick local run
#   WSHUB_JOBS=1 tests/run.sh             build and ctest parallelism (default 2)
set -euo pipefail

# The Debian 12 packages the suite needs, and what needs each.
DEBIAN_PACKAGES=(
  cmake g++ make pkg-config  # the build
  libasio-dev                # the library: standalone Asio (the event loop)
  libwebsocketpp-dev         # the library: the shipped WebSocket transport
  libhiredis-dev             # the library: RedisPubSub and the connection registry
  rapidjson-dev              # the library: the JSON protocol codec
  catch2                     # the unit tests (Catch2 v2)
  libcli11-dev               # examples and bench: command-line flags
  libbenchmark-dev           # bench: the fan-out micro benchmark (Google Benchmark)
  redis-server               # Redis tests start their own redis-server on free ports
  nodejs npm                 # the chat example's browser test and the bench's Node peers
  chromium                   # the chat example's browser test (headless)
)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=${WSHUB_JOBS:-2}

banner() { printf '\n==== wshub tests/run.sh: %s ====\n' "$*"; }

current_stage="dependencies"
passed=()
on_exit() {
  local rc=$?
  echo
  if [ "$rc" -eq 0 ]; then
    echo "==== wshub tests/run.sh: PASSED: ${passed[*]} ===="
  else
    echo "==== wshub tests/run.sh: FAILED in stage '$current_stage' (exit $rc); passed before it: ${passed[*]:-none} ===="
  fi
}
trap on_exit EXIT

# ---- Dependencies -----------------------------------------------------------
banner "dependencies"
bash "$ROOT/cmake/install_deps.sh" "${DEBIAN_PACKAGES[@]}"
# The e2e tests' npm packages (ws, playwright-core), from the committed lock;
# skipped when node_modules was installed from this very lock.
E2E=$ROOT/tests/e2e
if cmp -s "$E2E/package-lock.json" "$E2E/node_modules/.wshub-installed-lock"; then
  echo "tests/e2e/node_modules is up to date"
else
  (cd "$E2E" && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.wshub-installed-lock)
fi
passed+=("dependencies")

# ---- Stages -------------------------------------------------------------------
# run_stage <name> <build dir> <cmake -D args...>; every command runs under the
# array STAGE_RUN (an `env` with the stage's variables, perhaps behind setarch).
run_stage() {
  local name=$1 dir=$ROOT/$2
  shift 2
  current_stage=$name
  banner "$name: configure, build and test in $dir"
  "${STAGE_RUN[@]}" cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
  "${STAGE_RUN[@]}" cmake --build "$dir" -j "$JOBS"
  "${STAGE_RUN[@]}" ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 300 --no-tests=error
  passed+=("$name")
}

# RelWithDebInfo without its -DNDEBUG: the tests want assert() on.
STAGE_RUN=(env)
run_stage "release" build \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" -DWSHUB_WERROR=ON -DWSHUB_SANITIZE=

if [ "${WSHUB_SKIP_SANITIZERS:-0}" = 1 ]; then
  echo
  echo "WSHUB_SKIP_SANITIZERS=1: skipping the ASan+UBSan and TSan stages"
  passed+=("(sanitizers skipped)")
  exit 0
fi

# The sanitizer stages build without -Werror: instrumentation changes what GCC's
# flow analysis sees and yields warnings (-Wmaybe-uninitialized, -Wstringop-*)
# that are not defects of the code; stage 1 has already held it to -Werror.
STAGE_RUN=(env
  "ASAN_OPTIONS=halt_on_error=1:print_stacktrace=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
run_stage "asan+ubsan" build-asan \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DWSHUB_WERROR=OFF -DWSHUB_SANITIZE=address,undefined

# TSan cannot map its shadow memory when the kernel randomises mmap with more
# than 28 bits (newer kernels default to 32); running without ASLR avoids that.
STAGE_RUN=(env "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}")
if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ]; then
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    STAGE_RUN=(setarch "$(uname -m)" -R "${STAGE_RUN[@]}")
  else
    echo "warning: vm.mmap_rnd_bits > 28 and setarch -R is not allowed here; if TSan fails to start, run: sudo sysctl vm.mmap_rnd_bits=28" >&2
  fi
fi
run_stage "tsan" build-tsan \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DWSHUB_WERROR=OFF -DWSHUB_SANITIZE=thread
