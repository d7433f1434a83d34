/**
 * The HealthBook's side of shared breakers (src/core/health.ts with a HealthSync), in process with
 * an injected clock and a sync that only records what it is told: which outcomes are shared, how a
 * shared state is applied to the local mirror, and the probe that waits for the sync's grant.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HealthBook } from '../../src/core/health.js';
import type { BreakerOutcome, HealthSync } from '../../src/core/health-sync.js';

/** A book on a hand-moved clock, attached to a sync that records its calls and answers `mayProbe` with `allow`. */
function replica(allow = false) {
  const clock = { now: 1_000 };
  const health = new HealthBook({ threshold: 3, cooldownMs: 1_000, maxCooldownMs: 8_000, window: 10, now: () => clock.now });
  const sync = {
    allow,
    recorded: [] as Array<{ id: string; outcome: BreakerOutcome }>,
    asked: [] as string[],
  };
  const hooks: HealthSync = {
    recorded: (id, outcome) => sync.recorded.push({ id, outcome }),
    mayProbe: (id) => {
      sync.asked.push(id);
      return sync.allow;
    },
  };
  health.attach(hooks);
  return { health, clock, sync };
}

describe('HealthBook with a HealthSync', () => {
  test('every counted failure is shared with the state it left; a plain success is not', () => {
    const { health, sync } = replica();
    health.record('P', 'ok', 5);
    assert.equal(sync.recorded.length, 0, 'a success that changes nothing costs the replicas nothing');
    health.record('P', 'auth', 5);
    assert.equal(sync.recorded.length, 0, 'a failure that says nothing about the provider is not counted, so not shared');
    health.record('P', 'server', 5);
    health.record('P', 'rate_limit', 5, 2);
    assert.deepEqual(sync.recorded, [
      { id: 'P', outcome: { outcome: 'failure', probe: false, askedMs: 0, state: { consecutiveFailures: 1, cooldownMs: 1_000, retryInMs: 0 } } },
      { id: 'P', outcome: { outcome: 'failure', probe: false, askedMs: 2_000, state: { consecutiveFailures: 2, cooldownMs: 1_000, retryInMs: 0 } } },
    ]);
    health.record('P', 'ok', 5);
    assert.deepEqual(sync.recorded.at(-1), {
      id: 'P',
      outcome: { outcome: 'ok', probe: false, askedMs: 0, state: { consecutiveFailures: 0, cooldownMs: 1_000, retryInMs: 0 } },
    });
  });

  test('a shared state opens, keeps and closes the local breaker', () => {
    const { health, clock } = replica();
    health.apply('P', { consecutiveFailures: 3, cooldownMs: 2_000, retryInMs: 1_500 });
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 1_500, consecutiveFailures: 3 });
    assert.equal(health.snapshot('P').circuit, 'open');
    assert.deepEqual(health.breaker('P'), { consecutiveFailures: 3, cooldownMs: 2_000, retryInMs: 1_500 });
    clock.now += 500;
    assert.equal(health.breaker('P').retryInMs, 1_000);
    health.apply('P', { consecutiveFailures: 0, cooldownMs: 1_000, retryInMs: 0 });
    assert.deepEqual(health.admit('P'), { allowed: true, probe: false });
    assert.equal(health.snapshot('P').circuit, 'closed');
    // Below the threshold a shared count is only a count: the next local failures add to it.
    health.apply('P', { consecutiveFailures: 2, cooldownMs: 1_000, retryInMs: 0 });
    assert.equal(health.admit('P').allowed, true);
    health.record('P', 'server', 5);
    assert.equal(health.snapshot('P').circuit, 'open');
  });

  test('after the cool-down the probe waits for the grant; then exactly one request probes', () => {
    const { health, clock, sync } = replica(false);
    health.apply('P', { consecutiveFailures: 3, cooldownMs: 1_000, retryInMs: 1_000 });
    assert.equal(health.grantProbe('P'), false, 'no grant while cooling down');
    clock.now += 1_000;
    assert.equal(health.snapshot('P').circuit, 'half_open');
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 0, consecutiveFailures: 3 });
    assert.deepEqual(sync.asked, ['P']);
    assert.equal(health.grantProbe('P'), true);
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    assert.deepEqual(health.admit('P'), { allowed: false, retryInMs: 0, consecutiveFailures: 3 }, 'one probe at a time');
    assert.equal(sync.asked.length, 1, 'a probe in flight asks nobody');
    // The failed probe is shared as a probe, with the doubled cool-down.
    health.record('P', 'server', 5);
    assert.deepEqual(sync.recorded.at(-1)?.outcome, {
      outcome: 'failure',
      probe: true,
      askedMs: 0,
      state: { consecutiveFailures: 4, cooldownMs: 2_000, retryInMs: 2_000 },
    });
  });

  test('a grant is dropped when the shared state changes before it is used', () => {
    const { health, clock } = replica(false);
    health.apply('P', { consecutiveFailures: 3, cooldownMs: 1_000, retryInMs: 0 });
    assert.equal(health.grantProbe('P'), true);
    // Another replica's probe failed meanwhile: open again, and this replica's grant is void.
    health.apply('P', { consecutiveFailures: 4, cooldownMs: 2_000, retryInMs: 2_000 });
    clock.now += 2_000;
    assert.equal(health.admit('P').allowed, false);
  });

  test('a sync that answers yes (no shared store) lets the probe go at once, as without replicas', () => {
    const { health, clock, sync } = replica(true);
    for (let i = 0; i < 3; i++) health.record('P', 'timeout', 5);
    clock.now += 1_000;
    assert.deepEqual(health.admit('P'), { allowed: true, probe: true });
    health.record('P', 'ok', 5);
    assert.deepEqual(sync.recorded.at(-1)?.outcome, {
      outcome: 'ok',
      probe: true,
      askedMs: 0,
      state: { consecutiveFailures: 0, cooldownMs: 1_000, retryInMs: 0 },
    });
    assert.equal(health.snapshot('P').circuit, 'closed');
  });

  test('applying a state keeps the local window and an unknown provider reads as closed', () => {
    const { health } = replica();
    health.record('P', 'ok', 10);
    health.apply('P', { consecutiveFailures: 3, cooldownMs: 1_000, retryInMs: 500 });
    const snapshot = health.snapshot('P');
    assert.equal(snapshot.samples, 1);
    assert.equal(snapshot.success_rate, 1);
    assert.deepEqual(health.breaker('Q'), { consecutiveFailures: 0, cooldownMs: 1_000, retryInMs: 0 });
  });
});
