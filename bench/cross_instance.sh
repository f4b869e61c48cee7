#!/usr/bin/env bash
# bench/cross_instance.sh: scenario 2 of docs/benchmarks.md. Two instances of
# each server and one Redis; publishers on instance A, subscribers on B.
#
#   1. Latency: 100 subscribers of one channel, 2 publishers, 128-byte
#      payloads, 10,000 and 50,000 deliveries/s, measured twice: on one
#      instance with no Redis (the local baseline), and across A -> Redis -> B.
#      What Redis adds is the difference of the p99s.
#   2. PUBLISH throughput from one instance: 1 subscriber on B, the publish
#      rate into A swept; the highest rate held (nothing lost, p99 <= 50 ms),
#      against `redis-benchmark -P 16 PUBLISH` on the same Redis in the same
#      run: the ceiling one Redis sets.
#
# Both instances are pinned to CPU 0 (they share it), the load generator and
# redis-server to CPU 1. Servers: wshub (chat_server --redis), node-ws
# (ioredis), bun (its RedisClient); the naive websocketpp loop has no Redis.
#
#   bench/cross_instance.sh    about 8 minutes; results in bench/results/<time>/cross-*.json and a table
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_check_tools
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" > /dev/null || { echo "bench/cross_instance.sh needs $tool (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
OUT=$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
machine_info "$OUT/machine.txt"
echo "scenario: cross-instance, $(redis-server --version | cut -d' ' -f1-3)" >> "$OUT/machine.txt"
cat "$OUT/machine.txt"

redis_port=$(free_port)
redis_dir=$(mktemp -d)
start_redis "$redis_port" "$redis_dir" "$OUT/redis.log"
a_pid= b_pid=
cleanup() {
  stop_server "$a_pid"
  stop_server "$b_pid"
  kill -TERM "$redis_pid" 2> /dev/null || true
  wait 2> /dev/null || true
  rm -rf "$redis_dir"
}
trap cleanup EXIT
REDIS=redis://127.0.0.1:$redis_port

# The ceiling: what one client pipelining 16 PUBLISHes gets from this Redis.
payload=$(head -c 128 /dev/zero | tr '\0' x)
taskset -c 0 redis-benchmark -p "$redis_port" -P 16 -n 2000000 -q PUBLISH wshub:ch:bench:0 "$payload" \
  | tr '\r' '\n' | grep 'requests per second' | tail -1 | tee "$OUT/redis-benchmark.txt"

# run NAME KIND DELIVERIES SUBSCRIBERS: KIND local (one instance, no Redis) or cross (A -> Redis -> B).
run() {
  local name=$1 kind=$2 deliveries=$3 subs=$4
  local rate=$(( deliveries / subs )) result=$OUT/cross-$name-$kind-$subs-$deliveries.json
  local urls pids
  if [ "$kind" = local ]; then
    start_server "$name" "$OUT/cross-$name-local.server.log"
    a_pid=$started_pid
    urls=(--url "ws://127.0.0.1:$started_port/ws")
    pids=(--server-pid "$a_pid")
  else
    redis-cli -p "$redis_port" FLUSHALL > /dev/null
    start_server "$name" "$OUT/cross-$name-a.server.log" --redis "$REDIS" --instance a
    a_pid=$started_pid
    local a_port=$started_port
    start_server "$name" "$OUT/cross-$name-b.server.log" --redis "$REDIS" --instance b
    b_pid=$started_pid
    urls=(--pub-url "ws://127.0.0.1:$a_port/ws" --sub-url "ws://127.0.0.1:$started_port/ws")
    pids=(--server-pid "$a_pid" --server-pid "$b_pid")
  fi
  printf '%-8s %-5s %4d subscribers x %6d msg/s = %7d deliveries/s ... ' "$name" "$kind" "$subs" "$rate" "$deliveries"
  if taskset -c 1 "$LOADGEN" "${urls[@]}" --subscribers "$subs" --publishers 2 --channels 1 --rate "$rate" \
      --payload 128 --duration 4 --warmup 1 --drain 5 "${pids[@]}" --quiet --json-out "$result" 2> "$result.err"; then
    node -e 'const r=require(process.argv[1]); console.log(`p50 ${(r.latency_us.p50/1000).toFixed(2)} ms, p99 ${(r.latency_us.p99/1000).toFixed(2)} ms, lost ${r.lost}`)' "$result"
  else
    echo "load generator failed (see $result.err)"
  fi
  stop_server "$a_pid"
  stop_server "$b_pid"
  a_pid= b_pid=
}

SERVERS=(wshub node-ws bun)
for server in "${SERVERS[@]}"; do
  for deliveries in 10000 50000; do
    run "$server" local "$deliveries" 100
    run "$server" cross "$deliveries" 100
  done
done
for server in "${SERVERS[@]}"; do
  for publishes in 25000 50000 100000 200000 400000 800000; do
    run "$server" cross "$publishes" 1
  done
done

node - "$OUT" << 'EOF' | tee "$OUT/cross.md"
const fs = require('fs');
const dir = process.argv[2];
const read = f => { try { return JSON.parse(fs.readFileSync(`${dir}/${f}`)); } catch { return null; } };
const ms = r => r ? `${(r.latency_us.p50 / 1000).toFixed(2)} / ${(r.latency_us.p99 / 1000).toFixed(2)} ms` : '(failed)';
const servers = ['wshub', 'node-ws', 'bun'];
console.log('| server | deliveries/s | one instance, no Redis: p50 / p99 | A -> Redis -> B: p50 / p99 | Redis adds to p99 |');
console.log('|---|---|---|---|---|');
for (const s of servers) for (const d of [10000, 50000]) {
  const l = read(`cross-${s}-local-100-${d}.json`), c = read(`cross-${s}-cross-100-${d}.json`);
  const add = l && c ? `${((c.latency_us.p99 - l.latency_us.p99) / 1000).toFixed(2)} ms` : '-';
  const lost = (l && l.lost) || (c && c.lost) ? ` (lost ${l ? l.lost : '?'} / ${c ? c.lost : '?'})` : '';
  console.log(`| ${s} | ${d / 1000}k | ${ms(l)} | ${ms(c)} | ${add}${lost} |`);
}
const ceiling = fs.readFileSync(`${dir}/redis-benchmark.txt`, 'utf8').match(/([\d.]+) requests per second/);
const ceil = ceiling ? Number(ceiling[1]) : NaN;
console.log('');
console.log(`redis-benchmark -P 16 PUBLISH, same Redis, same run: ${Math.round(ceil).toLocaleString('en')} PUBLISH/s`);
console.log('');
console.log('| server | 25k | 50k | 100k | 200k | 400k | 800k | highest held (nothing lost, p99 <= 50 ms) | of the redis-benchmark ceiling |');
console.log("|---|---|---|---|---|---|---|---|---|");
for (const s of servers) {
  let best = 0;
  const cells = [25000, 50000, 100000, 200000, 400000, 800000].map(p => {
    const r = read(`cross-${s}-cross-1-${p}.json`);
    if (!r) return '(failed)';
    if (r.lost === 0 && r.latency_us.p99 <= 50000) best = p;
    return `${(r.latency_us.p99 / 1000).toFixed(1)} ms${r.lost ? `, lost ${r.lost}` : ''}`;
  });
  console.log(`| ${s} | ${cells.join(' | ')} | ${best ? best / 1000 + 'k/s' : 'none'} | ${best ? (best / ceil).toFixed(2) : '-'} |`);
}
EOF
echo "results: $OUT"
