import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalProvider } from '../src/providers/local/local-provider.js';
import { startGateway, type Gateway } from './support/gateway.js';
import { readSse } from './support/sse.js';

const story = [{ role: 'user', content: 'Once upon a time' }];

/** The embedded model through the HTTP server, with no key and no network. */
describe('embedded model end to end', () => {
  let gateway: Gateway;
  let local: LocalProvider;

  before(async () => {
    gateway = await startGateway({ env: { INTERFERENCE_LOCAL_PARALLEL: '1' } });
    local = gateway.registry.find('Local')?.provider as LocalProvider;
  });
  after(() => gateway.close());

  test('with nothing configured, a plain request is answered by the embedded model', async () => {
    const response = await gateway.post('/v1/chat/completions', { messages: story, temperature: 0, max_tokens: 20 });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      provider: string;
      choices: Array<{ message: { content: string }; finish_reason: string }>;
      usage: { completion_tokens: number; prompt_tokens: number };
    };
    assert.equal(body.provider, 'Local');
    assert.match(body.choices[0]?.message.content ?? '', /^, there was a little girl named Lily/);
    assert.equal(body.choices[0]?.finish_reason, 'length');
    assert.equal(body.usage.completion_tokens, 20);
    assert.ok(body.usage.prompt_tokens > 0);
  });

  test('streaming gives the same greedy text, piece by piece', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Local', messages: story, temperature: 0, max_tokens: 20, stream: true });
    const sse = await readSse(response);
    assert.equal(sse.done, true);
    const pieces = sse.events.map((event) => (event as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '');
    assert.ok(pieces.filter((piece) => piece !== '').length >= 10, 'one event per piece, not one blob');
    assert.match(pieces.join(''), /^, there was a little girl named Lily/);
  });

  test('stop strings end the output', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Local', messages: story, temperature: 0, max_tokens: 60, stop: ['Lily'] });
    const body = (await response.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }> };
    assert.equal(body.choices[0]?.finish_reason, 'stop');
    assert.ok(!(body.choices[0]?.message.content ?? '').includes('Lily'));
  });

  test('a client that disconnects mid-stream stops generation at once and frees the sequence', async () => {
    const controller = new AbortController();
    const response = await gateway.post(
      '/v1/chat/completions',
      { provider: 'Local', messages: story, max_tokens: 480, stream: true },
      { signal: controller.signal },
    );
    const reader = response.body?.getReader();
    assert.ok(reader);
    await reader.read();
    assert.equal(local.activeGenerations(), 1);
    controller.abort();
    const deadline = Date.now() + 1000;
    while (local.activeGenerations() > 0 && Date.now() < deadline) await sleep(5);
    assert.equal(local.activeGenerations(), 0, 'generation stopped after the client left');
    // With one sequence, a new request is served immediately.
    const next = await gateway.post('/v1/chat/completions', { provider: 'Local', messages: story, max_tokens: 3 });
    assert.equal(next.status, 200);
  });

  test('concurrent requests queue for the sequence and all succeed', async () => {
    const responses = await Promise.all([1, 2, 3, 4].map(() => gateway.post('/v1/chat/completions', { provider: 'Local', messages: story, max_tokens: 10 })));
    for (const response of responses) assert.equal(response.status, 200);
    const bodies = (await Promise.all(responses.map((response) => response.json()))) as Array<{ usage: { completion_tokens: number } }>;
    for (const body of bodies) assert.equal(body.usage.completion_tokens, 10);
  });

  test('the default hf: model that cannot be fetched: a clear 503 with the cause, kept in later errors and in /v1/providers', async () => {
    const { closedPortUrl } = await import('./fakes/openai-compatible-fake.js');
    const endpoint = (await closedPortUrl()).replace(/\/v1$/, '/');
    const offline = await startGateway({ env: { INTERFERENCE_LOCAL_MODEL: 'hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0', HF_ENDPOINT: endpoint } });
    try {
      const before = (await (await offline.get('/v1/providers/Local')).json()) as { configured: boolean; models: string[] };
      assert.equal(before.configured, true, 'not known to fail before the first use');
      assert.deepEqual(before.models, ['SmolLM2-135M-Instruct-GGUF:Q8_0']);
      const first = await offline.post('/v1/chat/completions', { messages: story });
      assert.equal(first.status, 503, 'a configuration state, not an upstream failure');
      const firstMessage = ((await first.json()) as { error: { message: string } }).error.message;
      assert.match(firstMessage, /could not be downloaded from http:\/\/127\.0\.0\.1:\d+\/.*INTERFERENCE_LOCAL_MODEL/);
      const after = (await (await offline.get('/v1/providers/Local')).json()) as { configured: boolean; status_message: string; circuit: string };
      assert.equal(after.configured, false);
      assert.equal(after.circuit, 'closed', 'not counted as a health failure');
      assert.match(after.status_message, /could not be downloaded.*INTERFERENCE_LOCAL_MODEL.*tried again by a request in \d+ s/);
      // The second request still says why, and suggests nothing that cannot answer.
      const second = await offline.post('/v1/chat/completions', { messages: story });
      assert.equal(second.status, 404);
      const secondMessage = ((await second.json()) as { error: { message: string } }).error.message;
      assert.match(secondMessage, /Local: the embedded model .* could not be downloaded/);
      assert.doesNotMatch(secondMessage, /ready to be named/);
    } finally {
      await offline.close();
    }
  });

  test('a missing model file: Local is listed as not configured and says how to fix it', async () => {
    const broken = await startGateway({ env: { INTERFERENCE_LOCAL_MODEL: '/nonexistent/model.gguf' } });
    try {
      const detail = (await (await broken.get('/v1/providers/Local')).json()) as { configured: boolean; status_message: string };
      assert.equal(detail.configured, false);
      assert.match(detail.status_message, /INTERFERENCE_LOCAL_MODEL/);
      const response = await broken.post('/v1/chat/completions', { provider: 'Local', messages: story });
      assert.equal(response.status, 503);
      const body = (await response.json()) as { error: { message: string } };
      assert.match(body.error.message, /INTERFERENCE_LOCAL_MODEL/);
      const auto = await broken.post('/v1/chat/completions', { messages: story });
      assert.equal(auto.status, 404);
    } finally {
      await broken.close();
    }
  });
});
