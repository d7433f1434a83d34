import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closedPortUrl, startOpenAICompatibleFake, type Behaviour, type Fake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';
import type { ErrorBody } from './support/http.js';
import { readSse, streamText } from './support/sse.js';

/** Failover before the first content, errors after it, and the final error when all fail. */
describe('failover', () => {
  let flaky: Fake;
  let second: Fake;
  let good: Fake;
  let refusedUrl: string;
  let gateway: Gateway;

  before(async () => {
    flaky = await startOpenAICompatibleFake({ reply: 'flaky answer' });
    second = await startOpenAICompatibleFake({ reply: 'second answer' });
    good = await startOpenAICompatibleFake({ reply: 'good answer here' });
    refusedUrl = await closedPortUrl();
    gateway = await startGateway({
      // Breaker and retries off here: these tests are about failover itself (see reliability.test.ts).
      env: { INTERFERENCE_FIRST_BYTE_TIMEOUT_MS: '400', INTERFERENCE_IDLE_TIMEOUT_MS: '400', INTERFERENCE_BREAKER_FAILURES: '1000', INTERFERENCE_RETRIES: '0' },
      config: {
        providers: [
          { id: 'Flaky', api: 'openai', baseUrl: flaky.url, models: ['test-model'] },
          { id: 'Second', api: 'openai', baseUrl: second.url, models: ['test-model'] },
          { id: 'Good', api: 'openai', baseUrl: good.url, models: ['test-model'] },
          { id: 'Refused', api: 'openai', baseUrl: refusedUrl, models: ['test-model'] },
        ],
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([flaky.close(), second.close(), good.close()]);
  });

  const beforeContent: Array<[string, Behaviour]> = [
    ['HTTP 500', { kind: 'status', status: 500 }],
    ['HTTP 503', { kind: 'status', status: 503 }],
    ['HTTP 429 with retry-after', { kind: 'rate-limit', retryAfterSeconds: 7 }],
    ['HTTP 401 (key refused upstream)', { kind: 'status', status: 401 }],
    ['HTTP 404 model not found', { kind: 'status', status: 404 }],
    ['malformed JSON body', { kind: 'malformed' }],
    ['no headers before the first-byte timeout', { kind: 'hang' }],
    ['a stream that breaks before its first content', { kind: 'stream-break-before-content' }],
  ];

  for (const [name, behaviour] of beforeContent) {
    for (const stream of [false, true]) {
      test(`${name} (${stream ? 'stream' : 'json'}) moves on to the next provider`, async () => {
        flaky.setBehaviour(behaviour);
        const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky Good', messages: userMessage, stream });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-interference-provider'), 'Good');
        assert.match(response.headers.get('x-interference-attempts') ?? '', /^Flaky=\w+ Good=ok$/);
        if (stream) {
          const sse = await readSse(response);
          assert.equal(sse.done, true);
          assert.equal(streamText(sse.events), 'good answer here');
          assert.ok(!sse.raw.includes('flaky'));
        } else {
          const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
          assert.equal(body.choices[0]?.message.content, 'good answer here');
        }
        flaky.setBehaviour({ kind: 'ok' });
      });
    }
  }

  test('a refused connection moves on', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Refused Good', messages: userMessage });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-attempts'), 'Refused=connection Good=ok');
  });

  test('a stream that breaks after content ends with an error event then [DONE], never a clean end', async () => {
    flaky.setBehaviour({ kind: 'stream-break-after-content', afterChunks: 1 });
    const goodCalls = good.requests.length;
    const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky Good', messages: userMessage, stream: true });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-provider'), 'Flaky');
    const sse = await readSse(response);
    assert.equal(sse.done, true);
    const last = sse.events.at(-1) as ErrorBody;
    assert.equal(last.error.code, 'upstream_stream_error');
    assert.match(last.error.message, /Flaky/);
    assert.ok(sse.events.length >= 2, 'content came before the error');
    assert.equal(good.requests.length, goodCalls, 'no failover once content was sent');
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('an error event inside a 200 stream after content reaches the client as an error event', async () => {
    flaky.setBehaviour({ kind: 'stream-error-event' });
    const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky', messages: userMessage, stream: true });
    const sse = await readSse(response);
    assert.equal(sse.done, true);
    assert.ok((sse.events.at(-1) as ErrorBody).error.message.length > 0);
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('a stream that stalls after content is cut by the idle timeout with an error event', async () => {
    flaky.setBehaviour({ kind: 'stream-stall', afterChunks: 2 });
    const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky', messages: userMessage, stream: true });
    const sse = await readSse(response);
    assert.equal(sse.done, true);
    assert.match((sse.events.at(-1) as ErrorBody).error.message, /idle|stalled|timeout/i);
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('all rate limited: 429 with the shortest retry-after, each failure listed', async () => {
    flaky.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 9 });
    second.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 3 });
    const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky Second', messages: userMessage });
    assert.equal(response.status, 429);
    assert.equal(response.headers.get('retry-after'), '3');
    const body = (await response.json()) as ErrorBody;
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /Flaky: HTTP 429/);
    assert.match(body.error.message, /Second: HTTP 429/);
    flaky.setBehaviour({ kind: 'ok' });
    second.setBehaviour({ kind: 'ok' });
  });

  test('all missing keys: 401 saying where to put them', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Groq OpenaiAPI', messages: userMessage });
    assert.equal(response.status, 401);
    const body = (await response.json()) as ErrorBody;
    assert.match(body.error.message, /GROQ_API_KEY/);
    assert.match(body.error.message, /OPENAI_API_KEY/);
  });

  test('mixed failures: 502 listing each provider, the same for a stream (no 200 sent)', async () => {
    flaky.setBehaviour({ kind: 'status', status: 500 });
    for (const stream of [false, true]) {
      const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky Refused Groq', messages: userMessage, stream });
      assert.equal(response.status, 502);
      assert.match(response.headers.get('content-type') ?? '', /application\/json/);
      const body = (await response.json()) as ErrorBody;
      assert.equal(body.error.code, 'all_providers_failed');
      assert.match(body.error.message, /Flaky: HTTP 500.*Refused: connection refused.*Groq needs an API key/);
    }
    flaky.setBehaviour({ kind: 'ok' });
  });

  test('a single provider rejecting the request passes its 4xx status through', async () => {
    flaky.setBehaviour({ kind: 'status', status: 400 });
    const response = await gateway.post('/v1/chat/completions', { provider: 'Flaky', messages: userMessage });
    assert.equal(response.status, 400);
    flaky.setBehaviour({ kind: 'ok' });
  });
});
