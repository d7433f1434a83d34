import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';

/** Provider selection: ids, lists, object form, aliases and automatic routing, end to end. */
describe('provider selection', () => {
  let groq: Fake;
  let openai: Fake;
  let ollama: Fake;
  let gateway: Gateway;

  before(async () => {
    groq = await startOpenAICompatibleFake({ reply: 'from groq' });
    openai = await startOpenAICompatibleFake({ reply: 'from openai' });
    ollama = await startOpenAICompatibleFake({ flavor: 'ollama', reply: 'from ollama' });
    gateway = await startGateway({
      env: {
        GROQ_BASE_URL: groq.url,
        GROQ_API_KEY: 'gsk-server-key',
        OPENAIAPI_BASE_URL: openai.url,
        OPENAI_API_KEY: 'sk-server-key',
        OLLAMA_BASE_URL: ollama.url,
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([groq.close(), openai.close(), ollama.close()]);
  });

  test('an exact id answers, and the response names the provider and the real model', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'llama-3.1-8b-instant', provider: 'Groq', messages: userMessage });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-provider'), 'Groq');
    const body = (await response.json()) as { provider: string; model: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'Groq');
    assert.equal(body.model, 'llama-3.1-8b-instant');
    assert.equal(body.choices[0]?.message.content, 'from groq');
  });

  test('ids are matched case-insensitively', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'x', provider: 'groq', messages: userMessage });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { provider: string }).provider, 'Groq');
  });

  test('an unknown id is a 404 provider_not_found that suggests close ids', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Grok', messages: userMessage });
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { message: string; code: string; param: string } };
    assert.equal(body.error.code, 'provider_not_found');
    assert.equal(body.error.param, 'provider');
    assert.match(body.error.message, /"Grok"/);
    assert.match(body.error.message, /Groq/);
  });

  test('model aliases are resolved per provider; unknown models pass through unchanged', async () => {
    const before = groq.requests.length;
    await gateway.post('/v1/chat/completions', { model: 'llama-3.3-70b', provider: 'Groq', messages: userMessage });
    await gateway.post('/v1/chat/completions', { model: 'some-new-model-2027', provider: 'Groq', messages: userMessage });
    await gateway.post('/v1/chat/completions', { model: '', provider: 'Groq', messages: userMessage });
    const sent = groq.requests.slice(before).map((request) => (request.body as { model: string }).model);
    assert.deepEqual(sent, ['llama-3.3-70b-versatile', 'some-new-model-2027', 'llama-3.3-70b-versatile']);
  });

  test('a space-separated list skips unknown ids and names them in a header', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'NoSuchOne Groq AlsoMissing', messages: userMessage });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-unknown-providers'), 'NoSuchOne AlsoMissing');
    assert.equal(response.headers.get('x-interference-provider'), 'Groq');
  });

  test('a list of only unknown ids is a 404 naming all of them', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'Foo Bar', messages: userMessage });
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { message: string } };
    assert.match(body.error.message, /"Foo", "Bar"/);
  });

  test('the list order is kept', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'OpenaiAPI Groq', messages: userMessage });
    assert.equal(((await response.json()) as { provider: string }).provider, 'OpenaiAPI');
  });

  test("OpenRouter's object form: order, only, ignore", async () => {
    const ordered = await gateway.post('/v1/chat/completions', { model: 'llama-3.3-70b', provider: { order: ['Groq'] }, messages: userMessage });
    assert.equal(((await ordered.json()) as { provider: string }).provider, 'Groq');
    const ignored = await gateway.post('/v1/chat/completions', { model: 'llama-3.3-70b', provider: { ignore: ['Groq'] }, messages: userMessage });
    // Groq ignored: the embedded model (last resort) answers.
    assert.equal(((await ignored.json()) as { provider: string }).provider, 'Local');
    const only = await gateway.post('/v1/chat/completions', { provider: { only: ['OpenaiAPI'] }, model: 'gpt-4o-mini', messages: userMessage });
    assert.equal(((await only.json()) as { provider: string }).provider, 'OpenaiAPI');
    const bad = await gateway.post('/v1/chat/completions', { provider: { order: 'Groq' }, messages: userMessage });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { param: string } }).error.param, 'provider.order');
  });

  test('without provider: the configured providers serving the model, keyless first', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'llama3.2', messages: userMessage });
    assert.equal(((await response.json()) as { provider: string }).provider, 'Ollama');
    const keyed = await gateway.post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: userMessage });
    assert.equal(((await keyed.json()) as { provider: string }).provider, 'OpenaiAPI');
  });

  test('once the operator configured a provider, a model none of them declares is a 404 model_not_found with the closest ids', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'llama-3.1-8b-instnt', messages: userMessage, max_tokens: 8 });
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { message: string; code: string; param: string }; model: string };
    assert.equal(body.error.code, 'model_not_found');
    assert.equal(body.error.param, 'model');
    assert.equal(body.model, 'llama-3.1-8b-instnt');
    assert.match(body.error.message, /No configured chat provider serves model "llama-3\.1-8b-instnt"/);
    assert.match(body.error.message, /Did you mean "llama-3\.1-8b-instant"/);
    assert.doesNotMatch(body.error.message, /stories260K/); // the embedded model is not offered as a stand-in
    const far = await gateway.post('/v1/chat/completions', { model: 'model-nobody-has', messages: userMessage });
    assert.equal(far.status, 404);
    assert.doesNotMatch(((await far.json()) as { error: { message: string } }).error.message, /Did you mean/);
  });

  test('the embedded model still answers a model nobody serves when named, and says it stood in', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'model-nobody-has', provider: 'Local', messages: userMessage, max_tokens: 8 });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-warnings'), 'asked for model "model-nobody-has", answered by Local\'s "stories260K"');
    const body = (await response.json()) as { provider: string; model: string };
    assert.equal(body.provider, 'Local');
    assert.equal(body.model, 'stories260K');
  });

  test('the provider can also come from the path: /api/{provider}/chat/completions', async () => {
    const response = await gateway.post('/api/groq/chat/completions', { messages: userMessage });
    assert.equal(((await response.json()) as { provider: string }).provider, 'Groq');
  });
});

describe('provider selection with zero configuration', () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    await gateway.close();
  });

  test('the embedded model answers any model name, and the warnings header says so', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'gpt-4o', messages: userMessage, max_tokens: 8 });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-warnings'), 'asked for model "gpt-4o", answered by Local\'s "stories260K"');
    const body = (await response.json()) as { provider: string; model: string };
    assert.equal(body.provider, 'Local');
    assert.equal(body.model, 'stories260K');
  });

  test('asking for its own model (or none) carries no warning', async () => {
    for (const model of ['stories260K', undefined]) {
      const response = await gateway.post('/v1/chat/completions', { model, messages: userMessage, max_tokens: 8 });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-interference-warnings'), null);
    }
  });

  test('streams carry the same warning', async () => {
    const response = await gateway.post('/v1/chat/completions', { model: 'gpt-4o', messages: userMessage, max_tokens: 8, stream: true });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('x-interference-warnings') ?? '', /answered by Local's "stories260K"/);
    await response.text();
  });
});
