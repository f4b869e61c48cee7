// browser_two_instances.mjs: the chat page in headless Chromium against two
// chat_server processes (A and B) that share one redis-server: one page on A,
// one on B, both join the same room, a message typed on A appears on B and one
// typed on B appears on A; each page's member list shows the other instance's
// user, a `/msg` typed on A reaches B as a direct message (through the
// connection registry), and when B's page goes away A's list drops it. This
// is the multi-instance deployment of docs/operations.md seen from the browser.
//
//   CHAT_SERVER=build/examples/chat/chat_server node browser_two_instances.mjs
//   SAVE_SCREENSHOT=1 ...   writes B's page to docs/images/chat-two-instances.png
//   CHROMIUM=/path/to/chromium ...   another browser binary (default /usr/bin/chromium)
//
// The last line is `N passed, N failed`; the exit status is non-zero on failure.
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Harness, assert, assertEqual } from './lib/harness.js';
import { startChatServer } from './lib/server.js';
import { startRedis } from './lib/redis.js';
import { launchChromium, loadPlaywright } from './lib/browser.js';

const chromium = await loadPlaywright('browser_two_instances');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const UI_TIMEOUT_MS = 20000;  // generous: the servers may run under a sanitizer
const ROOM = 'two-instances';

const tid = (id) => `[data-testid="${id}"]`;

const t = new Harness('browser_two_instances');
let redis;
const servers = [];
let browser;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'wshub-browser-two-'));
const pageErrors = [];

async function openChat(server, label, name) {
  const context = await browser.newContext({ viewport: { width: 860, height: 640 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (error) => pageErrors.push(`${label}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${label} console: ${message.text()}`);
  });
  await page.goto(server.url, { waitUntil: 'load' });
  return { label, name, page, server };
}

async function join(chat, room) {
  await chat.page.fill(tid('name-input'), chat.name);
  await chat.page.fill(tid('room-input'), room);
  await chat.page.click(tid('join-button'));
  // The line appears when the server acknowledged the subscribe.
  await chat.page.locator(`${tid('message-list')} li.system`, { hasText: `joined ${room}` }).waitFor();
}

async function say(chat, text) {
  await chat.page.fill(tid('message-input'), text);
  await chat.page.press(tid('message-input'), 'Enter');
}

async function waitForMember(chat, name) {
  await chat.page.locator(`${tid('member-list')} .member-name`, { hasText: name }).first().waitFor();
}

async function waitForMessage(chat, author, text, kind = 'message') {
  const item = chat.page.locator(`${tid('message-list')} li.${kind}`)
    .filter({ has: chat.page.locator('.author', { hasText: author }) })
    .filter({ has: chat.page.locator('.text', { hasText: text }) });
  await item.first().waitFor({ state: 'visible' });
}

try {
  redis = await startRedis();
  console.log(`redis-server on ${redis.url}`);
  for (const instance of ['e2e-two-a', 'e2e-two-b']) {
    const server = await startChatServer(['--instance', instance, '--redis', redis.url, '--log-level', 'warn']);
    server.instance = instance;
    servers.push(server);
    console.log(`chat_server ${instance} on ${server.url}`);
  }
  browser = await launchChromium(chromium);
  console.log(`chromium ${browser.version()}`);
} catch (error) {
  t.abort(error);
}

if (redis && servers.length === 2 && browser) {
  try {
    const [serverA, serverB] = servers;
    const ana = await openChat(serverA, 'A', 'ana');
    const ben = await openChat(serverB, 'B', 'ben');
    const chats = [ana, ben];

    await t.check('each page is connected to its own instance', async () => {
      for (const chat of chats) {
        await chat.page.locator(`${tid('state')}[data-state="connected"]`).waitFor();
        assertEqual((await chat.page.textContent(tid('instance'))).trim(), chat.server.instance, `${chat.label}: instance`);
      }
    });

    await t.check(`both pages join the room "${ROOM}"`, async () => {
      for (const chat of chats) await join(chat, ROOM);
    });

    await t.check('a message typed on A (instance e2e-two-a) appears on B (e2e-two-b)', async () => {
      await say(ana, 'hello from instance A');
      await waitForMessage(ben, 'ana', 'hello from instance A');
      await waitForMessage(ana, 'ana', 'hello from instance A');
    });

    await t.check('a message typed on B appears on A', async () => {
      await say(ben, 'hi ana, this is B, through Redis');
      await waitForMessage(ana, 'ben', 'hi ana, this is B, through Redis');
      await say(ana, 'both instances share one Redis');
      await waitForMessage(ben, 'ana', 'both instances share one Redis');
    });

    await t.check('each page lists both members, the other one from the other instance', async () => {
      for (const chat of chats) {
        await waitForMember(chat, 'ana');
        await waitForMember(chat, 'ben');
        await chat.page.locator(`${tid('member-count')}`, { hasText: '2' }).waitFor();
      }
    });

    await t.check('"/msg ben ..." typed on A arrives on B as a direct message, and nowhere else', async () => {
      await say(ana, '/msg ben just between us');
      await waitForMessage(ben, 'ana → you', 'just between us', 'direct');
      await waitForMessage(ana, 'you → ben', 'just between us', 'direct');
      await say(ben, '/msg ana got it');
      await waitForMessage(ana, 'ben → you', 'got it', 'direct');
      const shown = await ana.page.locator(`${tid('message-list')} li.message:not(.direct)`,
        { hasText: 'just between us' }).count();
      assertEqual(shown, 0, 'the direct message shown as a room message');
    });

    await t.check('screenshot of B', async () => {
      const target = process.env.SAVE_SCREENSHOT === '1'
        ? path.join(REPO, 'docs', 'images', 'chat-two-instances.png')
        : path.join(scratch, 'chat-two-instances.png');
      mkdirSync(path.dirname(target), { recursive: true });
      await ben.page.locator(tid('message-input')).blur();
      await ben.page.screenshot({ path: target });
      console.log(`      screenshot: ${target}`);
    });

    await t.check('when B\'s page goes away, A shows "ben left" and drops ben from its list', async () => {
      await ben.page.context().close();
      await ana.page.locator(`${tid('message-list')} li.system`, { hasText: 'ben left' }).waitFor();
      await ana.page.locator(`${tid('member-count')}`, { hasText: '1' }).waitFor();
      assertEqual(await ana.page.locator(`${tid('member-list')} .member-name`, { hasText: 'ben' }).count(), 0,
        'ben still listed');
    });

    await t.check('no errors in the pages', async () => {
      assert(pageErrors.length === 0, pageErrors.join('\n'));
    });

    await t.check('SIGTERM: both instances exit with status 0', async () => {
      const codes = await Promise.all(servers.map((server) => server.stop()));
      codes.forEach((code, i) => assertEqual(code, 0, `${servers[i].instance}: exit status (output:\n${servers[i].recentOutput()}\n)`));
    }, { timeoutMs: 60000 });
  } catch (error) {
    t.abort(error);
  }
}

try {
  if (browser) await browser.close();
} catch { /* already gone */ }
for (const server of servers) server.kill();
if (redis) await redis.close().catch(() => {});
t.finish();
