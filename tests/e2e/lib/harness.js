// A tiny sequential test runner for the end-to-end scripts: each check runs in
// order, a failure is reported with its reason and the run goes on; finish()
// prints `N passed, N failed` as the last line and sets the exit code.
//
//   const t = new Harness('ws_interop');
//   await t.check('welcome has an instance', async () => { ... throw on failure ... });
//   t.finish();
export class Harness {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
    this.failures = [];
  }

  // check(name, fn, {timeoutMs}): runs fn; passes unless it throws or times out.
  // Returns true when it passed, so a later check can depend on it.
  async check(name, fn, { timeoutMs = 30000 } = {}) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.resolve().then(fn), timeout]);
      this.passed += 1;
      console.log(`ok    ${name}`);
      return true;
    } catch (error) {
      this.failed += 1;
      const reason = error && error.message ? error.message : String(error);
      this.failures.push(`${name}: ${reason}`);
      console.log(`FAIL  ${name}\n      ${reason.split('\n').join('\n      ')}`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  // abort(error): the run cannot go on (the server did not start...).
  abort(error) {
    this.failed += 1;
    const reason = error && error.message ? error.message : String(error);
    this.failures.push(`aborted: ${reason}`);
    console.log(`FAIL  ${this.name} aborted: ${reason.split('\n').join('\n      ')}`);
  }

  finish() {
    if (this.failed > 0) {
      console.log(`\n${this.name}: ${this.failed} failure(s):`);
      for (const failure of this.failures) console.log(`  - ${failure.split('\n')[0]}`);
    }
    console.log(`${this.passed} passed, ${this.failed} failed`);
    process.exitCode = this.failed > 0 || this.passed === 0 ? 1 : 0;
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

export function assertEqual(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// within(promise, ms, fallback): the promise's value, or `fallback` after ms
// milliseconds; the timer is cleared either way, so it never keeps Node alive.
export function within(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
