// Benchmark peer: a WebSocket pub/sub hub on Bun (Bun.serve and its built-in
// topic pub/sub; Bun's built-in RedisClient for --redis) that speaks the subset
// of the wshub protocol the benchmarks use: welcome, subscribe, unsubscribe,
// publish, ack, message, error (bad_request / unavailable). See ../README.md.
// Written the way a Bun user would write it: Bun's defaults (including its
// backpressure behaviour) except perMessageDeflate, no eviction logic.
import { RedisClient } from "bun";
import { randomBytes } from "node:crypto";

// ---- command line ---------------------------------------------------------
function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 8080, instance: "", redis: "", prefix: "wshub:" };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const key = arg.slice(2);
    if (!arg.startsWith("--") || !(key in opts)) {
      console.error(`unknown argument: ${argv[i]}`);
      console.error("usage: bun server.js [--host H] [--port P] [--instance ID] [--redis redis://host:port] [--prefix P]");
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
    console.error("--port must be an integer in 0..65535");
    process.exit(2);
  }
  if (!opts.instance) opts.instance = randomBytes(6).toString("hex");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const instance = opts.instance;
const topicPrefix = opts.prefix + "ch:";

// ---- frames ---------------------------------------------------------------
const isValidId = (id) => typeof id === "string" || Number.isInteger(id);

function errorFrame(code, message, id) {
  return id === undefined
    ? JSON.stringify({ type: "error", code, message })
    : JSON.stringify({ type: "error", id, code, message });
}

function ack(ws, id) {
  if (id !== undefined) ws.send(JSON.stringify({ type: "ack", id }));
}

const messageHead = (channel) => '{"type":"message","channel":' + JSON.stringify(channel) + ',"data":';

// ---- Redis (optional) -------------------------------------------------------
// Local fan-out is Bun's own topic pub/sub (topic = channel name). With Redis,
// each instance keeps ONE subscriber connection; `channels` counts the local
// subscribers of each channel so that the instance SUBSCRIBEs on the first and
// UNSUBSCRIBEs after the last.
// channel -> { count, ready: Promise|null (SUBSCRIBE in flight), head }
const channels = new Map();
let redisPub = null;
let redisSub = null;
let server;

if (opts.redis) {
  redisPub = new RedisClient(opts.redis);
  redisSub = new RedisClient(opts.redis);
  redisPub.onclose = (err) => { if (!stopping) console.error(`redis (publisher) closed: ${err?.message ?? ""}`); };
  redisSub.onclose = (err) => { if (!stopping) console.error(`redis (subscriber) closed: ${err?.message ?? ""}`); };
}

// Payload: "w1 <origin-instance>\n<data JSON>" (the same envelope wshub uses).
function onRedisMessage(payload, topic) {
  const entry = channels.get(topic.slice(topicPrefix.length));
  if (!entry) return;
  const nl = payload.indexOf("\n");
  if (!payload.startsWith("w1 ") || nl < 0) return;
  // Encoded once; Bun sends the same frame to every subscriber of the topic.
  server.publish(entry.channel, entry.head + payload.slice(nl + 1) + "}");
}

function redisJoin(channel) {
  let entry = channels.get(channel);
  if (!entry) {
    entry = { channel, count: 0, ready: null, head: messageHead(channel) };
    channels.set(channel, entry);
    entry.ready = redisSub.subscribe(topicPrefix + channel, onRedisMessage).then(
      () => { if (channels.get(channel) === entry) entry.ready = null; },
      (err) => {
        if (channels.get(channel) === entry) channels.delete(channel);
        throw err;
      });
  }
  entry.count++;
  return entry;
}

function redisLeave(channel) {
  const entry = channels.get(channel);
  if (!entry) return;
  if (--entry.count === 0) {
    channels.delete(channel);
    redisSub.unsubscribe(topicPrefix + channel).catch(() => {});
  }
}

// ---- requests ---------------------------------------------------------------
function leave(ws, channel) {
  if (!ws.data.channels.delete(channel)) return;
  ws.unsubscribe(channel);
  if (redisSub) redisLeave(channel);
}

