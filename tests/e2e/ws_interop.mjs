// ws_interop.mjs: a scripted session of Node's `ws` client against a real
// chat_server, checking the wire protocol of docs/protocol.md end to end:
// welcome, subscribe/ack, publish fan-out with `data` byte for byte, direct
// sends, unsubscribe, the error codes, 1009 for an oversized frame, the HTTP
// routes, and a graceful SIGTERM (1001 to open clients, exit status 0).
//
//   CHAT_SERVER=build/examples/chat/chat_server node ws_interop.mjs
//   node ws_interop.mjs build/examples/chat/chat_server
//
// The last line is `N passed, N failed`; the exit status is non-zero on failure.
import { Harness, assert, assertEqual, sleep, within } from './lib/harness.js';
import { startChatServer } from './lib/server.js';
import { Client, httpGet as httpGetWithin, loadWs } from './lib/ws_client.js';

await loadWs('ws_interop');

const INSTANCE = 'e2e-interop';
const FRAME_TIMEOUT_MS = 10000;
// How long to wait before concluding that a frame will NOT arrive, after a
// round trip on the same connection has already been answered.
const QUIET_MS = 300;

// ---- Raw JSON spans ---------------------------------------------------------
// rawMember(text, key): the exact bytes of a top-level member's value in a JSON
// object text, so `data` can be compared byte for byte (JSON.parse would turn
// 1e400 into Infinity and lose digits of big integers).
function skipWhitespace(s, i) {
  while (i < s.length && ' \t\n\r'.includes(s[i])) i += 1;
  return i;
}
function skipString(s, i) {
  for (i += 1; i < s.length; i += 1) {
    if (s[i] === '\\') i += 1;
    else if (s[i] === '"') return i + 1;
  }
  throw new Error('unterminated string');
}
function skipValue(s, i) {
  if (s[i] === '"') return skipString(s, i);
  if (s[i] === '{' || s[i] === '[') {
    let depth = 0;
    while (i < s.length) {
      const c = s[i];
      if (c === '"') { i = skipString(s, i); continue; }
      if (c === '{' || c === '[') depth += 1;
      if (c === '}' || c === ']') depth -= 1;
      i += 1;
      if (depth === 0) return i;
    }
    throw new Error('unterminated container');
  }
  while (i < s.length && !',]} \t\n\r'.includes(s[i])) i += 1;
  return i;
}
function rawMember(text, key) {
  let i = skipWhitespace(text, 0);
  if (text[i] !== '{') throw new Error('not an object');
  i += 1;
  for (;;) {
    i = skipWhitespace(text, i);
    if (text[i] === '}') return undefined;
    const keyStart = i;
    i = skipString(text, i);
    const name = JSON.parse(text.slice(keyStart, i));
    i = skipWhitespace(text, i);
    if (text[i] !== ':') throw new Error('expected ":"');
    i = skipWhitespace(text, i + 1);
    const valueStart = i;
    i = skipValue(text, i);
    if (name === key) return text.slice(valueStart, i);
    i = skipWhitespace(text, i);
    if (text[i] === ',') i += 1;
  }
}

// ---- Clients and HTTP (lib/ws_client.js), with this script's timeout -------
const isAck = (id) => (f) => f.type === 'ack' && f.id === id;
const isError = (id) => (f) => f.type === 'error' && f.id === id;
const httpGet = (base, path) => httpGetWithin(base, path, FRAME_TIMEOUT_MS);


// ---- The session ------------------------------------------------------------
const t = new Harness('ws_interop');
let server;
const clients = [];
try {
  server = await startChatServer(['--instance', INSTANCE, '--log-level', 'warn']);
  console.log(`chat_server listening on ${server.url}`);
} catch (error) {
  t.abort(error);
  t.finish();
  process.exit();
}

async function open(label) {
  const client = await Client.open(server.wsUrl, label, { timeoutMs: FRAME_TIMEOUT_MS });
  clients.push(client);
  return client;
}

