/**
 * The failover loop (src/core/failover.ts), in process with a plan of fake attempts and a real
 * HealthBook: order, blocked attempts, open circuits, retries of a lone provider, what one request
 * counts in health, errors of our own, the client leaving, the final status and key redaction.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError, UpstreamError, type FailureKind } from '../../src/core/errors.js';
import { AllFailedError, failover, redact, type AttemptScope, type RoutingPolicy } from '../../src/core/failover.js';
import { HealthBook } from '../../src/core/health.js';
import { defaultLimits } from '../../src/core/http.js';
import type { Provider } from '../../src/core/provider.js';
import type { Attempt, Plan } from '../../src/core/selection.js';

function attempt(id: string, options: { apiKey?: string; blocked?: Attempt['blocked'] } = {}): Attempt {
  return {
    entry: { provider: { id } as Provider, serverKey: undefined, autoRoute: true, keyVariables: [], configuredByUser: false },
    model: 'm',
    apiKey: options.apiKey,
    blocked: options.blocked ?? null,
  };
}

const planOf = (...attempts: Attempt[]): Plan => ({ attempts, unknown: [], explicit: true });

function policy(overrides: Partial<RoutingPolicy> = {}, clock?: { now: number }): RoutingPolicy {
  return {
    health: new HealthBook({ threshold: 3, cooldownMs: 1_000, maxCooldownMs: 8_000, window: 10, ...(clock ? { now: () => clock.now } : {}) }),
    limits: defaultLimits,
    firstContentMs: 1_000,
    requestMs: 1_000,
    retries: 0,
    retryBaseMs: 1,
    retryMaxWaitMs: 50,
    ...overrides,
  };
}

const never = new AbortController().signal;

/** A `run` that answers from a script per provider: an error to throw, or a value to return. */
function scripted(script: Record<string, Array<Error | string>>) {
  const calls: string[] = [];
  const run = async (current: Attempt, scope: AttemptScope): Promise<string> => {
    const id = current.entry.provider.id;
    calls.push(id);
    const next = script[id]?.shift();
    scope.release();
    if (next === undefined) throw new Error(`unexpected call to ${id}`);
    if (next instanceof Error) throw next;
    return next;
  };
  return { run, calls };
}

const fail = (kind: FailureKind, message = `${kind} happened`, options: ConstructorParameters<typeof UpstreamError>[2] = {}) =>
  new UpstreamError(kind, message, options);

/** Runs a failover that must fail; returns its error. */
async function failing(plan: Plan, routing: RoutingPolicy, script: Record<string, Array<Error | string>>, signal = never): Promise<AllFailedError> {
  const { run } = scripted(script);
  try {
    await failover(plan, signal, routing, run);
  } catch (error) {
    assert.ok(error instanceof AllFailedError, String(error));
    return error;
  }
  assert.fail('failover did not fail');
}

