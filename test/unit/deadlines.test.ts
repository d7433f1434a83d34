/**
 * The per-request deadlines of src/core/deadlines.ts: one list and one unref'd Node timer per
 * duration instead of a Node timer per deadline. Each fires once, no earlier than its duration,
 * in the order set; a cancelled one never fires; the others on the list are not disturbed by a
 * cancel, by one that throws, or by one set while the list's timer sleeps for a cancelled head.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { after } from '../../src/core/deadlines.js';

describe('deadlines', () => {
  test('each fires once, not before its duration, in the order they were set', async () => {
    const fired: Array<{ name: string; late: number }> = [];
    const set = (name: string, ms: number): void => {
      const at = performance.now() + ms;
      after(ms, () => fired.push({ name, late: performance.now() - at }));
    };
    set('a', 30);
    await sleep(5);
    set('b', 30);
    set('c', 30);
    await sleep(80);
    assert.deepEqual(
      fired.map((entry) => entry.name),
      ['a', 'b', 'c'],
    );
    // Never early (a setTimeout rounds to the millisecond, hence the one-millisecond allowance).
    for (const { name, late } of fired) assert.ok(late >= -1, `${name} fired ${-late} ms early`);
  });

  test('a cancelled deadline never fires, and cancelling twice or after firing is harmless', async () => {
    let calls = 0;
    const first = after(20, () => void calls++);
    const second = after(20, () => void calls++);
    first.cancel();
    first.cancel();
    await sleep(50);
    assert.equal(calls, 1);
    second.cancel();
    assert.equal(calls, 1);
  });

  test('a deadline set after the head was cancelled still fires on time (the timer wakes for the old head, then re-arms)', async () => {
    const head = after(15, () => assert.fail('cancelled'));
    head.cancel();
    await sleep(5);
    const started = performance.now();
    let firedAfter: number | undefined;
    after(15, () => (firedAfter = performance.now() - started));
    await sleep(60);
    assert.ok(firedAfter !== undefined, 'the later deadline did not fire');
    assert.ok(firedAfter >= 14, `fired after ${firedAfter} ms`);
  });

  test('a deadline set while its list fires (by a fired one) fires its own full duration later', async () => {
    let firstAt: number | undefined;
    let secondAfter: number | undefined;
    after(15, () => {
      firstAt = performance.now();
      after(15, () => (secondAfter = performance.now() - (firstAt as number)));
    });
    await sleep(80);
    assert.ok(firstAt !== undefined && secondAfter !== undefined, 'both fired');
    assert.ok(secondAfter >= 14, `the second fired ${secondAfter} ms after the first`);
  });

  test('a duration past what a Node timer holds (2^31 - 1 ms) does not fire at once', async () => {
    // Node would fire such a timer after 1 ms, with a TimeoutOverflowWarning, and the list would
    // wake every millisecond: the list arms at most 2^31 - 1 ms and re-arms.
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    let fired = false;
    const far = after(2 ** 31 + 1000, () => (fired = true));
    await sleep(30);
    process.off('warning', onWarning);
    assert.equal(fired, false);
    assert.deepEqual(warnings, []);
    far.cancel();
  });

  test('one that throws does not stop the others on its list; the error is reported as uncaught', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => void uncaught.push(error);
    // node:test's own handler would fail the test: take the one error this test expects.
    const previous = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      let later = false;
      after(10, () => {
        throw new Error('deadline bug');
      });
      after(10, () => (later = true));
      await sleep(40);
      assert.equal(later, true);
      assert.equal(uncaught.length, 1);
      assert.equal((uncaught[0] as Error).message, 'deadline bug');
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const listener of previous) process.on('uncaughtException', listener);
    }
  });

  test('a pending deadline does not keep an idle process alive', async () => {
    const { spawnSync } = await import('node:child_process');
    const started = performance.now();
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/core/deadlines.ts').then(({ after }) => after(60_000, () => {}))"], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.status, 0, child.stderr);
    assert.ok(performance.now() - started < 30_000);
  });
});
