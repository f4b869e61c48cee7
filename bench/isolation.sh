#!/usr/bin/env bash
# bench/isolation.sh: scenario 5 of docs/benchmarks.md. One client that stops
# reading among 1,000 subscribers of a channel: do the other 999 notice, and
# does the server's memory stay bounded?
#
# For each server, two runs of the same load (1,000 subscribers of one
# channel, 2 publishers, 50 messages/s of 4 KiB, so 50,000 deliveries/s and
# ~200 KB/s owed to each subscriber, 30 s measured: more than the kernel's
# socket buffers, up to 4 MiB here, can hide): one with every
# subscriber reading, one with the first subscriber stalled (it subscribes,
# then never reads again, with a 4 KiB receive buffer). Reported: the other
# subscribers' p50/p99 in both runs, the server's RSS growth while publishing
# (peak minus connected), and for wshub its evictions from /metrics. wshub
# runs with its default queue limits (1 MiB or 4,096 frames per connection,
# then 4008), so the stalled client should be evicted once the kernel buffers
# are full and 1 MiB more is queued, after ~25 s, and its
# memory freed; the peers have no such limit (Bun drops past its 16 MiB
# backpressure limit).
#
#   bench/isolation.sh     about 6 minutes; results in bench/results/<time>/isolation-*.json and a table
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_check_tools
command -v curl > /dev/null || { echo "bench/isolation.sh needs curl" >&2; exit 1; }
OUT=$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
machine_info "$OUT/machine.txt"
echo "scenario: isolation" >> "$OUT/machine.txt"
cat "$OUT/machine.txt"

server_pid=
trap 'stop_server "$server_pid"' EXIT
for server in wshub node-ws bun naive-wspp; do
  for stalled in 0 1; do
    start_server "$server" "$OUT/isolation-$server-$stalled.server.log"
    server_pid=$started_pid
    result=$OUT/isolation-$server-$stalled.json
    printf '%-10s stalled %d ... ' "$server" "$stalled"
    if taskset -c 1 "$LOADGEN" --url "ws://127.0.0.1:$started_port/ws" --subscribers 1000 --stalled "$stalled" \
        --publishers 2 --channels 1 --rate 50 --payload 4096 --duration 30 --warmup 1 --drain 5 \
        --server-pid "$server_pid" --quiet --json-out "$result" 2> "$result.err"; then
      evictions=
      if [ "$server" = wshub ]; then
        evictions=$(curl -s "http://127.0.0.1:$started_port/metrics" | sed -n 's/^wshub_evictions_total{[^}]*} \([0-9]*\)$/\1/p')
        node -e 'const fs=require("fs"); const f=process.argv[1]; const r=JSON.parse(fs.readFileSync(f)); r.server_evictions=Number(process.argv[2]); fs.writeFileSync(f, JSON.stringify(r, null, 1));' "$result" "$evictions"
      fi
      node -e 'const r=require(process.argv[1]); const s=r.servers[0]; console.log(`p99 ${(r.latency_us.p99/1000).toFixed(1)} ms, lost ${r.lost}, RSS +${((s.rss_bytes_peak-s.rss_bytes_connected)/1048576).toFixed(1)} MiB while publishing` + (r.server_evictions!==undefined ? `, evictions ${r.server_evictions}` : ""))' "$result"
    else
      echo "load generator failed (see $result.err)"
    fi
    stop_server "$server_pid"
    server_pid=
  done
done

node - "$OUT" << 'EOF' | tee "$OUT/isolation.md"
const fs = require('fs');
const dir = process.argv[2];
const ms = us => (us / 1000).toFixed(1);
const mib = b => (b / 1048576).toFixed(1);
console.log('| server | others p50 / p99, nobody stalled | others p50 / p99, one stalled | RSS growth while publishing, nobody / one stalled | evictions |');
console.log('|---|---|---|---|---|');
for (const server of ['wshub', 'node-ws', 'bun', 'naive-wspp']) {
  const run = s => { try { return JSON.parse(fs.readFileSync(`${dir}/isolation-${server}-${s}.json`)); } catch { return null; } };
  const a = run(0), b = run(1);
  if (!a || !b) { console.log(`| ${server} | (failed) | | | |`); continue; }
  const grow = r => r.servers[0].rss_bytes_peak - r.servers[0].rss_bytes_connected;
  console.log(`| ${server} | ${ms(a.latency_us.p50)} / ${ms(a.latency_us.p99)} ms | ${ms(b.latency_us.p50)} / ${ms(b.latency_us.p99)} ms | ${mib(grow(a))} / ${mib(grow(b))} MiB | ${b.server_evictions ?? '-'} |`);
}
EOF
echo "results: $OUT"
