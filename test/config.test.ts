import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, envName, loadConfig } from '../src/config.js';
import { buildRegistry } from '../src/providers/index.js';
import { startOpenAICompatibleFake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage } from './support/gateway.js';

const dirs: string[] = [];
function tempDir(config?: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'interference-config-'));
  dirs.push(dir);
  if (config !== undefined) writeFileSync(path.join(dir, 'interference.config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  test('defaults: 127.0.0.1:1337, no config file', () => {
    const config = loadConfig({}, tempDir());
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 1337);
    assert.equal(config.configPath, null);
  });

  test('PORT and HOST override; bad numbers are a clear error', () => {
    const config = loadConfig({ PORT: '8080', HOST: '0.0.0.0' }, tempDir());
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.throws(
      () => loadConfig({ PORT: 'eighty' }, tempDir()),
      (error: unknown) => error instanceof ConfigError && /PORT/.test(error.message),
    );
  });

  test('a missing INTERFERENCE_LOCAL_MODEL file is a start-up warning, not a stop; public providers can be turned off', () => {
    const config = loadConfig({ INTERFERENCE_LOCAL_MODEL: '/nonexistent/model.gguf', INTERFERENCE_PUBLIC_PROVIDERS: 'off' }, tempDir());
    assert.equal(config.warnings.length, 1);
    assert.match(config.warnings[0] ?? '', /INTERFERENCE_LOCAL_MODEL points at \/nonexistent\/model\.gguf, which does not exist/);
    assert.equal(config.publicProviders, false);
    assert.equal(loadConfig({}, tempDir({ publicProviders: false })).publicProviders, false);
    assert.deepEqual(loadConfig({ INTERFERENCE_LOCAL_MODEL: 'hf:someone/some-model-GGUF' }, tempDir()).warnings, []);
    const registry = buildRegistry(loadConfig({ INTERFERENCE_PUBLIC_PROVIDERS: 'off' }, tempDir()));
    const pollinations = registry.find('PollinationsAI');
    assert.ok(pollinations !== undefined);
    assert.deepEqual(pollinations.publicHosts, ['text.pollinations.ai', 'image.pollinations.ai']);
    assert.match(registry.readiness(pollinations).reason ?? '', /public providers are turned off/);
    // Pointed somewhere by the user, it is no longer a public service by surprise.
    const pointed = buildRegistry(loadConfig({ INTERFERENCE_PUBLIC_PROVIDERS: 'off', POLLINATIONSAI_BASE_URL: 'http://127.0.0.1:9' }, tempDir()));
    assert.equal(pointed.find('PollinationsAI')?.publicHosts, undefined);
  });

  test('env names: id upper-cased, other characters as _', () => {
    assert.equal(envName('OpenaiAPI', 'API_KEY'), 'OPENAIAPI_API_KEY');
    assert.equal(envName('my-llm.v2', 'BASE_URL'), 'MY_LLM_V2_BASE_URL');
  });

  test('keys: <ID>_API_KEY and the vendor names; the config file wins', () => {
    const fromVendorName = buildRegistry(loadConfig({ OPENAI_API_KEY: 'k-vendor' }, tempDir()));
    assert.equal(fromVendorName.find('OpenaiAPI')?.serverKey, 'k-vendor');
    const fromIdName = buildRegistry(loadConfig({ OPENAI_API_KEY: 'k-vendor', OPENAIAPI_API_KEY: 'k-id' }, tempDir()));
    assert.equal(fromIdName.find('OpenaiAPI')?.serverKey, 'k-id');
    const fromFile = buildRegistry(loadConfig({ OPENAIAPI_API_KEY: 'k-id' }, tempDir({ providers: [{ id: 'OpenaiAPI', apiKey: 'k-file' }] })));
    assert.equal(fromFile.find('OpenaiAPI')?.serverKey, 'k-file');
    const hf = buildRegistry(loadConfig({ HF_TOKEN: 'hf_x' }, tempDir()));
    assert.equal(hf.find('HuggingChat')?.serverKey, 'hf_x');
    assert.equal(hf.find('HuggingFace')?.serverKey, 'hf_x');
    assert.equal(hf.readiness(hf.find('HuggingChat')!).configured, true);
  });

  test('INTERFERENCE_CONFIG points at another file; a missing one is an error', () => {
    const dir = tempDir();
    const file = path.join(dir, 'custom.json');
    writeFileSync(file, JSON.stringify({ providers: [{ id: 'Groq', baseUrl: 'http://127.0.0.1:9/v1' }] }));
    const config = loadConfig({ INTERFERENCE_CONFIG: file }, tempDir());
    assert.equal(config.configPath, file);
    assert.throws(() => loadConfig({ INTERFERENCE_CONFIG: path.join(dir, 'missing.json') }, dir), ConfigError);
  });

  test('malformed config files are clear errors', () => {
    assert.throws(() => loadConfig({}, tempDir('{oops')), /found text that is not JSON/);
    assert.throws(() => loadConfig({}, tempDir({ providers: {} })), /providers: found \{\}; expected an array/);
    assert.throws(() => loadConfig({}, tempDir({ providers: [{ id: 'a b' }] })), /providers\[0\]\.id: found "a b"/);
    assert.throws(() => loadConfig({}, tempDir({ providers: [{ id: 'Łódź' }] })), /ASCII letters/);
    assert.throws(() => loadConfig({}, tempDir({ providers: [{ id: 'X', models: 'm' }] })), /providers\[0\]\.models: found "m"; expected an array/);
    assert.throws(() => buildRegistry(loadConfig({}, tempDir({ providers: [{ id: 'Mystery' }] }))), /not a built-in provider/);
    assert.throws(
      () => buildRegistry(loadConfig({}, tempDir({ providers: [{ id: 'Mine', api: 'openai' }] }))),
      /providers\[0\]\.baseUrl: found nothing; expected the provider's base URL/,
    );
  });

  test('a built-in entry overrides fields; a new id with api openai adds a provider; env base URLs apply', async () => {
    const groqFake = await startOpenAICompatibleFake({ reply: 'overridden groq' });
    const customFake = await startOpenAICompatibleFake({ reply: 'custom one' });
    const deepseekFake = await startOpenAICompatibleFake({ reply: 'deepseek via env' });
    const gateway = await startGateway({
      env: { DEEPSEEK_BASE_URL: deepseekFake.url, DEEPSEEK_API_KEY: 'ds-key' },
      config: {
        providers: [
          { id: 'Groq', baseUrl: groqFake.url, apiKey: 'gsk-file', models: ['only-this'], label: 'My Groq' },
          { id: 'MyLab', api: 'openai', baseUrl: customFake.url, models: ['lab-1'], label: 'Lab', url: 'https://lab.example' },
        ],
      },
    });
    try {
      const groq = (await (await gateway.get('/v1/providers/groq')).json()) as Record<string, unknown>;
      assert.equal(groq.label, 'My Groq');
      assert.deepEqual(groq.models, ['only-this']);
      assert.equal(groq.configured, true);
      const lab = (await (await gateway.get('/v1/providers/MyLab')).json()) as Record<string, unknown>;
      assert.equal(lab.url, 'https://lab.example');
      assert.equal(lab.needs_auth, false);
      for (const [provider, expected] of [
        ['Groq', 'overridden groq'],
        ['MyLab', 'custom one'],
        ['DeepSeek', 'deepseek via env'],
      ] as const) {
        const response = await gateway.post('/v1/chat/completions', { provider, messages: userMessage });
        const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
        assert.equal(body.choices[0]?.message.content, expected);
      }
      assert.equal(groqFake.requests.at(-1)?.headers.authorization, 'Bearer gsk-file');
      // Automatic routing finds the custom provider's model.
      const auto = await gateway.post('/v1/chat/completions', { model: 'lab-1', messages: userMessage });
      assert.equal(((await auto.json()) as { provider: string }).provider, 'MyLab');
    } finally {
      await gateway.close();
      await Promise.all([groqFake.close(), customFake.close(), deepseekFake.close()]);
    }
  });
});
