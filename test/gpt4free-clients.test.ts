/**
 * gpt4free's own code against the gateway, unchanged: its npm client `@gpt4free/g4f.dev` (chat,
 * stream, models.list, images.generate, with baseUrl `/v1` and `/api/<Provider>`), and the
 * examples of its Interference API documents (curl and Python requests, verbatim in
 * test/clients/gpt4free-docs/, only the address changed).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startGradioFake, type GradioFake } from './fakes/gradio-fake.js';
import { startPollinationsFake, type PollinationsFake } from './fakes/image-fakes.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';
import { runSnippet } from './support/snippets.js';

/** The part of `@gpt4free/g4f.dev`'s Client these tests use (its own .d.ts declares an ambient module, not the package). */
interface G4fClient {
  chat: { completions: { create(params: Record<string, unknown>): Promise<unknown> } };
  models: { list(): Promise<Array<{ id: string; type?: string; label?: string; vision?: boolean }>> };
  images: { generate(params: Record<string, unknown>): Promise<{ data: Array<{ url?: string; b64_json?: string }> }> };
}
type G4fModule = { Client: new (options: Record<string, unknown>) => G4fClient };
const packageName = '@gpt4free/g4f.dev';
const { Client } = (await import(packageName)) as G4fModule;

interface Completion {
  provider: string;
  model: string;
  choices: Array<{ message: { content: string } }>;
}
interface Chunk {
  provider?: string;
  choices: Array<{ delta?: { content?: string | null } }>;
  usage?: { total_tokens: number };
}

const OPENAI_REPLY = 'I can chat, write and summarise.';
const HUGGINGCHAT_REPLY = 'Once upon a time, a robot learned to paint.';

