# bench/lib.sh: what the bench scripts share (sourced, not run): where the
# binaries are, how each server of the comparison is started with the same
# flags, and how it is stopped.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_check_tools            # binaries built, peers installed, taskset present
#   start_server NAME LOG [ARGS...]   # pinned to CPU 0; sets started_pid, started_port
#   stop_server PID
#   free_port                    # prints a free TCP port on 127.0.0.1
#   start_redis PORT DIR LOG     # a throwaway redis-server on CPU 1, no persistence; sets redis_pid
#
# Servers: wshub (examples/chat/chat_server), node-ws, bun, naive-wspp. Every
# one prints "listening on http://HOST:PORT/" and takes --port 0; the peers
# and chat_server also take --redis URL --instance ID for two instances.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${WSHUB_BUILD_DIR:-$ROOT/build}
LOADGEN=$BUILD/bench/wshub_loadgen
CHAT=$BUILD/examples/chat/chat_server
PEERS=$ROOT/bench/peers

# The servers, all given --port 0. wshub's queue limits are raised so the
# fan-out runs measure throughput, not eviction (the peers have no limits);
# the isolation scenario passes its own.
declare -A SERVER_CMD=(
  [wshub]="$CHAT --port 0 --publish-rate 0 --log-level warn"
  [node-ws]="node $PEERS/node-ws/server.js --port 0"
  [bun]="$PEERS/bun/node_modules/.bin/bun $PEERS/bun/server.js --port 0"
  [naive-wspp]="$BUILD/bench/naive_wspp_server --port 0"
)
WSHUB_THROUGHPUT_FLAGS="--max-queue-messages 100000 --max-queue-bytes 67108864"

bench_check_tools() {
  for binary in "$LOADGEN" "$CHAT" "$BUILD/bench/naive_wspp_server"; do
    [ -x "$binary" ] || { echo "missing $binary: build first (cmake -S . -B build && cmake --build build)" >&2; exit 1; }
  done
  for peer in node-ws bun; do
    [ -d "$PEERS/$peer/node_modules" ] || (cd "$PEERS/$peer" && npm ci --no-audit --no-fund)
  done
  command -v taskset > /dev/null || { echo "taskset is missing (apt-get install util-linux)" >&2; exit 1; }
}

# start_server NAME LOG [ARGS...]: starts server NAME pinned to CPU 0 with
# ARGS appended, waits until it listens; sets started_pid and started_port.
start_server() {
  local name=$1 log=$2
  shift 2
  # shellcheck disable=SC2086
  taskset -c 0 ${SERVER_CMD[$name]} "$@" > "$log" 2>&1 &
  started_pid=$!
  started_port=
  for _ in $(seq 1 300); do
    started_port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\)/.*|\1|p' "$log" | head -1)
    [ -n "$started_port" ] && return 0
    kill -0 "$started_pid" 2> /dev/null || break
    sleep 0.1
  done
  echo "$name did not start; its log:" >&2
  cat "$log" >&2
  exit 1
}

# stop_server PID: SIGTERM, up to 10 s for a graceful exit, then SIGKILL.
stop_server() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2> /dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();})'
}

# start_redis PORT DIR LOG: a throwaway redis-server (no RDB, no AOF, files
# in DIR) pinned to CPU 1 with the load generator; sets redis_pid. Returns
# once it answers PING.
start_redis() {
  taskset -c 1 redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$2" > "$3" 2>&1 &
  redis_pid=$!
  until redis-cli -p "$1" PING > /dev/null 2>&1; do sleep 0.005; done
}

# machine_info FILE: what the results were measured on.
machine_info() {
  {
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "kernel: $(uname -r)"
    echo "node: $(node --version), bun: $("$PEERS/bun/node_modules/.bin/bun" --version)"
    echo "wshub: $(git -C "$ROOT" rev-parse --short HEAD)"
  } > "$1"
}