describe('failover: order and skipping', () => {
  test('attempts run in the plan order until one answers; each outcome is recorded', async () => {
    const routing = policy();
    const { run, calls } = scripted({ A: [fail('server', 'A broke', { status: 500 })], B: [fail('connection')], C: ['answer'], D: ['unused'] });
    const result = await failover(planOf(attempt('A'), attempt('B'), attempt('C'), attempt('D')), never, routing, run);
    assert.equal(result.value, 'answer');
    assert.equal(result.provider, 'C');
    assert.deepEqual(calls, ['A', 'B', 'C']);
    assert.deepEqual(
      result.attempts.map(({ provider, outcome, status, message }) => ({ provider, outcome, status, message })),
      [
        { provider: 'A', outcome: 'server', status: 500, message: 'A broke' },
        { provider: 'B', outcome: 'connection', status: undefined, message: 'connection happened' },
        { provider: 'C', outcome: 'ok', status: undefined, message: undefined },
      ],
    );
    assert.ok(result.attempts.every((record) => typeof record.ms === 'number' && record.ms >= 0 && record.retries === undefined));
    assert.equal(routing.health.snapshot('A').consecutive_failures, 1);
    assert.equal(routing.health.snapshot('C').samples, 1);
    assert.equal(routing.health.snapshot('C').success_rate, 1);
  });

  test('blocked attempts are recorded and skipped without a call', async () => {
    const { run, calls } = scripted({ B: ['ok'] });
    const blocked = attempt('A', { blocked: { kind: 'auth', message: 'A needs an API key' } });
    const result = await failover(planOf(blocked, attempt('B')), never, policy(), run);
    assert.deepEqual(calls, ['B']);
    assert.deepEqual(result.attempts[0], { provider: 'A', outcome: 'auth', message: 'A needs an API key', ms: 0 });
    assert.equal(result.provider, 'B');
  });

  test('a provider whose circuit is open is skipped at no cost', async () => {
    const routing = policy({ health: new HealthBook({ threshold: 2, cooldownMs: 1_500, maxCooldownMs: 10_000, window: 10, now: () => 0 }) });
    routing.health.record('A', 'server', 1);
    routing.health.record('A', 'server', 1);
    const { run, calls } = scripted({ B: ['ok'] });
    const result = await failover(planOf(attempt('A'), attempt('B')), never, routing, run);
    assert.deepEqual(calls, ['B']);
    assert.deepEqual(result.attempts[0], {
      provider: 'A',
      outcome: 'circuit_open',
      message: 'skipped: 2 failures in a row, circuit open (next try in 2s)',
      ms: 0,
    });
    // All skipped: a 503 that says when to come back.
    const error = await failing(planOf(attempt('A')), routing, {});
    assert.equal(error.status, 503);
    assert.equal(error.code, 'provider_unavailable');
    assert.equal(error.headers['retry-after'], '2');
    assert.equal(error.message, 'A: skipped: 2 failures in a row, circuit open (next try in 2s)');
  });
});

describe('failover: retries of a lone provider', () => {
  test('retried after retryable failures; the answer records the retries, and health counts no failure', async () => {
    const routing = policy({ retries: 2 });
    const { run, calls } = scripted({ A: [fail('server'), fail('rate_limit'), 'third time'] });
    const result = await failover(planOf(attempt('A')), never, routing, run);
    assert.equal(result.value, 'third time');
    assert.deepEqual(calls, ['A', 'A', 'A']);
    assert.equal(result.attempts.length, 1);
    assert.equal(result.attempts[0]?.outcome, 'ok');
    assert.equal(result.attempts[0]?.retries, 2);
    const snapshot = routing.health.snapshot('A');
    assert.equal(snapshot.consecutive_failures, 0);
    assert.equal(snapshot.samples, 1);
  });

  test('one request that fails after its retries is one failure in health', async () => {
    const routing = policy({ retries: 2 });
    const { run, calls } = scripted({ A: [fail('connection'), fail('connection'), fail('server', 'still down', { status: 503 })] });
    await assert.rejects(failover(planOf(attempt('A')), never, routing, run), AllFailedError);
    assert.deepEqual(calls, ['A', 'A', 'A']);
    const snapshot = routing.health.snapshot('A');
    assert.equal(snapshot.consecutive_failures, 1);
    assert.equal(snapshot.samples, 1);
    const error = await failing(planOf(attempt('A')), policy({ retries: 1 }), { A: [fail('connection'), fail('server', 'still down', { status: 503 })] });
    assert.deepEqual(
      error.attempts.map(({ outcome, status, retries }) => ({ outcome, status, retries })),
      [{ outcome: 'server', status: 503, retries: 1 }],
    );
  });

  test('no retry for failures about the request, nor when several providers are planned, nor with retries off', async () => {
    for (const kind of ['auth', 'bad_request', 'model_not_found', 'timeout', 'bad_response'] as const) {
      const { run, calls } = scripted({ A: [fail(kind), 'never'] });
      await assert.rejects(failover(planOf(attempt('A')), never, policy({ retries: 3 }), run), AllFailedError);
      assert.deepEqual(calls, ['A'], kind);
    }
    const several = scripted({ A: [fail('server'), 'never'], B: [fail('server')] });
    await assert.rejects(failover(planOf(attempt('A'), attempt('B')), never, policy({ retries: 3 }), several.run), AllFailedError);
    assert.deepEqual(several.calls, ['A', 'B']);
    const off = scripted({ A: [fail('server'), 'never'] });
    await assert.rejects(failover(planOf(attempt('A')), never, policy({ retries: 0 }), off.run), AllFailedError);
    assert.deepEqual(off.calls, ['A']);
  });

  test('retry-after is waited for; past the longest wait there is no retry', async () => {
    const { run, calls } = scripted({ A: [fail('rate_limit', 'slow down', { retryAfter: 0.03 }), 'ok'] });
    const started = performance.now();
    await failover(planOf(attempt('A')), never, policy({ retries: 1, retryMaxWaitMs: 50 }), run);
    assert.ok(performance.now() - started >= 25, 'waited about 30 ms');
    assert.deepEqual(calls, ['A', 'A']);
    const tooLong = scripted({ A: [fail('rate_limit', 'slow down', { retryAfter: 2 }), 'never'] });
    const quick = performance.now();
    await assert.rejects(failover(planOf(attempt('A')), never, policy({ retries: 1, retryMaxWaitMs: 50 }), tooLong.run), AllFailedError);
    assert.deepEqual(tooLong.calls, ['A']);
    assert.ok(performance.now() - quick < 1000, 'did not wait the 2 s asked');
  });

  test('backoff without retry-after stays under retryBaseMs doubled per retry, far below the longest wait', async () => {
    const { run } = scripted({ A: [fail('server'), fail('server'), fail('server'), 'ok'] });
    const started = performance.now();
    const result = await failover(planOf(attempt('A')), never, policy({ retries: 3, retryBaseMs: 2, retryMaxWaitMs: 10_000 }), run);
    assert.equal(result.attempts[0]?.retries, 3);
    assert.ok(performance.now() - started < 500, 'at most 2 + 4 + 8 ms of waiting, plus slack');
  });

  test('no retry once the circuit opened meanwhile', async () => {
    const routing = policy({ retries: 3, health: new HealthBook({ threshold: 1, cooldownMs: 1_000, maxCooldownMs: 1_000, window: 10, now: () => 0 }) });
    const calls: string[] = [];
    const run = async (current: Attempt): Promise<string> => {
      calls.push(current.entry.provider.id);
      routing.health.record('A', 'server', 1); // another request fails meanwhile and opens the circuit
      throw fail('server');
    };
    await assert.rejects(failover(planOf(attempt('A')), never, routing, run), AllFailedError);
    assert.deepEqual(calls, ['A']);
  });
});

