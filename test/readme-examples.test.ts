import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { TINY_PNG, startGradioFake, type GradioFake } from './fakes/gradio-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';

const run = promisify(execFile);

/** The README's tagged examples (`<!-- example: name -->` before a fenced block). */
function readmeExamples(): Map<string, { language: string; code: string }> {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const examples = new Map<string, { language: string; code: string }>();
  const pattern = /<!-- example: ([\w-]+) -->\n```(\w+)\n([\s\S]*?)```/g;
  for (const match of readme.matchAll(pattern)) examples.set(match[1] as string, { language: match[2] as string, code: match[3] as string });
  return examples;
}

/** A python3 that can `import requests` (the pyenv one, or Debian's python3-requests). */
async function pythonWithRequests(): Promise<string> {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      await run(candidate, ['-c', 'import requests']);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('no python3 with the requests package: apt-get install python3-requests (.ci/run does)');
}

describe('README examples run as written', () => {
  const examples = readmeExamples();
  let openai: Fake;
  let huggingChat: Fake;
  let another: Fake;
  let spaces: GradioFake;
  let gateway: Gateway;

  async function runExample(name: string): Promise<string> {
    const example = examples.get(name);
    assert.ok(example, `README has no example "${name}"`);
    const code = example.code.replaceAll('http://localhost:1337', gateway.url);
    const command = example.language === 'python' ? await pythonWithRequests() : 'bash';
    const args = example.language === 'python' ? ['-c', code] : ['-c', `set -euo pipefail\n${code}`];
    const { stdout } = await run(command, args, { timeout: 30_000 });
    return stdout;
  }

  before(async () => {
    openai = await startOpenAICompatibleFake({ reply: 'Hello! How can I help you today?' });
    huggingChat = await startOpenAICompatibleFake({ flavor: 'huggingface', reply: 'I can answer questions (HuggingChat).' });
    another = await startOpenAICompatibleFake({ reply: 'I can answer questions (AnotherProvider).' });
    spaces = await startGradioFake([
      { space: 'black-forest-labs/FLUX.1-schnell', protocol: 'call', workMs: 5 },
      { space: 'black-forest-labs/FLUX.1-dev', protocol: 'queue', workMs: 5 },
    ]);
    gateway = await startGateway({
      env: {
        OPENAI_API_KEY: 'sk-readme',
        OPENAIAPI_BASE_URL: openai.url,
        HF_TOKEN: 'hf_readme',
        HUGGINGCHAT_BASE_URL: huggingChat.url,
        HUGGINGSPACE_BASE_URL: spaces.url,
      },
      config: { providers: [{ id: 'AnotherProvider', api: 'openai', baseUrl: another.url, label: 'A second provider' }] },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([openai.close(), huggingChat.close(), another.close(), spaces.close()]);
  });

  test('the README tags its examples', () => {
    assert.deepEqual([...examples.keys()].sort(), ['chat-curl', 'discovery-curl', 'image-curl', 'image-python', 'provider-curl-stream', 'provider-python']);
  });

  test('chat-curl: no provider named, the configured one serving the model answers', async () => {
    const body = JSON.parse(await runExample('chat-curl')) as { provider: string; model: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'OpenaiAPI');
    assert.equal(body.model, 'gpt-4o-mini');
    assert.equal(body.choices[0]?.message.content, 'Hello! How can I help you today?');
  });

  test('provider-python: HuggingChat answers; when it fails, AnotherProvider does', async () => {
    const first = await runExample('provider-python');
    assert.equal(first, 'answered by HuggingChat\nI can answer questions (HuggingChat).\n');
    huggingChat.setBehaviour({ kind: 'status', status: 503 });
    const second = await runExample('provider-python');
    huggingChat.setBehaviour({ kind: 'ok' });
    assert.equal(second, 'answered by AnotherProvider\nI can answer questions (AnotherProvider).\n');
  });

  test('provider-curl-stream: SSE chunks from HuggingChat, then [DONE]', async () => {
    const output = await runExample('provider-curl-stream');
    assert.match(output, /^data: \{"id"/);
    assert.match(output, /"provider":"HuggingChat"/);
    assert.ok(output.endsWith('data: [DONE]\n\n'));
    assert.ok(!output.includes('"system_fingerprint":null'), 'the null fingerprint HF sends is removed');
  });

  test('image-curl: the seed example, a stored image at an absolute URL', async () => {
    const body = JSON.parse(await runExample('image-curl')) as { provider: string; model: string; data: Array<{ url: string }> };
    assert.equal(body.provider, 'HuggingSpace');
    assert.match(body.model, /^black-forest-labs\/FLUX\.1-(schnell|dev)$/);
    const url = body.data[0]?.url ?? '';
    assert.ok(url.startsWith(`${gateway.url}/images/`));
    assert.ok(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(TINY_PNG));
  });

  test('image-python: prints provider, model and the image URL', async () => {
    const lines = (await runExample('image-python')).trim().split('\n');
    assert.match(lines[0] ?? '', /^HuggingSpace black-forest-labs\/FLUX\.1-(schnell|dev)$/);
    assert.match(lines[1] ?? '', new RegExp(`^${gateway.url}/images/[0-9a-f]{32}\\.png$`));
  });

  test('discovery-curl: providers, one provider, models', async () => {
    const output = await runExample('discovery-curl');
    const documents = output.trim().split('\n').map((line) => JSON.parse(line) as unknown);
    assert.equal(documents.length, 3);
    assert.ok(Array.isArray(documents[0]) && documents[0].some((entry) => (entry as { id: string }).id === 'AnotherProvider'));
    assert.equal((documents[1] as { id: string }).id, 'Groq');
    assert.equal((documents[2] as { object: string }).object, 'list');
  });
});
