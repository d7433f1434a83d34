/**
 * Gateway keys of the config file's `keys` (admitted by their SHA-256, limited to some providers
 * and rates) and providers' own limits: in one process, then across two replica processes sharing
 * a real redis-server, where a limit of N admits exactly N requests in total, and a Redis outage
 * only means each replica counts on its own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { parseConfigFile } from '../src/config-file.js';
import { startServer } from '../src/start.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { baseTestEnv, startGateway, userMessage, type Gateway } from './support/gateway.js';
import { assertErrorBody, type ErrorBody } from './support/http.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { startGatewayProcess, type GatewayProcess } from './support/server-process.js';

const sha256 = (key: string): string => `sha256:${createHash('sha256').update(key).digest('hex')}`;
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

const mainKey = 'sk-main-gateway-key-3b1f';
const keys = {
  open: 'sk-listed-open-a81c4e',
  onlyA: 'sk-listed-only-a-5d2e',
  rpm: 'sk-listed-rpm-91f0b2',
  tpm: 'sk-listed-tpm-7c3d11',
  concurrent: 'sk-listed-concurrent-0e9a',
};

async function errorOf(response: Response): Promise<ErrorBody> {
  const body: unknown = await response.json();
  assertErrorBody(body);
  return body;
}

/** The `x-ratelimit-*` and `retry-after` headers of a 429 from the gateway's own limits. */
function assertRateLimited(response: Response, body: ErrorBody): number {
  assert.equal(response.status, 429);
  assert.equal(body.error.code, 'rate_limit_exceeded');
  const retryAfter = Number(response.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${response.headers.get('retry-after')}`);
  return retryAfter;
}

describe('keys and limits in the config file', () => {
  const problemsOf = (value: unknown) => {
    const parsed = parseConfigFile('interference.config.json', value);
    return 'problems' in parsed ? parsed.problems : [];
  };

  test('a key in clear where its hash belongs is a problem that never shows the key', () => {
    const problems = problemsOf({
      keys: [
        { name: 'team-a', keyHash: keys.open },
        { name: 'team-b', keyHash: sha256(keys.onlyA), key: keys.rpm },
      ],
    });
    assert.deepEqual(
      problems.map((problem) => problem.path),
      ['keys[0].keyHash', 'keys[1].key'],
    );
    assert.match(problems[0]?.expected ?? '', /sha256:/);
    for (const secret of [keys.open, keys.rpm]) assert.ok(!JSON.stringify(problems).includes(secret), 'the key is not shown');
  });

  test('limits: whole numbers, known names (with a suggestion), on keys and on providers; names and hashes are unique', () => {
    const problems = problemsOf({
      providers: [{ id: 'Groq', limits: { requestsPerMinute: 0, tokensPerMinut: 10 } }],
      keys: [
        { name: 'team a', keyHash: sha256('x'), limits: { concurrent: 1.5 } },
        { name: 'team-b', keyHash: sha256('x'), providers: 'Groq' },
        { name: 'team-b', keyHash: sha256('y') },
      ],
    });
    const byPath = new Map(problems.map((problem) => [problem.path, problem]));
    assert.match(byPath.get('providers[0].limits.requestsPerMinute')?.expected ?? '', /whole number of requests per minute from 1/);
    assert.match(byPath.get('providers[0].limits.tokensPerMinut')?.expected ?? '', /"tokensPerMinute"\?/);
    assert.match(byPath.get('keys[0].name')?.expected ?? '', /key name/);
    assert.match(byPath.get('keys[0].limits.concurrent')?.expected ?? '', /whole number/);
    assert.match(byPath.get('keys[1].providers')?.expected ?? '', /array of provider ids/);
    assert.match(byPath.get('keys[1].keyHash')?.expected ?? '', /keys\[0\] has it already/);
    assert.match(byPath.get('keys[2].name')?.expected ?? '', /keys\[1\] has it already/);
    const valid = parseConfigFile('f', { providers: [{ id: 'Groq', limits: { tokensPerMinute: 1000 } }], keys: [{ name: 'a', keyHash: sha256('k') }] });
    assert.ok('file' in valid);
  });
});

describe('gateway keys and limits, one process', () => {
  let a: Fake;
  let b: Fake;
  let c: Fake;
  let slow: Fake;
  let gateway: Gateway;

  before(async () => {
    a = await startOpenAICompatibleFake({ reply: 'from A' });
    b = await startOpenAICompatibleFake({ reply: 'from B' });
    c = await startOpenAICompatibleFake({ reply: 'from C' });
    slow = await startOpenAICompatibleFake({ reply: 'one two three four five six', behaviour: { kind: 'slow-stream', delayMs: 100 } });
    gateway = await startGateway({
      env: { INTERFERENCE_API_KEY: mainKey },
      config: {
        providers: [
          { id: 'ProvA', api: 'openai', baseUrl: a.url, models: ['test-model'] },
          { id: 'ProvB', api: 'openai', baseUrl: b.url, models: ['test-model'] },
          { id: 'ProvC', api: 'openai', baseUrl: c.url, models: ['c-model'], limits: { requestsPerMinute: 1 } },
          { id: 'ProvSlow', api: 'openai', baseUrl: slow.url, models: ['slow-model'] },
        ],
        keys: [
          { name: 'open', keyHash: sha256(keys.open) },
          { name: 'only-a', keyHash: sha256(keys.onlyA), providers: ['provA'] },
          { name: 'rpm', keyHash: sha256(keys.rpm), limits: { requestsPerMinute: 2 } },
          { name: 'tpm', keyHash: sha256(keys.tpm), limits: { tokensPerMinute: 1 } },
          { name: 'concurrent', keyHash: sha256(keys.concurrent), limits: { concurrent: 1 } },
        ],
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([a.close(), b.close(), c.close(), slow.close()]);
  });

  const chat = (key: string | undefined, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response> =>
    gateway.post('/v1/chat/completions', { messages: userMessage, ...body }, { headers: headers ?? (key === undefined ? {} : bearer(key)) });

  test('a listed key is admitted (Bearer, x-api-key, g4f-api-key); the gateway key still is; an unknown key is a 401', async () => {
    for (const headers of [bearer(keys.open), { 'x-api-key': keys.open }, { 'g4f-api-key': keys.open }, bearer(mainKey)]) {
      const response = await chat(undefined, { provider: 'ProvA' }, headers);
      assert.equal(response.status, 200, JSON.stringify(headers));
      await response.body?.cancel();
    }
    const unknown = await chat('sk-not-listed-anywhere', { provider: 'ProvA' });
    assert.equal(unknown.status, 401);
    assert.equal((await errorOf(unknown)).error.code, 'invalid_api_key');
    const missing = await chat(undefined, { provider: 'ProvA' });
    assert.equal(missing.status, 401);
    assert.equal((await errorOf(missing)).error.code, 'missing_api_key');
    // A listed key's hash is not a key.
    const hashAsKey = await chat(sha256(keys.open), { provider: 'ProvA' });
    assert.equal(hashAsKey.status, 401);
    await hashAsKey.body?.cancel();
  });

  test("/metrics takes the gateway's own key, not a listed one", async () => {
    const team = await fetch(`${gateway.url}/metrics`, { headers: bearer(keys.open) });
    assert.equal(team.status, 403);
    assert.equal((await errorOf(team)).error.code, 'metrics_forbidden');
    const own = await fetch(`${gateway.url}/metrics`, { headers: bearer(mainKey) });
    assert.equal(own.status, 200);
    await own.body?.cancel();
  });

  test('a key naming a provider that does not exist is a warning at start', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'interference-keys-'));
    writeFileSync(path.join(dir, 'interference.config.json'), JSON.stringify({ keys: [{ name: 'typo', keyHash: sha256('k'), providers: ['Grok', 'Groq'] }] }));
    const config = loadConfig(baseTestEnv(dir), dir);
    const running = await startServer(config);
    try {
      assert.deepEqual(
        config.warnings.filter((warning) => warning.startsWith('keys:')),
        ['keys: "typo" names unknown provider(s) Grok; GET /v1/providers lists the ids'],
      );
    } finally {
      await running.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a key limited to some providers: another one named is a 403, automatic routing and failover lists keep only its own', async () => {
    const named = await chat(keys.onlyA, { provider: 'ProvB' });
    assert.equal(named.status, 403);
    const body = await errorOf(named);
    assert.equal(body.error.code, 'provider_not_allowed');
    assert.equal(body.error.type, 'permission_error');

    const fromB = b.requests.length;
    const listed = await chat(keys.onlyA, { provider: 'ProvB ProvA' });
    assert.equal(listed.status, 200);
    assert.equal(listed.headers.get('x-interference-provider'), 'ProvA');
    await listed.body?.cancel();
    const automatic = await chat(keys.onlyA, { model: 'test-model' });
    assert.equal(automatic.status, 200);
    assert.equal(automatic.headers.get('x-interference-provider'), 'ProvA');
    await automatic.body?.cancel();
    assert.equal(b.requests.length, fromB, 'ProvB was never called');

    // The same for images: no provider of this key makes images.
    const images = await gateway.post('/v1/images/generations', { prompt: 'a cat', provider: 'ProvB' }, { headers: bearer(keys.onlyA) });
    assert.ok(images.status === 403 || images.status === 400, `images: ${images.status}`);
    await images.body?.cancel();
  });

  test('requests per minute: past the limit a 429 with retry-after; x-ratelimit-* on every answer', async () => {
    const first = await chat(keys.rpm, { provider: 'ProvA' });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '1');
    assert.match(first.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+s$/);
    await first.body?.cancel();
    const second = await chat(keys.rpm, { provider: 'ProvA' });
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-ratelimit-remaining-requests'), '0');
    await second.body?.cancel();

    const from = a.requests.length;
    const third = await chat(keys.rpm, { provider: 'ProvA' });
    assertRateLimited(third, await errorOf(third));
    assert.equal(third.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(third.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(third.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+s$/);
    assert.equal(a.requests.length, from, 'a refused request reaches no provider');

    // Other keys and the gateway's own key are not limited by it.
    const other = await chat(keys.open, { provider: 'ProvA' });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('x-ratelimit-limit-requests'), null);
    await other.body?.cancel();
  });

  test('tokens per minute: counted from the usage of answers, checked at admission', async () => {
    const first = await chat(keys.tpm, { provider: 'ProvA' });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '1');
    assert.equal(first.headers.get('x-ratelimit-remaining-tokens'), '1', 'nothing used yet when it was admitted');
    const completion = (await first.json()) as { usage: { total_tokens: number } };
    assert.ok(completion.usage.total_tokens > 1);

    const second = await chat(keys.tpm, { provider: 'ProvA' });
    assertRateLimited(second, await errorOf(second));
    assert.equal(second.headers.get('x-ratelimit-remaining-tokens'), '0');
  });

  test('concurrent: a second request while the first streams is a 429; the slot is free once the first is over', async () => {
    const first = await chat(keys.concurrent, { provider: 'ProvSlow', stream: true });
    assert.equal(first.status, 200);
    const second = await chat(keys.concurrent, { provider: 'ProvSlow', stream: true });
    const body = await errorOf(second);
    assertRateLimited(second, body);
    assert.match(body.error.message, /1 requests at once/);
    await first.text(); // the first stream, to its end

    // Released when the first response closes, which the client may see a moment before the server does.
    let third: Response | undefined;
    for (let tries = 0; tries < 100; tries++) {
      third = await chat(keys.concurrent, { provider: 'ProvA' });
      if (third.status !== 429) break;
      await third.body?.cancel();
      await sleep(20);
    }
    assert.equal(third?.status, 200);
    await third?.body?.cancel();
  });

  test("a provider's own limit: skipped for the next provider, or a 429 with retry-after when it is alone", async () => {
    const first = await chat(mainKey, { provider: 'ProvC ProvA' });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-interference-provider'), 'ProvC');
    await first.body?.cancel();

    const fromC = c.requests.length;
    const second = await chat(mainKey, { provider: 'ProvC ProvA' });
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-interference-provider'), 'ProvA');
    assert.match(second.headers.get('x-interference-attempts') ?? '', /ProvC=rate_limit/);
    await second.body?.cancel();

    const alone = await chat(mainKey, { provider: 'ProvC' });
    const body = await errorOf(alone);
    assertRateLimited(alone, body);
    assert.match(body.error.message, /ProvC/);
    assert.equal(c.requests.length, fromC, 'a provider over its limit is not called');
  });
});

describe('gateway keys and limits across two replicas sharing Redis', () => {
  const limit = 5;
  const replicaKey = 'sk-replica-shared-limit-62d1';
  let redis: RedisServer;
  let fake: Fake;
  let replicas: GatewayProcess[] = [];

  before(async () => {
    redis = await startRedis();
    fake = await startOpenAICompatibleFake({ reply: 'shared' });
    const config = {
      providers: [{ id: 'ProvA', api: 'openai', baseUrl: fake.url, models: ['test-model'] }],
      keys: [{ name: 'replica', keyHash: sha256(replicaKey), limits: { requestsPerMinute: limit } }],
    };
    replicas = await Promise.all([0, 1].map(() => startGatewayProcess({ env: { REDIS_URL: redis.url, INTERFERENCE_LOG: '1' }, config })));
  });
  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await Promise.all([redis.stop(), fake.close()]);
  });

  const ask = (replica: GatewayProcess): Promise<Response> =>
    replica.post('/v1/chat/completions', { provider: 'ProvA', messages: userMessage }, { headers: bearer(replicaKey) });

  test(`a limit of ${limit} requests per minute admits exactly ${limit} across both replicas`, async () => {
    const responses = await Promise.all(Array.from({ length: 4 * limit }, (_, index) => ask(replicas[index % 2] as GatewayProcess)));
    const statuses = await Promise.all(
      responses.map(async (response) => {
        await response.body?.cancel();
        return response.status;
      }),
    );
    assert.equal(statuses.filter((status) => status === 200).length, limit, `statuses: ${statuses.join(' ')}`);
    assert.equal(statuses.filter((status) => status === 429).length, 3 * limit);
    for (const replica of replicas) assert.ok(!replica.stderr().includes(replicaKey), 'the key never reaches a log');
  });

  test('with Redis down, requests are still served: each replica counts on its own, and says so once', async () => {
    await redis.kill();
    for (const replica of replicas) {
      for (let round = 0; round < 2; round++) {
        const response = await ask(replica);
        assert.equal(response.status, 200, `replica ${replica.port}, round ${round}: ${await response.clone().text()}`);
        await response.body?.cancel();
      }
      // The log line arrives through a pipe: wait for it, however long that takes within the test's life.
      for (let tries = 0; tries < 250 && !replica.stderr().includes('rate_limits_local'); tries++) await sleep(20);
      assert.equal(replica.stderr().split('rate_limits_local').length - 1, 1, replica.stderr());
    }
  });
});
