#!/usr/bin/env node
// Benchmark peer: a WebSocket pub/sub hub on Node.js + ws (+ ioredis for
// --redis) that speaks the subset of the wshub protocol the benchmarks use:
// welcome, subscribe, unsubscribe, publish, ack, message, error (bad_request /
// unavailable). See ../README.md. It is written the way a Node user would
// write it: no eviction of slow clients, ws's defaults except perMessageDeflate.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { WebSocketServer, WebSocket } = require('ws');

// ---- command line ---------------------------------------------------------
function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 8080, instance: '', redis: '', prefix: 'wshub:' };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const key = arg.slice(2);
    if (!arg.startsWith('--') || !(key in opts)) {
      console.error(`unknown argument: ${argv[i]}`);
      console.error('usage: server.js [--host H] [--port P] [--instance ID] [--redis redis://host:port] [--prefix P]');
      process.exit(2);
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) {
        console.error(`missing value for ${arg}`);
        process.exit(2);
      }
      value = argv[++i];
    }
    opts[key] = value;
  }
  opts.port = Number(opts.port);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    console.error('--port must be an integer in 0..65535');
    process.exit(2);
  }
  if (!opts.instance) opts.instance = crypto.randomBytes(6).toString('hex');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const instance = opts.instance;
const topicPrefix = opts.prefix + 'ch:';

// ---- frames ---------------------------------------------------------------
const isValidId = (id) => typeof id === 'string' || Number.isInteger(id);

function errorFrame(code, message, id) {
  return id === undefined
    ? JSON.stringify({ type: 'error', code, message })
    : JSON.stringify({ type: 'error', id, code, message });
}

function send(ws, frame) {
  if (ws.readyState === WebSocket.OPEN) ws.send(frame);
}

function ack(ws, id) {
  if (id !== undefined) send(ws, JSON.stringify({ type: 'ack', id }));
}

// ---- local fan-out ----------------------------------------------------------
// channel -> { subs: Set<ws>, ready: Promise|null (Redis SUBSCRIBE in flight), frameHead }
const channels = new Map();

function channelEntry(channel) {
  let entry = channels.get(channel);
  if (!entry) {
    entry = {
      subs: new Set(),
      ready: null,
      frameHead: '{"type":"message","channel":' + JSON.stringify(channel) + ',"data":',
    };
    channels.set(channel, entry);
    if (redisSub) {
      entry.ready = redisSub.subscribe(topicPrefix + channel).then(
        () => { if (channels.get(channel) === entry) entry.ready = null; },
        (err) => {
          if (channels.get(channel) === entry) channels.delete(channel);
          throw err;
        });
    }
  }
  return entry;
}

// Encodes the frame once and sends the same buffer to every local subscriber.
function fanOut(entry, dataJson) {
  if (entry.subs.size === 0) return;
  const frame = Buffer.from(entry.frameHead + dataJson + '}');
  for (const ws of entry.subs) {
    if (ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: false });
  }
}

function leave(ws, channel) {
  const entry = channels.get(channel);
  ws.channels.delete(channel);
  if (!entry) return;
  entry.subs.delete(ws);
  if (entry.subs.size === 0) {
    channels.delete(channel);
    if (redisSub) redisSub.unsubscribe(topicPrefix + channel).catch(() => {});
  }
}

// ---- Redis (optional) -------------------------------------------------------
let redisPub = null;
let redisSub = null;
if (opts.redis) {
  const Redis = require('ioredis');
  redisPub = new Redis(opts.redis);
  redisSub = new Redis(opts.redis); // the ONE subscriber connection
  redisPub.on('error', (err) => console.error(`redis (publisher): ${err.message}`));
  redisSub.on('error', (err) => console.error(`redis (subscriber): ${err.message}`));
  // Payload: "w1 <origin-instance>\n<data JSON>" (the same envelope wshub uses).
  redisSub.on('message', (topic, payload) => {
    if (!topic.startsWith(topicPrefix)) return;
    const entry = channels.get(topic.slice(topicPrefix.length));
    if (!entry) return;
    const nl = payload.indexOf('\n');
    if (!payload.startsWith('w1 ') || nl < 0) return;
    fanOut(entry, payload.slice(nl + 1));
  });
}

