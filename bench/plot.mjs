// bench/plot.mjs RESULTS_DIR [OUT_DIR]: the PNG plots of docs/benchmarks.md,
// drawn by gnuplot (Debian's gnuplot-nox) from bench/run's JSON results.
//
//   fanout-latency-<N>.png   p99 latency against offered deliveries/s, one line per server (N subscribers)
//   idle-memory.png          server RSS per idle connection against connections, one line per server
//
// OUT_DIR defaults to docs/images. Servers whose runs are missing are left out.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dir = process.argv[2];
const outDir = process.argv[3] ?? path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'docs', 'images');
if (!dir) {
  console.error('usage: node bench/plot.mjs RESULTS_DIR [OUT_DIR]');
  process.exit(2);
}
const order = ['wshub', 'node-ws', 'bun', 'naive-wspp'];
const fanout = new Map();  // subscribers -> server -> [[offered, p99 ms, lost]]
const idle = new Map();    // server -> [[connections, KiB per connection]]
for (const name of readdirSync(dir)) {
  let result;
  try { result = JSON.parse(readFileSync(path.join(dir, name), 'utf8')); } catch { continue; }
  let m = /^fanout-(.+)-(\d+)-(\d+)\.json$/.exec(name);
  if (m) {
    const [, server, subs, offered] = m;
    if (!fanout.has(subs)) fanout.set(subs, new Map());
    const rows = fanout.get(subs);
    if (!rows.has(server)) rows.set(server, []);
    rows.get(server).push([Number(offered), result.latency_us.p99 / 1000, result.lost]);
    continue;
  }
  m = /^idle-(.+)-(\d+)\.json$/.exec(name);  // idle-<server>-<n>.p<k>.json are parts of a combined one
  if (m) {
    if (!idle.has(m[1])) idle.set(m[1], []);
    idle.get(m[1]).push([Number(m[2]), result.server_rss_bytes_per_connection / 1024]);
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'wshub-plot-'));
// Draws one PNG: the common frame (size, grid, a dashed reference line at
// `refY` labelled `refLabel`) around `body` (titles, axes, the plot command).
const gnuplot = (png, refY, refLabel, body) => execFileSync('gnuplot', [], { input: `set terminal pngcairo size 900,520 font 'sans,11'
set output '${png}'
set grid
set arrow from graph 0, first ${refY} to graph 1, first ${refY} nohead dt 2 lc rgb '#888888'
set label '${refLabel}' at graph 0.02, first ${refY * 1.08} tc rgb '#666666'
${body}
` });
const lines = (series, using) =>
  order.filter((s) => series.has(s)).map((s) => {
    const file = path.join(tmp, `${s}-${Math.random().toString(36).slice(2)}.dat`);
    writeFileSync(file, series.get(s).sort((a, b) => a[0] - b[0]).map((r) => r.join(' ')).join('\n') + '\n');
    return `'${file}' using ${using} with linespoints lw 2 pt 7 title '${s}'`;
  }).join(', ');

for (const [subs, series] of fanout) {
  const png = path.join(outDir, `fanout-latency-${subs}.png`);
  gnuplot(png, 50, 'p99 = 50 ms', `set title 'Local fan-out, 1 channel, ${subs} subscribers, 128-byte payloads (server on one core)'
set xlabel 'offered deliveries per second'
set ylabel 'p99 latency (ms, log scale)'
set logscale xy
set autoscale xfix
set format x '%.0s%c'
set key top left
plot ${lines(series, '1:2')}
`);
  console.log(png);
}
if (idle.size > 0) {
  const png = path.join(outDir, 'idle-memory.png');
  gnuplot(png, 8, 'target: 8 KiB', `set title "Idle connections: server RSS per connection\\n(up to 19,000: one server process; 50,000: three, as one process may hold 20,000 open files here)"
set xlabel 'connections'
set ylabel 'KiB per connection'
set yrange [0:*]
set key bottom left
plot ${lines(idle, '1:2')}
`);
  console.log(png);
}
rmSync(tmp, { recursive: true, force: true });
