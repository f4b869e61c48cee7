// A WebSocket client for the end-to-end scripts that remembers every frame it
// receives (with its arrival time), and a one-shot HTTP GET.
//
//   const c = await Client.open(server.wsUrl, 'A1');
//   c.sendJson({type: 'subscribe', channel: 'room', id: 's1'});
//   await c.expect((f) => f.type === 'ack' && f.id === 's1', 'ack s1');
//   c.frames        every frame: {raw, json, at}   (at: performance.now())
//   c.onFrame = (frame) => ...   called for each frame as it arrives
//   await c.roundTrip('t1')   the server has handled all c sent before
//
// Client.open's timeoutMs (default 15 s) is the handshake timeout and the
// default wait of expect(), waitUntil(), request() and roundTrip().
//
// Needs the npm package `ws` (tests/e2e/package.json): loadWs() imports it and
// says what to do when it is missing.
import http from 'node:http';

let WebSocket;

export async function loadWs(scriptName) {
  try {
    ({ default: WebSocket } = await import('ws'));
  } catch {
    console.error(`${scriptName}: the npm package "ws" is missing: run \`npm ci\` in tests/e2e first`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  return WebSocket;
}

export const DEFAULT_FRAME_TIMEOUT_MS = 15000;

export class Client {
  static open(url, label, { timeoutMs = DEFAULT_FRAME_TIMEOUT_MS } = {}) {
    if (!WebSocket) throw new Error('call loadWs() first');
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
      const client = new Client(ws, label, timeoutMs);
      ws.once('open', () => resolve(client));
      ws.once('error', (error) => reject(new Error(`${label}: cannot connect to ${url}: ${error.message}`)));
    });
  }

  constructor(ws, label, timeoutMs = DEFAULT_FRAME_TIMEOUT_MS) {
    this.ws = ws;
    this.label = label;
    this.timeoutMs = timeoutMs;
    this.frames = [];   // every frame received: {raw, json, at}
    this.unread = [];   // frames no expect() has taken yet
    this.waiters = [];
    this.onFrame = null;
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8'), at: performance.now() };
        resolve(this.closeInfo);
        this.notify();
      });
    });
    ws.on('error', () => { /* a close follows */ });
    ws.on('message', (data, isBinary) => {
      const raw = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data).toString('utf8');
      let json;
      try { json = JSON.parse(raw); } catch { json = { unparsable: true }; }
      const frame = { raw, json, binary: isBinary, at: performance.now() };
      this.frames.push(frame);
      this.unread.push(frame);
      if (this.onFrame) this.onFrame(frame);
      this.notify();
    });
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  notify() {
    for (const waiter of [...this.waiters]) waiter();
  }

  sendRaw(text) { this.ws.send(text, { binary: false }); }
  sendJson(object) { this.sendRaw(JSON.stringify(object)); }

  // expect(predicate, what, timeoutMs): the first unread frame that matches,
  // waiting for it; rejects on timeout or close.
  expect(predicate, what, timeoutMs = this.timeoutMs) {
    return new Promise((resolve, reject) => {
      const look = () => {
        const index = this.unread.findIndex((frame) => predicate(frame.json, frame.raw));
        if (index >= 0) {
          const [frame] = this.unread.splice(index, 1);
          finish();
          resolve(frame);
        } else if (this.closeInfo) {
          finish();
          reject(new Error(`${this.label}: closed (${this.closeInfo.code}) while waiting for ${what}; ` +
            `unread frames: ${this.describeUnread()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs / 1000} s; ` +
          `unread frames: ${this.describeUnread()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((waiter) => waiter !== look);
      };
      this.waiters.push(look);
      look();
    });
  }

  // waitUntil(condition, what, timeoutMs): resolves once condition() is true,
  // checked now and after every frame (and every 100 ms).
  waitUntil(condition, what, timeoutMs = this.timeoutMs) {
    return new Promise((resolve, reject) => {
      const look = () => {
        let ok = false;
        try { ok = condition(); } catch (error) { finish(); reject(error); return; }
        if (ok) { finish(); resolve(); }
      };
      const poll = setInterval(look, 100);
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label}: ${what} not within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters = this.waiters.filter((waiter) => waiter !== look);
      };
      this.waiters.push(look);
      look();
    });
  }

  // Drops unread frames (they stay in `frames`).
  discardUnread() { this.unread = []; }

  describeUnread(limit = 8) {
    if (this.unread.length === 0) return 'none';
    const shown = this.unread.slice(-limit).map((frame) => frame.raw.slice(0, 200)).join(' | ');
    return this.unread.length > limit ? `${this.unread.length} frames, the last: ${shown}` : shown;
  }

  // request(object, what): sends a request with object.id and waits for its ack
  // or error; resolves to the answer frame's json.
  async request(object, timeoutMs = this.timeoutMs) {
    this.sendJson(object);
    const frame = await this.expect(
      (f) => (f.type === 'ack' || f.type === 'error') && f.id === object.id,
      `answer to ${object.type} ${JSON.stringify(object.id)}`, timeoutMs);
    return frame.json;
  }

  // roundTrip(tag): a subscribe (to e2e:roundtrip:<label>, so the label must be
  // valid in a channel name) whose ack proves the server has handled
  // everything this client sent before it.
  async roundTrip(tag, timeoutMs = this.timeoutMs) {
    const id = `rt-${tag}`;
    this.sendJson({ type: 'subscribe', channel: `e2e:roundtrip:${this.label}`, id });
    await this.expect((f) => f.type === 'ack' && f.id === id, `ack ${id}`, timeoutMs);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
  }
}

// httpGet(base, path): one GET on a connection of its own (chat_server closes
// the connection after each response, so a reused keep-alive socket could race
// that close). Resolves to {status, type, body}.
export function httpGet(base, path, timeoutMs = DEFAULT_FRAME_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const request = http.get(new URL(path, base), { agent: false, timeout: timeoutMs }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => resolve({
        status: response.statusCode,
        type: response.headers['content-type'] || '',
        body: Buffer.concat(chunks).toString('utf8'),
      }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${path}: no answer within ${timeoutMs / 1000} s`)));
    request.on('error', (error) => reject(new Error(`GET ${path}: ${error.message}`)));
  });
}