describe('failover: errors of our own and the client leaving', () => {
  test('a non-UpstreamError is a clean bad_response, told to onInternalError, and ends a probe without counting', async () => {
    const clock = { now: 0 };
    const internal: Array<[string, unknown]> = [];
    const routing = policy({ onInternalError: (provider, error) => internal.push([provider, error]) }, clock);
    for (let i = 0; i < 3; i++) routing.health.record('A', 'server', 1);
    clock.now = 1_000; // the cool-down is over: this request is the probe
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    const error = await failing(planOf(attempt('A')), routing, { A: [bug] });
    assert.deepEqual(internal, [['A', bug]]);
    assert.equal(error.status, 502);
    assert.equal(error.code, 'upstream_bad_response');
    assert.equal(error.message, "A: the gateway could not process A's answer (internal error, logged)");
    assert.doesNotMatch(error.message, /Cannot read/);
    const snapshot = routing.health.snapshot('A');
    assert.equal(snapshot.consecutive_failures, 3, 'not counted');
    assert.deepEqual(routing.health.admit('A'), { allowed: true, probe: true }, 'the probe is over: the next request probes');
  });

  test('the client leaving during an attempt ends the request with an aborted error', async () => {
    const client = new AbortController();
    const routing = policy();
    const calls: string[] = [];
    const run = (current: Attempt, scope: AttemptScope): Promise<string> =>
      new Promise((_, reject) => {
        calls.push(current.entry.provider.id);
        scope.signal.addEventListener('abort', () => reject(scope.signal.reason));
        client.abort();
      });
    await assert.rejects(failover(planOf(attempt('A'), attempt('B')), client.signal, routing, run), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.equal(error.kind, 'aborted');
      assert.equal(error.message, 'the client went away');
      return true;
    });
    assert.deepEqual(calls, ['A'], 'no failover after the client left');
    assert.equal(routing.health.snapshot('A').samples, 0);
  });

  test('the client leaving during a probe ends the probe without counting', async () => {
    const clock = { now: 0 };
    const routing = policy({}, clock);
    for (let i = 0; i < 3; i++) routing.health.record('A', 'server', 1);
    clock.now = 1_000;
    const client = new AbortController();
    const run = (_: Attempt, scope: AttemptScope): Promise<string> =>
      new Promise((_resolve, reject) => {
        scope.signal.addEventListener('abort', () => reject(scope.signal.reason));
        client.abort();
      });
    await assert.rejects(
      failover(planOf(attempt('A')), client.signal, routing, run),
      (error: unknown) => error instanceof UpstreamError && error.kind === 'aborted',
    );
    assert.equal(routing.health.snapshot('A').consecutive_failures, 3);
    assert.deepEqual(routing.health.admit('A'), { allowed: true, probe: true });
  });

  test('a client gone before the start, or during a backoff, gets an aborted error', async () => {
    const gone = new AbortController();
    gone.abort();
    const { run, calls } = scripted({ A: ['never'] });
    await assert.rejects(
      failover(planOf(attempt('A')), gone.signal, policy(), run),
      (error: unknown) => error instanceof UpstreamError && error.kind === 'aborted',
    );
    assert.deepEqual(calls, []);

    const client = new AbortController();
    const waiting = scripted({ A: [fail('rate_limit', 'wait', { retryAfter: 0.05 }), 'never'] });
    const pending = failover(planOf(attempt('A')), client.signal, policy({ retries: 1, retryMaxWaitMs: 100 }), waiting.run);
    setTimeout(() => client.abort(), 5);
    await assert.rejects(pending, (error: unknown) => error instanceof UpstreamError && error.kind === 'aborted');
    assert.deepEqual(waiting.calls, ['A']);
  });

  test("a deadline's abort is the failure, whatever the provider made of it", async () => {
    const run = (_: Attempt, scope: AttemptScope): Promise<string> =>
      new Promise((_resolve, reject) => {
        scope.signal.addEventListener('abort', () => reject(new UpstreamError('aborted', 'cancelled')));
        scope.abort(new UpstreamError('timeout', 'no content within the first-content deadline'));
      });
    await assert.rejects(failover(planOf(attempt('A')), never, policy(), run), (caught: unknown) => {
      assert.ok(caught instanceof AllFailedError);
      assert.equal(caught.status, 504);
      assert.equal(caught.code, 'upstream_timeout');
      assert.equal(caught.message, 'A: no content within the first-content deadline');
      return true;
    });
  });

  test("the request's own deadline on the client signal is reported once, as a timeout", async () => {
    const deadline = new AbortController();
    const run = (_: Attempt, scope: AttemptScope): Promise<string> =>
      new Promise((_resolve, reject) => {
        scope.signal.addEventListener('abort', () => reject(new UpstreamError('aborted', 'cancelled')));
        deadline.abort(new UpstreamError('timeout', 'no complete answer within the request deadline'));
      });
    await assert.rejects(failover(planOf(attempt('A'), attempt('B')), deadline.signal, policy(), run), (caught: unknown) => {
      assert.ok(caught instanceof AllFailedError);
      assert.equal(caught.status, 504);
      assert.deepEqual(
        caught.attempts.map(({ provider, outcome }) => [provider, outcome]),
        [['A', 'timeout']],
      );
      return true;
    });
    // A deadline that passes after an attempt ended is added to the account, and B is not tried.
    const later = new AbortController();
    const between = async (_: Attempt, scope: AttemptScope): Promise<string> => {
      scope.release();
      later.abort(new UpstreamError('timeout', 'request deadline'));
      throw fail('server', 'A broke');
    };
    await assert.rejects(failover(planOf(attempt('A'), attempt('B')), later.signal, policy(), between), (caught: unknown) => {
      assert.ok(caught instanceof AllFailedError);
      assert.deepEqual(
        caught.attempts.map(({ provider, outcome, message }) => [provider, outcome, message]),
        [
          ['A', 'server', 'A broke'],
          ['gateway', 'timeout', 'request deadline'],
        ],
      );
      assert.equal(caught.status, 502);
      assert.equal(caught.message, 'All 2 providers failed. A broke | gateway: request deadline');
      return true;
    });
  });
});

