// registry_instances.mjs: the connection registry across real chat_server
// processes over one real redis-server (docs/operations.md, "The connection
// registry"). Two instances A and B, clients named through /ws?name= (the
// chat example's auth hook makes the name the user id):
//   - a `send` on A reaches one connection on B; an unknown id gets not_found;
//   - a `send` to user:<name> reaches that user's connections on A and on B;
//   - presence across instances: `presence` lists members of both with their
//     users, `join` and `leave` cross instances;
//   - /metrics on each instance counts the connections of the whole deployment;
//   - a connection kept for longer than 3 TTLs stays registered;
//   - kill -9 of B: within TTL + janitor interval (plus slack) SCAN finds no
//     key naming B, A's subscribers got `leave` for B's members, sends to B's
//     connections answer not_found;
//   - Redis killed and restarted empty: A registers its connections again;
//   - SIGTERM of A: it exits 0 and leaves no key naming it.
//
//   CHAT_SERVER=build/examples/chat/chat_server node registry_instances.mjs
//
// The registry runs with short timing here (heartbeat 200 ms, TTL 1.5 s,
// janitor 300 ms); deadlines are generous multiples of them. The last line is
// `N passed, N failed`; the exit status is non-zero on failure.
import { Harness, assert, assertEqual, sleep } from './lib/harness.js';
import { startChatServer } from './lib/server.js';
import { startRedis } from './lib/redis.js';
import { Client, httpGet, loadWs } from './lib/ws_client.js';

await loadWs('registry_instances');

const PREFIX = 'wshub:';
const HEARTBEAT_MS = 200;
const TTL_MS = 1500;
const JANITOR_MS = 300;
const CLEANUP_DEADLINE_MS = 20000;   // TTL + janitor is 1.8 s; room for a loaded machine
const ROOM = 'room:registry';
const LOG_LEVEL = process.env.E2E_VERBOSE === '1' ? 'debug' : 'info';

const t = new Harness('registry_instances');
let redis;
let A;
let B;
const clients = [];

async function open(server, name) {
  const client = await Client.open(`${server.wsUrl}?name=${encodeURIComponent(name)}`, `${name}@${server.name}`);
  clients.push(client);
  const welcome = await client.expect((f) => f.type === 'welcome', `${client.label}: welcome`);
  client.id = welcome.json.connection;
  return client;
}

async function subscribe(client, channel) {
  const answer = await client.request({ type: 'subscribe', channel, id: `sub-${channel}` });
  assertEqual(answer.type, 'ack', `${client.label}: answer to subscribe ${channel} (${JSON.stringify(answer)})`);
}

