#!/usr/bin/env bash
# bench/idle_many.sh [CONNECTIONS] [PROCESSES] [OUT_DIR]: scenario 3 past one
# process's file limit. Idle connections (each subscribed to one of 100
# channels, nothing published) spread over PROCESSES server processes of each
# server, every one on its own port and pinned to CPU 0, with one load
# generator per server process (pinned to CPU 1, each on its own range of
# loopback source addresses), all started together so every connection is
# held at the same time.
#
# Defaults: 50,000 connections over 3 processes (16,667 each). Why several
# processes: a process may hold at most 20,000 open files on this machine.
#
# Writes OUT_DIR/idle-<server>-<CONNECTIONS>.p<k>.json per load generator and
# combines them into OUT_DIR/idle-<server>-<CONNECTIONS>.json, which
# bench/summarize.mjs and bench/plot.mjs read like a one-process result:
#   server_rss_bytes_per_connection  sum of every process's RSS growth / all connections
#   connect.per_second               all connections / the slowest generator's connect time
#   processes, held_together         how many, and whether every generator was
#                                    still holding its connections when the last one connected
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECTIONS=${1:-50000}
PROCESSES=${2:-3}
OUT=${3:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-idle-many}
SERVERS=(${BENCH_SERVERS:-wshub node-ws bun naive-wspp})
HOLD=${HOLD_SECONDS:-30}  # seconds each generator holds its connections after connecting
mkdir -p "$OUT"
bench_check_tools
[ -f "$OUT/machine.txt" ] || machine_info "$OUT/machine.txt"

per_process=$(( (CONNECTIONS + PROCESSES - 1) / PROCESSES ))
if [ "$per_process" -gt 19000 ]; then
  echo "$per_process connections per process exceeds the 20,000 open-file limit: use more processes" >&2
  exit 2
fi

pids=()
cleanup() { for p in "${pids[@]}"; do stop_server "$p"; done; pids=(); }
trap cleanup EXIT

for server in "${SERVERS[@]}"; do
  ports=()
  for k in $(seq 1 "$PROCESSES"); do
    start_server "$server" "$OUT/idle-$server-$CONNECTIONS.p$k.log"
    pids+=("$started_pid")
    ports+=("$started_port")
  done
  printf '%-10s %6d idle connections over %d processes ... ' "$server" "$CONNECTIONS" "$PROCESSES"
  generators=()
  left=$CONNECTIONS
  for k in $(seq 1 "$PROCESSES"); do
    n=$(( left < per_process ? left : per_process ))
    left=$(( left - n ))
    result=$OUT/idle-$server-$CONNECTIONS.p$k.json
    # 4 source addresses per generator, disjoint: 127.0.0.1-4, 5-8, ...
    taskset -c 1 "$LOADGEN" --url "ws://127.0.0.1:${ports[$((k - 1))]}/ws" --subscribers "$n" --publishers 0 \
      --channels 100 --duration "$HOLD" --source-addresses 4 --first-source-address $(( 1 + 4 * (k - 1) )) \
      --connect-concurrency 500 --server-pid "${pids[$((k - 1))]}" --quiet --json-out "$result" 2> "$result.err" &
    generators+=($!)
  done
  failed=0
  for g in "${generators[@]}"; do wait "$g" || failed=1; done
  if [ "$failed" = 0 ]; then
    node -e '
      const [out, server, total, processes, hold] = process.argv.slice(1);
      const parts = [];
      for (let k = 1; k <= Number(processes); ++k) parts.push(require(`${out}/idle-${server}-${total}.p${k}.json`));
      const connections = parts.reduce((sum, r) => sum + r.connect.subscribed, 0);
      const growth = parts.reduce((sum, r) => sum + r.server_rss_bytes_per_connection * r.connect.subscribed, 0);
      const slowest = Math.max(...parts.map((r) => r.connect.seconds));
      const combined = {
        processes: Number(processes),
        connections,
        held_together: slowest < Number(hold),
        server_rss_bytes_per_connection: growth / connections,
        connect: { subscribed: connections, seconds: slowest, per_second: connections / slowest },
        per_process: parts.map((r) => ({ subscribed: r.connect.subscribed, seconds: r.connect.seconds,
          server_rss_bytes_per_connection: r.server_rss_bytes_per_connection, servers: r.servers })),
      };
      require("fs").writeFileSync(`${out}/idle-${server}-${total}.json`, JSON.stringify(combined, null, 2) + "\n");
      console.log(`${Math.round(combined.server_rss_bytes_per_connection)} B/connection, ` +
        `${Math.round(combined.connect.per_second)} connections/s` + (combined.held_together ? "" : " (NOT held together)"));
    ' "$OUT" "$server" "$CONNECTIONS" "$PROCESSES" "$HOLD"
  else
    echo "a load generator failed (see $OUT/idle-$server-$CONNECTIONS.p*.json.err)"
  fi
  cleanup
done
echo "results: $OUT"
