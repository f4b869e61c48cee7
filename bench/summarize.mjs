// bench/summarize.mjs RESULTS_DIR: the fan-out runs of bench/run as markdown tables.
//
// For each subscriber count: one row per offered rate with every server's
// p99, loss and deliveries per server CPU-second side by side; then per
// server the highest offered rate it held (p99 <= 50 ms and nothing lost),
// its best deliveries per server CPU-second over the runs that lost nothing,
// and wshub's ratio to each peer.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const P99_LIMIT_US = 50000;
const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/summarize.mjs RESULTS_DIR');
  process.exit(2);
}

const runs = [];
const idle = [];
for (const name of readdirSync(dir)) {
  const idleMatch = /^idle-(.+)-(\d+)\.json$/.exec(name);
  if (idleMatch) {
    try {
      idle.push({ server: idleMatch[1], connections: Number(idleMatch[2]),
        result: JSON.parse(readFileSync(path.join(dir, name), 'utf8')) });
    } catch { /* failed run */ }
    continue;
  }
  const match = /^fanout-(.+)-(\d+)-(\d+)\.json$/.exec(name);
  if (!match) continue;
  try {
    const result = JSON.parse(readFileSync(path.join(dir, name), 'utf8'));
    runs.push({ server: match[1], subscribers: Number(match[2]), offered: Number(match[3]), result });
  } catch {
    // a run whose load generator failed leaves no (or a partial) file
  }
}

const servers = [...new Set([...runs, ...idle].map((r) => r.server))];
const order = ['wshub', 'node-ws', 'bun', 'naive-wspp'];
servers.sort((a, b) => order.indexOf(a) - order.indexOf(b));
const fmt = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(Math.round(n)));
const held = (r) => r.result.lost === 0 && r.result.latency_us.p99 <= P99_LIMIT_US;

const machine = (() => {
  try { return readFileSync(path.join(dir, 'machine.txt'), 'utf8').trim(); } catch { return ''; }
})();
if (machine) console.log('```\n' + machine + '\n```\n');

for (const subscribers of [...new Set(runs.map((r) => r.subscribers))].sort((a, b) => a - b)) {
  const mine = runs.filter((r) => r.subscribers === subscribers);
  console.log(`### Fan-out: 1 channel, ${subscribers.toLocaleString('en')} subscribers, 128-byte payloads\n`);
  console.log(`| offered deliveries/s | ${servers.map((s) => `${s}: p99 ms, lost, deliveries per CPU-s`).join(' | ')} |`);
  console.log(`|---|${servers.map(() => '---').join('|')}|`);
  for (const offered of [...new Set(mine.map((r) => r.offered))].sort((a, b) => a - b)) {
    const cells = servers.map((s) => {
      const run = mine.find((r) => r.server === s && r.offered === offered);
      if (!run) return 'n/a';
      const r = run.result;
      return `${(r.latency_us.p99 / 1000).toFixed(1)}, ${r.lost}, ${fmt(r.delivered_per_server_cpu_second)}`;
    });
    console.log(`| ${fmt(offered)} | ${cells.join(' | ')} |`);
  }
  console.log('');
  const best = {};
  for (const s of servers) {
    const own = mine.filter((r) => r.server === s);
    const heldRuns = own.filter(held);
    const clean = own.filter((r) => r.result.lost === 0);
    best[s] = {
      held: heldRuns.length ? Math.max(...heldRuns.map((r) => r.offered)) : 0,
      perCpu: clean.length ? Math.max(...clean.map((r) => r.result.delivered_per_server_cpu_second)) : 0,
    };
  }
  console.log('| server | highest rate held (p99 <= 50 ms, nothing lost) | best deliveries per server CPU-s (no loss) | wshub / this, per CPU-s |');
  console.log('|---|---|---|---|');
  for (const s of servers) {
    const ratio = best[s].perCpu > 0 && best.wshub ? (best.wshub.perCpu / best[s].perCpu).toFixed(2) : 'n/a';
    console.log(`| ${s} | ${best[s].held ? fmt(best[s].held) : 'none'} | ${fmt(best[s].perCpu)} | ${ratio} |`);
  }
  console.log('');
}

for (const connections of [...new Set(idle.map((r) => r.connections))].sort((a, b) => a - b)) {
  const processes = Math.max(1, ...idle.filter((r) => r.connections === connections).map((r) => r.result.processes ?? 1));
  const spread = processes > 1 ? `, over ${processes} server processes per server (one process may hold at most 20,000 open files here)` : '';
  console.log(`### Idle connections: ${connections.toLocaleString('en')}, each subscribed to one of 100 channels${spread}\n`);
  console.log('| server | server RSS per connection | connections per second (handshake + subscribe) | wshub / this, memory |');
  console.log('|---|---|---|---|');
  const wshub = idle.find((r) => r.server === 'wshub' && r.connections === connections);
  for (const s of servers) {
    const run = idle.find((r) => r.server === s && r.connections === connections);
    if (!run) continue;
    const perConn = run.result.server_rss_bytes_per_connection;
    const ratio = wshub && perConn > 0 ? (wshub.result.server_rss_bytes_per_connection / perConn).toFixed(2) : 'n/a';
    const apart = run.result.held_together === false ? ' (not all held at once)' : '';
    console.log(`| ${s} | ${(perConn / 1024).toFixed(1)} KiB${apart} | ${fmt(run.result.connect.per_second)} | ${ratio} |`);
  }
  console.log('');
}