try {
  // HTTP routes.
  await t.check('GET /healthz is 200 "ok" while serving', async () => {
    const r = await httpGet(server.url, '/healthz');
    assertEqual(r.status, 200, 'status');
    assertEqual(r.body.trim(), 'ok', 'body');
  });
  await t.check('GET / serves the chat page', async () => {
    const r = await httpGet(server.url, '/');
    assertEqual(r.status, 200, 'status');
    assert(r.type.startsWith('text/html'), `content-type is "${r.type}", not text/html`);
    assert(r.body.includes('<title>wshub chat</title>'), 'the page has no <title>wshub chat</title>');
    assert(r.body.includes('chat.js'), 'the page does not load chat.js');
  });
  await t.check('GET /chat.js and /chat.css serve the page\'s files', async () => {
    const js = await httpGet(server.url, '/chat.js');
    assertEqual(js.status, 200, '/chat.js status');
    assert(js.body.includes('sanitizeRoom'), '/chat.js is not the chat client');
    assert(/javascript/.test(js.type), `/chat.js content-type is "${js.type}"`);
    const css = await httpGet(server.url, '/chat.css');
    assertEqual(css.status, 200, '/chat.css status');
    assert(css.type.startsWith('text/css'), `/chat.css content-type is "${css.type}"`);
  });
  await t.check('GET of an unknown path is 404', async () => {
    const r = await httpGet(server.url, '/no-such-file.txt');
    assertEqual(r.status, 404, 'status');
  });
  await t.check('GET /metrics serves Prometheus text', async () => {
    const r = await httpGet(server.url, '/metrics');
    assertEqual(r.status, 200, 'status');
    assert(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+|NaN/m.test(r.body),
      `no sample line in: ${r.body.slice(0, 300)}`);
  });

  // Three clients: A and B join the room, C stays out of it.
  const a = await open('A');
  const b = await open('B');
  const c = await open('C');
  const channel = 'room:e2e-interop';

  await t.check('welcome is the first frame, with connection and instance', async () => {
    const ids = new Set();
    for (const client of [a, b, c]) {
      const frame = await client.expect((f) => f.type === 'welcome', 'welcome');
      assert(client.frames[0] === frame, `${client.label}: the first frame is not the welcome: ${client.frames[0].raw}`);
      assert(frame.raw.startsWith('{"type":"welcome"'), `"type" is not written first: ${frame.raw}`);
      assert(typeof frame.json.connection === 'string' && frame.json.connection.length > 0,
        `${client.label}: no connection id in ${frame.raw}`);
      assertEqual(frame.json.instance, INSTANCE, `${client.label}: instance (from --instance)`);
      client.id = frame.json.connection;
      ids.add(client.id);
    }
    assertEqual(ids.size, 3, 'distinct connection ids');
  });

  await t.check('subscribe with an integer id gets an ack echoing it', async () => {
    a.sendRaw(`{"type":"subscribe","channel":"${channel}","id":1}`);
    const ack = await a.expect(isAck(1), 'ack 1');
    assertEqual(rawMember(ack.raw, 'id'), '1', 'raw id');
  });
  await t.check('subscribe with a string id gets an ack echoing it byte for byte', async () => {
    b.sendRaw(`{"type":"subscribe","channel":"${channel}","id":"s-\\u0062"}`);
    const ack = await b.expect(isAck('s-b'), 'ack "s-b"');
    assertEqual(rawMember(ack.raw, 'id'), '"s-\\u0062"', 'raw id');
  });

  // data with nesting, escapes, raw UTF-8, numbers JavaScript cannot hold,
  // and whitespace inside it, written as raw JSON text.
  const data = '{"nested":{"a":[1,2,{"b":null}],"t":true,"f":false},' +
    '"unicode":"héllo wörld ✓ 日本語 😀","esc":"q\\"b\\\\s\\n\\u00e9\\ud83d\\ude00\\/",' +
    '"big":1e400,"int":123456789012345678901234567890,"neg":-0.0E+00,"tiny":1e-99999999999,' +
    '"spaced" : [ 1 ,\t2 , "x" ] , "dup":1, "dup":2}';
  let published = false;
  await t.check('publish: the publisher, subscribed, gets a message with data byte for byte, and the ack', async () => {
    a.sendRaw(`{"type":"publish","channel":"${channel}","id":"p1","data": ${data} }`);
    const message = await a.expect((f) => f.type === 'message' && f.channel === channel, 'message');
    assertEqual(rawMember(message.raw, 'data'), data, 'data bytes');
    await a.expect(isAck('p1'), 'ack "p1"');
    published = true;
  });
  await t.check('publish: a second subscriber gets the same data byte for byte', async () => {
    assert(published, 'the publish failed');
    const message = await b.expect((f) => f.type === 'message' && f.channel === channel, 'message');
    assertEqual(rawMember(message.raw, 'data'), data, 'data bytes');
    assert(b.frames.filter((f) => f.json.type === 'message').length === 1, 'B got the message more than once');
  });
  await t.check('publish: a client not subscribed gets nothing', async () => {
    await c.roundTrip('c1');
    await sleep(QUIET_MS);
    const got = c.frames.filter((f) => f.json.type === 'message');
    assertEqual(got.length, 0, 'messages received by C');
  });
  await t.check('publish of scalar data (a string, a huge integer) passes through', async () => {
    for (const [i, scalar] of ['"just text"', '-98765432109876543210987654321', 'null', '[]'].entries()) {
      a.sendRaw(`{"type":"publish","channel":"${channel}","data":${scalar}}`);
      const message = await b.expect((f) => f.type === 'message' && f.channel === channel, `message ${i}`);
      assertEqual(rawMember(message.raw, 'data'), scalar, 'data bytes');
    }
  });
  await t.check('send to a connection id delivers a direct frame with from and data', async () => {
    const direct = '{"text":"psst","n":1.50}';
    a.sendRaw(`{"type":"send","to":${JSON.stringify(b.id)},"data":${direct},"id":9}`);
    const frame = await b.expect((f) => f.type === 'direct', 'direct');
    assertEqual(frame.json.from, a.id, 'from');
    assertEqual(rawMember(frame.raw, 'data'), direct, 'data bytes');
    await a.expect(isAck(9), 'ack 9');
  });
  await t.check('unsubscribe gets an ack and stops the messages', async () => {
    a.sendJson({ type: 'unsubscribe', channel, id: 2 });
    await a.expect(isAck(2), 'ack 2');
    const before = a.frames.filter((f) => f.json.type === 'message').length;
    b.sendJson({ type: 'publish', channel, data: { text: 'after unsubscribe' }, id: 'p2' });
    await b.expect((f) => f.type === 'message' && f.data && f.data.text === 'after unsubscribe', 'message');
    await b.expect(isAck('p2'), 'ack "p2"');
    await a.roundTrip('a1');
    await sleep(QUIET_MS);
    assertEqual(a.frames.filter((f) => f.json.type === 'message').length, before, 'messages A got after unsubscribing');
  });

  // Errors: each answered with its code, the connection stays open.
  await t.check('a channel name outside the alphabet is invalid_channel, id echoed', async () => {
    a.sendJson({ type: 'subscribe', channel: 'room lobby', id: 'bad-ch' });
    const e = await a.expect(isError('bad-ch'), 'error "bad-ch"');
    assertEqual(e.json.code, 'invalid_channel', 'code');
    assert(typeof e.json.message === 'string' && e.json.message.length > 0, 'no message');
  });
  await t.check('a channel of 129 bytes is invalid_channel', async () => {
    a.sendJson({ type: 'publish', channel: 'x'.repeat(129), data: 1, id: 'long-ch' });
    assertEqual((await a.expect(isError('long-ch'), 'error')).json.code, 'invalid_channel', 'code');
  });
  await t.check('unsubscribe from a channel never joined is not_subscribed', async () => {
    a.sendJson({ type: 'unsubscribe', channel: 'room:never-joined', id: 'ns' });
    assertEqual((await a.expect(isError('ns'), 'error "ns"')).json.code, 'not_subscribed', 'code');
  });
  await t.check('a frame that is not JSON is bad_request without an id', async () => {
    a.sendRaw('this is {not json');
    const e = await a.expect((f) => f.type === 'error' && f.code === 'bad_request', 'bad_request');
    assert(!('id' in e.json), `an id in ${e.raw}`);
  });
  await t.check('an unknown type is bad_request, id echoed', async () => {
    a.sendRaw('{"type":"shout","id":"x"}');
    assertEqual((await a.expect(isError('x'), 'error "x"')).json.code, 'bad_request', 'code');
  });
  await t.check('a binary frame is bad_request', async () => {
    a.ws.send(Buffer.from('{"type":"subscribe","channel":"room:bin"}'), { binary: true });
    const e = await a.expect((f) => f.type === 'error' && f.code === 'bad_request', 'bad_request');
    assert(!('id' in e.json), `an id in ${e.raw}`);
  });
  await t.check('send to an unknown connection id is not_found', async () => {
    a.sendJson({ type: 'send', to: 'no-such-connection-0', data: {}, id: 'nf' });
    assertEqual((await a.expect(isError('nf'), 'error "nf"')).json.code, 'not_found', 'code');
  });
  await t.check('the connection stays open after the errors', async () => {
    await a.roundTrip('a2');
    assertEqual(a.closeInfo, null, 'close');
  });

  await t.check('a frame larger than 64 KiB closes the connection with 1009', async () => {
    const d = await open('D');
    await d.expect((f) => f.type === 'welcome', 'welcome');
    const big = 'x'.repeat(70 * 1024);
    d.sendRaw(`{"type":"publish","channel":"${channel}","data":"${big}"}`);
    const closed = await within(d.closed, FRAME_TIMEOUT_MS, null);
    assert(closed, 'not closed');
    assertEqual(closed.code, 1009, 'close code');
    const late = b.frames.filter((f) => f.json.type === 'message' && typeof f.json.data === 'string' && f.json.data.length > 1000);
    assertEqual(late.length, 0, 'oversized messages delivered');
  });

  await t.check('GET /healthz is still 200', async () => {
    assertEqual((await httpGet(server.url, '/healthz')).status, 200, 'status');
  });

  // Graceful shutdown: every open client gets 1001, the server exits 0.
  await t.check('SIGTERM: open clients get close 1001 and the server exits 0', async () => {
    const stillOpen = [a, b, c].filter((client) => !client.closeInfo);
    assertEqual(stillOpen.length, 3, 'clients still open before SIGTERM');
    const code = await server.stop();
    const closes = await Promise.all(stillOpen.map((client) =>
      within(client.closed, FRAME_TIMEOUT_MS, { code: 'none within 10 s' })));
    const codes = closes.map((close) => close.code);
    assert(codes.every((value) => value === 1001), `close codes ${JSON.stringify(codes)}, expected 1001 each`);
    assertEqual(code, 0, `exit status (output:\n${server.recentOutput()}\n)`);
  }, { timeoutMs: 60000 });
} catch (error) {
  t.abort(error);
} finally {
  for (const client of clients) client.close();
  if (server) server.kill();
}
t.finish();
