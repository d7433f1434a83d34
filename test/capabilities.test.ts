/**
 * Capabilities and warnings: a request that uses tools, images, JSON mode or streaming is never
 * sent to a provider that cannot honour it without saying so. Named alone, such a provider is a
 * 400 naming it and the feature; chosen automatically, it is skipped (a recorded attempt). Fields
 * a provider ignores come back in `x-interference-warnings` and in the log line; an upstream's own
 * finish reason is kept beside the mapped one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { normalizeChunk, normalizeCompletion } from '../src/core/normalize.js';
import type { ChatChunk, ChatCompletion } from '../src/core/types.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';

const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

describe('capabilities and warnings', () => {
  let mistral: Fake;
  let gateway: Gateway;

  before(async () => {
    mistral = await startOpenAICompatibleFake({ reply: 'Bonjour.', apiKey: 'mistral-test-key' });
    gateway = await startGateway({ env: { MISTRAL_BASE_URL: mistral.url, MISTRAL_API_KEY: 'mistral-test-key', INTERFERENCE_RETRIES: '0' } });
  });
  after(async () => {
    await gateway.close();
    await mistral.close();
  });

  test("/v1/providers lists each provider's capabilities", async () => {
    const providers = (await (await gateway.get('/v1/providers')).json()) as Array<{ id: string; capabilities: string[] }>;
    const of = (id: string) => providers.find((provider) => provider.id === id)?.capabilities;
    assert.deepEqual(of('Local'), ['stream']);
    assert.deepEqual(of('Mistral'), ['stream', 'tools', 'vision', 'json']);
    assert.deepEqual(of('Anthropic'), ['stream', 'tools', 'vision', 'json']);
    assert.deepEqual(of('GeminiPro'), ['stream', 'tools', 'vision', 'json']);
    assert.deepEqual(of('HuggingSpace'), ['images']);
    assert.deepEqual(of('OpenaiAPI'), ['stream', 'tools', 'vision', 'json', 'images']);
    const entrances = (id: string) => (providers.find((provider) => provider.id === id) as { entrances?: string[] } | undefined)?.entrances;
    assert.deepEqual(entrances('Local'), ['/v1/chat/completions', '/v1/messages', '/v1/responses']);
    assert.deepEqual(entrances('HuggingSpace'), ['/v1/images/generations']);
    assert.deepEqual(entrances('OpenaiAPI'), ['/v1/chat/completions', '/v1/messages', '/v1/responses', '/v1/images/generations']);
  });

  test('naming a provider that lacks a feature the request uses is a 400 that names both', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Local', messages: userMessage, tools });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { message: string; param: string; code: string } };
    assert.equal(body.error.code, 'unsupported_feature');
    assert.equal(body.error.param, 'provider');
    assert.match(body.error.message, /^Local does not support tools \(function calling\)/);
    const image = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        ],
      },
    ];
    const vision = await gateway.post('/v1/chat/completions', { provider: 'Local', messages: image });
    assert.equal(vision.status, 400);
    assert.match(((await vision.json()) as { error: { message: string } }).error.message, /vision/);
    const json = await gateway.post('/v1/chat/completions', { provider: 'Local', messages: userMessage, response_format: { type: 'json_object' } });
    assert.equal(json.status, 400);
  });

  test('chosen automatically, a provider without the feature is skipped, and the attempt is recorded', async () => {
    const before = mistral.requests.length;
    mistral.setBehaviour({ kind: 'status', status: 500 });
    try {
      // mistral-small-latest is served by Mistral; the embedded model is the last resort.
      const response = await gateway.post('/v1/chat/completions', { model: 'mistral-small-latest', messages: userMessage, tools });
      assert.equal(response.status, 502);
      assert.equal(response.headers.get('x-interference-attempts'), 'Mistral=server Local=bad_request');
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /Local: skipped: Local does not support tools/);
      assert.equal(mistral.requests.length - before, 1);
      // Without tools the same request reaches the embedded model.
      const plain = await gateway.post('/v1/chat/completions', {
        model: 'mistral-small-latest',
        messages: [{ role: 'user', content: 'Once upon a time' }],
        max_tokens: 5,
      });
      assert.equal(plain.status, 200);
      assert.equal(plain.headers.get('x-interference-provider'), 'Local');
    } finally {
      mistral.setBehaviour({ kind: 'ok' });
    }
  });

  test('fields the provider ignores come back as warnings, never silently', async () => {
    const response = await gateway.post('/v1/chat/completions', {
      provider: 'Mistral',
      model: 'mistral-small-latest',
      messages: userMessage,
      seed: 7,
      user: 'u-1',
      temperature: 0.5,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-warnings'), 'user is not supported by Mistral and was not sent');
    // Mistral's own names, through its declaration's hook: the seed is `random_seed`.
    const sent = mistral.requests.at(-1)?.body as Record<string, unknown>;
    assert.deepEqual([sent.seed, sent.random_seed, sent.user, sent.temperature], [undefined, 7, undefined, 0.5]);
    const capped = await gateway.post('/v1/chat/completions', {
      provider: 'Mistral',
      model: 'mistral-small-latest',
      messages: userMessage,
      max_completion_tokens: 12,
    });
    assert.equal(capped.headers.get('x-interference-warnings'), null);
    const cappedBody = mistral.requests.at(-1)?.body as Record<string, unknown>;
    assert.deepEqual([cappedBody.max_tokens, cappedBody.max_completion_tokens], [12, undefined]);
    const clean = await gateway.post('/v1/chat/completions', { provider: 'Mistral', model: 'mistral-small-latest', messages: userMessage, temperature: 0.5 });
    assert.equal(clean.headers.get('x-interference-warnings'), null);
    const local = await gateway.post('/v1/chat/completions', {
      provider: 'Local',
      messages: [{ role: 'user', content: 'Once' }],
      max_tokens: 3,
      logit_bias: { '1': 2 },
    });
    assert.equal(local.status, 200);
    assert.match(local.headers.get('x-interference-warnings') ?? '', /^logit_bias is not supported by Local/);
  });

  test('what a translation changes comes back as a warning too (Anthropic clamps temperature, drops top_p beside it)', async () => {
    const { startAnthropicFake } = await import('./fakes/anthropic-fake.js');
    const anthropic = await startAnthropicFake({ apiKey: 'anthropic-test-key' });
    const claude = await startGateway({ env: { ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: 'anthropic-test-key' } });
    try {
      for (const stream of [false, true]) {
        const response = await claude.post('/v1/chat/completions', {
          provider: 'Anthropic',
          model: 'claude-sonnet-5',
          messages: userMessage,
          temperature: 1.5,
          top_p: 0.9,
          stream,
        });
        assert.equal(response.status, 200);
        await response.text();
        const warnings = response.headers.get('x-interference-warnings') ?? '';
        assert.match(warnings, /Anthropic: .*temperature/);
        assert.match(warnings, /Anthropic: .*top_p/);
      }
      const sent = anthropic.accepted.at(-1)?.body as Record<string, unknown>;
      assert.deepEqual([sent.temperature, sent.top_p], [1, undefined]);
    } finally {
      await claude.close();
      await anthropic.close();
    }
  });

  test("an upstream's own finish reason is kept as native_finish_reason beside the mapped one", () => {
    const completion = normalizeCompletion(
      {
        id: 'c',
        object: 'chat.completion',
        created: 1,
        model: 'm',
        choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'eos' as never, logprobs: null }],
      } as ChatCompletion,
      'P',
      'm',
    );
    assert.deepEqual([completion.choices[0]?.finish_reason, completion.choices[0]?.native_finish_reason], ['stop', 'eos']);
    const chunk = normalizeChunk(
      { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, finish_reason: 'end_turn' as never }] } as ChatChunk,
      'P',
      'm',
    );
    assert.deepEqual([chunk.choices[0]?.finish_reason, chunk.choices[0]?.native_finish_reason], ['stop', 'end_turn']);
    const known = normalizeCompletion(
      {
        id: 'c',
        object: 'chat.completion',
        created: 1,
        model: 'm',
        choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'length', logprobs: null }],
      } as ChatCompletion,
      'P',
      'm',
    );
    assert.equal(known.choices[0]?.native_finish_reason, undefined);
  });
});