describe('failover: the final error', () => {
  const cases: Array<[FailureKind, number, string, string]> = [
    ['rate_limit', 429, 'rate_limit_exceeded', 'rate_limit_error'],
    ['auth', 401, 'invalid_api_key', 'authentication_error'],
    ['model_not_found', 404, 'model_not_found', 'invalid_request_error'],
    ['timeout', 504, 'upstream_timeout', 'upstream_error'],
    ['unavailable', 503, 'provider_unavailable', 'upstream_error'],
    ['server', 502, 'upstream_error', 'upstream_error'],
    ['connection', 502, 'upstream_unreachable', 'upstream_error'],
    ['bad_response', 502, 'upstream_bad_response', 'upstream_error'],
  ];
  for (const [kind, status, code, type] of cases) {
    test(`every provider failing with ${kind} is a ${status}`, async () => {
      const error = await failing(planOf(attempt('A'), attempt('B')), policy(), { A: [fail(kind)], B: [fail(kind)] });
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, status);
      assert.equal(error.code, code);
      assert.equal(error.type, type);
      assert.equal(error.param, kind === 'model_not_found' ? 'model' : null);
      assert.equal(error.message, `All 2 providers failed. A: ${kind} happened | B: ${kind} happened`);
      assert.equal(error.attempts.length, 2);
    });
  }

  test('mixed kinds are a 502 all_providers_failed', async () => {
    const error = await failing(planOf(attempt('A'), attempt('B')), policy(), { A: [fail('auth')], B: [fail('rate_limit', 'x', { retryAfter: 3 })] });
    assert.equal(error.status, 502);
    assert.equal(error.code, 'all_providers_failed');
    assert.deepEqual(error.headers, {}, 'retry-after only on a 429 or a 503');
  });

  test("bad_request keeps the upstream's 4xx status, 400 otherwise", async () => {
    const with422 = await failing(planOf(attempt('A')), policy(), { A: [fail('bad_request', 'A rejected the tools', { status: 422 })] });
    assert.equal(with422.status, 422);
    assert.equal(with422.code, 'upstream_rejected_request');
    assert.equal(with422.message, 'A rejected the tools', 'a message that starts with the provider is not prefixed again');
    const blocked = await failing(planOf(attempt('A', { blocked: { kind: 'bad_request', message: 'skipped: no tools' } })), policy(), {});
    assert.equal(blocked.status, 400);
  });

  test('retry-after is the shortest wait asked, rounded up, on a 429 and a 503', async () => {
    const limited = await failing(planOf(attempt('A'), attempt('B'), attempt('C')), policy(), {
      A: [fail('rate_limit', 'x', { retryAfter: 7 })],
      B: [fail('rate_limit', 'x', { retryAfter: 2.2 })],
      C: [fail('rate_limit')],
    });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '3');
    const unavailable = await failing(planOf(attempt('A')), policy(), { A: [fail('unavailable', 'busy', { retryAfter: 10 })] });
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.headers['retry-after'], '10');
    const noWait = await failing(planOf(attempt('A')), policy(), { A: [fail('rate_limit')] });
    assert.equal(noWait.headers['retry-after'], undefined);
  });
});

