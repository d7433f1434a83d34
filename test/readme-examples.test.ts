import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { TINY_PNG, startGradioFake, type GradioFake } from './fakes/gradio-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';
import { runSnippet } from './support/snippets.js';

/** The README's blocks tagged `<!-- KIND: name -->` right before a fence, by name (`example`, `output`). */
function readmeBlocks(kind: string): Map<string, { language: string; code: string }> {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const blocks = new Map<string, { language: string; code: string }>();
  for (const match of readme.matchAll(/<!-- (\w+): (.+?) -->\n```(\w*)\n([\s\S]*?)```/g)) {
    if (match[1] === kind) blocks.set(match[2] as string, { language: match[3] as string, code: match[4] as string });
  }
  return blocks;
}

const OPENROUTER_REPLY = 'I can answer questions, write and summarise text.';

describe('README examples run as written', () => {
  const examples = readmeBlocks('example');
  const outputs = readmeBlocks('output');
  let groq: Fake;
  let openRouter: Fake;
  let ollama: Fake;
  let spaces: GradioFake;
  /** Nothing configured, only the embedded (tiny) model: the quick start. */
  let quick: Gateway;
  /** Groq and OpenRouter with keys, Ollama from the README's config block, the Spaces: the recipes. */
  let gateway: Gateway;
  /** Nothing configured and INTERFERENCE_PUBLIC_PROVIDERS=off. */
  let privateGateway: Gateway;

  async function runExample(name: string, target: Gateway = gateway): Promise<string> {
    const example = examples.get(name);
    assert.ok(example, `README has no example "${name}"`);
    return runSnippet(example.language === 'python' ? 'python' : 'bash', example.code, target.url);
  }

  const chatModels = (fake: Fake): unknown[] =>
    fake.requests.filter((r) => r.path.endsWith('/chat/completions')).map((r) => (r.body as { model?: unknown }).model);

  before(async () => {
    groq = await startOpenAICompatibleFake({ apiKey: 'gsk_readme', reply: 'Hello! How can I help you today?' });
    openRouter = await startOpenAICompatibleFake({ apiKey: 'sk-or-readme', reply: OPENROUTER_REPLY });
    ollama = await startOpenAICompatibleFake({ flavor: 'ollama', reply: 'Hello from Ollama.' });
    spaces = await startGradioFake([
      { space: 'black-forest-labs/FLUX.1-schnell', protocol: 'call', workMs: 5 },
      { space: 'black-forest-labs/FLUX.1-dev', protocol: 'queue', workMs: 5 },
    ]);
    // The README's Ollama config block, as written, pointed at the fake instead of a real Ollama.
    const ollamaConfig = examples.get('ollama-config');
    assert.ok(ollamaConfig, 'README has no example "ollama-config"');
    assert.ok(ollamaConfig.code.includes('http://127.0.0.1:11434/v1'));
    const config: unknown = JSON.parse(ollamaConfig.code.replaceAll('http://127.0.0.1:11434/v1', ollama.url));
    [quick, gateway, privateGateway] = await Promise.all([
      startGateway(),
      startGateway({
        env: {
          GROQ_API_KEY: 'gsk_readme',
          GROQ_BASE_URL: groq.url,
          OPENROUTER_API_KEY: 'sk-or-readme',
          OPENROUTER_BASE_URL: openRouter.url,
          HUGGINGSPACE_BASE_URL: spaces.url,
        },
        config,
      }),
      startGateway({ env: { INTERFERENCE_PUBLIC_PROVIDERS: 'off' } }),
    ]);
  });
  after(async () => {
    await Promise.all([quick.close(), gateway.close(), privateGateway.close()]);
    await Promise.all([groq.close(), openRouter.close(), ollama.close(), spaces.close()]);
  });

  test('the README tags its examples', () => {
    assert.deepEqual([...examples.keys()].sort(), [
      'discovery-curl',
      'failover-python',
      'first-request',
      'groq-curl',
      'image-curl',
      'image-python',
      'ollama-config',
      'ollama-curl',
      'provider-curl-stream',
    ]);
  });

  test('first-request: with nothing configured, the embedded model answers', async () => {
    const body = JSON.parse(await runExample('first-request', quick)) as {
      provider: string;
      model: string;
      choices: Array<{ message: { content: string } }>;
      usage: { completion_tokens: number };
    };
    assert.equal(body.provider, 'Local');
    assert.equal(body.model, 'stories260K');
    assert.ok((body.choices[0]?.message.content ?? '').length > 0);
    assert.ok(body.usage.completion_tokens > 0 && body.usage.completion_tokens <= 20);
  });

  test('groq-curl: Groq answers with its key, the alias resolved', async () => {
    const body = JSON.parse(await runExample('groq-curl')) as { provider: string; model: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'Groq');
    assert.equal(body.model, 'llama-3.3-70b-versatile');
    assert.equal(body.choices[0]?.message.content, 'Hello! How can I help you today?');
    const last = groq.requests.at(-1);
    assert.equal(last?.headers.authorization, 'Bearer gsk_readme');
    assert.equal((last?.body as { model: string }).model, 'llama-3.3-70b-versatile');
  });

  test('ollama-config + ollama-curl: once configured, Ollama serves its model by automatic routing', async () => {
    const body = JSON.parse(await runExample('ollama-curl')) as { provider: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'Ollama');
    assert.equal(body.choices[0]?.message.content, 'Hello from Ollama.');
    assert.ok(chatModels(ollama).includes('llama3.2'));
    assert.ok(!chatModels(groq).includes('llama3.2') && !chatModels(openRouter).includes('llama3.2'));
  });

  test('failover-python: Groq answers; when it fails, OpenRouter does (the output the README shows); when both fail, the error', async () => {
    const first = await runExample('failover-python');
    assert.equal(first, 'attempts: Groq=ok\nanswered by Groq\nHello! How can I help you today?\n');

    groq.setBehaviour({ kind: 'status', status: 503 });
    const second = await runExample('failover-python');
    assert.equal(second, outputs.get('failover-python')?.code, 'the README shows what the example prints');
    assert.equal(second, `attempts: Groq=server OpenRouter=ok\nanswered by OpenRouter\n${OPENROUTER_REPLY}\n`);

    openRouter.setBehaviour({ kind: 'status', status: 503 });
    const third = await runExample('failover-python');
    groq.setBehaviour({ kind: 'ok' });
    openRouter.setBehaviour({ kind: 'ok' });
    const lines = third.trim().split('\n');
    assert.equal(lines[0], 'attempts: Groq=server OpenRouter=server');
    assert.match(lines[1] ?? '', /^error: All 2 providers failed\. Groq: HTTP 503.* \| OpenRouter: HTTP 503/);
  });

  test('provider-curl-stream: SSE chunks from the first provider, then [DONE]', async () => {
    const output = await runExample('provider-curl-stream');
    assert.match(output, /^data: \{"id"/);
    assert.match(output, /"provider":"Groq"/);
    assert.ok(output.endsWith('data: [DONE]\n\n'));
  });

  test('image-curl: a stored image at an absolute URL', async () => {
    const body = JSON.parse(await runExample('image-curl')) as { provider: string; model: string; data: Array<{ url: string }> };
    assert.equal(body.provider, 'HuggingSpace');
    assert.match(body.model, /^black-forest-labs\/FLUX\.1-(schnell|dev)$/);
    const url = body.data[0]?.url ?? '';
    assert.ok(url.startsWith(`${gateway.url}/images/`));
    assert.ok(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(TINY_PNG));
  });

  test('image-python: prints provider, model and the image URL; an error prints its message', async () => {
    const output = await runExample('image-python');
    assert.match(output, new RegExp(`^HuggingSpace black-forest-labs/FLUX\\.1-(schnell|dev) ${gateway.url}/images/[0-9a-f]{32}\\.png\\n$`));
    // Public providers off: the public Spaces are refused with the reason, and the example says it.
    const refused = await runExample('image-python', privateGateway);
    assert.match(refused, /^error: HuggingSpace is a keyless public service \(\*\.hf\.space\) and public providers are turned off/);
  });

  test('discovery-curl: providers, one provider, models', async () => {
    const output = await runExample('discovery-curl');
    const documents = output
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
    assert.equal(documents.length, 3);
    const providers = documents[0] as Array<{ id: string; configured: boolean; auto_route: boolean }>;
    assert.ok(Array.isArray(providers));
    assert.ok(providers.some((entry) => entry.id === 'Ollama' && entry.configured && entry.auto_route));
    assert.equal((documents[1] as { id: string }).id, 'Groq');
    assert.equal((documents[2] as { object: string }).object, 'list');
  });
});