describe("gpt4free's clients and documents, unchanged", () => {
  let openai: Fake;
  let huggingChat: Fake;
  let groq: Fake;
  let spaces: GradioFake;
  let pollinations: PollinationsFake;
  let gateway: Gateway;

  before(async () => {
    openai = await startOpenAICompatibleFake({ apiKey: 'sk-server', reply: OPENAI_REPLY });
    huggingChat = await startOpenAICompatibleFake({ apiKey: 'hf_server', reply: HUGGINGCHAT_REPLY });
    // Groq has a base URL but no key on the server: gpt4free's clients send theirs as Bearer.
    groq = await startOpenAICompatibleFake({ apiKey: 'gsk_client', reply: 'Hello from Groq.' });
    spaces = await startGradioFake([
      { space: 'black-forest-labs/FLUX.1-schnell', protocol: 'call', workMs: 5 },
      { space: 'black-forest-labs/FLUX.1-dev', protocol: 'queue', workMs: 5 },
    ]);
    pollinations = await startPollinationsFake();
    gateway = await startGateway({
      env: {
        OPENAIAPI_BASE_URL: openai.url,
        OPENAI_API_KEY: 'sk-server',
        HUGGINGCHAT_BASE_URL: huggingChat.url,
        HF_TOKEN: 'hf_server',
        GROQ_BASE_URL: groq.url,
        HUGGINGSPACE_BASE_URL: spaces.url,
        POLLINATIONSAI_BASE_URL: pollinations.url,
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([openai.close(), huggingChat.close(), groq.close(), spaces.close(), pollinations.close()]);
  });

  const client = (baseUrl: string, options: Record<string, unknown> = {}): G4fClient => new Client({ baseUrl, logCallback: () => undefined, ...options });

  async function collect(stream: unknown): Promise<Chunk[]> {
    const chunks: Chunk[] = [];
    for await (const chunk of stream as AsyncIterable<Chunk>) chunks.push(chunk);
    return chunks;
  }
  const text = (chunks: Chunk[]): string => chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('');

  async function fetchImage(url: string): Promise<void> {
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^image\//);
    assert.ok((await response.arrayBuffer()).byteLength > 0);
  }

  describe('the npm client @gpt4free/g4f.dev', () => {
    test('baseUrl /v1: chat, stream (with usage), models.list with types, images.generate', async () => {
      const g4f = client(`${gateway.url}/v1`);
      const completion = (await g4f.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] })) as Completion;
      assert.equal(completion.provider, 'OpenaiAPI');
      assert.equal(completion.choices[0]?.message.content, OPENAI_REPLY);

      const chunks = await collect(await g4f.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true }));
      assert.equal(text(chunks), OPENAI_REPLY);
      assert.ok(chunks.every((chunk) => chunk.provider === 'OpenaiAPI'));
      // The client asks for usage (stream_options.include_usage) and gets the usage-only chunk.
      assert.ok(chunks.some((chunk) => (chunk.usage?.total_tokens ?? 0) > 0));

      const models = await g4f.models.list();
      assert.equal(models.find((model) => model.id === 'gpt-4o-mini')?.type, 'chat');
      assert.equal(models.find((model) => model.id === 'gpt-4o-mini')?.vision, true);
      assert.equal(models.find((model) => model.id === 'flux')?.type, 'image');

      const image = await g4f.images.generate({ model: 'flux', prompt: 'a white siamese cat', size: '512x512' });
      assert.equal(image.data.length, 1);
      await fetchImage(image.data[0]?.url as string);
    });

    test('baseUrl /api/<Provider>: that provider answers chat and streams, and lists only its models', async () => {
      const g4f = client(`${gateway.url}/api/HuggingChat`);
      const completion = (await g4f.chat.completions.create({ messages: [{ role: 'user', content: 'A story' }] })) as Completion;
      assert.equal(completion.provider, 'HuggingChat');
      assert.equal(completion.model, 'meta-llama/Llama-3.3-70B-Instruct'); // its default model
      assert.equal(completion.choices[0]?.message.content, HUGGINGCHAT_REPLY);
      const chunks = await collect(
        await g4f.chat.completions.create({ model: 'llama-3.3-70b', messages: [{ role: 'user', content: 'A story' }], stream: true }),
      );
      assert.equal(text(chunks), HUGGINGCHAT_REPLY);
      assert.equal((huggingChat.requests.at(-1)?.body as { model: string }).model, 'meta-llama/Llama-3.3-70B-Instruct');
      const models = await g4f.models.list();
      assert.ok(models.length > 0);
      assert.ok(models.some((model) => model.id === 'meta-llama/Llama-3.3-70B-Instruct' && model.type === 'chat'));
      assert.ok(!models.some((model) => model.id === 'gpt-4o-mini'));
    });

    test('baseUrl /api/<Provider> for images: images.generate and models.list of an image provider', async () => {
      const g4f = client(`${gateway.url}/api/HuggingSpace`);
      const image = await g4f.images.generate({ model: 'flux', prompt: 'a futuristic cityscape', width: '512', height: '512' });
      await fetchImage(image.data[0]?.url as string);
      const models = await g4f.models.list();
      assert.ok(models.some((model) => model.id === 'flux' && model.type === 'image'));
    });

    test('the apiKey option (Bearer) is the key of the one provider in the path, when the server has none', async () => {
      const before = { openai: openai.requests.length, huggingChat: huggingChat.requests.length };
      const g4f = client(`${gateway.url}/api/Groq`, { apiKey: 'gsk_client' });
      const completion = (await g4f.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] })) as Completion;
      assert.equal(completion.provider, 'Groq');
      assert.equal(groq.requests.at(-1)?.headers.authorization, 'Bearer gsk_client');
      // Where the server has its own key, that key is sent, not the client's.
      await client(`${gateway.url}/api/HuggingChat`, { apiKey: 'gsk_client' }).chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(huggingChat.requests.at(-1)?.headers.authorization, 'Bearer hf_server');
      assert.equal(openai.requests.length, before.openai);
      assert.equal(huggingChat.requests.length, before.huggingChat + 1);
    });

    test("errors reach the client's own error path with the status and a readable message", async () => {
      const g4f = client(`${gateway.url}/v1`);
      await assert.rejects(g4f.chat.completions.create({ model: 'gpt-4o-mini-typo', messages: [{ role: 'user', content: 'Hi' }] }), (error: Error) => {
        assert.match(error.message, /^Status 404: No configured chat provider serves model "gpt-4o-mini-typo"\. Did you mean "gpt-4o-mini"/);
        return true;
      });
      await assert.rejects(
        client(`${gateway.url}/api/NoSuchProvider`).chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] }),
        /^Error: Status 404: /,
      );
      await assert.rejects(
        client(`${gateway.url}/api/Groq`).chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] }),
        /^Error: Status 401: .*Groq needs an API key/,
      );
    });
  });

  describe("the Interference API documents' examples", () => {
    const snippet = (name: string): string => readFileSync(path.join(repoRoot, 'test/clients/gpt4free-docs', name), 'utf8');

    test('Basic Usage, text generation (curl): a model a configured provider serves', async () => {
      const printed = JSON.parse(await runSnippet('bash', snippet('interference-api-text.sh'), gateway.url)) as Completion;
      assert.equal(printed.provider, 'OpenaiAPI');
      assert.equal(printed.model, 'gpt-4o-mini');
      assert.equal(printed.choices[0]?.message.content, OPENAI_REPLY);
    });

    for (const format of ['url', 'b64'] as const) {
      test(`Basic Usage, image generation (curl, ${format})`, async () => {
        const printed = JSON.parse(await runSnippet('bash', snippet(`interference-api-image-${format}.sh`), gateway.url)) as {
          provider: string;
          data: Array<{ url?: string; b64_json?: string }>;
        };
        assert.ok(['HuggingSpace', 'PollinationsAI'].includes(printed.provider), printed.provider);
        if (format === 'url') await fetchImage(printed.data[0]?.url as string);
        else assert.ok(Buffer.from(printed.data[0]?.b64_json ?? '', 'base64').byteLength > 0);
      });
    }

    test('With Requests Library: a conversation of one assistant message', async () => {
      const printed = await runSnippet('python', snippet('interference-api-requests.py'), gateway.url);
      assert.equal(printed, `${OPENAI_REPLY}\n`);
      const sent = openai.requests.at(-1)?.body as { messages: unknown };
      assert.deepEqual(sent.messages, [{ role: 'assistant', content: 'What can you do?' }]);
    });

    test('Selecting a Provider: the list, and the details of one', async () => {
      const list = await runSnippet('python', snippet('selecting-a-provider-list.py'), gateway.url);
      assert.match(list, /^ID: HuggingChat, URL: https:\/\/huggingface\.co\/chat$/m);
      assert.match(list, /^ID: Local, URL: /m);
      const details = await runSnippet('python', `import requests\n${snippet('selecting-a-provider-details.py')}`, gateway.url);
      assert.match(details, /^Provider ID: HuggingChat$/m);
      assert.match(details, /^Supported Models: \['meta-llama\/Llama-3\.3-70B-Instruct', /m);
      assert.match(details, /^Parameters: .*messages/m);
    });

    test('Selecting a Provider: one provider, then a failover list with an unknown id', async () => {
      assert.equal(await runSnippet('python', snippet('selecting-a-provider-single.py'), gateway.url), `${HUGGINGCHAT_REPLY}\n`);
      // gpt4free passes the model on as written when a provider is named; so do we.
      assert.equal((huggingChat.requests.at(-1)?.body as { model: string }).model, 'gpt-4o-mini');
      assert.equal(await runSnippet('python', snippet('selecting-a-provider-multiple.py'), gateway.url), `${HUGGINGCHAT_REPLY}\n`);
    });

    test('Selecting a Provider: image generation on HuggingSpace', async () => {
      const printed = await runSnippet('python', snippet('selecting-a-provider-image.py'), gateway.url);
      const url = /^Image URL: (\S+)$/m.exec(printed)?.[1];
      assert.ok(url, printed);
      assert.ok(url.startsWith(`${gateway.url}/`));
      await fetchImage(url);
    });
  });
});