describe('failover: keys never reach a message', () => {
  test("an attempt's key is redacted from its error, status and retry-after kept", async () => {
    const key = 'sk-live-0123456789abcdef';
    const error = await failing(planOf(attempt('A', { apiKey: key })), policy(), {
      A: [fail('rate_limit', `key ${key} is over quota (key ${key.slice(0, 10)}`, { status: 429, retryAfter: 4 })],
    });
    assert.equal(error.message, 'A: key [redacted] is over quota (key [redacted]');
    assert.equal(error.status, 429);
    assert.equal(error.headers['retry-after'], '4');
    assert.equal(error.attempts[0]?.status, 429);
    assert.doesNotMatch(JSON.stringify(error.attempts), /sk-live/);
  });

  test('redact: every occurrence, and a truncated tail of four characters or more', () => {
    assert.equal(redact('a SECRET b SECRET', ['SECRET']), 'a [redacted] b [redacted]');
    assert.equal(redact('cut at SECR', ['SECRET']), 'cut at [redacted]');
    assert.equal(redact('cut at SEC', ['SECRET']), 'cut at SEC', 'three characters are not enough');
    assert.equal(redact('SECRET and TOKEN', ['', 'SECRET', 'TOKEN']), '[redacted] and [redacted]');
    assert.equal(redact('nothing here', ['SECRET']), 'nothing here');
  });
});
