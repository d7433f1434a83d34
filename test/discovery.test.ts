import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, type Gateway } from './support/gateway.js';

const builtIns = [
  'HuggingChat',
  'HuggingFace',
  'OpenaiAPI',
  'PollinationsAI',
  'Groq',
  'DeepInfra',
  'OpenRouter',
  'Together',
  'xAI',
  'DeepSeek',
  'Cerebras',
  'Mistral',
  'Ollama',
  'LlamaCpp',
  'Anthropic',
  'GeminiPro',
  'HuggingSpace',
  'BlackForestLabs_Flux1Schnell',
  'BlackForestLabs_Flux1Dev',
  'StabilityAI_SD35Large',
  'Local',
];

/** GET /v1/providers, /v1/providers/{id}, /v1/models, /v1/models/{id}. */
describe('discovery', () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await startGateway({ env: { GROQ_API_KEY: 'gsk-discovery' } });
  });
  after(() => gateway.close());

  test('/v1/providers is a bare array with every built-in provider and its flags', async () => {
    const list = (await (await gateway.get('/v1/providers')).json()) as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(list));
    assert.deepEqual(
      list.map((entry) => entry.id),
      builtIns,
    );
    for (const entry of list) {
      for (const field of ['id', 'object', 'url', 'label', 'parent', 'needs_auth', 'configured', 'supports_stream', 'image', 'vision']) {
        assert.ok(field in entry, `${String(entry.id)} lacks ${field}`);
      }
      assert.equal(entry.object, 'provider');
    }
    const byId = new Map(list.map((entry) => [entry.id, entry]));
    assert.equal(byId.get('Groq')?.configured, true);
    assert.equal(byId.get('OpenaiAPI')?.configured, false);
    assert.match(String(byId.get('OpenaiAPI')?.status_message), /OPENAI_API_KEY/);
    assert.equal(byId.get('Local')?.configured, true);
    assert.equal(byId.get('Local')?.needs_auth, false);
    assert.equal(byId.get('HuggingChat')?.parent, 'HuggingFace');
  });

  test('/v1/providers/{id} adds models, image and vision models and the declared params', async () => {
    const groq = (await (await gateway.get('/v1/providers/Groq')).json()) as Record<string, unknown>;
    assert.ok((groq.models as string[]).includes('llama-3.3-70b-versatile'));
    assert.deepEqual(groq.image_models, []);
    assert.ok(Array.isArray(groq.vision_models));
    const params = groq.params as string[];
    assert.ok(params.includes('temperature') && params.includes('tools'));
    assert.ok(!params.includes('logprobs'), 'Groq declares logprobs unsupported');
    const local = (await (await gateway.get('/v1/providers/local')).json()) as Record<string, unknown>;
    assert.equal(local.id, 'Local');
    assert.deepEqual(local.models, ['stories260K']);
  });

  test('/v1/models lists models and aliases with the providers serving them', async () => {
    const list = (await (await gateway.get('/v1/models')).json()) as { object: string; data: Array<{ id: string; providers: string[]; available: boolean }> };
    assert.equal(list.object, 'list');
    const llama = list.data.find((model) => model.id === 'llama-3.3-70b');
    assert.ok(llama);
    assert.ok(llama.providers.includes('Groq') && llama.providers.includes('HuggingChat'));
    assert.equal(llama.available, true);
    const ids = new Set(list.data.map((model) => model.id));
    assert.equal(ids.size, list.data.length, 'no duplicates');
    const one = (await (await gateway.get('/v1/models/meta-llama/Llama-3.3-70B-Instruct')).json()) as { id: string; providers: string[] };
    assert.equal(one.id, 'meta-llama/Llama-3.3-70B-Instruct');
    assert.ok(one.providers.includes('HuggingFace'));
  });
});
