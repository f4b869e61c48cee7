// Starts a throwaway redis-server for an end-to-end test, and breaks it on demand.
//
//   const redis = await startRedis();
//   ... redis.port, redis.url ('redis://127.0.0.1:PORT') ...
//   await redis.command('PUBSUB', 'NUMSUB', 'wshub:ch:room');   // -> ['wshub:ch:room', 2]
//   await redis.kill9();      // SIGKILL, wait for the exit
//   await redis.restart();    // a new redis-server on the same port, answering PING
//   redis.stop();             // SIGSTOP (frozen: connections open, nothing answered)
//   redis.cont();             // SIGCONT
//   await redis.close();      // kill it and remove its directory (always call it)
//
// The server runs `redis-server --port P --save "" --appendonly no --bind 127.0.0.1`
// in a temporary directory. The binary is $REDIS_SERVER, else the first
// `redis-server` on PATH, else /usr/bin, /usr/local/bin or /usr/sbin. A
// redis-server still running (or stopped) when the test process exits is
// killed with SIGKILL and its directory removed, so no test leaves one behind.
//
// command() speaks RESP2 over a raw net.Socket of its own (one connection per
// call, so it works across restarts), with no npm dependency: replies are
// strings, integers, null, arrays; an error reply rejects with an Error whose
// `redisError` is the server's text. An error inside an array stays an Error
// value in the array.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const HOST = '127.0.0.1';
const START_DEADLINE_MS = 30000;    // generous: the machine may be loaded
const COMMAND_TIMEOUT_MS = 5000;
const PING_POLL_MS = 20;            // restart() reports "back" at most this late
const KEPT_OUTPUT_LINES = 40;

const running = new Set();
const directories = new Set();   // temporary directories not removed yet
function killAll() {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  running.clear();
  for (const dir of directories) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* leave it */ }
  }
  directories.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  // lib/server.js may have its own handler; whichever runs first exits, and the
  // 'exit' handlers (this module's and server.js's) kill what is left.
  process.on(signal, () => { killAll(); process.exit(128 + (signal === 'SIGINT' ? 2 : 15)); });
}

function isExecutable(file) {
  try { accessSync(file, constants.X_OK); return true; } catch { return false; }
}

export function redisServerPath() {
  if (process.env.REDIS_SERVER) {
    const explicit = path.resolve(process.env.REDIS_SERVER);
    if (!isExecutable(explicit)) throw new Error(`REDIS_SERVER=${explicit} is not an executable`);
    return explicit;
  }
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/bin', '/usr/local/bin', '/usr/sbin']) {
    const candidate = path.join(dir, 'redis-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error('redis-server not found on PATH (nor in /usr/bin, /usr/local/bin, /usr/sbin): ' +
    'install Debian\'s redis-server package or set REDIS_SERVER=/path/to/redis-server');
}

