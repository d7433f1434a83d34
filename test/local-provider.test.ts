import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LlamaModel } from 'node-llama-cpp';
import { UpstreamError } from '../src/core/errors.js';
import type { ChatResult } from '../src/core/provider.js';
import type { ChatChunk, ChatRequest } from '../src/core/types.js';
import type { LocalProvider } from '../src/providers/local/local-provider.js';
import { createProgressPrinter, modelIdFromSource, resolveModelSource } from '../src/providers/local/model-source.js';
import { flattenMessages, planPrompt, sampling, toChatHistory } from '../src/providers/local/prompt.js';
import { SequencePool } from '../src/providers/local/sequence-pool.js';
import { llamaCpp } from '../src/providers/local/llama-module.js';
import { storiesModel } from './support/gateway.js';
import { ask, openLocal, streamOf } from './support/local.js';
import { serveOnLoopback } from './support/loopback.js';

const LILY = ', there was a little girl named Lily';

/**
 * A copy of the model in `dir` with a ChatML `tokenizer.chat_template` added to its GGUF metadata.
 * The key/value goes first in the metadata and is padded (inside a Jinja comment) to a multiple
 * of 32 bytes, so the tensor data stays aligned and no other byte needs to move.
 */
function withChatTemplate(dir: string): string {
  const model = readFileSync(storiesModel);
  const str = (text: string): Buffer => Buffer.concat([Buffer.from(new BigUint64Array([BigInt(Buffer.byteLength(text))]).buffer), Buffer.from(text)]);
  const template =
    '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}{#';
  const bare = 8 + 'tokenizer.chat_template'.length + 4 + 8 + template.length + 2;
  const kv = Buffer.concat([str('tokenizer.chat_template'), Buffer.from([8, 0, 0, 0]), str(`${template}${' '.repeat((32 - (bare % 32)) % 32)}#}`)]);
  const header = Buffer.from(model.subarray(0, 24));
  header.writeBigUInt64LE(header.readBigUInt64LE(16) + 1n, 16); // metadata count
  const file = path.join(dir, 'stories-chat.gguf');
  writeFileSync(file, Buffer.concat([header, kv, model.subarray(24)]));
  return file;
}

async function collect(result: ChatResult): Promise<ChatChunk[]> {
  const chunks: ChatChunk[] = [];
  for await (const chunk of streamOf(result)) chunks.push(chunk);
  return chunks;
}

const textOf = (chunks: ChatChunk[]): string => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const finishOf = (chunks: ChatChunk[]): string | null | undefined => chunks.at(-2)?.choices[0]?.finish_reason;
const usageOf = (chunks: ChatChunk[]) => chunks.at(-1)?.usage;

