/**
 * The circuit breaker and health window (src/core/health.ts), in process with an injected clock:
 * the threshold opens the circuit, the cool-down, one probe at a time (half open), a failed probe
 * doubles the cool-down up to its cap, a success closes and resets, `retry-after` lengthens the
 * open time, only failures that say something about the provider count, and `settle()`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FailureKind } from '../../src/core/errors.js';
import { HealthBook, type HealthOptions } from '../../src/core/health.js';

/** A book on a clock the test moves by hand. */
function book(options: Partial<HealthOptions> = {}) {
  const clock = { now: 1_000 };
  const health = new HealthBook({ threshold: 3, cooldownMs: 1_000, maxCooldownMs: 8_000, window: 10, now: () => clock.now, ...options });
  const fail = (id: string, times: number, kind: FailureKind = 'server', retryAfter?: number): void => {
    for (let i = 0; i < times; i++) health.record(id, kind, 5, retryAfter);
  };
  return { health, clock, fail };
}

describe('HealthBook', () => {
  test('an unknown provider is admitted and reported healthy with no samples', () => {
    const { health } = book();
    assert.deepEqual(health.admit('P'), { allowed: true, probe: false });
    assert.deepEqual(health.snapshot('P'), {
      working: true,
      circuit: 'closed',
      consecutive_failures: 0,
      success_rate: null,
      median_latency_ms: null,
      samples: 0,
    });
  });

  test('failures below the threshold keep the circuit closed; the threshold opens it for the cool-down', () => {
    const { health, clock, fail } = book();
    fail('P', 2);
    assert.deepEqual(health.admit('P'), { allowed: true, probe: false });
    assert.equal(health.snapshot('P').circuit, 'closed');
    fail('P', 1);
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 1_000, consecutiveFailures: 3 });
    const open = health.snapshot('P');
    assert.equal(open.circuit, 'open');
    assert.equal(open.working, false);
    assert.equal(open.retry_in_s, 1);
    assert.equal(open.consecutive_failures, 3);
    clock.now += 400;
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 600, consecutiveFailures: 3 });
    // Other providers are not affected.
    assert.deepEqual(health.admit('Q'), { allowed: true, probe: false });
  });

  test('after the cool-down one probe is admitted (half open); a second request waits for it', () => {
    const { health, clock, fail } = book();
    fail('P', 3);
    clock.now += 1_000;
    assert.equal(health.snapshot('P').circuit, 'half_open');
    assert.equal(health.snapshot('P').retry_in_s, undefined);
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 0, consecutiveFailures: 3 });
    assert.equal(health.snapshot('P').circuit, 'half_open');
  });

  test('a failed probe doubles the cool-down, up to the maximum', () => {
    const { health, clock, fail } = book();
    fail('P', 3);
    const expected = [2_000, 4_000, 8_000, 8_000];
    for (const cooldown of expected) {
      clock.now += 10_000;
      assert.equal(health.admit('P').allowed, true);
      fail('P', 1);
      const admission = health.admit('P');
      assert.deepEqual(admission, { allowed: false, retryInMs: cooldown, consecutiveFailures: health.snapshot('P').consecutive_failures });
    }
  });

  test('a failure that is not a probe while open keeps the cool-down as it is', () => {
    const { health, fail } = book();
    fail('P', 3);
    fail('P', 1); // a request admitted before the circuit opened, ending late
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 1_000, consecutiveFailures: 4 });
  });

  test('a success closes the circuit and resets the failures and the cool-down', () => {
    const { health, clock, fail } = book();
    fail('P', 3);
    clock.now += 1_000;
    assert.equal(health.admit('P').allowed, true);
    fail('P', 1); // cool-down doubled to 2 s
    clock.now += 2_000;
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    health.record('P', 'ok', 10);
    assert.deepEqual(health.admit('P'), { allowed: true, probe: false });
    const closed = health.snapshot('P');
    assert.equal(closed.circuit, 'closed');
    assert.equal(closed.consecutive_failures, 0);
    // The next opening starts from the first cool-down again.
    fail('P', 3);
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 1_000, consecutiveFailures: 3 });
  });

  test('retry-after lengthens the open time, never past the maximum, and never shortens it', () => {
    const { health, fail } = book();
    fail('P', 3, 'rate_limit', 5);
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 5_000, consecutiveFailures: 3 });
    fail('Q', 3, 'rate_limit', 3600);
    assert.deepEqual(health.admit('Q'), { allowed: false, retryInMs: 8_000, consecutiveFailures: 3 });
    fail('R', 3, 'rate_limit', 0.2);
    assert.deepEqual(health.admit('R'), { allowed: false, retryInMs: 1_000, consecutiveFailures: 3 });
  });

  test('only failures that tell about the provider count', () => {
    const countedKinds: FailureKind[] = ['connection', 'timeout', 'server', 'rate_limit', 'bad_response'];
    const uncounted: FailureKind[] = ['auth', 'bad_request', 'model_not_found', 'unavailable', 'aborted'];
    for (const kind of countedKinds) {
      const { health, fail } = book();
      fail('P', 3, kind);
      assert.equal(health.admit('P').allowed, false, kind);
      assert.equal(health.snapshot('P').samples, 3, kind);
    }
    for (const kind of uncounted) {
      const { health, fail } = book();
      fail('P', 10, kind);
      assert.deepEqual(health.admit('P'), { allowed: true, probe: false }, kind);
      const snapshot = health.snapshot('P');
      assert.equal(snapshot.consecutive_failures, 0, kind);
      assert.equal(snapshot.samples, 0, kind);
    }
  });

  test('an uncounted outcome (the client left) ends a probe without counting', () => {
    const { health, clock, fail } = book();
    fail('P', 3);
    clock.now += 1_000;
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    health.record('P', 'aborted', 0);
    assert.equal(health.snapshot('P').consecutive_failures, 3);
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true }, 'the next request probes again');
  });

  test('settle() ends a probe without counting anything', () => {
    const { health, clock, fail } = book();
    fail('P', 3);
    clock.now += 1_000;
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    assert.equal(health.admit('P').allowed, false);
    health.settle('P');
    assert.equal(health.snapshot('P').consecutive_failures, 3);
    assert.equal(health.snapshot('P').samples, 3);
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    // The settled probe doubled nothing: this failed probe doubles the first cool-down once.
    health.record('P', 'server', 1);
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 2_000, consecutiveFailures: 4 });
    health.settle('unknown'); // nothing to settle: no state is made
    assert.equal(health.snapshot('unknown').samples, 0);
  });

  test('snapshot: success rate, median latency and samples over the window', () => {
    const { health } = book({ window: 4 });
    for (const ms of [30, 10, 20]) health.record('P', 'ok', ms);
    health.record('P', 'timeout', 999);
    let snapshot = health.snapshot('P');
    assert.equal(snapshot.samples, 4);
    assert.equal(snapshot.success_rate, 0.75);
    assert.equal(snapshot.median_latency_ms, 20, 'failures add no latency');
    assert.equal(snapshot.consecutive_failures, 1);
    assert.equal(snapshot.working, true);
    // The window keeps the last four outcomes.
    health.record('P', 'server', 1);
    health.record('P', 'ok', 40.123);
    snapshot = health.snapshot('P');
    assert.equal(snapshot.samples, 4);
    assert.equal(snapshot.success_rate, 0.5);
    assert.equal(snapshot.median_latency_ms, 30);
    assert.equal(snapshot.consecutive_failures, 0);
  });

  test('snapshot: a closed circuit is not working once most of five or more samples failed', () => {
    const { health } = book({ threshold: 100 });
    health.record('P', 'ok', 1);
    for (let i = 0; i < 3; i++) health.record('P', 'server', 1);
    assert.equal(health.snapshot('P').working, true, 'fewer than five samples');
    health.record('P', 'server', 1);
    const snapshot = health.snapshot('P');
    assert.equal(snapshot.circuit, 'closed');
    assert.equal(snapshot.success_rate, 0.2);
    assert.equal(snapshot.working, false);
    assert.equal(snapshot.median_latency_ms, 1);
  });

  test('success_rate is rounded to three decimals, latency to two', () => {
    const { health } = book();
    health.record('P', 'ok', 1.23456);
    health.record('P', 'ok', 1.23456);
    health.record('P', 'server', 1);
    const snapshot = health.snapshot('P');
    assert.equal(snapshot.success_rate, 0.667);
    assert.equal(snapshot.median_latency_ms, 1.23);
  });
});