// freePort(): a TCP port nobody listens on right now (the kernel's choice).
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// ---- RESP ---------------------------------------------------------------------
function encodeCommand(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

class Incomplete extends Error {}

// parseReply(buffer, offset): {value, next}; throws Incomplete when more bytes are needed.
function parseReply(buffer, offset) {
  const lineEnd = buffer.indexOf('\r\n', offset, 'latin1');
  if (lineEnd < 0) throw new Incomplete();
  const kind = String.fromCharCode(buffer[offset]);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const after = lineEnd + 2;
  switch (kind) {
    case '+': return { value: line, next: after };
    case '-': {
      const error = new Error(`redis: ${line}`);
      error.redisError = line;
      return { value: error, next: after };
    }
    case ':': return { value: Number(line), next: after };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next: after };
      if (buffer.length < after + length + 2) throw new Incomplete();
      return { value: buffer.toString('utf8', after, after + length), next: after + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items = [];
      let next = after;
      for (let i = 0; i < count; i += 1) {
        const item = parseReply(buffer, next);
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`redis: unexpected reply type ${JSON.stringify(kind)}`);
  }
}

// redisCommand(port, args, {timeoutMs}): one command on a connection of its own.
export function redisCommand(port, args, { timeoutMs = COMMAND_TIMEOUT_MS, host = HOST } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host, port });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (error, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error); else resolve(value);
    };
    const what = args.map(String).join(' ');
    const timer = setTimeout(
      () => finish(new Error(`redis ${what}: no reply within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.on('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      let reply;
      try {
        reply = parseReply(received, 0);
      } catch (error) {
        if (!(error instanceof Incomplete)) finish(error);
        return;
      }
      if (reply.value instanceof Error) finish(reply.value);
      else finish(null, reply.value);
    });
    socket.on('error', (error) => finish(new Error(`redis ${what}: ${error.message}`)));
    socket.on('close', () => finish(new Error(`redis ${what}: connection closed before the reply`)));
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- The server -------------------------------------------------------------------
// startRedis({port, echo}): resolves once the server answers PING.
// `echo` (or E2E_VERBOSE=1) copies redis-server's output to stderr.
export async function startRedis(options = {}) {
  const binary = redisServerPath();
  const echo = options.echo ?? process.env.E2E_VERBOSE === '1';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wshub-e2e-redis-'));
  directories.add(dir);
  const output = [];
  const recentOutput = () => output.join('\n');
  let child = null;
  let exited = Promise.resolve(null);
  let generation = 0;

  const spawnServer = (port) => {
    generation += 1;
    const label = `redis-server#${generation}`;
    const args = ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', HOST,
      '--dir', dir, '--daemonize', 'no', '--logfile', ''];
    const proc = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    proc.exitInfo = undefined;
    proc.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        running.delete(proc);
        proc.exitInfo = code !== null ? `exit ${code}` : `signal ${signal}`;
        output.push(`[${label}] exited (${proc.exitInfo})`);
        resolve(proc.exitInfo);
      });
    });
    proc.on('error', (error) => output.push(`[${label}] cannot start ${binary}: ${error.message}`));
    for (const [name, stream] of [['stdout', proc.stdout], ['stderr', proc.stderr]]) {
      let partial = '';
      stream.on('data', (chunk) => {
        partial += chunk.toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop();
        for (const line of lines) {
          output.push(`[${label} ${name}] ${line}`);
          if (output.length > KEPT_OUTPUT_LINES) output.shift();
          if (echo) process.stderr.write(`  ${label}: ${line}\n`);
        }
      });
    }
    child = proc;
    exited = proc.exited;
    return proc;
  };

  // waitForPing(proc, port): resolves when PING answers PONG; rejects if the
  // process exits first or the deadline passes.
  const waitForPing = async (proc, port, deadlineMs = START_DEADLINE_MS) => {
    const start = Date.now();
    let lastError = 'no attempt';
    while (Date.now() - start < deadlineMs) {
      if (proc.exitInfo !== undefined) {
        throw new Error(`redis-server exited (${proc.exitInfo}) before answering PING on port ${port}\n` +
          `--- redis-server output ---\n${recentOutput()}`);
      }
      try {
        const reply = await redisCommand(port, ['PING'], { timeoutMs: 2000 });
        if (reply === 'PONG') return;
        lastError = `PING answered ${JSON.stringify(reply)}`;
      } catch (error) {
        lastError = error.message;
      }
      await sleep(PING_POLL_MS);
    }
    throw new Error(`redis-server on port ${port} did not answer PING within ${deadlineMs / 1000} s ` +
      `(${lastError})\n--- redis-server output ---\n${recentOutput()}`);
  };

  // The port is free when freePort() returns, but another process may take it
  // before redis-server binds it: retry with another port then.
  let port = options.port;
  for (let attempt = 1; ; attempt += 1) {
    if (!options.port) port = await freePort();
    const proc = spawnServer(port);
    try {
      await waitForPing(proc, port);
      break;
    } catch (error) {
      try { proc.kill('SIGKILL'); } catch { /* gone */ }
      await proc.exited;
      if (options.port || attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        directories.delete(dir);
        throw error;
      }
    }
  }

  const signal = (name) => {
    if (!child || child.exitInfo !== undefined) throw new Error(`redis-server is not running (cannot send ${name})`);
    child.kill(name);
  };

  return {
    port,
    host: HOST,
    url: `redis://${HOST}:${port}`,
    dir,
    recentOutput,
    get pid() { return child ? child.pid : undefined; },
    get alive() { return Boolean(child) && child.exitInfo === undefined; },
    // command(...args): one RESP command; resolves to the parsed reply.
    // The last argument may be an options object: {timeoutMs}.
    command(...args) {
      let opts = {};
      if (args.length && typeof args[args.length - 1] === 'object' && !Buffer.isBuffer(args[args.length - 1])) {
        opts = args.pop();
      }
      return redisCommand(port, args, opts);
    },
    // kill9(): SIGKILL (a stopped process dies too), resolves once it has exited.
    async kill9() {
      if (child && child.exitInfo === undefined) child.kill('SIGKILL');
      return exited;
    },
    // restart(): a new redis-server on the same port (the old one is killed
    // first if needed). Resolves once it answers PING, to {spawnedAt, backAt}
    // (performance.now() values): when it was started and when PING first worked.
    async restart() {
      if (child && child.exitInfo === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
      const spawnedAt = performance.now();
      const proc = spawnServer(port);
      await waitForPing(proc, port);
      return { spawnedAt, backAt: performance.now() };
    },
    stop() { signal('SIGSTOP'); },
    cont() { signal('SIGCONT'); },
    // close(): kill whatever runs, remove the directory. Safe to call twice.
    async close() {
      if (child && child.exitInfo === undefined) {
        try { child.kill('SIGKILL'); } catch { /* gone */ }
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
      directories.delete(dir);
    },
  };
}
