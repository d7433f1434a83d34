/**
 * Two gateway processes sharing one real redis-server: a breaker opened by failures through one
 * replica is open on the other within a second, only one replica probes once the cool-down is
 * over, and a Redis outage fails no request (both serve from their local state, /ready says 503,
 * interference_redis_up says 0) until Redis is back and sharing resumes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { userMessage } from './support/gateway.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { startGatewayProcess, type GatewayProcess } from './support/server-process.js';

const cooldownMs = 1500;

describe('replicas share provider health through Redis', () => {
  let redis: RedisServer;
  let flaky: Fake;
  let steady: Fake;
  let late: Fake;
  let a: GatewayProcess;
  let b: GatewayProcess;

  before(async () => {
    redis = await startRedis();
    flaky = await startOpenAICompatibleFake({ behaviour: { kind: 'status', status: 500 } });
    steady = await startOpenAICompatibleFake();
    late = await startOpenAICompatibleFake();
    const options = {
      env: {
        REDIS_URL: redis.url,
        INTERFERENCE_BREAKER_FAILURES: '2',
        INTERFERENCE_BREAKER_COOLDOWN_MS: String(cooldownMs),
        INTERFERENCE_RETRIES: '0',
      },
      config: {
        providers: [
          { id: 'Flaky', api: 'openai', baseUrl: flaky.url, models: ['test-model'] },
          { id: 'Steady', api: 'openai', baseUrl: steady.url, models: ['test-model'] },
          { id: 'Late', api: 'openai', baseUrl: late.url, models: ['test-model'] },
        ],
      },
    };
    [a, b] = await Promise.all([startGatewayProcess(options), startGatewayProcess(options)]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([flaky?.close(), steady?.close(), late?.close(), redis?.stop()]);
  });

  const chat = (replica: GatewayProcess, provider: string): Promise<Response> => replica.post('/v1/chat/completions', { provider, messages: userMessage });

  async function circuit(replica: GatewayProcess, provider: string): Promise<string> {
    const response = await replica.get(`/v1/providers/${provider}`);
    assert.equal(response.status, 200);
    return ((await response.json()) as { circuit: string }).circuit;
  }

  /** Polls until `check` holds, for at most `ms`; fails naming `what`. */
  async function until(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (await check()) return;
      if (Date.now() >= deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  test('failures through A open the breaker on B within a second; B then skips the provider', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await chat(a, 'Flaky')).status, 502);
    await until(async () => (await circuit(b, 'Flaky')) === 'open', "B's Flaky circuit to open", 1000);
    const seen = flaky.requests.length;
    const skipped = await chat(b, 'Flaky');
    assert.equal(skipped.status, 503);
    assert.match(skipped.headers.get('x-interference-attempts') ?? '', /^Flaky=circuit_open$/);
    assert.equal(flaky.requests.length, seen, 'B never reached the provider');
  });

  test('after the cool-down only one replica probes', async () => {
    await until(
      async () => (await circuit(a, 'Flaky')) === 'half_open' && (await circuit(b, 'Flaky')) === 'half_open',
      'the cool-down to end',
      cooldownMs + 1000,
    );
    const seen = flaky.requests.length;
    // Requests through both replicas for a while (less than the next, doubled, cool-down).
    for (let round = 0; round < 8; round++) {
      await Promise.all([chat(a, 'Flaky'), chat(b, 'Flaky')]);
      await sleep(25);
    }
    assert.equal(flaky.requests.length - seen, 1, 'exactly one probe reached the provider');
    // The failed probe opened the breaker again, on both.
    assert.equal(await circuit(a, 'Flaky'), 'open');
    assert.equal(await circuit(b, 'Flaky'), 'open');
  });

  test('Redis down: requests still succeed, /ready is 503, interference_redis_up is 0; back up: sharing resumes', async () => {
    for (const replica of [a, b]) {
      assert.equal((await replica.get('/ready')).status, 200);
      assert.match(await (await replica.get('/metrics')).text(), /^interference_redis_up 1$/m);
    }
    await redis.kill();
    for (const replica of [a, b]) await until(async () => (await replica.get('/ready')).status === 503, '/ready to say 503', 5000);
    for (const replica of [a, b]) {
      const ready = await replica.get('/ready');
      assert.deepEqual(await ready.json(), {
        status: 'not_ready',
        reason: 'Redis (REDIS_URL) is unreachable: this replica serves from its local state only',
        checks: { config: 'loaded', redis: 'down' },
      });
      assert.match(await (await replica.get('/metrics')).text(), /^interference_redis_up 0$/m);
      assert.equal((await replica.get('/health')).status, 200, 'still alive');
      for (let i = 0; i < 5; i++) {
        const response = await chat(replica, 'Steady');
        assert.equal(response.status, 200, await response.clone().text());
        await response.arrayBuffer();
      }
    }
    // The breaker still works, locally: two failures through A open it on A alone.
    late.setBehaviour({ kind: 'status', status: 500 });
    for (let i = 0; i < 2; i++) assert.equal((await chat(a, 'Late')).status, 502);
    assert.equal(await circuit(a, 'Late'), 'open');
    assert.equal(await circuit(b, 'Late'), 'closed');

    await redis.restart();
    for (const replica of [a, b]) await until(async () => (await replica.get('/ready')).status === 200, '/ready to say 200 again', 10_000);
    for (const replica of [a, b]) assert.match(await (await replica.get('/metrics')).text(), /^interference_redis_up 1$/m);
    // On reconnect A wrote its open breaker to the empty Redis, and B loaded it.
    await until(async () => (await circuit(b, 'Late')) === 'open', "B to learn A's breaker from the reconnect", 3000);

    // And a new opening propagates again: Steady fails through B, A sees it open.
    steady.setBehaviour({ kind: 'status', status: 500 });
    for (let i = 0; i < 2; i++) assert.equal((await chat(b, 'Steady')).status, 502);
    await until(async () => (await circuit(a, 'Steady')) === 'open', "A's Steady circuit to open", 1000);

    // One log line per change of Redis's state.
    for (const replica of [a, b]) {
      const log = replica.stderr();
      assert.equal(log.match(/"event":"redis_down"/g)?.length, 1, log);
      assert.equal(log.match(/"event":"redis_up"/g)?.length, 2, log);
    }
  });
});
