// Headless Chromium for the browser end-to-end scripts, launched exactly as
// browser_chat.mjs launches it: Debian's /usr/bin/chromium (or $CHROMIUM)
// driven by playwright-core, which downloads no browser of its own.
//
//   const chromium = await loadPlaywright('browser_two_instances');
//   const browser = await launchChromium(chromium);
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

// loadPlaywright(scriptName): playwright-core's chromium, or exit with a
// `0 passed, 1 failed` line saying what is missing.
export async function loadPlaywright(scriptName) {
  try {
    const { chromium } = await import('playwright-core');
    return chromium;
  } catch {
    console.error(`${scriptName}: the npm package "playwright-core" is missing: run \`npm ci\` in tests/e2e first`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  return undefined;
}

export function launchChromium(chromium) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
}