describe('Local provider on stories260K', () => {
  let provider: LocalProvider;
  before(() => {
    provider = openLocal(storiesModel);
  });
  after(() => provider.close());

  test('describes itself and answers any model name with the loaded one', async () => {
    assert.equal(provider.id, 'Local');
    assert.equal(provider.label, 'Local (embedded llama.cpp)');
    assert.deepEqual(provider.models, ['stories260K']);
    assert.equal(provider.defaultModel, 'stories260K');
    assert.deepEqual(provider.aliases, { local: 'stories260K' });
    assert.equal(provider.needsAuth, false);
    assert.ok(provider.params.includes('stop') && provider.params.includes('max_completion_tokens'));
    assert.deepEqual(provider.availability?.(), { ok: true });
  });

  test('streams chunks in OpenAI order; greedy continues the TinyStories text', async () => {
    const chunks = await collect(await ask(provider, { max_tokens: 20 }));
    const [head] = chunks;
    assert.ok(head);
    assert.match(head.id, /^chatcmpl-[0-9a-f]+$/);
    for (const chunk of chunks) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.id, head.id);
      assert.equal(chunk.created, head.created);
      assert.equal(chunk.model, 'stories260K');
    }
    assert.deepEqual(head.choices, [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]);
    const body = chunks.slice(1, -2);
    assert.ok(body.length > 5, 'one chunk per text piece');
    for (const chunk of body) {
      assert.equal(chunk.choices.length, 1);
      assert.equal(typeof chunk.choices[0]?.delta.content, 'string');
      assert.equal(chunk.choices[0]?.finish_reason, null);
    }
    assert.deepEqual(chunks.at(-2)?.choices, [{ index: 0, delta: {}, finish_reason: 'length', logprobs: null }]);
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.ok(textOf(chunks).startsWith(LILY), textOf(chunks));
  });

  test('greedy output is identical across runs', async () => {
    const first = textOf(await collect(await ask(provider, { max_tokens: 60 })));
    const second = textOf(await collect(await ask(provider, { max_tokens: 60 })));
    assert.equal(first, second);
    assert.ok(first.length > 100);
  });

  test('max_tokens and max_completion_tokens bound the output: finish_reason length, exact usage', async () => {
    for (const [fields, n] of [
      [{ max_tokens: 5 }, 5],
      [{ max_completion_tokens: 9, max_tokens: 50 }, 9],
    ] as const) {
      const chunks = await collect(await ask(provider, fields));
      assert.equal(finishOf(chunks), 'length');
      const usage = usageOf(chunks);
      assert.equal(usage?.completion_tokens, n);
      assert.equal(usage?.prompt_tokens, 6, 'BOS + 5 prompt tokens, from the token meter');
      assert.equal(usage?.total_tokens, n + 6);
    }
  });

  test('a stop string ends the output before it, with finish_reason stop', async () => {
    const chunks = await collect(await ask(provider, { max_tokens: 100, stop: ['Lily'] }));
    assert.equal(finishOf(chunks), 'stop');
    assert.equal(textOf(chunks), ', there was a little girl named');
    const usage = usageOf(chunks);
    assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0 && usage.completion_tokens < 100);
  });

  test('system prompt and text parts are flattened into the completion prompt', async () => {
    const messages: ChatRequest['messages'] = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'upon a time' },
          { type: 'image_url', image_url: { url: 'x' } },
        ],
      },
      { role: 'system', content: 'Once' },
    ];
    assert.equal(flattenMessages(messages), 'Once\n\nupon a time');
    const chunks = await collect(await ask(provider, { messages, max_tokens: 8 }));
    assert.ok((usageOf(chunks)?.prompt_tokens ?? 0) > 6);
  });

  test('aborting the signal mid-stream stops at once, frees the sequence and leaves no listener', async () => {
    const controller = new AbortController();
    const result = await ask(provider, { max_tokens: 480 }, controller.signal);
    let pieces = 0;
    const started = Date.now();
    await assert.rejects(
      async () => {
        for await (const chunk of streamOf(result)) {
          if (chunk.choices[0]?.delta.content) pieces++;
          if (pieces === 5) controller.abort();
        }
      },
      (error: unknown) => error instanceof UpstreamError && error.kind === 'aborted',
    );
    assert.ok(pieces < 100, `stopped after ${pieces} pieces`);
    assert.ok(Date.now() - started < 1000);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    await assert.rejects(ask(provider, {}, controller.signal), (e: unknown) => e instanceof UpstreamError && e.kind === 'aborted');
    const again = await collect(await ask(provider, { max_tokens: 10 }));
    assert.ok(textOf(again).startsWith(', there'));
  });

  test('breaking out of for-await cancels generation and releases the sequence', async () => {
    const signal = new AbortController().signal;
    const result = await ask(provider, { max_tokens: 480 }, signal);
    let seen = 0;
    for await (const chunk of streamOf(result)) if (chunk.choices[0]?.delta.content && ++seen === 3) break;
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    // Both sequences are free: two more requests run at once.
    const results = await Promise.all([ask(provider, { max_tokens: 5 }), ask(provider, { max_tokens: 5 })]);
    for (const r of results) assert.equal(usageOf(await collect(r))?.completion_tokens, 5);
  });

  test('three concurrent requests with parallel=2 queue and all succeed', async () => {
    const outputs = await Promise.all([1, 2, 3].map(async () => collect(await ask(provider, { max_tokens: 150 }))));
    for (const chunks of outputs) {
      assert.equal(finishOf(chunks), 'length');
      assert.equal(usageOf(chunks)?.completion_tokens, 150);
      assert.equal(textOf(chunks), textOf(outputs[0] ?? []));
    }
  });
});

