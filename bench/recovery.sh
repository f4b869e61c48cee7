#!/usr/bin/env bash
# bench/recovery.sh [CHANNELS]: scenario 4 of docs/benchmarks.md. How long an
# instance takes, after Redis is back, to subscribe again to every channel
# that has local subscribers, and how many SUBSCRIBE commands that costs.
#
# One chat_server over a throwaway redis-server; wshub_loadgen holds 10,000
# connections, each subscribed to CHANNELS / 10,000 channels (default 100,000
# channels: 10 per connection), so the instance has CHANNELS channels on
# Redis. Then kill -9 of redis-server, a restart on the same port (empty),
# and the clock runs from the first PING answered until chat_server's
# /metrics `wshub_redis_channels` counts every channel again. SUBSCRIBE
# commands come from the new server's INFO commandstats (it starts at zero).
#
#   bench/recovery.sh            prints one JSON line; also bench/results/recovery-<time>.json
set -euo pipefail
channels=${1:-100000}
connections=10000
per_connection=$(( (channels + connections - 1) / connections ))
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${WSHUB_BUILD_DIR:-$ROOT/build}
work=$(mktemp -d)
redis_pid= server_pid= loadgen_pid=
cleanup() {
  for pid in $loadgen_pid $server_pid $redis_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in curl redis-cli redis-server node taskset; do
  command -v "$tool" > /dev/null || { echo "bench/recovery.sh needs $tool (apt-get install curl redis-server nodejs util-linux)"; exit 1; }
done
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();})')
start_redis() {
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
  redis_pid=$!
  until redis-cli -p "$port" PING > /dev/null 2>&1; do sleep 0.005; done
}
now_ms() { date +%s%3N; }
metric() { curl -s "http://127.0.0.1:$http_port/metrics" | sed -n "s/^$1{[^}]*} \([0-9]*\)$/\1/p"; }

start_redis
taskset -c 0 "$BUILD/examples/chat/chat_server" --port 0 --redis "redis://127.0.0.1:$port" --publish-rate 0 \
  --log-level warn --instance recovery > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
until http_port=$(sed -n 's|^wshub chat listening on http://[^:]*:\([0-9]*\)/.*|\1|p' "$work/server.out") && [ -n "$http_port" ]; do
  sleep 0.1
done

taskset -c 1 "$BUILD/bench/wshub_loadgen" --url "ws://127.0.0.1:$http_port/ws" --subscribers "$connections" \
  --publishers 0 --channels "$channels" --channels-per-subscriber "$per_connection" --duration 600 \
  --connect-concurrency 500 --quiet > "$work/loadgen.json" 2> "$work/loadgen.err" &
loadgen_pid=$!
until [ "$(metric wshub_redis_channels)" -ge "$channels" ] 2>/dev/null; do
  kill -0 "$loadgen_pid" 2>/dev/null || { echo "the load generator stopped:"; cat "$work/loadgen.err"; exit 1; }
  sleep 0.2
done
before=$(metric wshub_redis_channels)

kill -KILL "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
start_redis
back=$(now_ms)
until [ "$(metric wshub_redis_channels)" -ge "$before" ] 2>/dev/null; do sleep 0.01; done
done_at=$(now_ms)
subscribes=$(redis-cli -p "$port" INFO commandstats | sed -n 's/^cmdstat_subscribe:calls=\([0-9]*\),.*/\1/p')
# Seen from Redis itself, not only from the instance's counter.
in_redis=$(redis-cli -p "$port" PUBSUB CHANNELS 'wshub:ch:bench:*' | wc -l)
result="{\"channels\": $before, \"channels_in_redis\": $in_redis, \"connections\": $connections, \"resubscribed_ms\": $((done_at - back)), \"subscribe_commands\": ${subscribes:-0}}"
echo "$result"
mkdir -p "$ROOT/bench/results"
echo "$result" > "$ROOT/bench/results/recovery-$(date -u +%Y%m%dT%H%M%SZ).json"