// keysNaming(text): every key whose name holds `text` (SCAN, never KEYS in production; fine either way here).
async function keysNaming(text) {
  const found = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.command('SCAN', cursor, 'MATCH', `*${text}*`, 'COUNT', '1000');
    cursor = String(next);
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

// waitFor(condition, what, ms): polls an async condition until it holds.
async function waitFor(condition, what, ms = CLEANUP_DEADLINE_MS) {
  const start = performance.now();
  let last;
  while (performance.now() - start < ms) {
    try {
      last = await condition();
      if (last) return performance.now() - start;
    } catch (error) {
      last = error.message;
    }
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms / 1000} s (last: ${JSON.stringify(last)})`);
}

async function metric(server, name) {
  const r = await httpGet(server.url, '/metrics');
  assertEqual(r.status, 200, `${server.name}: /metrics status`);
  const match = new RegExp(`^${name}(\\{[^}]*\\})?\\s+(\\S+)\\s*$`, 'm').exec(r.body);
  return match ? Number(match[2]) : undefined;
}

const leavesOf = (client) => client.frames.filter((f) => f.json.type === 'leave' && f.json.channel === ROOM);
const registryFlags = (redisUrl) => ['--redis', redisUrl, '--log-level', LOG_LEVEL, '--publish-rate', '0',
  '--heartbeat-interval', String(HEARTBEAT_MS), '--registry-ttl', String(TTL_MS),
  '--janitor-interval', String(JANITOR_MS)];

try {
  redis = await startRedis();
  A = await startChatServer(['--instance', 'e2e-reg-a', ...registryFlags(redis.url)]);
  A.name = 'A';
  B = await startChatServer(['--instance', 'e2e-reg-b', ...registryFlags(redis.url)]);
  B.name = 'B';
  console.log(`redis-server on ${redis.url}; chat_server A on ${A.url}, B on ${B.url}`);
} catch (error) {
  t.abort(error);
}

if (redis && A && B) {
  try {
    const aliceA = await open(A, 'alice');
    const carolA = await open(A, 'carol');
    const bobB = await open(B, 'bob');
    const aliceB = await open(B, 'alice');
    // Both inboxes are subscribed before anything is routed to them.
    await waitFor(async () => (await redis.command('PUBSUB', 'CHANNELS', `${PREFIX}inbox:*`)).length === 2,
      'both inboxes subscribed');

    await t.check('a send on A reaches exactly one connection on B', async () => {
      await waitFor(async () => (await redis.command('EXISTS', `${PREFIX}conn:${bobB.id}`)) === 1,
        `bob's registry key`);
      const answer = await carolA.request({ type: 'send', to: bobB.id, data: { text: 'psst' }, id: 'd1' });
      assertEqual(answer.type, 'ack', `answer ${JSON.stringify(answer)}`);
      const direct = await bobB.expect((f) => f.type === 'direct', 'bob: direct');
      assertEqual(direct.raw, `{"type":"direct","from":"${carolA.id}","data":{"text":"psst"}}`, 'direct frame');
      await aliceB.roundTrip('after-d1');
      assert(!aliceB.frames.some((f) => f.json.type === 'direct'), 'alice on B got a direct meant for bob');
    });

    await t.check('a send to an unknown connection id answers not_found', async () => {
      for (const to of ['e2e-reg-b-99999', 'e2e-nowhere-1', 'not-an-id']) {
        const answer = await carolA.request({ type: 'send', to, data: 1, id: `nf-${to}` });
        assertEqual(answer.code, 'not_found', `answer for ${to} (${JSON.stringify(answer)})`);
      }
    });

    await t.check('a send to user:alice reaches her connections on A and on B, and no one else', async () => {
      await waitFor(async () => (await redis.command('ZCARD', `${PREFIX}user:alice`)) === 2, 'alice in the registry twice');
      const answer = await bobB.request({ type: 'send', to: 'user:alice', data: 'hi alice', id: 'u1' });
      assertEqual(answer.type, 'ack', `answer ${JSON.stringify(answer)}`);
      for (const client of [aliceA, aliceB]) {
        const frame = await client.expect((f) => f.type === 'direct' && f.data === 'hi alice', `${client.label}: direct`);
        assertEqual(frame.json.from, bobB.id, `${client.label}: from`);
      }
      await carolA.roundTrip('after-u1');
      assert(!carolA.frames.some((f) => f.json.type === 'direct'), 'carol got a direct meant for alice');
      const none = await bobB.request({ type: 'send', to: 'user:nobody', data: 1, id: 'u2' });
      assertEqual(none.code, 'not_found', `answer for user:nobody (${JSON.stringify(none)})`);
    });

    await t.check('presence across instances: members with users, join and leave cross instances', async () => {
      await subscribe(aliceA, ROOM);
      await subscribe(bobB, ROOM);
      await aliceA.expect((f) => f.type === 'join' && f.connection === bobB.id, 'alice on A: join of bob on B');
      const answer = await aliceA.request({ type: 'presence', channel: ROOM, id: 'p1' });
      assertEqual(answer.type, 'ack', `answer ${JSON.stringify(answer)}`);
      assertEqual([...answer.members].sort().join(' '), [aliceA.id, bobB.id].sort().join(' '), 'members');
      assertEqual(answer.users[bobB.id], 'bob', 'bob\'s user');
      assertEqual(answer.users[aliceA.id], 'alice', 'alice\'s user');
      await subscribe(carolA, ROOM);
      const join = await bobB.expect((f) => f.type === 'join' && f.connection === carolA.id, 'bob on B: join of carol');
      assertEqual(join.json.user, 'carol', 'the join names the user');
      const unsub = await carolA.request({ type: 'unsubscribe', channel: ROOM, id: 'un1' });
      assertEqual(unsub.type, 'ack', 'unsubscribe');
      await bobB.expect((f) => f.type === 'leave' && f.connection === carolA.id, 'bob on B: leave of carol');
      await subscribe(aliceB, ROOM);
      await aliceA.expect((f) => f.type === 'join' && f.connection === aliceB.id, 'alice on A: join of alice on B');
    });

    await t.check('/metrics on each instance counts the connections of the whole deployment', async () => {
      for (const server of [A, B]) {
        await waitFor(async () => (await metric(server, 'wshub_cluster_connections')) === 4,
          `${server.name}: wshub_cluster_connections 4`);
        assertEqual(await metric(server, 'wshub_cluster_instances'), 2, `${server.name}: wshub_cluster_instances`);
        assertEqual(await metric(server, 'wshub_registry_up'), 1, `${server.name}: wshub_registry_up`);
      }
    });

    await t.check('a connection kept for longer than 3 TTLs stays registered', async () => {
      const started = performance.now();
      while (performance.now() - started < 3 * TTL_MS + 500) {
        assertEqual(await redis.command('EXISTS', `${PREFIX}conn:${bobB.id}`), 1, `bob's key after ${Math.round(performance.now() - started)} ms`);
        await sleep(250);
      }
      const pttl = await redis.command('PTTL', `${PREFIX}conn:${bobB.id}`);
      assert(pttl > 0 && pttl <= TTL_MS, `PTTL ${pttl} within (0, ${TTL_MS}]`);
      assertEqual(await redis.command('ZSCORE', `${PREFIX}presence:${ROOM}`, `${bobB.id} bob`) !== null, true,
        'bob still present');
    }, { timeoutMs: 60000 });

    await t.check('kill -9 of B: its keys and presence are gone, A heard leave, sends to B answer not_found', async () => {
      assert((await keysNaming('e2e-reg-b')).length > 0, 'B has keys before the crash');
      B.process.kill('SIGKILL');
      await B.exited;
      const took = await waitFor(async () => (await keysNaming('e2e-reg-b')).length === 0, 'no key names B');
      console.log(`      B's keys gone ${Math.round(took)} ms after the kill (TTL ${TTL_MS} + janitor ${JANITOR_MS} ms)`);
      const members = await redis.command('ZRANGE', `${PREFIX}presence:${ROOM}`, '0', '-1');
      assertEqual(members.join(','), `${aliceA.id} alice`, 'presence members left');
      await waitFor(() => leavesOf(aliceA).some((f) => f.json.connection === bobB.id) &&
        leavesOf(aliceA).some((f) => f.json.connection === aliceB.id), 'alice on A: leave of bob and alice on B');
      assertEqual(leavesOf(aliceA).filter((f) => f.json.connection === bobB.id).length, 1, 'one leave for bob');
      const answer = await aliceA.request({ type: 'send', to: bobB.id, data: 1, id: 'dead1' });
      assertEqual(answer.code, 'not_found', `send to a connection of the dead B (${JSON.stringify(answer)})`);
      const toBob = await aliceA.request({ type: 'send', to: 'user:bob', data: 1, id: 'dead2' });
      assertEqual(toBob.code, 'not_found', `send to user:bob (${JSON.stringify(toBob)})`);
      await waitFor(async () => (await metric(A, 'wshub_cluster_connections')) === 2, 'A: wshub_cluster_connections 2');
    }, { timeoutMs: 60000 });

    await t.check('Redis restarted empty: A registers its connections and presence again', async () => {
      await redis.kill9();
      await redis.restart();
      await waitFor(async () => (await redis.command('EXISTS', `${PREFIX}conn:${aliceA.id}`)) === 1 &&
        (await redis.command('EXISTS', `${PREFIX}conn:${carolA.id}`)) === 1 &&
        (await redis.command('ZSCORE', `${PREFIX}presence:${ROOM}`, `${aliceA.id} alice`)) !== null &&
        (await redis.command('ZSCORE', `${PREFIX}user:alice`, aliceA.id)) !== null,
      'A\'s entries written again');
      await waitFor(async () => (await redis.command('PUBSUB', 'CHANNELS', `${PREFIX}inbox:*`)).length === 1,
        'A\'s inbox subscribed again');
      const answer = await carolA.request({ type: 'send', to: aliceA.id, data: 'back', id: 'back1' });
      assertEqual(answer.type, 'ack', `a direct after the restart (${JSON.stringify(answer)})`);
      await aliceA.expect((f) => f.type === 'direct' && f.data === 'back', 'alice: direct after the restart');
    }, { timeoutMs: 60000 });

    await t.check('SIGTERM of A: exit 0 and no key names it', async () => {
      assert((await keysNaming('e2e-reg-a')).length > 0, 'A has keys before its shutdown');
      const code = await A.stop();
      assertEqual(code, 0, 'exit code');
      const left = await keysNaming('e2e-reg-a');
      assertEqual(left.join(','), '', 'keys naming A after its shutdown');
      const members = await redis.command('ZCARD', `${PREFIX}presence:${ROOM}`);
      assertEqual(members, 0, 'presence members after the shutdown');
    });
  } catch (error) {
    t.abort(error);
  }
}

for (const client of clients) client.close();
if (A) A.kill();
if (B) B.kill();
if (redis) await redis.close();
t.finish();