// ---- requests ---------------------------------------------------------------
function handle(ws, raw, isBinary) {
  if (isBinary) return send(ws, errorFrame('bad_request', 'binary frames are not supported'));
  let msg;
  try {
    msg = JSON.parse(raw.toString());
  } catch {
    return send(ws, errorFrame('bad_request', 'invalid JSON'));
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    return send(ws, errorFrame('bad_request', 'frame must be a JSON object'));
  }
  const id = msg.id;
  if (id !== undefined && !isValidId(id)) {
    return send(ws, errorFrame('bad_request', '"id" must be a string or an integer'));
  }
  const type = msg.type;
  if (type !== 'subscribe' && type !== 'unsubscribe' && type !== 'publish') {
    return send(ws, errorFrame('bad_request', typeof type === 'string' ? 'unknown type' : 'missing "type"', id));
  }
  const channel = msg.channel;
  if (typeof channel !== 'string' || channel.length === 0) {
    return send(ws, errorFrame('bad_request', 'missing "channel"', id));
  }

  if (type === 'subscribe') {
    if (ws.channels.has(channel)) return ack(ws, id);
    const entry = channelEntry(channel);
    entry.subs.add(ws);
    ws.channels.add(channel);
    if (!entry.ready) return ack(ws, id);
    // Redis has not confirmed the SUBSCRIBE yet: hold this connection's later
    // requests so that answers keep their order and an ack means "subscribed".
    ws.blocked = true;
    entry.ready.then(
      () => ack(ws, id),
      () => {
        ws.channels.delete(channel);
        send(ws, errorFrame('unavailable', 'message broker unavailable', id));
      }).finally(() => {
      ws.blocked = false;
      drain(ws);
    });
    return;
  }

  if (type === 'unsubscribe') {
    leave(ws, channel);
    return ack(ws, id);
  }

  // publish
  if (!('data' in msg)) return send(ws, errorFrame('bad_request', 'missing "data"', id));
  const dataJson = JSON.stringify(msg.data);
  if (!redisPub) {
    const entry = channels.get(channel);
    if (entry) fanOut(entry, dataJson);
    return ack(ws, id);
  }
  // With Redis every instance, this one included, delivers what comes back
  // from the subscription: delivered exactly once, never also locally.
  redisPub.publish(topicPrefix + channel, 'w1 ' + instance + '\n' + dataJson).then(
    () => ack(ws, id),
    () => send(ws, errorFrame('unavailable', 'message broker unavailable', id)));
}

function drain(ws) {
  while (!ws.blocked && ws.backlog.length > 0) {
    const [raw, isBinary] = ws.backlog.shift();
    handle(ws, raw, isBinary);
  }
}

// ---- servers ----------------------------------------------------------------
const httpServer = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  if (req.method === 'GET' && path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
let nextConnection = 0;

httpServer.on('upgrade', (req, socket, head) => {
  if (req.url.split('?', 1)[0] !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws) => {
  ws.channels = new Set();
  ws.blocked = false;
  ws.backlog = [];
  ws.on('error', () => {}); // a broken client must not take the process down
  ws.on('message', (raw, isBinary) => {
    if (ws.blocked) ws.backlog.push([raw, isBinary]);
    else handle(ws, raw, isBinary);
  });
  ws.on('close', () => {
    ws.backlog.length = 0;
    for (const channel of [...ws.channels]) leave(ws, channel);
  });
  const connection = instance + '-' + (++nextConnection);
  ws.send(JSON.stringify({ type: 'welcome', connection, instance }));
});

httpServer.listen(opts.port, opts.host, () => {
  console.log(`listening on http://${opts.host}:${httpServer.address().port}/`);
});
httpServer.on('error', (err) => {
  console.error(`cannot listen: ${err.message}`);
  process.exit(1);
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 3000).unref();
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  wss.close();
  httpServer.close(async () => {
    await Promise.allSettled([redisPub && redisPub.quit(), redisSub && redisSub.quit()]);
    process.exit(0);
  });
  httpServer.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
