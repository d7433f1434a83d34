import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FAKE_JPEG, FAKE_PNG, startOpenAIImagesFake, startPollinationsFake, type OpenAIImagesFake, type PollinationsFake } from './fakes/image-fakes.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import type { SharedBlobs } from '../src/core/shared-blobs.js';
import { ResponseStore, SharedResponseStore } from '../src/server/dialects/responses/index.js';
import { ImageStore } from '../src/server/image-store.js';
import { SharedImages } from '../src/server/shared-images.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { startGatewayProcess, type GatewayProcess } from './support/server-process.js';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Two gateway processes sharing one real Redis (REDIS_URL), as replicas behind a load balancer:
 * an image generated through one is served by the other, a response stored through one is fetched
 * and continued through the other. Then Redis is killed: each replica keeps serving what it makes.
 */

interface ResponseBody {
  id: string;
  output: Array<{ type: string; content?: Array<{ text: string }> }>;
}

interface ImagesBody {
  data: Array<{ url: string }>;
}

const GROQ_MODEL = 'llama-3.1-8b-instant';

describe('replicas sharing images and stored responses through Redis', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let groq: Fake;
  let pollinations: PollinationsFake;
  let openaiImages: OpenAIImagesFake;
  let a: GatewayProcess;
  let b: GatewayProcess;

  before(async () => {
    redis = await startRedis();
    groq = await startOpenAICompatibleFake({ reply: 'Hello from the fake upstream.' });
    pollinations = await startPollinationsFake();
    openaiImages = await startOpenAIImagesFake({ apiKey: 'sk-images' });
    const env = {
      REDIS_URL: redis.url,
      INTERFERENCE_RETRIES: '0',
      GROQ_BASE_URL: groq.url,
      GROQ_API_KEY: 'gsk-test',
      POLLINATIONSAI_BASE_URL: pollinations.url,
      OPENAIAPI_BASE_URL: `${openaiImages.url}/v1`,
      OPENAI_API_KEY: 'sk-images',
    };
    // Each process has its own temporary images folder: nothing is shared but Redis.
    [a, b] = await Promise.all([startGatewayProcess({ env }), startGatewayProcess({ env })]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([redis?.stop(), groq?.close(), pollinations?.close(), openaiImages?.close()]);
  });

  /** POST /v1/responses; the parsed body, asserting a 200. */
  async function respond(gateway: GatewayProcess, body: Record<string, unknown>): Promise<ResponseBody> {
    const response = await gateway.post('/v1/responses', { provider: 'Groq', model: GROQ_MODEL, ...body });
    const text = await response.text();
    assert.equal(response.status, 200, text);
    return JSON.parse(text) as ResponseBody;
  }

  /** A streamed POST /v1/responses; the response object of its `response.completed` event. */
  async function respondStreamed(gateway: GatewayProcess, body: Record<string, unknown>): Promise<ResponseBody> {
    const response = await gateway.post('/v1/responses', { provider: 'Groq', model: GROQ_MODEL, stream: true, ...body });
    assert.equal(response.status, 200);
    const raw = await response.text();
    const completed = raw
      .split('\n\n')
      .map((block) => block.split('\n').find((line) => line.startsWith('data: ')))
      .filter((line) => line !== undefined)
      .map((line) => JSON.parse(line.slice(6)) as { type: string; response?: ResponseBody })
      .find((event) => event.type === 'response.completed');
    assert.ok(completed?.response !== undefined, `no response.completed in ${raw.slice(0, 500)}`);
    return completed.response;
  }

  /** Generates one image through `gateway`; the path of its URL (`/images/<file>`). */
  async function generateImage(gateway: GatewayProcess, body: Record<string, unknown>): Promise<string> {
    const response = await gateway.post('/v1/images/generations', { prompt: 'a lighthouse', response_format: 'url', ...body });
    const text = await response.text();
    assert.equal(response.status, 200, text);
    const url = (JSON.parse(text) as ImagesBody).data[0]?.url;
    assert.ok(url !== undefined);
    return new URL(url).pathname;
  }

  async function fetchImage(gateway: GatewayProcess, imagePath: string, headers: Record<string, string> = {}): Promise<{ response: Response; bytes: Buffer }> {
    const response = await fetch(`${gateway.url}${imagePath}`, { headers });
    return { response, bytes: Buffer.from(await response.arrayBuffer()) };
  }

  test('an image generated through A is served by B: same bytes, same headers', async () => {
    const imagePath = await generateImage(a, { provider: 'PollinationsAI', model: 'flux' });
    assert.match(imagePath, /^\/images\/[0-9a-f]{32}\.jpg$/);
    const fromA = await fetchImage(a, imagePath);
    const fromB = await fetchImage(b, imagePath);
    assert.equal(fromB.response.status, 200);
    assert.deepEqual(fromB.bytes, FAKE_JPEG);
    assert.deepEqual(fromB.bytes, fromA.bytes);
    for (const header of ['content-type', 'content-length', 'etag', 'cache-control', 'x-content-type-options']) {
      assert.equal(fromB.response.headers.get(header), fromA.response.headers.get(header), header);
    }
    // Conditional requests and HEAD behave as for a file on disk.
    const etag = fromB.response.headers.get('etag') ?? '';
    assert.equal((await fetchImage(b, imagePath, { 'if-none-match': etag })).response.status, 304);
    const head = await fetch(`${b.url}${imagePath}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(FAKE_JPEG.length));
  });

  test('names no replica made are 404 on both, and odd names are refused before any lookup', async () => {
    for (const gateway of [a, b]) {
      const missing = await fetchImage(gateway, `/images/${'0'.repeat(32)}.png`);
      assert.equal(missing.response.status, 404);
      assert.equal((JSON.parse(missing.bytes.toString()) as { error: { code: string } }).error.code, 'image_not_found');
      assert.equal((await fetchImage(gateway, '/images/..%2Fetc%2Fpasswd')).response.status, 404);
    }
  });

  test('a response stored through A is fetched through B and continued through B', async () => {
    const first = await respond(a, { input: 'Say hello', instructions: 'Be brief.' });
    const fetched = await b.get(`/v1/responses/${first.id}`);
    assert.equal(fetched.status, 200);
    assert.deepEqual(await fetched.json(), first);

    const second = await respond(b, { input: 'And again', previous_response_id: first.id });
    const sent = groq.requests.at(-1)?.body as { messages: unknown[] };
    // The earlier turns reached the upstream through B: the first input and A's answer.
    assert.deepEqual(sent.messages, [
      { role: 'user', content: 'Say hello' },
      { role: 'assistant', content: 'Hello from the fake upstream.' },
      { role: 'user', content: 'And again' },
    ]);
    // And the chain goes on through A.
    await respond(a, { input: 'Third', previous_response_id: second.id });
    assert.equal((groq.requests.at(-1)?.body as { messages: unknown[] }).messages.length, 5);
  });

  test('a streamed response is fetchable through B as soon as its stream ended', async () => {
    const streamed = await respondStreamed(a, { input: 'Stream it' });
    const fetched = await b.get(`/v1/responses/${streamed.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(((await fetched.json()) as ResponseBody).id, streamed.id);
  });

  test('an unknown response id is still a 404 with Redis', async () => {
    const missing = await b.get(`/v1/responses/resp_${'0'.repeat(48)}`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'response_not_found');
  });

  test('Redis killed: each replica keeps serving the images and responses it makes; then sharing resumes', async () => {
    await redis.kill();

    // A new image (PNG, never made before) works through A; B cannot know it exists: 503, retry later.
    const imagePath = await generateImage(a, { provider: 'OpenaiAPI', model: 'dall-e-2', size: '256x256' });
    const fromA = await fetchImage(a, imagePath);
    assert.equal(fromA.response.status, 200);
    assert.deepEqual(fromA.bytes, FAKE_PNG);
    const fromB = await fetchImage(b, imagePath);
    assert.equal(fromB.response.status, 503);
    assert.equal((JSON.parse(fromB.bytes.toString()) as { error: { code: string } }).error.code, 'shared_storage_unavailable');
    assert.ok(fromB.response.headers.get('retry-after') !== null);

    // New responses live in A's memory: fetched and continued through A.
    const first = await respond(a, { input: 'Redis is down' });
    const second = await respond(a, { input: 'Still there?', previous_response_id: first.id });
    assert.equal((groq.requests.at(-1)?.body as { messages: unknown[] }).messages.length, 3);
    assert.equal((await a.get(`/v1/responses/${second.id}`)).status, 200);
    const elsewhere = await b.get(`/v1/responses/${first.id}`);
    assert.equal(elsewhere.status, 503);
    assert.equal(((await elsewhere.json()) as { error: { code: string } }).error.code, 'shared_storage_unavailable');
    // The fallback to memory is logged once for the outage, not once per response.
    assert.equal(a.stderr().split('"event":"responses_local_only"').length - 1, 1, a.stderr());

    // Redis back (empty): ioredis reconnects by itself, and new responses are shared again.
    await redis.restart();
    let shared = false;
    const deadline = Date.now() + 10_000;
    while (!shared && Date.now() < deadline) {
      const again = await respond(a, { input: 'Back?' });
      shared = (await b.get(`/v1/responses/${again.id}`)).status === 200;
      if (!shared) await sleep(200);
    }
    assert.ok(shared, 'responses are shared again once Redis is back');
  });
});

describe('shared copies: bounds and checks (no Redis)', () => {
  /** SharedBlobs in a Map, counting lookups; `down` makes every call reject as Redis does while down. */
  function memoryBlobs(): SharedBlobs & { values: Map<string, Buffer>; lookups: number; down: boolean } {
    const blobs = {
      values: new Map<string, Buffer>(),
      lookups: 0,
      down: false,
      async put(key: string, value: Buffer) {
        if (blobs.down) throw new Error('down');
        blobs.values.set(key, value);
      },
      async get(key: string) {
        blobs.lookups += 1;
        if (blobs.down) throw new Error('down');
        return blobs.values.get(key);
      },
    };
    return blobs;
  }

  test('an image over the size bound is not copied; a copy whose bytes do not match its name is not served', async () => {
    const blobs = memoryBlobs();
    const shared = new SharedImages(blobs, { maxBytes: FAKE_PNG.length - 1 });
    await shared.publish('a.png', FAKE_PNG);
    assert.equal(blobs.values.size, 0);
    const generous = new SharedImages(blobs);
    await generous.publish('b.png', FAKE_PNG);
    assert.deepEqual(await generous.fetch('b.png'), FAKE_PNG);

    // Served from the copy only when the bytes hash to the very name asked for.
    const store = new ImageStore(mkdtempSync(path.join(tmpdir(), 'interference-shared-')), { shared: generous });
    const name = await store.save(FAKE_PNG);
    rmSync(store.dir, { recursive: true, force: true }); // as if this replica never had it
    const sent: { status?: number; body?: Buffer } = {};
    const res = { writeHead: (status: number) => (sent.status = status), end: (body: Buffer) => (sent.body = body) };
    await store.serve({ headers: {}, method: 'GET' } as never, res as never, name, {});
    assert.equal(sent.status, 200);
    assert.deepEqual(sent.body, FAKE_PNG);
    const wrong = `${'f'.repeat(32)}.png`;
    blobs.values.set(`images:${wrong}`, FAKE_PNG);
    await assert.rejects(store.serve({ headers: {}, method: 'GET' } as never, res as never, wrong, {}), (error: { status?: number }) => error.status === 404);
  });

  test('stored responses: memory first, only our ids looked up, a failing copy never fails the put', async () => {
    const blobs = memoryBlobs();
    const store = new SharedResponseStore(new ResponseStore(10, 60_000), blobs, { ttlSeconds: 60 });
    const id = `resp_${'a'.repeat(48)}`;
    await store.put({ response: { id } as never, history: [] });
    assert.ok(blobs.values.has(`responses:${id}`));
    assert.equal((await store.get(id))?.response.id, id);
    assert.equal(blobs.lookups, 0, 'found in memory');
    assert.equal(await store.get('resp_nope'), undefined);
    assert.equal(blobs.lookups, 0, 'not an id of ours: no lookup');

    // A copy made by "another replica" is read back; one under the wrong id is not trusted.
    const other = `resp_${'b'.repeat(48)}`;
    blobs.values.set(`responses:${other}`, Buffer.from(JSON.stringify({ response: { id: other }, history: [{ role: 'user', content: 'hi' }] })));
    assert.deepEqual((await store.get(other))?.history, [{ role: 'user', content: 'hi' }]);
    const forged = `resp_${'c'.repeat(48)}`;
    blobs.values.set(`responses:${forged}`, Buffer.from(JSON.stringify({ response: { id: other }, history: [] })));
    assert.equal(await store.get(forged), undefined);

    blobs.down = true;
    const third = `resp_${'d'.repeat(48)}`;
    await store.put({ response: { id: third } as never, history: [] });
    assert.equal((await store.get(third))?.response.id, third, 'kept in memory while shared storage is down');
    await assert.rejects(store.get(`resp_${'e'.repeat(48)}`), (error: { status?: number }) => error.status === 503);
  });
});
