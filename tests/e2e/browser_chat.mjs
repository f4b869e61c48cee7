// browser_chat.mjs: the chat page in headless Chromium against a real
// chat_server. Two pages (separate browser contexts) join the same room, one
// sends, the other must show it; the instance id and connection state are
// checked; then the server gets SIGTERM and both pages must show the 1001
// notice or their reconnecting state.
//
//   CHAT_SERVER=build/examples/chat/chat_server node browser_chat.mjs
//   SAVE_SCREENSHOT=1 ...   also writes docs/images/chat.png
//   CHROMIUM=/path/to/chromium ...   another browser binary (default /usr/bin/chromium)
//
// The last line is `N passed, N failed`; the exit status is non-zero on failure.
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Harness, assert, assertEqual } from './lib/harness.js';
import { startChatServer } from './lib/server.js';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.error('browser_chat: the npm package "playwright-core" is missing: run `npm ci` in tests/e2e first');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const INSTANCE = 'e2e-browser';
const UI_TIMEOUT_MS = 20000;  // generous: the server may run under a sanitizer
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

const tid = (id) => `[data-testid="${id}"]`;

const t = new Harness('browser_chat');
let server;
let browser;
// Without SAVE_SCREENSHOT=1 the screenshot goes here, and stays for a look.
const scratch = mkdtempSync(path.join(os.tmpdir(), 'wshub-browser-chat-'));
const pageErrors = [];