describe('Local provider: loading, queueing, context bounds, chat templates', () => {
  test('concurrent first calls load once; with parallel=1 requests queue and a queued abort leaves', async (t) => {
    const logs: string[] = [];
    const provider = openLocal(storiesModel, { parallel: 1, log: (m) => logs.push(m) });
    t.after(() => provider.close());
    const outputs = await Promise.all([1, 2, 3].map(async () => collect(await ask(provider, { max_tokens: 40 }))));
    assert.equal(logs.filter((m) => m.includes('loaded')).length, 1);
    for (const chunks of outputs) assert.equal(usageOf(chunks)?.completion_tokens, 40);

    const busy = await ask(provider, { max_tokens: 480 });
    const controller = new AbortController();
    const queued = ask(provider, {}, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await assert.rejects(queued, (e: unknown) => e instanceof UpstreamError && e.kind === 'aborted');
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.equal(usageOf(await collect(busy))?.completion_tokens, 480);
  });

  test('output is bounded by the context; a prompt that does not fit is a bad request', async (t) => {
    const provider = openLocal(storiesModel);
    t.after(() => provider.close());
    const usage = usageOf(await collect(await ask(provider, { max_tokens: 100_000 })));
    assert.ok(usage && usage.total_tokens <= 512 && usage.completion_tokens > 256, JSON.stringify(usage));
    const long = 'Once upon a time '.repeat(200);
    await assert.rejects(
      ask(provider, { messages: [{ role: 'user', content: long }] }),
      (e: unknown) => e instanceof UpstreamError && e.kind === 'bad_request',
    );
  });

  test('a GGUF with a chat template goes through LlamaChat with the rendered history', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'interference-chat-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const provider = openLocal(withChatTemplate(dir));
    t.after(() => provider.close());
    const messages: ChatRequest['messages'] = [
      { role: 'system', content: 'You tell stories.' },
      { role: 'user', content: 'Once upon a time' },
    ];
    const chunks = await collect(await ask(provider, { messages, max_tokens: 600 }));
    const usage = usageOf(chunks);
    // ChatML framing spelled out in this 512-token vocabulary is far longer than the flat prompt (6 tokens).
    assert.ok(usage && usage.prompt_tokens > 40 && usage.total_tokens <= 512, JSON.stringify(usage));
    assert.equal(finishOf(chunks), 'length');
    assert.ok(textOf(chunks).length > 0);
    assert.equal(chunks[0]?.model, 'stories-chat');
  });
});

describe('sequence pool', () => {
  const fake = () => ({
    disposed: false,
    async dispose() {
      this.disposed = true;
    },
  });

  test('hands out sequences FIFO; aborted waiters leave the queue; close rejects the rest', async () => {
    const pool = new SequencePool({ size: 1, create: fake });
    const first = await pool.acquire();
    const order: string[] = [];
    const controller = new AbortController();
    const b = pool.acquire().then((lease) => (order.push('b'), lease));
    const aborted = pool.acquire(controller.signal);
    const c = pool.acquire().then((lease) => (order.push('c'), lease));
    assert.equal(pool.waiting, 3);
    controller.abort(new Error('gone'));
    await assert.rejects(aborted, /gone/);
    assert.equal(pool.waiting, 2);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    await first.release();
    assert.equal(first.sequence.disposed, true);
    await (await b).release();
    const last = await c;
    assert.deepEqual(order, ['b', 'c']);
    const late = pool.acquire();
    pool.close(new Error('closed'));
    await assert.rejects(late, /closed/);
    await last.release();
    assert.equal(pool.active, 0);
  });
});

describe('model sources and prompts', () => {
  test('model ids are readable', () => {
    assert.equal(modelIdFromSource('/models/stories260K.gguf'), 'stories260K');
    assert.equal(modelIdFromSource('hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0'), 'SmolLM2-135M-Instruct-GGUF:Q8_0');
    assert.equal(modelIdFromSource('hf:ggml-org/models/tinyllamas/stories260K.gguf'), 'stories260K');
    assert.equal(modelIdFromSource('https://example.com/a/tiny-model.Q4_K_M.gguf?x=1'), 'tiny-model.Q4_K_M');
  });

  test('a template decides completion vs chat; history keeps roles; request fields map to options', async () => {
    const lib = await llamaCpp();
    const fakeModel = (template?: string) => ({ fileInfo: { metadata: { tokenizer: template ? { chat_template: template } : {} } } }) as unknown as LlamaModel;
    const messages: ChatRequest['messages'] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
      { role: 'user', content: 'Tell me a story' },
    ];
    assert.deepEqual(planPrompt(lib, fakeModel(), messages), { kind: 'completion', prompt: 'Be brief.\n\nHi\n\nHello\n\nTell me a story' });
    assert.deepEqual(toChatHistory(messages), [
      { type: 'system', text: 'Be brief.' },
      { type: 'user', text: 'Hi' },
      { type: 'model', response: ['Hello'] },
      { type: 'user', text: 'Tell me a story' },
      { type: 'model', response: [] },
    ]);
    const options = sampling({ model: 'm', messages, max_tokens: 9999, temperature: 0.5, top_p: 0.9, seed: 7, stop: 'END', presence_penalty: 0.5 }, 300);
    assert.deepEqual(options, {
      maxTokens: 300,
      temperature: 0.5,
      topP: 0.9,
      seed: 7,
      customStopTriggers: ['END'],
      repeatPenalty: { presencePenalty: 0.5, frequencyPenalty: 0 },
    });
    assert.equal(sampling({ model: 'm', messages }, 500).maxTokens, 256);
  });

  test('progress: a line every 10% without a TTY, one redrawn line with one', () => {
    const sink = (isTTY: boolean) => ({
      isTTY,
      out: '',
      write(s: string) {
        this.out += s;
        return true;
      },
    });
    const plain = sink(false);
    const tty = sink(true);
    for (const stream of [plain, tty]) {
      const print = createProgressPrinter('dl', stream as unknown as NodeJS.WritableStream & { isTTY: boolean });
      for (let done = 0; done <= 2_000_000; done += 50_000) print({ totalSize: 2_000_000, downloadedSize: done });
    }
    assert.equal(plain.out.trim().split('\n').length, 11);
    assert.match(plain.out, /dl 100% 1\.9\/1\.9 MB\n$/);
    assert.ok(tty.out.startsWith('\r[') && tty.out.endsWith('100% 1.9/1.9 MB\n'));
  });
});