function handle(ws, raw) {
  if (typeof raw !== "string") return ws.send(errorFrame("bad_request", "binary frames are not supported"));
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    return ws.send(errorFrame("bad_request", "invalid JSON"));
  }
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
    return ws.send(errorFrame("bad_request", "frame must be a JSON object"));
  }
  const id = msg.id;
  if (id !== undefined && !isValidId(id)) {
    return ws.send(errorFrame("bad_request", '"id" must be a string or an integer'));
  }
  const type = msg.type;
  if (type !== "subscribe" && type !== "unsubscribe" && type !== "publish") {
    return ws.send(errorFrame("bad_request", typeof type === "string" ? "unknown type" : 'missing "type"', id));
  }
  const channel = msg.channel;
  if (typeof channel !== "string" || channel.length === 0) {
    return ws.send(errorFrame("bad_request", 'missing "channel"', id));
  }
  const state = ws.data;

  if (type === "subscribe") {
    if (state.channels.has(channel)) return ack(ws, id);
    state.channels.add(channel);
    ws.subscribe(channel);
    if (!redisSub) return ack(ws, id);
    const entry = redisJoin(channel);
    if (!entry.ready) return ack(ws, id);
    // Redis has not confirmed the SUBSCRIBE yet: hold this connection's later
    // requests so that answers keep their order and an ack means "subscribed".
    state.blocked = true;
    entry.ready.then(
      () => { if (!state.closed) ack(ws, id); },
      () => {
        if (state.closed) return;
        if (state.channels.delete(channel)) ws.unsubscribe(channel);
        ws.send(errorFrame("unavailable", "message broker unavailable", id));
      }).finally(() => {
      state.blocked = false;
      if (!state.closed) drain(ws);
    });
    return;
  }

  if (type === "unsubscribe") {
    leave(ws, channel);
    return ack(ws, id);
  }

  // publish
  if (!("data" in msg)) return ws.send(errorFrame("bad_request", 'missing "data"', id));
  if (!redisPub) {
    server.publish(channel, JSON.stringify({ type: "message", channel, data: msg.data }));
    return ack(ws, id);
  }
  // With Redis every instance, this one included, delivers what comes back
  // from the subscription: delivered exactly once, never also locally.
  redisPub.publish(topicPrefix + channel, "w1 " + instance + "\n" + JSON.stringify(msg.data)).then(
    () => { if (!state.closed) ack(ws, id); },
    () => { if (!state.closed) ws.send(errorFrame("unavailable", "message broker unavailable", id)); });
}

function drain(ws) {
  const state = ws.data;
  while (!state.blocked && state.backlog.length > 0) handle(ws, state.backlog.shift());
}

// ---- server -----------------------------------------------------------------
let nextConnection = 0;

server = Bun.serve({
  hostname: opts.host,
  port: opts.port,
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (path === "/ws") {
      const data = {
        connection: instance + "-" + (++nextConnection),
        channels: new Set(),
        blocked: false,
        backlog: [],
        closed: false,
      };
      if (srv.upgrade(req, { data })) return undefined;
      return new Response("expected a WebSocket upgrade", { status: 400 });
    }
    if (req.method === "GET" && path === "/healthz") {
      return new Response("ok", { headers: { "content-type": "text/plain" } });
    }
    return new Response("not found", { status: 404 });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws) {
      ws.send(JSON.stringify({ type: "welcome", connection: ws.data.connection, instance }));
    },
    message(ws, raw) {
      if (ws.data.blocked) ws.data.backlog.push(raw);
      else handle(ws, raw);
    },
    close(ws) {
      const state = ws.data;
      state.closed = true;
      state.backlog.length = 0;
      // Bun drops the socket's topics itself; only the Redis counts remain.
      if (redisSub) for (const channel of state.channels) redisLeave(channel);
      state.channels.clear();
    },
  },
  error(err) {
    console.error(`request failed: ${err?.message ?? err}`);
    return new Response("internal error", { status: 500 });
  },
});

console.log(`listening on http://${opts.host}:${server.port}/`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 3000).unref();
  await server.stop(true); // closes every open connection
  if (redisPub) redisPub.close();
  if (redisSub) redisSub.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
