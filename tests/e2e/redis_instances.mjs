// redis_instances.mjs: two chat_server processes (A and B) sharing one real
// redis-server, and what happens to them when Redis fails (docs/operations.md,
// "What happens when Redis fails"):
//   - a publish on A reaches subscribers on A and B, and no one else;
//   - 10,000 publishes from one client on A reach a subscriber on B, all, in order;
//   - under steady traffic (a publisher on A every 20 ms, subscribers on A and B):
//     kill -9 of redis-server and a restart on the same port; kill -STOP for
//     longer than the health check's timeout, then CONT; CLIENT KILL TYPE
//     pubsub. Each time: publishes during the outage get `unavailable` with
//     their id, the subscribers get `gap`, both instances resubscribe (PUBSUB
//     NUMSUB), traffic resumes on both, nothing crashes;
//   - SIGTERM: both exit 0.
//
//   CHAT_SERVER=build/examples/chat/chat_server node redis_instances.mjs
//
// The figure "resubscribed N ms after Redis was back" (kill -9 + restart) is
// asserted <= 2 s, or <= 10 s when WSHUB_SANITIZED=1 or CI is set or the binary
// is built with a sanitizer. Other deadlines are generous (15 s for what should
// take 2 s). E2E_LOG_LEVEL sets chat_server's --log-level (default info; debug
// with E2E_VERBOSE=1, which also copies the servers' logs to stderr).
//
// The last line is `N passed, N failed`; the exit status is non-zero on failure.
import { readFileSync } from 'node:fs';
import { Harness, assert, assertEqual, sleep } from './lib/harness.js';
import { chatServerPath, startChatServer } from './lib/server.js';
import { startRedis } from './lib/redis.js';
import { Client, httpGet, loadWs } from './lib/ws_client.js';

await loadWs('redis_instances');

const PREFIX = 'wshub:';
const LOG_LEVEL = process.env.E2E_LOG_LEVEL || (process.env.E2E_VERBOSE === '1' ? 'debug' : 'info');
const SLOW_MS = 15000;          // for what should take about 2 s
const TICK_MS = 20;             // the steady publisher's period
const OUTAGE_MS = 1500;         // how long redis-server stays dead (kill -9)
const FREEZE_MS = 6000;         // how long it stays stopped (> 1 s probe + 3 s timeout)
const BULK_COUNT = 10000;
const BULK_WINDOW = 2000;       // publishes in flight, below the 4096-frame queue limit
const now = () => performance.now();
const ms = (value) => `${Math.round(value)} ms`;

function binaryIsSanitized() {
  try {
    const bytes = readFileSync(chatServerPath());
    return bytes.includes('__asan_init') || bytes.includes('__tsan_init');
  } catch {
    return false;
  }
}
const SANITIZED = process.env.WSHUB_SANITIZED === '1' || Boolean(process.env.CI) || binaryIsSanitized();
const RESUBSCRIBE_LIMIT_MS = SANITIZED ? 10000 : 2000;

const t = new Harness('redis_instances');
let redis;
let A;
let B;
const clients = [];
let aborted = false;   // t.abort() already called

async function open(server, label) {
  const client = await Client.open(server.wsUrl, label);
  clients.push(client);
  await client.expect((f) => f.type === 'welcome', `${label}: welcome`);
  return client;
}

async function subscribe(client, channel) {
  const id = `sub-${client.label}-${channel}`;
  const answer = await client.request({ type: 'subscribe', channel, id });
  assertEqual(answer.type, 'ack', `${client.label}: answer to subscribe ${channel} (${JSON.stringify(answer)})`);
}

// pubsubUp(server): the value of wshub_pubsub_up in /metrics (a number).
async function pubsubUp(server) {
  const r = await httpGet(server.url, '/metrics');
  assertEqual(r.status, 200, `${server.name}: /metrics status`);
  const match = /^wshub_pubsub_up(\{[^}]*\})?\s+(\S+)\s*$/m.exec(r.body);
  assert(match, `${server.name}: no wshub_pubsub_up in /metrics`);
  return Number(match[2]);
}