async function openChat(label, name) {
  const context = await browser.newContext({ viewport: { width: 860, height: 640 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (error) => pageErrors.push(`${label}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${label} console: ${message.text()}`);
  });
  await page.goto(server.url, { waitUntil: 'load' });
  return { label, name, page };
}

// stateOf(chat): the state element's data-state and text.
async function stateOf(chat) {
  const state = chat.page.locator(tid('state'));
  return { state: await state.getAttribute('data-state'), text: (await state.textContent()).trim() };
}

async function join(chat, room) {
  await chat.page.fill(tid('name-input'), chat.name);
  await chat.page.fill(tid('room-input'), room);
  await chat.page.click(tid('join-button'));
}

async function say(chat, text, how) {
  await chat.page.fill(tid('message-input'), text);
  if (how === 'enter') await chat.page.press(tid('message-input'), 'Enter');
  else await chat.page.click(tid('send-button'));
}

// waitForMessage(chat, author, text): the message list shows that line.
async function waitForMessage(chat, author, text) {
  const item = chat.page.locator(`${tid('message-list')} li.message`)
    .filter({ has: chat.page.locator('.author', { hasText: author }) })
    .filter({ has: chat.page.locator('.text', { hasText: text }) });
  await item.first().waitFor({ state: 'visible' });
  return item.first();
}

try {
  server = await startChatServer(['--instance', INSTANCE, '--log-level', 'warn']);
  console.log(`chat_server listening on ${server.url}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
  console.log(`chromium ${browser.version()}`);
} catch (error) {
  t.abort(error);
}

if (server && browser) {
  try {
    const ana = await openChat('A', 'ana');
    const ben = await openChat('B', 'ben');
    const chats = [ana, ben];
    const room = 'e2e-room';

    await t.check('both pages connect and show the instance id and their connection id', async () => {
      for (const chat of chats) {
        await chat.page.locator(`${tid('state')}[data-state="connected"]`).waitFor();
        assertEqual((await stateOf(chat)).text, 'connected', `${chat.label}: state text`);
        assertEqual((await chat.page.textContent(tid('instance'))).trim(), INSTANCE, `${chat.label}: instance`);
        const connection = (await chat.page.textContent(tid('connection'))).trim();
        assert(connection.length > 1 && connection !== '–', `${chat.label}: connection id "${connection}"`);
      }
    });

    await t.check('the defaults are a random guest name and the lobby, joined', async () => {
      const name = await ana.page.inputValue(tid('name-input'));
      assert(/^guest-\d{4}$/.test(name), `default name "${name}"`);
      assertEqual(await ana.page.inputValue(tid('room-input')), 'lobby', 'default room');
      await ana.page.locator(`${tid('message-list')} li.system`, { hasText: 'joined lobby' }).waitFor();
    });

    await t.check('joining a room sanitizes its name to the channel alphabet', async () => {
      for (const chat of chats) {
        await join(chat, ' e2e room!* ');
        assertEqual(await chat.page.inputValue(tid('room-input')), room, `${chat.label}: room input`);
        // The line appears when the server acknowledged the subscribe.
        await chat.page.locator(`${tid('message-list')} li.system`, { hasText: `joined ${room}` }).waitFor();
      }
    });

    await t.check('a message sent with Enter in one page appears in the other, as text', async () => {
      const text = 'hello from ana <b>not bold</b> ✓';
      await say(ana, text, 'enter');
      const line = await waitForMessage(ben, 'ana', text);
      assertEqual(await line.locator('b').count(), 0, 'elements made from the message text');
      await waitForMessage(ana, 'ana', text);
      assertEqual(await ana.page.inputValue(tid('message-input')), '', 'message input cleared');
    });

    await t.check('a message sent with the button appears in the other page', async () => {
      await say(ben, 'hi ana, all good here', 'button');
      await waitForMessage(ana, 'ben', 'hi ana, all good here');
      await say(ana, 'great, the fan-out works across both tabs', 'enter');
      await waitForMessage(ben, 'ana', 'great, the fan-out works across both tabs');
    });

    await t.check('the member list shows both names; clicking ben starts a /msg that reaches only ben', async () => {
      for (const chat of chats) {
        await chat.page.locator(`${tid('member-count')}`, { hasText: '2' }).waitFor();
        for (const name of ['ana', 'ben']) {
          await chat.page.locator(`${tid('member-list')} .member-name`, { hasText: name }).first().waitFor();
        }
      }
      await ana.page.locator(`${tid('member-list')} .member`, { hasText: 'ben' }).click();
      assertEqual(await ana.page.inputValue(tid('message-input')), '/msg ben ', 'input after clicking ben');
      await ana.page.type(tid('message-input'), 'only for you');
      await ana.page.press(tid('message-input'), 'Enter');
      await ben.page.locator(`${tid('message-list')} li.direct`, { hasText: 'only for you' }).waitFor();
      await ana.page.locator(`${tid('message-list')} li.direct`, { hasText: 'you → ben' }).waitFor();
      assertEqual(await ben.page.locator(`${tid('message-list')} li.direct .author`).first().textContent(),
        'ana → you', 'the direct line on ben\'s page');
      // Nobody of that name: an error notice, nothing sent.
      await say(ana, '/msg nobody-here hello?', 'enter');
      await ana.page.locator(`${tid('notices')} .notice-error`, { hasText: 'not_found' }).waitFor();
    });

    await t.check('screenshot', async () => {
      const target = process.env.SAVE_SCREENSHOT === '1'
        ? path.join(REPO, 'docs', 'images', 'chat.png')
        : path.join(scratch, 'chat.png');
      mkdirSync(path.dirname(target), { recursive: true });
      await ben.page.locator(tid('message-input')).blur();
      await ben.page.screenshot({ path: target });
      console.log(`      screenshot: ${target}`);
    });

    await t.check('joining another room leaves the old one', async () => {
      await join(ben, 'side');
      await ben.page.locator(`${tid('message-list')} li.system`, { hasText: 'joined side' }).waitFor();
      await say(ana, 'only for e2e-room', 'enter');
      await waitForMessage(ana, 'ana', 'only for e2e-room');
      await say(ben, 'ben is in side', 'enter');
      await waitForMessage(ben, 'ben', 'ben is in side');
      // ana's message was published before ben's, on the same hub strand: had ben
      // still been subscribed to e2e-room, it would have reached him first.
      const leaked = await ben.page.locator(`${tid('message-list')} li.message`, { hasText: 'only for e2e-room' }).count();
      assertEqual(leaked, 0, 'messages of the old room shown');
      const seen = await ana.page.locator(`${tid('message-list')} li.message`, { hasText: 'ben is in side' }).count();
      assertEqual(seen, 0, 'messages of the other room shown to ana');
    });

    await t.check('no errors in the pages', async () => {
      assert(pageErrors.length === 0, pageErrors.join('\n'));
    });

    await t.check('SIGTERM: the server exits 0 and both pages show the 1001 notice or reconnect', async () => {
      const code = await server.stop();
      assertEqual(code, 0, `exit status (output:\n${server.recentOutput()}\n)`);
      for (const chat of chats) {
        await chat.page.locator(tid('notices'), { hasText: 'server restarting' }).waitFor();
        const { state, text } = await stateOf(chat);
        assert(state === 'reconnecting' || state === 'connecting',
          `${chat.label}: state "${state}" ("${text}") after the server went away`);
        console.log(`      ${chat.label}: notice shown, state "${text}"`);
      }
      await ana.page.screenshot({ path: path.join(scratch, 'chat-after-shutdown.png') });
    }, { timeoutMs: 60000 });
  } catch (error) {
    t.abort(error);
  }
}

try {
  if (browser) await browser.close();
} catch { /* already gone */ }
if (server) server.kill();
t.finish();
