#!/usr/bin/env bash
# bench/recovery.sh [CHANNELS] [OUT_DIR]: scenario 4 of docs/benchmarks.md,
# for wshub and the peers that use Redis. How long an instance takes, after
# Redis is back, to subscribe again to every channel that has local
# subscribers, and how many SUBSCRIBE commands that costs.
#
# Per server: one instance over a throwaway redis-server; wshub_loadgen holds
# 10,000 connections, each subscribed to CHANNELS / 10,000 channels (default
# 100,000 channels: 10 per connection), so the instance has CHANNELS channels
# on Redis. Then kill -9 of redis-server, a restart on the same port (empty),
# and the clock runs from the first PING answered until Redis itself counts
# every channel subscribed again (INFO stats pubsub_channels), for at most
# 60 s. SUBSCRIBE commands come from the new server's INFO commandstats (it
# starts at zero). The instance's connections stay open throughout.
#
#   bench/recovery.sh                 wshub, node-ws and bun; BENCH_SERVERS="wshub" for one
#   results: OUT_DIR/recovery-<server>.json, one JSON line each, also printed
set -euo pipefail
channels=${1:-100000}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUT=${2:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-recovery}
SERVERS=(${BENCH_SERVERS:-wshub node-ws bun})
GIVE_UP_MS=60000
connections=10000
per_connection=$(( (channels + connections - 1) / connections ))
mkdir -p "$OUT"
work=$(mktemp -d)
redis_pid= server_pid= loadgen_pid=
cleanup() {
  for pid in $loadgen_pid $server_pid $redis_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  loadgen_pid= server_pid= redis_pid=
}
trap 'cleanup; rm -rf "$work"' EXIT

for tool in redis-cli redis-server node taskset; do
  command -v "$tool" > /dev/null || { echo "bench/recovery.sh needs $tool (apt-get install redis-server nodejs util-linux)"; exit 1; }
done
bench_check_tools
[ -f "$OUT/machine.txt" ] || machine_info "$OUT/machine.txt"
port=$(free_port)
now_ms() { date +%s%3N; }
pubsub_channels() { redis-cli -p "$port" INFO stats | sed -n 's/^pubsub_channels:\([0-9]*\).*/\1/p'; }

for server in "${SERVERS[@]}"; do
  start_redis "$port" "$work" "$work/redis.log"
  start_server "$server" "$work/$server.log" --redis "redis://127.0.0.1:$port" --instance recovery
  server_pid=$started_pid
  taskset -c 1 "$LOADGEN" --url "ws://127.0.0.1:$started_port/ws" --subscribers "$connections" \
    --publishers 0 --channels "$channels" --channels-per-subscriber "$per_connection" --duration 600 \
    --connect-concurrency 500 --quiet > "$work/loadgen.json" 2> "$work/loadgen.err" &
  loadgen_pid=$!
  until [ "$(pubsub_channels)" -ge "$channels" ] 2>/dev/null; do
    kill -0 "$loadgen_pid" 2>/dev/null || { echo "the load generator stopped:"; cat "$work/loadgen.err"; exit 1; }
    sleep 0.2
  done
  before=$(pubsub_channels)

  kill -KILL "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  start_redis "$port" "$work" "$work/redis.log"
  back=$(now_ms)
  resubscribed_ms=null
  while true; do
    if [ "$(pubsub_channels)" -ge "$before" ] 2>/dev/null; then resubscribed_ms=$(( $(now_ms) - back )); break; fi
    [ $(( $(now_ms) - back )) -gt $GIVE_UP_MS ] && break
    sleep 0.01
  done
  in_redis=$(pubsub_channels)
  subscribes=$(redis-cli -p "$port" INFO commandstats | sed -n 's/^cmdstat_subscribe:calls=\([0-9]*\),.*/\1/p')
  alive=$(kill -0 "$server_pid" 2>/dev/null && echo true || echo false)
  result="{\"server\": \"$server\", \"channels\": $before, \"channels_in_redis_after\": $in_redis, \"connections\": $connections, \"resubscribed_ms\": $resubscribed_ms, \"give_up_ms\": $GIVE_UP_MS, \"subscribe_commands\": ${subscribes:-0}, \"server_alive\": $alive}"
  echo "$result" | tee "$OUT/recovery-$server.json"
  cleanup
done
echo "results: $OUT"
