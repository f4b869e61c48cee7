#!/usr/bin/env bash
# bench/smoke.sh CHAT_SERVER LOADGEN: a few seconds of real load so the bench
# never rots (CTest "bench.smoke", label bench). Starts chat_server on a free
# port, runs wshub_loadgen against it (50 subscribers, 2 publishers, 200
# messages/s, 2 s; from two source addresses that do not start at
# 127.0.0.1, the path bench/idle_many.sh takes), and fails unless every expected message was delivered, in
# order, with a latency figure. Not a measurement: numbers are not checked.
set -euo pipefail
server_bin=$1
loadgen_bin=$2
work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

"$server_bin" --port 0 --publish-rate 0 --log-level warn --instance smoke > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 1 300); do
  port=$(sed -n 's|^wshub chat listening on http://[^:]*:\([0-9]*\)/.*|\1|p' "$work/server.out")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "chat_server did not start"; cat "$work/server.err"; exit 1; }

"$loadgen_bin" --url "ws://127.0.0.1:$port/ws" --subscribers 50 --publishers 2 --rate 200 --duration 2 \
  --source-addresses 2 --first-source-address 5 --warmup 0.5 --drain 10 --server-pid "$server_pid" --quiet --json-out "$work/result.json"
cat "$work/result.json"
field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$work/result.json" | head -1; }
expected=$(field expected)
delivered=$(field delivered)
lost=$(field lost)
disorder=$(field out_of_order)
p99=$(field p99)
fail=0
[ "${expected:-0}" -gt 0 ] || { echo "FAIL: nothing was expected (nothing published?)"; fail=1; }
[ "$delivered" = "$expected" ] || { echo "FAIL: delivered $delivered of $expected"; fail=1; }
[ "$lost" = 0 ] || { echo "FAIL: lost $lost"; fail=1; }
[ "$disorder" = 0 ] || { echo "FAIL: $disorder out of order"; fail=1; }
[ -n "$p99" ] || { echo "FAIL: no p99 latency"; fail=1; }
if [ "$fail" = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; exit 1; fi