async function assertAlive(server) {
  const child = server.process;
  assert(child.exitCode === null && child.signalCode === null,
    `${server.name} has exited (${child.exitCode ?? child.signalCode}); output:\n${server.recentOutput()}`);
  const r = await httpGet(server.url, '/healthz');
  assertEqual(r.status, 200, `${server.name}: /healthz status`);
}

// numsub(channel): how many Redis connections are subscribed to a hub channel.
async function numsub(channel) {
  const reply = await redis.command('PUBSUB', 'NUMSUB', `${PREFIX}ch:${channel}`);
  return Number(reply[1]);
}

// watchNumsub(channel, target, from): polls until NUMSUB reaches target;
// resolves to the time it did, relative to `from` (or null after SLOW_MS).
async function watchNumsub(channel, target, from) {
  const start = now();
  while (now() - start < SLOW_MS) {
    try {
      if (await numsub(channel) >= target) return now() - from;
    } catch { /* Redis not answering yet */ }
    await sleep(20);
  }
  return null;
}

// ---- Steady traffic ---------------------------------------------------------------
// A publisher that sends {"type":"publish","data":SEQ,"id":"pSEQ"} every TICK_MS
// and records each answer.
class Ticker {
  constructor(client, channel) {
    this.client = client;
    this.channel = channel;
    this.seq = 0;
    this.sent = new Map();       // seq -> {at, answers: [{type, code, at}]}
    this.strayAnswers = [];      // acks/errors whose id is not one of ours
    client.onFrame = (frame) => {
      const f = frame.json;
      if (f.type !== 'ack' && f.type !== 'error') return;
      const match = typeof f.id === 'string' && /^p(\d+)$/.exec(f.id);
      const entry = match && this.sent.get(Number(match[1]));
      if (!entry) { this.strayAnswers.push(frame.raw); return; }
      entry.answers.push({ type: f.type, code: f.code, at: frame.at });
    };
  }

