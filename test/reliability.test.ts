import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';
import { readSse } from './support/sse.js';

interface ProviderView {
  working: boolean;
  circuit: string;
  consecutive_failures: number;
  success_rate: number | null;
  median_latency_ms: number | null;
}

const body = (provider: string, extra: Record<string, unknown> = {}) => ({ provider, model: 'test-model', messages: userMessage, ...extra });

describe('circuit breaker and provider health', () => {
  let flaky: Fake;
  let good: Fake;
  let gateway: Gateway;
  before(async () => {
    flaky = await startOpenAICompatibleFake({ reply: 'flaky' });
    good = await startOpenAICompatibleFake({ reply: 'good' });
    gateway = await startGateway({
      env: { INTERFERENCE_BREAKER_FAILURES: '3', INTERFERENCE_BREAKER_COOLDOWN_MS: '300', INTERFERENCE_RETRIES: '0' },
      config: {
        providers: [
          { id: 'Flaky', api: 'openai', baseUrl: flaky.url, models: ['test-model'] },
          { id: 'Good', api: 'openai', baseUrl: good.url, models: ['test-model'] },
        ],
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([flaky.close(), good.close()]);
  });

  const view = async (id: string) => (await (await gateway.get(`/v1/providers/${id}`)).json()) as ProviderView;

  test('one error never disables a provider', async () => {
    flaky.setBehaviour((_request, index) => (index % 3 === 2 ? { kind: 'ok' } : { kind: 'status', status: 500 }));
    for (let i = 0; i < 9; i++) await gateway.post('/v1/chat/completions', body('Flaky Good'));
    const state = await view('Flaky');
    assert.equal(state.circuit, 'closed');
    assert.ok(state.consecutive_failures < 3);
    assert.ok(state.success_rate !== null && state.success_rate > 0.3 && state.success_rate < 0.4, String(state.success_rate));
    flaky.setBehaviour({ kind: 'ok' });
    await gateway.post('/v1/chat/completions', body('Flaky'));
  });

  test('a provider that keeps failing is skipped for a cool-down, then probed by real traffic', async () => {
    flaky.setBehaviour({ kind: 'status', status: 503 });
    for (let i = 0; i < 3; i++) {
      const response = await gateway.post('/v1/chat/completions', body('Flaky Good'));
      assert.equal(response.headers.get('x-interference-attempts'), 'Flaky=server Good=ok');
    }
    const open = await view('Flaky');
    assert.equal(open.circuit, 'open');
    assert.equal(open.working, false);
    const before = flaky.requests.length;
    const skipped = await gateway.post('/v1/chat/completions', body('Flaky Good'));
    assert.equal(skipped.status, 200);
    assert.equal(skipped.headers.get('x-interference-attempts'), 'Flaky=circuit_open Good=ok');
    assert.equal(flaky.requests.length, before, 'no request reached the open provider');
    const alone = await gateway.post('/v1/chat/completions', body('Flaky'));
    assert.equal(alone.status, 503);
    assert.ok(Number(alone.headers.get('retry-after')) >= 1);
    assert.match(((await alone.json()) as { error: { message: string } }).error.message, /circuit open/);

    flaky.setBehaviour({ kind: 'ok' });
    await sleep(350);
    assert.equal((await view('Flaky')).circuit, 'half_open');
    const probe = await gateway.post('/v1/chat/completions', body('Flaky Good'));
    assert.equal(probe.headers.get('x-interference-provider'), 'Flaky', 'the probe went through and succeeded');
    const closed = await view('Flaky');
    assert.equal(closed.circuit, 'closed');
    assert.equal(closed.consecutive_failures, 0);
    assert.ok(closed.median_latency_ms !== null && closed.median_latency_ms >= 0);
  });

  test('a failed probe reopens the breaker with a longer cool-down', async () => {
    flaky.setBehaviour({ kind: 'status', status: 500 });
    for (let i = 0; i < 3; i++) await gateway.post('/v1/chat/completions', body('Flaky Good'));
    await sleep(350);
    const probe = await gateway.post('/v1/chat/completions', body('Flaky Good'));
    assert.equal(probe.headers.get('x-interference-attempts'), 'Flaky=server Good=ok');
    await sleep(350);
    // Cool-down doubled (600 ms): still open after 350 ms.
    assert.equal((await view('Flaky')).circuit, 'open');
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('/v1/providers lists working, circuit, success rate and median latency', async () => {
    const list = (await (await gateway.get('/v1/providers')).json()) as Array<ProviderView & { id: string }>;
    const good = list.find((entry) => entry.id === 'Good');
    assert.ok(good);
    assert.equal(good.working, true);
    assert.equal(good.circuit, 'closed');
    assert.equal(good.success_rate, 1);
    assert.equal(typeof good.median_latency_ms, 'number');
  });
});

describe('retries of a lone provider', () => {
  let flaky: Fake;
  let gateway: Gateway;
  before(async () => {
    flaky = await startOpenAICompatibleFake({ reply: 'eventually' });
    gateway = await startGateway({
      env: { INTERFERENCE_RETRIES: '2', INTERFERENCE_RETRY_BASE_MS: '20', INTERFERENCE_RETRY_MAX_WAIT_MS: '1500', INTERFERENCE_BREAKER_FAILURES: '1000' },
      config: { providers: [{ id: 'Flaky', api: 'openai', baseUrl: flaky.url, models: ['test-model'] }] },
    });
  });
  after(async () => {
    await gateway.close();
    await flaky.close();
  });

  test('5xx then success: retried with backoff, the client sees one success', async () => {
    const from = flaky.requests.length;
    flaky.setBehaviour((_request, index) => (index - from < 2 ? { kind: 'status', status: 502 } : { kind: 'ok' }));
    const response = await gateway.post('/v1/chat/completions', body('Flaky'));
    assert.equal(response.status, 200);
    assert.equal(flaky.requests.length - from, 3);
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('429 with retry-after: waits that long, then succeeds', async () => {
    const from = flaky.requests.length;
    flaky.setBehaviour((_request, index) => (index === from ? { kind: 'rate-limit', retryAfterSeconds: 1 } : { kind: 'ok' }));
    const started = Date.now();
    const response = await gateway.post('/v1/chat/completions', body('Flaky', { stream: true }));
    assert.equal(response.status, 200);
    assert.ok(Date.now() - started >= 950, 'honoured retry-after');
    assert.equal((await readSse(response)).done, true);
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('a retry-after beyond the cap is not waited for: the 429 comes back at once', async () => {
    flaky.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 30 });
    const started = Date.now();
    const response = await gateway.post('/v1/chat/completions', body('Flaky'));
    assert.equal(response.status, 429);
    assert.equal(response.headers.get('retry-after'), '30');
    assert.ok(Date.now() - started < 500);
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('4xx request errors are not retried, and nothing is retried after content', async () => {
    let from = flaky.requests.length;
    flaky.setBehaviour({ kind: 'status', status: 400 });
    assert.equal((await gateway.post('/v1/chat/completions', body('Flaky'))).status, 400);
    assert.equal(flaky.requests.length - from, 1);
    from = flaky.requests.length;
    flaky.setBehaviour({ kind: 'stream-break-after-content', afterChunks: 1 });
    const sse = await readSse(await gateway.post('/v1/chat/completions', body('Flaky', { stream: true })));
    assert.ok((sse.events.at(-1) as { error?: unknown }).error !== undefined);
    assert.equal(flaky.requests.length - from, 1);
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('a hung upstream becomes a timeout, not a hung client', async () => {
    const hurried = await startGateway({
      env: { INTERFERENCE_FIRST_BYTE_TIMEOUT_MS: '200', INTERFERENCE_RETRIES: '0' },
      config: { providers: [{ id: 'Flaky', api: 'openai', baseUrl: flaky.url, models: ['test-model'] }] },
    });
    try {
      flaky.setBehaviour({ kind: 'hang' });
      const started = Date.now();
      const response = await hurried.post('/v1/chat/completions', body('Flaky'));
      assert.equal(response.status, 504);
      assert.ok(Date.now() - started < 2000);
    } finally {
      flaky.setBehaviour({ kind: 'ok' });
      await hurried.close();
    }
  });
});

describe('health counts requests, not tries', () => {
  test('one failing request (with its 2 retries) leaves the circuit closed; three failing requests open it', async () => {
    const broken = await startOpenAICompatibleFake({ behaviour: { kind: 'status', status: 500 } });
    const gateway = await startGateway({
      env: { INTERFERENCE_RETRIES: '2', INTERFERENCE_RETRY_BASE_MS: '5', INTERFERENCE_BREAKER_FAILURES: '3' },
      config: { providers: [{ id: 'Broken', api: 'openai', baseUrl: broken.url, models: ['test-model'] }] },
    });
    try {
      const circuit = async () => (await (await gateway.get('/v1/providers/Broken')).json()) as { circuit: string; consecutive_failures: number };
      assert.equal((await gateway.post('/v1/chat/completions', body('Broken'))).status, 502);
      assert.equal(broken.requests.length, 3, 'the request was tried three times');
      assert.deepEqual(await circuit(), { ...(await circuit()), circuit: 'closed', consecutive_failures: 1 });
      assert.equal((await gateway.post('/v1/chat/completions', body('Broken'))).status, 502);
      assert.equal((await circuit()).circuit, 'closed');
      assert.equal((await gateway.post('/v1/chat/completions', body('Broken'))).status, 502);
      assert.deepEqual(await circuit(), { ...(await circuit()), circuit: 'open', consecutive_failures: 3 });
      const skipped = await gateway.post('/v1/chat/completions', body('Broken'));
      assert.equal(skipped.status, 503);
      assert.equal(broken.requests.length, 9, 'the open circuit spares the upstream');
    } finally {
      await gateway.close();
      await broken.close();
    }
  });
});

describe('gateway auth, limits and shutdown', () => {
  let upstream: Fake;
  before(async () => {
    upstream = await startOpenAICompatibleFake({ reply: 'fine' });
  });
  after(() => upstream.close());
  const config = () => ({ providers: [{ id: 'Up', api: 'openai', baseUrl: upstream.url, models: ['test-model'] }] });

  test('with a gateway key, /v1, /api and /images need it; pre-flight and /health do not', async () => {
    const gateway = await startGateway({ env: { INTERFERENCE_API_KEY: 'gw-secret-key' }, config: config() });
    try {
      const missing = await gateway.get('/v1/models');
      assert.equal(missing.status, 401);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'missing_api_key');
      const wrong = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
      assert.equal((await fetch(`${gateway.url}/v1/models`, { headers: { authorization: 'Bearer gw-secret-key' } })).status, 200);
      assert.equal((await fetch(`${gateway.url}/v1/providers`, { headers: { 'x-api-key': 'gw-secret-key' } })).status, 200);
      assert.equal((await gateway.post('/api/Up/chat/completions', body('Up'))).status, 401);
      assert.equal((await gateway.get('/images/0123456789abcdef0123456789abcdef.png')).status, 401);
      assert.equal((await fetch(`${gateway.url}/v1/chat/completions`, { method: 'OPTIONS' })).status, 204);
      assert.equal((await gateway.get('/health')).status, 200);
      // The gateway key authenticates the client; it is never sent upstream.
      const from = upstream.requests.length;
      const ok = await gateway.post('/v1/chat/completions', body('Up'), { headers: { authorization: 'Bearer gw-secret-key' } });
      assert.equal(ok.status, 200);
      assert.equal(upstream.requests[from]?.headers.authorization, undefined);
    } finally {
      await gateway.close();
    }
  });

  test('message count and concurrent requests are limited with clear 4xx', async () => {
    const gateway = await startGateway({ env: { INTERFERENCE_MAX_MESSAGES: '3', INTERFERENCE_MAX_CONCURRENT: '1' }, config: config() });
    try {
      const many = Array.from({ length: 4 }, () => ({ role: 'user', content: 'x' }));
      const tooMany = await gateway.post('/v1/chat/completions', { ...body('Up'), messages: many });
      assert.equal(tooMany.status, 400);
      assert.equal(((await tooMany.json()) as { error: { param: string } }).error.param, 'messages');
      upstream.setBehaviour({ kind: 'slow-stream', delayMs: 100 });
      const first = gateway.post('/v1/chat/completions', body('Up', { stream: true }));
      await sleep(50);
      const second = await gateway.post('/v1/chat/completions', body('Up'));
      assert.equal(second.status, 429);
      assert.equal(second.headers.get('retry-after'), '1');
      assert.equal((await readSse(await first)).done, true);
      upstream.setBehaviour({ kind: 'ok' });
      assert.equal((await gateway.post('/v1/chat/completions', body('Up'))).status, 200, 'the slot is free again');
    } finally {
      upstream.setBehaviour({ kind: 'ok' });
      await gateway.close();
    }
  });

  test('shutdown lets an in-flight stream finish, and refuses new connections', async () => {
    const gateway = await startGateway({ config: config() });
    upstream.setBehaviour({ kind: 'slow-stream', delayMs: 40 });
    try {
      const inFlight = gateway.post('/v1/chat/completions', body('Up', { stream: true }));
      await sleep(60);
      const closing = gateway.close(5000);
      await sleep(20);
      await assert.rejects(fetch(`${gateway.url}/health`));
      const sse = await readSse(await inFlight);
      assert.equal(sse.done, true, 'the stream ran to its end');
      assert.ok(!sse.raw.includes('"error"'));
      await closing;
    } finally {
      upstream.setBehaviour({ kind: 'ok' });
    }
  });
});
