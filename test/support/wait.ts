/** Waiting for something another part of the test (a fake, the gateway, a log) is about to do. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every `everyMs` until it is true or `ms` passed; returns the last result. */
export async function eventually(check: () => boolean, ms = 1000, everyMs = 10): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= until) return false;
    await sleep(everyMs);
  }
}

/** Polls `condition` every 5 ms; fails the test, naming `what`, when it is still false after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  if (!(await eventually(condition, timeoutMs, 5))) assert.fail(`timed out waiting for ${what}`);
}
