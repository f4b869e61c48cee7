// Starts a real chat_server for an end-to-end test and stops it.
//
//   const server = await startChatServer(['--instance', 'e2e-1']);
//   ... server.port, server.url ('http://127.0.0.1:PORT/'), server.wsUrl ...
//   const code = await server.stop();   // SIGTERM, then the exit code
//
// The binary is the first of: the `binary` option, $CHAT_SERVER, the first
// command-line argument of the test script. It always gets `--port 0`; the port
// comes from its line `wshub chat listening on http://HOST:PORT/`. A server that
// is still running when the test process exits (a failure, an exception,
// Ctrl-C) is killed with SIGKILL, so no test leaves one behind.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const LISTENING = /wshub chat listening on (http:\/\/(\S+):(\d+)\/)/;
const START_DEADLINE_MS = 30000;
const STOP_DEADLINE_MS = 30000;
const KEPT_OUTPUT_LINES = 60;

const running = new Set();

function killAll() {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  running.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => { killAll(); process.exit(128 + (signal === 'SIGINT' ? 2 : 15)); });
}

export function chatServerPath(explicit) {
  const candidate = explicit || process.env.CHAT_SERVER || process.argv[2];
  if (!candidate) {
    throw new Error('no chat_server: set CHAT_SERVER=/path/to/chat_server or pass it as the first argument');
  }
  const resolved = path.resolve(candidate);
  if (!existsSync(resolved)) throw new Error(`chat_server not found at ${resolved}`);
  return resolved;
}

// startChatServer(extraArgs, {binary, echo}): resolves once the server listens.
// `echo` (or E2E_VERBOSE=1) copies the server's output to this process's stderr.
export function startChatServer(extraArgs = [], options = {}) {
  const binary = chatServerPath(options.binary);
  const echo = options.echo ?? process.env.E2E_VERBOSE === '1';
  // E2E_SERVER_ARGS: more flags for every run, e.g. "--threads 4".
  const fromEnv = (process.env.E2E_SERVER_ARGS || '').split(/\s+/).filter(Boolean);
  const args = ['--host', '127.0.0.1', '--port', '0', ...extraArgs, ...fromEnv];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);

  const output = [];  // the last lines of stdout and stderr, for failure messages
  let exitCode;       // set once the process has exited
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      exitCode = code !== null ? code : `signal ${signal}`;
      resolve(exitCode);
    });
  });
  const recentOutput = () => output.join('\n');

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (message) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${message}\n--- chat_server ${args.join(' ')} output ---\n${recentOutput()}`));
    };
    const deadline = setTimeout(
      () => fail(`chat_server did not print its listening line within ${START_DEADLINE_MS / 1000} s`),
      START_DEADLINE_MS);

    const onLine = (stream) => {
      let partial = '';
      return (chunk) => {
        partial += chunk.toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop();
        for (const line of lines) {
          // Long lines (sanitizer stack frames of templates) are cut.
          output.push(`[${stream}] ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`);
          if (output.length > KEPT_OUTPUT_LINES) output.shift();
          if (echo) process.stderr.write(`  chat_server ${stream}: ${line}\n`);
          const match = stream === 'stdout' && !settled && LISTENING.exec(line);
          if (match) {
            settled = true;
            clearTimeout(deadline);
            const port = Number(match[3]);
            resolve({
              port,
              host: match[2],
              url: match[1],
              wsUrl: `ws://${match[2]}:${port}/ws`,
              process: child,
              recentOutput,
              exited,
              // stop(): SIGTERM, then wait for the exit; resolves to the exit
              // code (a number) or "signal NAME"; SIGKILL after the deadline.
              async stop(deadlineMs = STOP_DEADLINE_MS) {
                if (exitCode === undefined) child.kill('SIGTERM');
                let timer;
                const late = new Promise((resolveLate) => {
                  timer = setTimeout(() => {
                    child.kill('SIGKILL');
                    resolveLate(`no exit within ${deadlineMs / 1000} s of SIGTERM (killed)`);
                  }, deadlineMs);
                });
                const result = await Promise.race([exited, late]);
                clearTimeout(timer);
                return result;
              },
              kill() { if (exitCode === undefined) child.kill('SIGKILL'); },
            });
          }
        }
      };
    };
    child.stdout.on('data', onLine('stdout'));
    child.stderr.on('data', onLine('stderr'));
    child.on('error', (error) => fail(`cannot start ${binary}: ${error.message}`));
    exited.then((code) => fail(`chat_server exited (${code}) before listening`));
  });
}