  start() {
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop() { clearInterval(this.timer); }

  tick() {
    if (!this.client.isOpen) return;
    this.seq += 1;
    this.sent.set(this.seq, { at: now(), answers: [] });
    this.client.sendJson({ type: 'publish', channel: this.channel, data: this.seq, id: `p${this.seq}` });
  }

  // The publishes sent in [from, to) (times), with their entries.
  between(from, to = Infinity) {
    return [...this.sent].filter(([, e]) => e.at >= from && e.at < to);
  }
}

// seqsOf(client, channel): the data of every message on the channel, in arrival order.
const messagesOf = (client, channel) => client.frames.filter(
  (f) => f.json.type === 'message' && f.json.channel === channel);
const seqsOf = (client, channel) => messagesOf(client, channel).map((f) => Number(f.json.data));
const gapsOf = (client, channel, after = 0) => client.frames.filter(
  (f) => f.json.type === 'gap' && f.json.channel === channel && f.at > after);

try {
  redis = await startRedis();
  console.log(`redis-server on ${redis.url} (pid ${redis.pid})`);
  const common = ['--redis', redis.url, '--log-level', LOG_LEVEL];
  A = await startChatServer(['--instance', 'e2e-a', '--publish-rate', '0', ...common]);
  A.name = 'A';
  B = await startChatServer(['--instance', 'e2e-b', ...common]);
  B.name = 'B';
  console.log(`chat_server A on ${A.url}, B on ${B.url}${SANITIZED ? ' (sanitized build or CI: looser timing bounds)' : ''}`);
} catch (error) {
  t.abort(error);
}

if (redis && A && B) {
  try {
    // ---- Fan-out across instances ----------------------------------------------
    const fan = 'room:e2e-fanout';
    const other = 'room:e2e-fanout-other';
    const pubA = await open(A, 'pubA');
    const subA = await open(A, 'subA');
    const subB = await open(B, 'subB');
    const outB = await open(B, 'outB');   // on B, subscribed to another channel

    await t.check('both instances are up (/metrics wshub_pubsub_up 1, /healthz 200)', async () => {
      // An instance listens before its Redis connections are up (a sanitized
      // build on a loaded machine takes a while): wait for it, generously.
      for (const server of [A, B]) {
        const start = now();
        while ((await pubsubUp(server)) !== 1 && now() - start < SLOW_MS) await sleep(50);
        assertEqual(await pubsubUp(server), 1, `${server.name}: wshub_pubsub_up within ${SLOW_MS / 1000} s`);
        await assertAlive(server);
      }
    });

    await t.check('a publish on A reaches the subscribers on A and on B, data byte for byte', async () => {
      await subscribe(subA, fan);
      await subscribe(subB, fan);
      await subscribe(outB, other);
      const data = '{"text": "héllo ✓ <b>", "n":1e400, "big":123456789012345678901234567890, "list":[1, 2.50]}';
      pubA.sendRaw(`{"type":"publish","channel":"${fan}","id":"f1","data":${data}}`);
      const answer = await pubA.expect((f) => f.id === 'f1', 'answer to publish f1');
      assertEqual(answer.json.type, 'ack', `answer ${answer.raw}`);
      for (const client of [subA, subB]) {
        const frame = await client.expect((f) => f.type === 'message' && f.channel === fan, `${client.label}: message`);
        assert(frame.raw.includes(`"data":${data}`), `${client.label}: data not byte for byte: ${frame.raw}`);
      }
      const numsubs = await numsub(fan);
      assertEqual(numsubs, 2, `PUBSUB NUMSUB ${PREFIX}ch:${fan} (one subscriber connection per instance)`);
    });

    await t.check('... and not a client of B subscribed to another channel; each subscriber gets it once', async () => {
      // Both go through A's one publisher connection and B's one subscriber
      // connection, in order: once outB has the second, it would have had the first.
      const answer = await pubA.request({ type: 'publish', channel: other, data: 'marker', id: 'f2' });
      assertEqual(answer.type, 'ack', `answer ${JSON.stringify(answer)}`);
      await outB.expect((f) => f.type === 'message' && f.channel === other, 'outB: the marker');
      assertEqual(messagesOf(outB, fan).length, 0, 'outB: messages of a channel it is not in');
      const end = await pubA.request({ type: 'publish', channel: fan, data: 'end', id: 'f3' });
      assertEqual(end.type, 'ack', `answer ${JSON.stringify(end)}`);
      for (const client of [subA, subB]) {
        await client.expect((f) => f.type === 'message' && f.data === 'end', `${client.label}: the end marker`);
        assertEqual(messagesOf(client, fan).length, 2, `${client.label}: messages on ${fan}`);
      }
    });

    await t.check('a publish on B reaches the subscribers on A and on B', async () => {
      const answer = await subB.request({ type: 'publish', channel: fan, data: { from: 'B' }, id: 'fb' });
      assertEqual(answer.type, 'ack', `answer ${JSON.stringify(answer)}`);
      for (const client of [subA, subB]) {
        await client.expect((f) => f.type === 'message' && f.data && f.data.from === 'B', `${client.label}: B's message`);
      }
    });

    // ---- 10,000 messages, in order ----------------------------------------------
    await t.check(`${BULK_COUNT} publishes on A reach a subscriber on B, all, in order`, async () => {
      const bulk = 'room:e2e-bulk';
      const bulkPub = await open(A, 'bulkPub');
      const bulkSub = await open(B, 'bulkSub');
      await subscribe(bulkSub, bulk);
      let sent = 0;
      let received = 0;
      let outOfOrder = null;
      const start = now();
      const pump = () => {
        while (sent < BULK_COUNT && sent - received < BULK_WINDOW) {
          bulkPub.sendRaw(`{"type":"publish","channel":"${bulk}","data":${sent}}`);
          sent += 1;
        }
      };
      bulkSub.onFrame = (frame) => {
        if (frame.json.type !== 'message' || frame.json.channel !== bulk) return;
        if (frame.raw !== `{"type":"message","channel":"${bulk}","data":${received}}` && outOfOrder === null) {
          outOfOrder = `message #${received} is ${frame.raw}`;
        }
        received += 1;
        if (received % 500 === 0) pump();
      };
      pump();
      await bulkSub.waitUntil(() => received >= BULK_COUNT || outOfOrder !== null || bulkSub.closeInfo,
        `${BULK_COUNT} messages (got ${received})`, 120000).catch((error) => {
        throw new Error(`${error.message}; got ${received} of ${sent} sent; publisher frames: ` +
          `${bulkPub.describeUnread()}; subscriber closed: ${JSON.stringify(bulkSub.closeInfo)}`);
      });
      const seconds = (now() - start) / 1000;
      assert(outOfOrder === null, `out of order: ${outOfOrder}`);
      assert(!bulkSub.closeInfo, `subscriber closed: ${JSON.stringify(bulkSub.closeInfo)}`);
      const errors = bulkPub.frames.filter((f) => f.json.type === 'error');
      assertEqual(errors.length, 0, `errors to the publisher (${errors.slice(0, 3).map((f) => f.raw).join(' ')})`);
      // Nothing more than the 10,000.
      await bulkPub.request({ type: 'publish', channel: bulk, data: 'end', id: 'bulk-end' });
      await bulkSub.expect((f) => f.type === 'message' && f.data === 'end', 'bulkSub: the end marker');
      assertEqual(messagesOf(bulkSub, bulk).length, BULK_COUNT + 1, 'messages received');
      console.log(`      ${BULK_COUNT} messages in ${seconds.toFixed(2)} s (${Math.round(BULK_COUNT / seconds)}/s)`);
      bulkSub.onFrame = null;
    }, { timeoutMs: 150000 });

    // ---- Steady traffic, and Redis failures --------------------------------------
    const steady = 'room:e2e-steady';
    const tickA = await open(A, 'tickerA');
    const steadyA = await open(A, 'steadyA');
    const steadyB = await open(B, 'steadyB');
    const steadySubs = [steadyA, steadyB];
    await subscribe(steadyA, steady);
    await subscribe(steadyB, steady);
    const ticker = new Ticker(tickA, steady);
    ticker.start();
    const summary = [];   // resubscribe figures, printed at the end

    // flowing(label): both steady subscribers receive what is published from now on.
    const flowing = (label) => t.check(`${label}: steady traffic flows to A and B`, async () => {
      const from = ticker.seq + 1;
      for (const client of steadySubs) {
        await client.waitUntil(() => seqsOf(client, steady).some((s) => s >= from + 3),
          `messages published after #${from}`, SLOW_MS);
      }
    }, { timeoutMs: SLOW_MS + 5000 });

    // gapsAfter(label, since, reference): both subscribers get a gap after
    // `since`; returns the delays from `reference` (time Redis was back).
    const gapsAfter = async (since, reference) => {
      const delays = {};
      for (const client of steadySubs) {
        await client.waitUntil(() => gapsOf(client, steady, since).length > 0,
          `gap on ${steady}`, SLOW_MS);
        delays[client.label] = gapsOf(client, steady, since)[0].at - reference;
      }
      return delays;
    };

    // resumes(label): publishes sent once both subscribers have had their gap
    // are acked and reach both, in order; a publish from B reaches both too.
    const resumes = (label, since) => t.check(`${label}: traffic resumes (A's publisher and B's, to both subscribers)`, async () => {
      const after = Math.max(...steadySubs.map((client) => gapsOf(client, steady, since)[0]?.at ?? now()));
      // The first 10 publishes sent after both gaps that were acked.
      let acked = [];
      await tickA.waitUntil(() => {
        acked = ticker.between(after).filter(([, e]) => e.answers.some((a) => a.type === 'ack')).map(([seq]) => seq);
        return acked.length >= 10;
      }, 'acks of 10 publishes sent after the gaps', SLOW_MS);
      const wanted = acked.slice(0, 10);
      for (const client of steadySubs) {
        await client.waitUntil(() => {
          const got = new Set(seqsOf(client, steady));
          return wanted.every((seq) => got.has(seq));
        }, `messages ${wanted[0]}..${wanted[9]}`, SLOW_MS);
      }
      // B's publisher connection came back too (retry while it says unavailable).
      const probeB = clients.find((client) => client.label === 'outB');
      const deadline = now() + SLOW_MS;
      let probe;
      for (let attempt = 1; ; attempt += 1) {
        probe = `${label}-b${attempt}`;
        const answer = await probeB.request({ type: 'publish', channel: steady, data: probe, id: probe });
        if (answer.type === 'ack') break;
        assert(answer.code === 'unavailable' && now() < deadline, `B's publish: ${JSON.stringify(answer)}`);
        await sleep(200);
      }
      for (const client of steadySubs) {
        await client.waitUntil(() => messagesOf(client, steady).some((f) => f.json.data === probe),
          `B's publish "${probe}"`, SLOW_MS);
      }
      for (const server of [A, B]) assertEqual(await pubsubUp(server), 1, `${server.name}: wshub_pubsub_up`);
    }, { timeoutMs: 3 * SLOW_MS + 5000 });

    const outageErrors = (from, to) => {
      const inWindow = ticker.between(from, to);
      const errors = inWindow.filter(([, e]) => e.answers.some((a) => a.type === 'error'));
      const wrongCode = errors.filter(([, e]) => e.answers.some((a) => a.type === 'error' && a.code !== 'unavailable'));
      const latencies = errors.map(([, e]) => e.answers[0].at - e.at);
      return { inWindow, errors, wrongCode, latencies };
    };

    // -- kill -9 and restart ------------------------------------------------------
    await flowing('kill -9');
    const killAt = now();
    await redis.kill9();
    console.log(`      redis-server killed (SIGKILL) at publish #${ticker.seq}`);

    await t.check('kill -9: publishes during the outage get error "unavailable" at once, with their id', async () => {
      await tickA.waitUntil(() => outageErrors(killAt + 300).errors.length >= 10,
        '10 errors to publishes sent after the kill', SLOW_MS);
      const { inWindow, errors, wrongCode, latencies } = outageErrors(killAt + 300);
      assertEqual(wrongCode.length, 0, `errors with another code than unavailable (#${wrongCode.map(([s]) => s).join(', #')})`);
      const acked = inWindow.filter(([, e]) => e.answers.some((a) => a.type === 'ack'));
      assertEqual(acked.length, 0, `publishes acked while Redis was dead (#${acked.map(([s]) => s).join(', #')})`);
      const worst = Math.max(...latencies);
      console.log(`      ${errors.length} errors so far, answered within ${ms(worst)} (worst)`);
      assert(worst < 3000, `an unavailable error took ${ms(worst)}`);
      assertEqual(ticker.strayAnswers.length, 0, `answers without a matching id: ${ticker.strayAnswers.slice(0, 3).join(' ')}`);
    }, { timeoutMs: SLOW_MS + 5000 });

    await t.check('kill -9: while down, subscribe to a new channel is "unavailable", to a joined one is acked', async () => {
      const late = await open(B, 'lateB');
      const refused = await late.request({ type: 'subscribe', channel: 'room:e2e-new-while-down', id: 'n1' });
      assertEqual(refused.type, 'error', `subscribe to a channel B is not in: ${JSON.stringify(refused)}`);
      assertEqual(refused.code, 'unavailable', 'its code');
      const joined = await late.request({ type: 'subscribe', channel: steady, id: 'n2' });
      assertEqual(joined.type, 'ack', `subscribe to a channel B is in: ${JSON.stringify(joined)}`);
      steadySubs.push(late);   // it should get the gap and the traffic like the others
    });

    await t.check('kill -9: while down, /metrics shows wshub_pubsub_up 0 on both, /healthz 200, no crash', async () => {
      for (const server of [A, B]) {
        assertEqual(await pubsubUp(server), 0, `${server.name}: wshub_pubsub_up`);
        await assertAlive(server);
      }
    });

    const waitOutage = OUTAGE_MS - (now() - killAt);
    if (waitOutage > 0) await sleep(waitOutage);
    let back;
    let numsubWatch;
    try {
      back = await redis.restart();
      numsubWatch = watchNumsub(steady, 2, back.backAt);
      console.log(`      redis-server restarted on port ${redis.port} after ${ms(back.spawnedAt - killAt)} down; ` +
        `answering PING ${ms(back.backAt - back.spawnedAt)} after the spawn`);
    } catch (error) {
      aborted = true;
      t.abort(error);
      throw error;
    }

    await t.check(`kill -9: both instances resubscribe within ${RESUBSCRIBE_LIMIT_MS / 1000} s of Redis being back (gap to every subscriber)`, async () => {
      const delays = await gapsAfter(killAt, back.backAt);
      const redisSide = await numsubWatch;
      const worst = Math.max(...Object.values(delays));
      const line = `kill -9 + restart: gap ${Object.entries(delays).map(([k, v]) => `${k} ${ms(v)}`).join(', ')} ` +
        `after Redis answered PING; PUBSUB NUMSUB = 2 after ${redisSide === null ? 'never' : ms(redisSide)}`;
      summary.push(line);
      console.log(`      ${line}`);
      assert(worst <= RESUBSCRIBE_LIMIT_MS, `the last gap came ${ms(worst)} after Redis was back`);
      assert(redisSide !== null && redisSide <= RESUBSCRIBE_LIMIT_MS, `PUBSUB NUMSUB reached 2 after ${redisSide} ms`);
      const channels = await redis.command('PUBSUB', 'CHANNELS', `${PREFIX}ch:*`);
      for (const channel of [fan, other, steady]) {
        assert(channels.includes(`${PREFIX}ch:${channel}`), `PUBSUB CHANNELS lacks ${PREFIX}ch:${channel}: ${JSON.stringify(channels)}`);
      }
      for (const client of steadySubs) {
        const gaps = gapsOf(client, steady, killAt).length;
        assertEqual(gaps, 1, `${client.label}: gaps after the restart`);
      }
      for (const client of [subA, subB, outB]) {
        const channel = client === outB ? other : fan;
        await client.waitUntil(() => gapsOf(client, channel, killAt).length > 0, `gap on ${channel}`, SLOW_MS);
      }
    }, { timeoutMs: 2 * SLOW_MS + 5000 });

    await resumes('kill -9', killAt);

    await t.check('kill -9: no publish answered "unavailable" was delivered; no crash', async () => {
      const refused = new Set(outageErrors(killAt).errors.map(([seq]) => seq));
      for (const client of steadySubs) {
        const delivered = seqsOf(client, steady).filter((seq) => refused.has(seq));
        assertEqual(delivered.length, 0, `${client.label}: messages delivered although their publish got unavailable (#${delivered.join(', #')})`);
      }
      for (const server of [A, B]) await assertAlive(server);
    });

    // -- SIGSTOP for longer than the health check's timeout, then SIGCONT ---------
    await flowing('kill -STOP');
    const stopAt = now();
    redis.stop();
    console.log(`      redis-server stopped (SIGSTOP) at publish #${ticker.seq}`);
    const detected = {};
    const watchDetection = (async () => {
      const deadline = stopAt + Math.max(FREEZE_MS, SLOW_MS + 5000);
      while (now() < deadline && Object.keys(detected).length < 2) {
        for (const server of [A, B]) {
          if (detected[server.name] !== undefined) continue;
          try {
            if (await pubsubUp(server) === 0) detected[server.name] = now() - stopAt;
          } catch { /* reported below */ }
        }
        await sleep(200);
      }
    })();
    await watchDetection;
    const frozenFor = now() - stopAt;
    if (frozenFor < FREEZE_MS) await sleep(FREEZE_MS - frozenFor);
    await t.check('kill -STOP: both instances notice (wshub_pubsub_up 0), /healthz 200, no crash', async () => {
      const line = `kill -STOP: wshub_pubsub_up 0 after ${['A', 'B'].map((n) => `${n} ${detected[n] === undefined ? 'never' : ms(detected[n])}`).join(', ')}`;
      summary.push(line);
      console.log(`      ${line}`);
      for (const server of [A, B]) {
        assert(detected[server.name] !== undefined, `${server.name}: wshub_pubsub_up never 0 while Redis was stopped`);
        assertEqual(await pubsubUp(server), 0, `${server.name}: wshub_pubsub_up at the end of the freeze`);
        await assertAlive(server);
      }
    });
    const contAt = now();
    redis.cont();
    console.log(`      redis-server continued (SIGCONT) after ${ms(contAt - stopAt)}`);

    await t.check('kill -STOP: publishes during the freeze all got an answer, errors are "unavailable" with their id', async () => {
      const window = ticker.between(stopAt, contAt);
      await tickA.waitUntil(() => window.every(([, e]) => e.answers.length > 0),
        'answers to every publish sent during the freeze', SLOW_MS);
      const { errors, wrongCode, latencies } = outageErrors(stopAt, contAt);
      assertEqual(wrongCode.length, 0, `errors with another code (#${wrongCode.map(([s]) => s).join(', #')})`);
      assert(errors.length > 0, 'no publish sent during the freeze got an error');
      const answerLatencies = window.map(([, e]) => e.answers[0].at - e.at);
      console.log(`      ${window.length} publishes during the freeze: ${errors.length} unavailable, ` +
        `${window.length - errors.length} acked; slowest answer ${ms(Math.max(...answerLatencies))}, ` +
        `slowest error ${ms(Math.max(...latencies))}`);
      const twice = window.filter(([, e]) => e.answers.length > 1);
      assertEqual(twice.length, 0, `publishes answered twice (#${twice.map(([s]) => s).join(', #')})`);
    }, { timeoutMs: SLOW_MS + 5000 });

    await t.check('kill -STOP then CONT: both instances reconnect and resubscribe (gap to every subscriber)', async () => {
      const delays = await gapsAfter(stopAt, contAt);
      const channels = await redis.command('PUBSUB', 'CHANNELS', `${PREFIX}ch:*`);
      assert(channels.includes(`${PREFIX}ch:${steady}`), `PUBSUB CHANNELS lacks ${steady}: ${JSON.stringify(channels)}`);
      const redisSide = await watchNumsub(steady, 2, contAt);
      const line = `kill -STOP + CONT: gap ${Object.entries(delays).map(([k, v]) => `${k} ${ms(v)}`).join(', ')} after SIGCONT; ` +
        `PUBSUB NUMSUB = 2 by ${redisSide === null ? 'never' : ms(redisSide)}`;
      summary.push(line);
      console.log(`      ${line}`);
      assert(redisSide !== null, 'PUBSUB NUMSUB never reached 2');
      for (const client of steadySubs) {
        const gaps = gapsOf(client, steady, stopAt).length;
        assert(gaps >= 1, `${client.label}: no gap`);
        if (gaps > 1) console.log(`      note: ${client.label} got ${gaps} gaps`);
      }
    }, { timeoutMs: 2 * SLOW_MS + 5000 });

    await resumes('kill -STOP', stopAt);

    await t.check('kill -STOP: no crash; publishes refused during the freeze (note if delivered anyway)', async () => {
      const refused = new Set(outageErrors(stopAt, contAt).errors.map(([seq]) => seq));
      for (const client of steadySubs) {
        const delivered = seqsOf(client, steady).filter((seq) => refused.has(seq));
        // A PUBLISH already written to the frozen socket when its command timed
        // out may still be executed by Redis on SIGCONT: reported, not failed.
        if (delivered.length) {
          console.log(`      note: ${client.label} received ${delivered.length} message(s) whose publish got ` +
            `"unavailable" (#${delivered.slice(0, 10).join(', #')}${delivered.length > 10 ? ', …' : ''})`);
        }
      }
      for (const server of [A, B]) await assertAlive(server);
    });

    // -- CLIENT KILL TYPE pubsub ----------------------------------------------------
    await flowing('CLIENT KILL TYPE pubsub');
    const clientKillAt = now();
    let killed;
    await t.check('CLIENT KILL TYPE pubsub: both instances\' subscriber connections are dropped', async () => {
      killed = await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
      console.log(`      CLIENT KILL TYPE pubsub killed ${killed} connection(s)`);
      assert(killed >= 2, `killed ${killed} connections`);
    });
    await t.check('CLIENT KILL TYPE pubsub: both instances resubscribe (gap to every subscriber)', async () => {
      const delays = await gapsAfter(clientKillAt, clientKillAt);
      const redisSide = await watchNumsub(steady, 2, clientKillAt);
      const line = `CLIENT KILL TYPE pubsub: gap ${Object.entries(delays).map(([k, v]) => `${k} ${ms(v)}`).join(', ')} after the kill; ` +
        `PUBSUB NUMSUB = 2 by ${redisSide === null ? 'never' : ms(redisSide)}`;
      summary.push(line);
      console.log(`      ${line}`);
      assert(redisSide !== null, 'PUBSUB NUMSUB never reached 2');
      for (const client of steadySubs) {
        assertEqual(gapsOf(client, steady, clientKillAt).length, 1, `${client.label}: gaps`);
      }
    }, { timeoutMs: 2 * SLOW_MS + 5000 });
    await resumes('CLIENT KILL', clientKillAt);
    await t.check('CLIENT KILL TYPE pubsub: any error is "unavailable"; no crash', async () => {
      const { errors, wrongCode } = outageErrors(clientKillAt);
      assertEqual(wrongCode.length, 0, `errors with another code (#${wrongCode.map(([s]) => s).join(', #')})`);
      if (errors.length) console.log(`      ${errors.length} publish(es) got unavailable`);
      for (const server of [A, B]) await assertAlive(server);
    });

    // -- The whole run ----------------------------------------------------------------
    ticker.stop();
    await t.check('over the whole run: every publish answered exactly once, messages in order without duplicates', async () => {
      await tickA.waitUntil(() => [...ticker.sent.values()].every((e) => e.answers.length > 0),
        'an answer to every publish', SLOW_MS);
      const twice = [...ticker.sent].filter(([, e]) => e.answers.length > 1);
      assertEqual(twice.length, 0, `publishes answered twice (#${twice.map(([s]) => s).join(', #')})`);
      assertEqual(ticker.strayAnswers.length, 0, `answers without a matching id: ${ticker.strayAnswers.slice(0, 3).join(' ')}`);
      const counts = { ack: 0, error: 0 };
      for (const e of ticker.sent.values()) counts[e.answers[0].type] += 1;
      console.log(`      ${ticker.seq} publishes: ${counts.ack} acked, ${counts.error} unavailable`);
      for (const client of steadySubs) {
        const seqs = seqsOf(client, steady).filter((seq) => Number.isInteger(seq));
        for (let i = 1; i < seqs.length; i += 1) {
          assert(seqs[i] > seqs[i - 1], `${client.label}: #${seqs[i]} after #${seqs[i - 1]}`);
        }
        console.log(`      ${client.label}: ${seqs.length} messages`);
      }
    }, { timeoutMs: SLOW_MS + 5000 });

    await t.check('SIGTERM: both instances exit with status 0', async () => {
      const [codeA, codeB] = await Promise.all([A.stop(), B.stop()]);
      assertEqual(codeA, 0, `A's exit status (output:\n${A.recentOutput()}\n)`);
      assertEqual(codeB, 0, `B's exit status (output:\n${B.recentOutput()}\n)`);
    }, { timeoutMs: 45000 });

    console.log('\nresubscribe figures:');
    for (const line of summary) console.log(`  ${line}`);
  } catch (error) {
    if (!aborted) t.abort(error);
  }
}

for (const client of clients) client.close();
if (A) A.kill();
if (B) B.kill();
if (redis) await redis.close().catch(() => {});
t.finish();