describe('failures and downloads', () => {
  test('a missing model path: availability ok:false and chat rejects with UpstreamError', async (t) => {
    const missing = path.join(os.tmpdir(), 'no-such-model.gguf');
    const provider = openLocal(missing);
    t.after(() => provider.close());
    const availability = provider.availability?.();
    assert.equal(availability?.ok, false);
    assert.equal(availability?.reason, `model file not found: ${missing}; set INTERFERENCE_LOCAL_MODEL to a GGUF file or hf: URI`);
    await assert.rejects(ask(provider), (e: unknown) => e instanceof UpstreamError && e.kind === 'unavailable' && /INTERFERENCE_LOCAL_MODEL/.test(e.message));
    assert.equal(provider.availability?.().ok, false);
  });

  test('hf: URI downloads from a loopback Hugging Face endpoint once, then resolves offline', async (t) => {
    const data = readFileSync(storiesModel);
    const requests: string[] = [];
    const server = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      // Hugging Face's manifest API (for hf:<user>/<repo>:<quant>) and file downloads.
      if (/^\/v2\/[^/]+\/[^/]+\/manifests\/[^/]+$/.test(req.url ?? ''))
        return void res.end(JSON.stringify({ ggufFile: { rfilename: 'SmolLM2-135M-Instruct-Q8_0.gguf' } }));
      if (!/^\/[^/]+\/[^/]+\/resolve\/main\/.+\.gguf\?download=true$/.test(req.url ?? '')) return void res.writeHead(404).end();
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      const end = range?.[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      res.writeHead(range ? 206 : 200, {
        'content-type': 'application/octet-stream',
        'accept-ranges': 'bytes',
        etag: '"stories260K"',
        'content-length': String(end - start + 1),
        ...(range ? { 'content-range': `bytes ${start}-${end}/${data.length}` } : {}),
      });
      res.on('error', () => undefined);
      res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
    });
    const served = await serveOnLoopback(server);
    t.after(() => served.close());
    server.unref();
    const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'interference-local-'));
    t.after(() => rmSync(cacheDir, { recursive: true, force: true }));
    const hfEndpoint = `${served.origin}/`;
    const uri = 'hf:ggml-org/models/tinyllamas/stories260K.gguf';

    const progress = {
      isTTY: false,
      out: '',
      write(s: string) {
        this.out += s;
        return true;
      },
    };
    const file = await resolveModelSource(uri, { cacheDir, hfEndpoint, progressStream: progress as unknown as NodeJS.WritableStream });
    assert.ok(
      requests.some((r) => r.startsWith('GET /ggml-org/models/resolve/main/tinyllamas/stories260K.gguf?download=true')),
      requests.join(),
    );
    assert.equal(path.dirname(file), cacheDir);
    assert.equal(statSync(file).size, data.length);
    assert.ok(readFileSync(file).equals(data));
    assert.match(progress.out, /100% 1\.1\/1\.1 MB\n$/);

    const seen = requests.length;
    const provider = openLocal(uri, { cacheDir, hfEndpoint });
    t.after(() => provider.close());
    assert.deepEqual(provider.models, ['stories260K']);
    assert.deepEqual(provider.availability?.(), { ok: true });
    const chunks = await collect(await ask(provider, { max_tokens: 12 }));
    assert.ok(textOf(chunks).startsWith(', there was'));
    assert.equal(requests.length, seen, 'the cached file is used without any network call');
    assert.equal(readdirSync(cacheDir).length, 1);

    // The quantization form asks the manifest API for the file name, then caches it the same way.
    const quantUri = 'hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0';
    const quantFile = await resolveModelSource(quantUri, { cacheDir, hfEndpoint, progressStream: progress as unknown as NodeJS.WritableStream });
    assert.ok(requests.includes('GET /v2/bartowski/SmolLM2-135M-Instruct-GGUF/manifests/Q8_0'), requests.join());
    assert.equal(statSync(quantFile).size, data.length);
    const count = requests.length;
    assert.equal(await resolveModelSource(quantUri, { cacheDir, hfEndpoint }), quantFile);
    assert.equal(requests.length, count);
  });
});
