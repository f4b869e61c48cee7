#!/usr/bin/env node
// Checks that a server speaks the wshub protocol subset the benchmarks use.
//   node bench/peers/check_peer.mjs <ws-url-A> [<ws-url-B>]
// With two URLs (two instances sharing Redis) the second subscriber and the
// unsubscribing one sit on instance B, so delivery across instances is checked.
// Needs `npm ci` in bench/peers/node-ws (it borrows that folder's `ws`).
// Exits non-zero on any failure; the last line is "N passed, N failed".
import { createRequire } from 'node:module';

const require = createRequire(new URL('./node-ws/package.json', import.meta.url));
const WebSocket = require('ws');

const urlA = process.argv[2];
const urlB = process.argv[3] || urlA;
if (!urlA) {
  console.error('usage: node check_peer.mjs <ws-url-A> [<ws-url-B>]');
  process.exit(2);
}

const QUIET_MS = 300; // how long "nothing arrives" is watched
const TIMEOUT_MS = 3000;
let passed = 0;
let failed = 0;
const sockets = [];

function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`);
  }
}

function connect(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '<binary>' : data.toString();
      const w = waiters.shift();
      if (w) w(text);
      else queue.push(text);
    });
    ws.on('error', reject);
    ws.on('open', () => {
      sockets.push(ws);
      resolve({
        ws,
        send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
        // Next frame as text, or null when none arrives within ms.
        next(ms = TIMEOUT_MS) {
          if (queue.length) return Promise.resolve(queue.shift());
          return new Promise((res) => {
            const w = (t) => { clearTimeout(timer); res(t); };
            const timer = setTimeout(() => {
              const i = waiters.indexOf(w);
              if (i >= 0) waiters.splice(i, 1);
              res(null);
            }, ms);
            waiters.push(w);
          });
        },
      });
    });
  });
}

const parse = (t) => { try { return JSON.parse(t); } catch { return null; } };

async function expectFrame(name, client, predicate) {
  const text = await client.next();
  const ok = text !== null && predicate(text, parse(text));
  check(name, ok, text === null ? 'nothing arrived' : `got ${text}`);
  return text;
}

async function expectSilence(name, client) {
  const text = await client.next(QUIET_MS);
  check(name, text === null, `got ${text}`);
}

// Collects the ack of `id` and the message frame, whatever their order.
async function collect(client, n) {
  const frames = [];
  for (let i = 0; i < n; i++) {
    const t = await client.next();
    if (t === null) break;
    frames.push(t);
  }
  return frames;
}

async function main() {
  const run = Math.random().toString(36).slice(2, 10);
  const chan = `bench.check:${run}`;
  const other = `bench.other:${run}`;

  // healthz on instance A
  try {
    const httpUrl = new URL(urlA);
    httpUrl.protocol = httpUrl.protocol === 'wss:' ? 'https:' : 'http:';
    httpUrl.pathname = '/healthz';
    const res = await fetch(httpUrl);
    const body = await res.text();
    check('GET /healthz is 200 "ok"', res.status === 200 && body.trim() === 'ok', `${res.status} ${body}`);
  } catch (err) {
    check('GET /healthz is 200 "ok"', false, err.message);
  }

  const sub1 = await connect(urlA); // subscriber on A
  const sub2 = await connect(urlB); // subscriber on B (unsubscribes later)
  const pub = await connect(urlA); // publisher on A, also subscribed
  const bystander = await connect(urlB); // subscribed to another channel only

  const welcomes = [];
  for (const [name, c] of [['sub1', sub1], ['sub2', sub2], ['pub', pub], ['bystander', bystander]]) {
    const text = await expectFrame(`welcome first (${name})`, c, (t, m) =>
      m && m.type === 'welcome' && typeof m.connection === 'string' && m.connection !== '' &&
      typeof m.instance === 'string' && m.instance !== '' && t.startsWith('{"type":"welcome"'));
    welcomes.push(parse(text));
  }
  const ids = welcomes.filter(Boolean).map((w) => w.connection);
  check('connection ids are distinct', new Set(ids).size === ids.length, ids.join(' '));
  if (urlB !== urlA && welcomes[0] && welcomes[1]) {
    check('instances A and B have different ids', welcomes[0].instance !== welcomes[1].instance,
      `${welcomes[0].instance} ${welcomes[1].instance}`);
  }

  // subscribe: ack with the id echoed verbatim (string and integer)
  sub1.send({ type: 'subscribe', channel: chan, id: 's-1' });
  await expectFrame('subscribe acks a string id', sub1, (t) => t === '{"type":"ack","id":"s-1"}');
  sub2.send({ type: 'subscribe', channel: chan, id: 42 });
  await expectFrame('subscribe acks an integer id', sub2, (t) => t === '{"type":"ack","id":42}');
  // no id: no ack (the next frame must be the ack of the following request)
  pub.send({ type: 'subscribe', channel: chan });
  pub.send({ type: 'subscribe', channel: other, id: 'after' });
  await expectFrame('subscribe without id is silent', pub, (t) => t === '{"type":"ack","id":"after"}');
  bystander.send({ type: 'subscribe', channel: other, id: 7 });
  await expectFrame('subscribe on another channel', bystander, (t) => t === '{"type":"ack","id":7}');

  // publish reaches every subscriber exactly once, frame fields in order
  const data = { text: 'hello', n: 1, list: [1, 'two', null, true], nested: { k: 'v' } };
  const expected = JSON.stringify({ type: 'message', channel: chan, data });
  pub.send({ type: 'publish', channel: chan, data, id: 'p1' });
  const pubFrames = await collect(pub, 2);
  check('publisher gets its ack', pubFrames.includes('{"type":"ack","id":"p1"}'), pubFrames.join(' | '));
  check('publisher (subscribed) gets the message', pubFrames.includes(expected), pubFrames.join(' | '));
  await expectFrame('message reaches subscriber on A (exact frame)', sub1, (t) => t === expected);
  await expectFrame(`message reaches subscriber on ${urlB === urlA ? 'A' : 'B'} (exact frame)`, sub2, (t) => t === expected);
  await expectSilence('subscriber on A gets it only once', sub1);
  await expectSilence('subscriber on B gets it only once', sub2);
  await expectSilence('publisher gets it only once', pub);
  await expectSilence('a subscriber of another channel gets nothing', bystander);

  // publish without id: message, no ack; scalar data
  pub.send({ type: 'publish', channel: chan, data: 'plain string' });
  const expected2 = JSON.stringify({ type: 'message', channel: chan, data: 'plain string' });
  await expectFrame('publish without id is delivered (A)', sub1, (t) => t === expected2);
  await expectFrame('publish without id is delivered (B)', sub2, (t) => t === expected2);
  await expectFrame('publisher gets the message but no ack', pub, (t) => t === expected2);
  await expectSilence('publish without id sends no ack', pub);

  // unsubscribe stops delivery
  sub2.send({ type: 'unsubscribe', channel: chan, id: 'u1' });
  await expectFrame('unsubscribe acks', sub2, (t) => t === '{"type":"ack","id":"u1"}');
  pub.send({ type: 'publish', channel: chan, data: 2, id: 3 });
  const expected3 = JSON.stringify({ type: 'message', channel: chan, data: 2 });
  await expectFrame('after unsubscribe, the other subscriber still gets messages', sub1, (t) => t === expected3);
  const pubFrames3 = await collect(pub, 2);
  check('publisher ack after unsubscribe', pubFrames3.includes('{"type":"ack","id":3}'), pubFrames3.join(' | '));
  await expectSilence('unsubscribed client gets nothing', sub2);

  // a publisher that is not subscribed is still acked, and gets no message
  bystander.send({ type: 'publish', channel: chan, data: null, id: 'b1' });
  await expectFrame('non-subscribed publisher gets only its ack', bystander, (t) => t === '{"type":"ack","id":"b1"}');
  await expectFrame('null data is delivered', sub1, (t) => t === JSON.stringify({ type: 'message', channel: chan, data: null }));
  await expectSilence('non-subscribed publisher gets no message', bystander);

  // the last subscriber on B left: resubscribing there works again
  sub2.send({ type: 'subscribe', channel: chan, id: 'again' });
  await expectFrame('resubscribe acks', sub2, (t) => t === '{"type":"ack","id":"again"}');
  sub1.send({ type: 'publish', channel: chan, data: [], id: 'q' });
  await expectFrame('resubscribed client gets messages again', sub2,
    (t) => t === JSON.stringify({ type: 'message', channel: chan, data: [] }));

  // bad requests
  const isBadRequest = (t, m) => m && m.type === 'error' && m.code === 'bad_request' && typeof m.message === 'string';
  bystander.send('{not json');
  await expectFrame('invalid JSON is bad_request', bystander, isBadRequest);
  bystander.send({ type: 'shout', id: 'x' });
  await expectFrame('unknown type is bad_request', bystander, isBadRequest);
  bystander.send({ type: 'subscribe', id: 'y' });
  await expectFrame('missing channel is bad_request', bystander, isBadRequest);
  bystander.send('[1,2]');
  await expectFrame('non-object frame is bad_request', bystander, isBadRequest);
  bystander.send({ type: 'subscribe', channel: other, id: 'still-open' });
  await expectFrame('connection stays open after bad requests', bystander,
    (t) => t === '{"type":"ack","id":"still-open"}');
}

const watchdog = setTimeout(() => {
  check('finished within 30 s', false);
  finish();
}, 30000);

function finish() {
  clearTimeout(watchdog);
  for (const ws of sockets) ws.terminate();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((err) => check('run without exceptions', false, err && err.stack)).finally(finish);
