/**
 * /metrics in Prometheus text format, scraped after known traffic: the counters match what was
 * sent (requests by route, provider and status; attempts by outcome; failovers; tokens), the
 * gauges say what the breaker and the embedded model are doing, and the route is behind the
 * gateway key, or alone on its own port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { startPollinationsFake, type PollinationsFake } from './fakes/image-fakes.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';

/** The samples of a text exposition: `name{labels} value` lines, labels parsed. */
function parseExposition(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

type Samples = ReturnType<typeof parseExposition>;

/** The sum of the samples named `name` whose labels include `labels`. */
function total(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

describe('metrics', () => {
  let groq: Fake;
  let broken: Fake;
  let pollinations: PollinationsFake;
  let gateway: Gateway;

  before(async () => {
    groq = await startOpenAICompatibleFake({ apiKey: 'gsk', reply: 'Hello from the metrics test.' });
    broken = await startOpenAICompatibleFake({ apiKey: 'sk-or', behaviour: { kind: 'status', status: 500 } });
    pollinations = await startPollinationsFake();
    gateway = await startGateway({
      env: {
        GROQ_BASE_URL: groq.url,
        GROQ_API_KEY: 'gsk',
        OPENROUTER_BASE_URL: broken.url,
        OPENROUTER_API_KEY: 'sk-or',
        POLLINATIONSAI_BASE_URL: pollinations.url,
        INTERFERENCE_RETRIES: '0',
        INTERFERENCE_BREAKER_FAILURES: '2',
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([groq.close(), broken.close(), pollinations.close()]);
  });

  async function scrape(target: Gateway = gateway, headers: Record<string, string> = {}): Promise<Samples> {
    const response = await fetch(`${target.url}/metrics`, { headers });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parseExposition(await response.text());
  }

  test('after known traffic, the counters match what was sent', async () => {
    let prompt = 0;
    let completion = 0;
    const count = (usage: { prompt_tokens: number; completion_tokens: number } | undefined): void => {
      prompt += usage?.prompt_tokens ?? 0;
      completion += usage?.completion_tokens ?? 0;
    };
    // 3 chat answers by Groq (one streamed, with usage), 2 of them after OpenRouter failed first.
    for (let index = 0; index < 2; index++) {
      const response = await gateway.post('/v1/chat/completions', { provider: 'OpenRouter Groq', messages: userMessage });
      assert.equal(response.status, 200);
      count(((await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage);
    }
    const streamed = await gateway.post('/v1/chat/completions', {
      provider: 'Groq',
      messages: userMessage,
      stream: true,
      stream_options: { include_usage: true },
    });
    for (const line of (await streamed.text()).split('\n')) {
      if (!line.startsWith('data: {')) continue;
      count((JSON.parse(line.slice(6)) as { usage?: { prompt_tokens: number; completion_tokens: number } }).usage);
    }
    // A 404 (unknown provider), a 400 (bad body), an image, and an unknown route.
    assert.equal((await gateway.post('/v1/chat/completions', { provider: 'NoSuch', messages: userMessage })).status, 404);
    assert.equal((await gateway.post('/v1/chat/completions', { messages: 'not a list' })).status, 400);
    assert.equal((await gateway.post('/v1/images/generate', { prompt: 'a cat', provider: 'PollinationsAI', response_format: 'b64_json' })).status, 200);
    assert.equal((await fetch(`${gateway.url}/v1/nothing-here`)).status, 404);

    const samples = await scrape();
    const chat = '/v1/chat/completions';
    assert.equal(total(samples, 'interference_requests_total', { route: chat, provider: 'Groq', status: '200' }), 3);
    assert.equal(total(samples, 'interference_requests_total', { route: chat, provider: '', status: '404' }), 1);
    assert.equal(total(samples, 'interference_requests_total', { route: chat, provider: '', status: '400' }), 1);
    assert.equal(total(samples, 'interference_requests_total', { route: '/v1/images/generate', provider: 'PollinationsAI', status: '200' }), 1);
    assert.equal(total(samples, 'interference_requests_total', { route: 'unmatched', status: '404' }), 1);
    assert.equal(total(samples, 'interference_request_duration_seconds_count', { route: chat, provider: 'Groq' }), 3);
    assert.equal(total(samples, 'interference_overhead_seconds_count', { route: chat }), 5);
    assert.equal(total(samples, 'interference_attempts_total', { provider: 'Groq', outcome: 'ok' }), 3);
    assert.equal(total(samples, 'interference_attempts_total', { provider: 'OpenRouter', outcome: 'server' }), 2);
    assert.equal(total(samples, 'interference_attempts_total', { provider: 'PollinationsAI', outcome: 'ok' }), 1);
    assert.equal(total(samples, 'interference_failovers_total'), 2);
    assert.ok(prompt > 0 && completion > 0);
    assert.equal(total(samples, 'interference_tokens_total', { provider: 'Groq', kind: 'prompt' }), prompt);
    assert.equal(total(samples, 'interference_tokens_total', { provider: 'Groq', kind: 'completion' }), completion);
    // Two failures in a row opened OpenRouter's breaker (INTERFERENCE_BREAKER_FAILURES=2); Groq's is closed.
    assert.equal(total(samples, 'interference_provider_circuit_open', { provider: 'OpenRouter' }), 1);
    assert.equal(total(samples, 'interference_provider_circuit_open', { provider: 'Groq' }), 0);
    assert.equal(total(samples, 'interference_local_queue_depth'), 0);
    // Node's process metrics are there too.
    assert.ok(total(samples, 'process_resident_memory_bytes') > 0);
    assert.ok(samples.some((sample) => sample.name === 'nodejs_eventloop_lag_seconds'));
  });

  test('the embedded model: generations running and queued show while they run', async () => {
    const first = gateway.post('/v1/chat/completions', { provider: 'Local', messages: userMessage, max_tokens: 64, stream: true });
    const second = gateway.post('/v1/chat/completions', { provider: 'Local', messages: userMessage, max_tokens: 64, stream: true });
    const responses = await Promise.all([first, second]);
    await Promise.all(responses.map((response) => response.text()));
    const samples = await scrape();
    assert.equal(total(samples, 'interference_requests_total', { route: '/v1/chat/completions', provider: 'Local', status: '200' }), 2);
    assert.equal(total(samples, 'interference_local_running'), 0);
    assert.ok(total(samples, 'interference_tokens_total', { provider: 'Local', kind: 'completion' }) > 0);
  });

  test('a client that leaves mid-stream is counted as 499', async () => {
    const slow = await startOpenAICompatibleFake({
      apiKey: 'sk-slow',
      reply: ['a', 'b', 'c', 'd', 'e', 'f'],
      behaviour: { kind: 'slow-stream', delayMs: 200 },
    });
    const target = await startGateway({ env: { GROQ_BASE_URL: slow.url, GROQ_API_KEY: 'sk-slow' } });
    try {
      const controller = new AbortController();
      const response = await fetch(`${target.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ provider: 'Groq', messages: userMessage, stream: true }),
        signal: controller.signal,
      });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      controller.abort();
      let samples: Samples = [];
      for (let tries = 0; tries < 100; tries++) {
        samples = await scrape(target);
        if (total(samples, 'interference_requests_total', { status: '499' }) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(total(samples, 'interference_requests_total', { route: '/v1/chat/completions', provider: 'Groq', status: '499' }), 1);
    } finally {
      await target.close();
      await slow.close();
    }
  });

  test('behind the gateway key when one is set', async () => {
    const keyed = await startGateway({ env: { INTERFERENCE_API_KEY: 'gateway-secret' } });
    try {
      assert.equal((await fetch(`${keyed.url}/metrics`)).status, 401);
      const samples = await scrape(keyed, { authorization: 'Bearer gateway-secret' });
      // The refused scrape was counted: route /metrics, status 401.
      assert.equal(total(samples, 'interference_requests_total', { route: '/metrics', status: '401' }), 1);
    } finally {
      await keyed.close();
    }
  });

  test('on its own port with INTERFERENCE_METRICS_PORT (and not on the API port); off with INTERFERENCE_METRICS=off', async () => {
    const separate = await startGateway({ env: { INTERFERENCE_API_KEY: 'gateway-secret', INTERFERENCE_METRICS_PORT: '0' } });
    try {
      assert.ok(separate.metricsUrl);
      assert.equal((await fetch(`${separate.url}/metrics`, { headers: { authorization: 'Bearer gateway-secret' } })).status, 404);
      const response = await fetch(separate.metricsUrl);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^# HELP interference_requests_total /m);
      assert.equal((await fetch(separate.metricsUrl.replace('/metrics', '/v1/models'))).status, 404);
    } finally {
      await separate.close();
    }
    const off = await startGateway({ env: { INTERFERENCE_METRICS: 'off' } });
    try {
      assert.equal((await fetch(`${off.url}/metrics`)).status, 404);
    } finally {
      await off.close();
    }
  });
});
