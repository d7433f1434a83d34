import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOpenAICompatibleFake, type Fake, type Flavor } from './fakes/openai-compatible-fake.js';
import { assertOpenAIShape } from './support/openai-schema.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';
import { readSse } from './support/sse.js';

/**
 * Whatever the upstream's dialect (OpenAI, Ollama /v1, llama.cpp, Hugging Face with a null
 * system_fingerprint, the embedded model), what the client gets validates against OpenAI's
 * official OpenAPI schemas.
 */
describe("responses conform to OpenAI's schemas", () => {
  const flavors: Flavor[] = ['openai', 'ollama', 'llamacpp', 'huggingface'];
  const fakes = new Map<Flavor, Fake>();
  let gateway: Gateway;

  before(async () => {
    for (const flavor of flavors) fakes.set(flavor, await startOpenAICompatibleFake({ flavor, reply: `hello from ${flavor} upstream` }));
    gateway = await startGateway({
      config: { providers: flavors.map((flavor) => ({ id: `Fake-${flavor}`, api: 'openai', baseUrl: fakes.get(flavor)?.url, models: ['test-model'] })) },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([...fakes.values()].map((fake) => fake.close()));
  });

  for (const provider of [...flavors.map((flavor) => `Fake-${flavor}`), 'Local']) {
    test(`${provider}: chat.completion`, async () => {
      const response = await gateway.post('/v1/chat/completions', { provider, messages: userMessage, max_tokens: 12 });
      assert.equal(response.status, 200);
      const body = (await response.json()) as Record<string, unknown>;
      assertOpenAIShape('CreateChatCompletionResponse', body);
      assert.equal(body.provider, provider);
      assert.equal(typeof body.model, 'string');
      assert.notEqual(body.system_fingerprint, null);
    });

    test(`${provider}: chat.completion.chunk stream with include_usage`, async () => {
      const response = await gateway.post('/v1/chat/completions', {
        provider,
        messages: userMessage,
        max_tokens: 12,
        stream: true,
        stream_options: { include_usage: true },
      });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      const sse = await readSse(response);
      assert.equal(sse.done, true);
      assert.ok(sse.events.length >= 3);
      for (const event of sse.events) {
        assertOpenAIShape('CreateChatCompletionStreamResponse', event);
        assert.equal((event as { provider: string }).provider, provider);
      }
      const last = sse.events.at(-1) as { choices: unknown[]; usage: { total_tokens: number } };
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage.total_tokens > 0);
    });

    test(`${provider}: no usage chunk unless include_usage`, async () => {
      const response = await gateway.post('/v1/chat/completions', { provider, messages: userMessage, max_tokens: 12, stream: true });
      const sse = await readSse(response);
      assert.ok(sse.events.every((event) => (event as { choices: unknown[] }).choices.length > 0));
    });
  }

  test('errors, model lists and models conform', async () => {
    const error = await gateway.post('/v1/chat/completions', { provider: 'Nope', messages: userMessage });
    assertOpenAIShape('ErrorResponse', await error.json());
    const invalid = await gateway.post('/v1/chat/completions', '{not json');
    assertOpenAIShape('ErrorResponse', await invalid.json());
    const list = (await (await gateway.get('/v1/models')).json()) as { data: Array<{ id: string }> };
    assertOpenAIShape('ListModelsResponse', list);
    const first = list.data[0];
    assert.ok(first !== undefined);
    const model = await gateway.get(`/v1/models/${first.id}`);
    assertOpenAIShape('Model', await model.json());
  });
});
