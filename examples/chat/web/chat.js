// The wshub chat page's client: one WebSocket to /ws?name=<name> speaking
// wshub's JSON protocol (docs/protocol.md). It subscribes to "room:<room>",
// publishes {"name", "text"} objects there and renders the `message` frames it
// gets back. The room's member list comes from a `presence` request and the
// `join`/`leave` events; "/msg <name-or-id> text" sends a direct message (a
// `send` to "user:<name>", or to a connection id).
// After any close it reconnects with exponential backoff and full jitter, then
// subscribes to the current room again. Everything the network brings is shown
// with textContent, never parsed as HTML.
'use strict';

(function () {
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 15000;
  const MAX_MESSAGES = 500;     // rendered messages kept in the list
  const MAX_NOTICES = 4;        // notices kept on screen
  const CHANNEL_PREFIX = 'room:';
  // The protocol allows 1..128 bytes of these in a channel name.
  const ROOM_MAX = 128 - CHANNEL_PREFIX.length;

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $('state'), announcer: $('state-announcer'), instance: $('instance'), connection: $('connection'),
    joinForm: $('join-form'), name: $('name'), room: $('room'),
    notices: $('notices'), roomName: $('room-name'), messages: $('messages'),
    sendForm: $('send-form'), text: $('text'), send: $('send'),
    members: $('members'), memberCount: $('member-count'),
  };

  let ws = null;
  let attempt = 0;              // reconnects since the last welcome
  let reconnectTimer = null;
  let countdownTimer = null;
  let nextId = 1;
  const pending = new Map();    // request id -> what it was, for error notices
  let room = 'lobby';           // the room the user wants to be in
  let joined = null;            // the channel we are subscribed to on this socket
  let socketName = null;        // the name this socket connected with (its user id)
  let self = null;              // this socket's connection id
  const members = new Map();    // connection id -> user name ('' when anonymous), of `joined`

  // ---- Helpers ------------------------------------------------------------
  // sanitizeRoom: whitespace becomes "-", other bytes outside the channel
  // alphabet are dropped, and the result is cut to fit "room:" + room <= 128.
  function sanitizeRoom(value) {
    const cleaned = String(value).trim().replace(/\s+/g, '-')
      .replace(/[^A-Za-z0-9_\-.:@/=]/g, '').slice(0, ROOM_MAX);
    return cleaned || 'lobby';
  }

  function sanitizeName(value) {
    const cleaned = String(value).trim().replace(/\s+/g, ' ').slice(0, 32);
    return cleaned || randomGuest();
  }

  function randomGuest() {
    return 'guest-' + String(1000 + Math.floor(Math.random() * 9000));
  }

  function wsUrl(name) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?name=' +
      encodeURIComponent(name);
  }

  function timeText(date) {
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function setState(state, text) {
    if (ui.state.dataset.state !== state) ui.announcer.textContent = state;
    ui.state.dataset.state = state;
    if (ui.state.textContent !== (text || state)) ui.state.textContent = text || state;
    ui.send.disabled = state !== 'connected';
  }

  // notice: kind is "info", "warn" or "error"; the newest is on top.
  function notice(kind, text) {
    const item = document.createElement('p');
    item.className = 'notice notice-' + kind;
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = timeText(now);
    const body = document.createElement('span');
    body.textContent = text;
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'dismiss';
    dismiss.setAttribute('aria-label', 'Dismiss notice');
    dismiss.textContent = '×';
    dismiss.addEventListener('click', () => item.remove());
    item.append(time, body, dismiss);
    ui.notices.prepend(item);
    while (ui.notices.children.length > MAX_NOTICES) ui.notices.lastElementChild.remove();
  }

  function addLine(className, parts) {
    const stick = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    const item = document.createElement('li');
    item.className = className;
    item.append(...parts);
    ui.messages.append(item);
    while (ui.messages.children.length > MAX_MESSAGES) ui.messages.firstElementChild.remove();
    if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function span(className, text) {
    const element = document.createElement('span');
    element.className = className;
    element.textContent = text;
    return element;
  }

  // data is whatever a publisher sent: trust none of it.
  function nameAndText(data) {
    const valid = data !== null && typeof data === 'object' && !Array.isArray(data);
    return {
      name: valid && typeof data.name === 'string' ? data.name.slice(0, 64) : '?',
      text: String(valid && typeof data.text === 'string' ? data.text : JSON.stringify(data)),
    };
  }

  function clock() {
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = timeText(now);
    return time;
  }

  function renderMessage(data) {
    const { name, text } = nameAndText(data);
    const own = name === ui.name.value ? ' own' : '';
    addLine('message' + own, [clock(), span('author', name), span('text', text)]);
  }

  // A direct message to us (from: the sender's connection id) or, with
  // `to`, one we sent that the server accepted.
  function renderDirect(data, to) {
    const { name, text } = nameAndText(data);
    const label = to ? 'you → ' + to : name + ' → you';
    addLine('message direct' + (to ? ' own' : ''), [clock(), span('author', label), span('text', text)]);
  }

  // ---- Members ------------------------------------------------------------
  function memberLabel(connection) {
    return members.get(connection) || 'anonymous';
  }

  function renderMembers() {
    const sorted = [...members].sort((x, y) => (x[1] || '~').localeCompare(y[1] || '~') || x[0].localeCompare(y[0]));
    const items = sorted.map(([connection, user]) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'member' + (connection === self ? ' self' : '');
      button.title = 'Send a direct message (' + connection + ')';
      button.append(span('member-name', user || 'anonymous'), span('member-id', connection));
      button.addEventListener('click', () => {
        ui.text.value = '/msg ' + (user && !user.includes(' ') ? user : connection) + ' ';
        ui.text.focus();
      });
      item.append(button);
      return item;
    });
    ui.members.replaceChildren(...items);
    ui.memberCount.textContent = String(members.size);
  }

  function clearMembers() {
    members.clear();
    renderMembers();
  }

  // Asks who is in the room; the answer replaces the list.
  function askMembers() {
    const channel = joined;
    request({ type: 'presence', channel }, 'members of ' + channel, (ack) => {
      if (joined !== channel || !Array.isArray(ack.members)) return;
      const users = ack.users && typeof ack.users === 'object' ? ack.users : {};
      members.clear();
      for (const connection of ack.members) {
        const user = users[connection];
        members.set(String(connection), typeof user === 'string' ? user : '');
      }
      renderMembers();
    });
  }

  function onPresence(frame) {
    if (frame.channel !== joined || typeof frame.connection !== 'string') return;
    const user = typeof frame.user === 'string' ? frame.user : '';
    if (frame.type === 'join') {
      const known = members.has(frame.connection);
      members.set(frame.connection, user);
      if (!known && frame.connection !== self) systemLine((user || 'someone anonymous') + ' joined');
    } else if (members.delete(frame.connection)) {
      systemLine((user || 'someone anonymous') + ' left');
    }
    renderMembers();
  }

  // "/msg <name-or-id> text": a member's connection id goes to that
  // connection, anything else to every connection of that user name.
  function sendDirect(line) {
    const match = /^\/msg\s+(\S+)\s+([\s\S]+)$/.exec(line);
    if (!match) {
      notice('warn', 'usage: /msg <name-or-connection-id> message');
      return null;  // not sent, and the text stays to be fixed
    }
    const [, target, text] = match;
    const isConnection = members.has(target) ||
      (![...members.values()].includes(target) && /^[A-Za-z0-9_.-]+-\d+$/.test(target));
    const to = isConnection ? target : 'user:' + target;
    const frame = { type: 'send', to, data: { name: ui.name.value, text } };
    return request(frame, 'message to ' + target, () => renderDirect(frame.data, target));
  }

  function systemLine(text) {
    addLine('system', [span('text', text)]);
  }

  // ---- Protocol -----------------------------------------------------------
  // request: sends frame with a fresh id; `what` names it in an error notice,
  // onAck runs when it succeeds.
  function request(frame, what, onAck) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    const id = nextId++;
    pending.set(id, { what, onAck });  // onAck(ackFrame)
    ws.send(JSON.stringify(Object.assign({}, frame, { id })));
    return true;
  }

  function subscribe() {
    const channel = CHANNEL_PREFIX + room;
    if (joined === channel) return;
    if (joined) request({ type: 'unsubscribe', channel: joined }, 'leave ' + joined);
    const name = room;
    clearMembers();
    if (request({ type: 'subscribe', channel }, 'join ' + channel, () => {
      if (joined !== channel) return;
      systemLine('joined ' + name);
      askMembers();
    })) {
      joined = channel;
    }
  }

  function onFrame(event) {
    if (typeof event.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (e) {
      notice('error', 'the server sent a frame that is not JSON');
      return;
    }
    switch (frame.type) {
      case 'welcome':
        attempt = 0;
        ui.instance.textContent = String(frame.instance);
        ui.connection.textContent = String(frame.connection);
        self = String(frame.connection);
        setState('connected');
        joined = null;
        subscribe();
        break;
      case 'message':
        if (frame.channel === joined) renderMessage(frame.data);
        break;
      case 'direct':
        renderDirect(frame.data);
        break;
      case 'join':
      case 'leave':
        onPresence(frame);
        break;
      case 'ack': {
        const answered = pending.get(frame.id);
        pending.delete(frame.id);
        if (answered && answered.onAck) answered.onAck(frame);
        break;
      }
      case 'error': {
        const what = (pending.get(frame.id) || {}).what;
        pending.delete(frame.id);
        notice('error', 'error ' + String(frame.code) + ': ' + String(frame.message) +
          (what ? ' (' + what + ')' : ''));
        if (joined && what === 'join ' + joined) joined = null;
        break;
      }
      case 'gap':
        if (frame.channel === joined) {
          notice('warn', 'some messages may have been missed in ' + room);
          systemLine('some messages may have been missed');
          askMembers();  // joins and leaves may have been missed too
        }
        break;
      default:
        break;  // newer frame types: ignore
    }
  }

  // ---- Connection ---------------------------------------------------------
  function connect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    setState('connecting');
    joined = null;
    self = null;
    pending.clear();
    clearMembers();
    ui.name.value = sanitizeName(ui.name.value);
    socketName = ui.name.value;
    let socket;
    try {
      socket = new WebSocket(wsUrl(socketName));
    } catch (e) {
      setState('closed');
      notice('error', 'cannot open a WebSocket: ' + e.message);
      return;
    }
    ws = socket;
    socket.addEventListener('message', (event) => { if (ws === socket) onFrame(event); });
    socket.addEventListener('close', (event) => { if (ws === socket) onClose(event); });
  }

  function onClose(event) {
    ws = null;
    joined = null;
    self = null;
    clearMembers();
    ui.connection.textContent = '–';
    if (event.code === 1001) {
      notice('warn', 'server restarting, reconnecting…');
    } else if (event.code === 1008) {
      notice('error', 'closed by the server: policy violation (1008)');
    } else if (event.code === 1009) {
      notice('error', 'closed by the server: message too large (1009)');
    } else if (event.code === 4008) {
      notice('warn', 'closed by the server: connection too slow (4008)');
    } else if (event.code === 1011) {
      notice('error', 'closed by the server: internal error (1011)');
    }
    scheduleReconnect();
  }

  // Full jitter: a uniform delay in [0, min(cap, base * 2^attempt)).
  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
    attempt = Math.min(attempt + 1, 30);
    const delay = Math.random() * ceiling;
    const due = Date.now() + delay;
    const show = () => {
      const seconds = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setState('reconnecting', 'reconnecting in ' + seconds + 's');
    };
    show();
    countdownTimer = setInterval(show, 250);
    reconnectTimer = setTimeout(connect, delay);
  }

  // ---- User input ---------------------------------------------------------
  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    ui.name.value = sanitizeName(ui.name.value);
    room = sanitizeRoom(ui.room.value);
    ui.room.value = room;
    ui.roomName.textContent = room;
    if (ws && ui.name.value !== socketName) {
      // The name is this connection's user id: a new name needs a new connection.
      const socket = ws;
      ws = null;
      socket.close(1000);
      ui.messages.replaceChildren();
      connect();
    } else if (joined !== CHANNEL_PREFIX + room) {
      ui.messages.replaceChildren();
      subscribe();  // a no-op while disconnected: the welcome subscribes
    }
    ui.text.focus();
  });

  ui.room.addEventListener('change', () => { ui.room.value = sanitizeRoom(ui.room.value); });

  ui.sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    ui.name.value = sanitizeName(ui.name.value);
    const frame = { type: 'publish', channel: CHANNEL_PREFIX + room,
      data: { name: ui.name.value, text } };
    const sent = /^\/msg(\s|$)/.test(text) ? sendDirect(text) : request(frame, 'send');
    if (sent === null) return;
    if (sent) {
      ui.text.value = '';
    } else {
      notice('warn', 'not connected: message not sent');
    }
  });

  window.addEventListener('pagehide', () => {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    if (ws) {
      const socket = ws;
      ws = null;
      socket.close(1000);
    }
    setState('closed');
  });
  // Back from the back/forward cache: the socket was closed on pagehide.
  window.addEventListener('pageshow', (event) => { if (event.persisted) connect(); });

  ui.name.value = randomGuest();
  ui.room.value = room;
  ui.roomName.textContent = room;
  connect();
})();
