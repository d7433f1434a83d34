import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TINY_PNG, startGradioFake, type GradioFake } from './fakes/gradio-fake.js';
import {
  FAKE_JPEG,
  FAKE_PNG,
  startHuggingFaceImagesFake,
  startOpenAIImagesFake,
  startPollinationsFake,
  type HuggingFaceImagesFake,
  type OpenAIImagesFake,
  type PollinationsFake,
} from './fakes/image-fakes.js';
import { startGateway, type Gateway } from './support/gateway.js';
import type { ErrorBody } from './support/http.js';
import { assertOpenAIShape } from './support/openai-schema.js';

interface ImagesBody {
  created: number;
  data: Array<{ url?: string; b64_json?: string; revised_prompt?: string; seed?: number }>;
  model: string;
  provider: string;
}

const schnell = 'black-forest-labs/FLUX.1-schnell';
const dev = 'black-forest-labs/FLUX.1-dev';
const sd = 'stabilityai/stable-diffusion-3.5-large';

describe('images', () => {
  let spaces: GradioFake;
  let pollinations: PollinationsFake;
  let openai: OpenAIImagesFake;
  let hf: HuggingFaceImagesFake;
  let gateway: Gateway;

  before(async () => {
    spaces = await startGradioFake([
      { space: schnell, protocol: 'call', workMs: 5, heartbeatMs: 2 },
      { space: dev, protocol: 'queue', workMs: 5, heartbeatMs: 2 },
      { space: sd, protocol: 'call', workMs: 5, heartbeatMs: 2, image: FAKE_JPEG, seedIndex: 2 },
    ]);
    pollinations = await startPollinationsFake();
    openai = await startOpenAIImagesFake({ apiKey: 'sk-images' });
    hf = await startHuggingFaceImagesFake({ apiKey: 'hf_images' });
    gateway = await startGateway({
      env: {
        INTERFERENCE_BREAKER_FAILURES: '1000',
        INTERFERENCE_RETRIES: '0',
        HUGGINGSPACE_BASE_URL: spaces.url,
        POLLINATIONSAI_BASE_URL: pollinations.url,
        OPENAIAPI_BASE_URL: `${openai.url}/v1`,
        OPENAI_API_KEY: 'sk-images',
        HUGGINGFACE_BASE_URL: `${hf.url}/v1`,
        HUGGINGFACE_API_KEY: 'hf_images',
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([spaces.close(), pollinations.close(), openai.close(), hf.close()]);
  });

  async function generate(body: Record<string, unknown>, route = '/v1/images/generate'): Promise<{ response: Response; body: ImagesBody }> {
    const response = await gateway.post(route, body);
    return { response, body: (await response.json()) as ImagesBody };
  }

  async function fetchImage(url: string): Promise<{ response: Response; bytes: Buffer }> {
    const response = await fetch(url);
    return { response, bytes: Buffer.from(await response.arrayBuffer()) };
  }

  test("the seed's example: flux on HuggingSpace, response_format url", async () => {
    const { response, body } = await generate({ prompt: 'a white siamese cat', model: 'flux', provider: 'HuggingSpace', response_format: 'url' });
    assert.equal(response.status, 200);
    assertOpenAIShape('ImagesResponse', body);
    assert.equal(body.provider, 'HuggingSpace');
    assert.ok(body.model === schnell || body.model === dev, body.model);
    const url = body.data[0]?.url ?? '';
    assert.match(url, new RegExp(`^${gateway.url}/images/[0-9a-f]{32}\\.png$`));
    const image = await fetchImage(url);
    assert.equal(image.response.status, 200);
    assert.equal(image.response.headers.get('content-type'), 'image/png');
    assert.ok(image.bytes.equals(TINY_PNG));
    assert.match(image.response.headers.get('cache-control') ?? '', /immutable/);
    const etag = image.response.headers.get('etag');
    assert.ok(etag);
    const again = await fetch(url, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });

  test('the same through /v1/images/generations with b64_json', async () => {
    const { body } = await generate(
      { prompt: 'a cat', model: 'flux-schnell', provider: 'HuggingSpace', response_format: 'b64_json' },
      '/v1/images/generations',
    );
    assertOpenAIShape('ImagesResponse', body);
    assert.equal(body.model, schnell);
    assert.ok(Buffer.from(body.data[0]?.b64_json ?? '', 'base64').equals(TINY_PNG));
  });

  test('each Space speaks its protocol with its inputs: schnell call, dev queue, SD 3.5 call', async () => {
    const from = spaces.requests.length;
    await generate({ prompt: 'p1', model: 'flux-schnell', provider: 'HuggingSpace', size: '512x768', seed: 7 });
    await generate({ prompt: 'p2', model: 'flux-dev', provider: 'HuggingSpace' });
    const { body } = await generate({ prompt: 'p3', model: 'sd-3.5', provider: 'HuggingSpace', negative_prompt: 'blurry', seed: 3 });
    const posts = spaces.requests.slice(from).filter((request) => request.method === 'POST');
    assert.deepEqual(
      posts.map((request) => `${request.space} ${request.path.replace(/\?.*$/, '')}`),
      [`${schnell} /${schnell}/gradio_api/call/infer`, `${dev} /${dev}/gradio_api/queue/join`, `${sd} /${sd}/gradio_api/call/infer`],
    );
    assert.deepEqual((posts[0]?.body as { data: unknown[] }).data, ['p1', 7, false, 512, 768, 4]);
    const queued = posts[1]?.body as { data: unknown[]; fn_index: number; trigger_id: number; session_hash: string };
    assert.equal(queued.fn_index, 2);
    assert.equal(queued.trigger_id, 4);
    assert.equal(queued.data[0], 'p2');
    assert.equal(queued.data[2], true, 'no seed given: randomize');
    assert.deepEqual((posts[2]?.body as { data: unknown[] }).data, ['p3', 'blurry', 3, false, 1024, 1024, 4.5, 40]);
    assert.equal(body.model, sd);
    assert.equal(body.data[0]?.seed, 3);
    // The SD Space returns a JPEG: stored with the sniffed type.
    const image = await fetchImage(body.data[0]?.url ?? '');
    assert.equal(image.response.headers.get('content-type'), 'image/jpeg');
  });

  test('flux spreads over the FLUX Spaces at random', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 24; i++) {
      const { body } = await generate({ prompt: `cat ${i}`, model: 'flux', provider: 'HuggingSpace', response_format: 'b64_json' });
      counts.set(body.model, (counts.get(body.model) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), [dev, schnell]);
    // Both picked often: a fair coin gives fewer than 4 of 24 with probability < 0.002.
    for (const count of counts.values()) assert.ok(count >= 4, JSON.stringify([...counts]));
  });

  for (const [name, behaviour] of [
    ['queue full (503)', { kind: 'queue-full' }],
    ['ZeroGPU quota', { kind: 'zerogpu-quota' }],
    ['error event without message', { kind: 'error-null' }],
    ['unexpected error', { kind: 'unexpected-error' }],
  ] as const) {
    test(`a Space failing with ${name} is skipped for the next FLUX Space`, async () => {
      spaces.setBehaviour(schnell, behaviour);
      try {
        for (let i = 0; i < 6; i++) {
          const { response, body } = await generate({ prompt: 'x', model: 'flux', provider: 'HuggingSpace', response_format: 'b64_json' });
          assert.equal(response.status, 200);
          assert.equal(body.model, dev);
        }
      } finally {
        spaces.setBehaviour(schnell, { kind: 'ok' });
      }
    });
  }

  test('when every matching Space fails, the provider fails over to the next one named', async () => {
    spaces.setBehaviour(schnell, { kind: 'zerogpu-quota' });
    try {
      const { response, body } = await generate({ prompt: 'x', model: 'flux-schnell', provider: 'HuggingSpace PollinationsAI', response_format: 'b64_json' });
      assert.equal(response.status, 200);
      assert.equal(body.provider, 'PollinationsAI');
      assert.equal(response.headers.get('x-interference-attempts'), 'HuggingSpace=rate_limit PollinationsAI=ok');
      const alone = await gateway.post('/v1/images/generate', { prompt: 'x', model: 'flux-schnell', provider: 'HuggingSpace' });
      assert.equal(alone.status, 429);
      const error = (await alone.json()) as ErrorBody;
      assert.match(error.error.message, /exceeded your GPU quota/);
      assert.ok(!error.error.message.includes('<a '), 'the HTML tail is cut');
    } finally {
      spaces.setBehaviour(schnell, { kind: 'ok' });
    }
  });

  test('a Space that only sends heartbeats is cut by the image deadline and the next provider answers', async () => {
    const hurried = await startGateway({
      env: { INTERFERENCE_IMAGE_TIMEOUT_MS: '300', INTERFERENCE_RETRIES: '0', HUGGINGSPACE_BASE_URL: spaces.url, POLLINATIONSAI_BASE_URL: pollinations.url },
    });
    spaces.setBehaviour(schnell, { kind: 'hang' });
    try {
      const alone = await hurried.post('/v1/images/generate', { prompt: 'x', model: 'flux-schnell', provider: 'HuggingSpace' });
      assert.equal(alone.status, 504);
      const backed = await hurried.post('/v1/images/generate', {
        prompt: 'x',
        model: 'flux-schnell',
        provider: 'HuggingSpace PollinationsAI',
        response_format: 'b64_json',
      });
      assert.equal(backed.status, 200);
      assert.equal(backed.headers.get('x-interference-attempts'), 'HuggingSpace=timeout PollinationsAI=ok');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(spaces.openStreams(), 0, 'the hung event streams were closed');
    } finally {
      spaces.setBehaviour(schnell, { kind: 'ok' });
      await hurried.close();
    }
  });

  test('each Space is selectable by its own id, with parent HuggingSpace', async () => {
    const { body } = await generate({ prompt: 'x', provider: 'BlackForestLabs_Flux1Dev', response_format: 'b64_json' });
    assert.equal(body.provider, 'BlackForestLabs_Flux1Dev');
    assert.equal(body.model, dev);
    const detail = (await (await gateway.get('/v1/providers/StabilityAI_SD35Large')).json()) as Record<string, unknown>;
    assert.equal(detail.parent, 'HuggingSpace');
    assert.deepEqual(detail.image_models, ['sd-3.5-large']);
    assert.ok((detail.image_params as string[]).includes('negative_prompt'));
  });

  test('HF_TOKEN reaches the Spaces as a bearer token', async () => {
    const withToken = await startGateway({ env: { HUGGINGSPACE_BASE_URL: spaces.url, HF_TOKEN: 'hf_space_token' } });
    try {
      const from = spaces.requests.length;
      await withToken.post('/v1/images/generate', { prompt: 'x', model: 'flux-schnell', provider: 'HuggingSpace' });
      const sent = spaces.requests.slice(from);
      assert.ok(sent.length >= 3, 'POST, event stream, file');
      for (const request of sent) assert.equal(request.headers.authorization, 'Bearer hf_space_token');
    } finally {
      await withToken.close();
    }
  });

  test('PollinationsAI: image bytes from its image endpoint, n images with their own seeds', async () => {
    const from = pollinations.requests.length;
    const { body } = await generate({
      prompt: 'a red fox',
      model: 'flux-pro',
      provider: 'PollinationsAI',
      n: 2,
      size: '512x512',
      seed: 10,
      response_format: 'b64_json',
    });
    assert.equal(body.data.length, 2);
    for (const item of body.data) assert.ok(Buffer.from(item.b64_json ?? '', 'base64').equals(FAKE_JPEG));
    const sent = pollinations.requests.slice(from);
    assert.deepEqual(
      sent.map((request) => request.path),
      ['/prompt/a red fox', '/prompt/a red fox'],
    );
    assert.deepEqual(sent.map((request) => request.query.seed).sort(), ['10', '11']);
    assert.equal(sent[0]?.query.model, 'flux', 'flux-pro is an alias of flux');
    assert.equal(sent[0]?.query.width, '512');
  });

  test('PollinationsAI: a JSON 500 or a placeholder image is a failure, not an image', async () => {
    for (const behaviour of [{ kind: 'status', status: 500 }, { kind: 'placeholder' }] as const) {
      pollinations.setBehaviour(behaviour);
      const response = await gateway.post('/v1/images/generate', { prompt: 'x', model: 'flux', provider: 'PollinationsAI' });
      assert.equal(response.status, 502);
      assertOpenAIShape('ErrorResponse', await response.json());
    }
    pollinations.setBehaviour({ kind: 'ok' });
  });

  test('PollinationsAI text goes through its OpenAI-compatible endpoint', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'PollinationsAI', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { provider: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'PollinationsAI');
    assert.ok((body.choices[0]?.message.content ?? '').length > 0);
    assert.equal(pollinations.requests.at(-1)?.path, '/openai');
  });

  test('OpenaiAPI images: dall-e-3 and gpt-image-1, stored by us', async () => {
    const dalle = await generate({ prompt: 'an otter', model: 'dall-e-3', provider: 'OpenaiAPI', size: '1024x1024' });
    assert.equal(dalle.response.status, 200);
    assert.equal(dalle.body.model, 'dall-e-3');
    assert.ok(typeof dalle.body.data[0]?.revised_prompt === 'string');
    const stored = await fetchImage(dalle.body.data[0]?.url ?? '');
    assert.ok(stored.bytes.equals(FAKE_PNG));
    const sent = openai.requests.at(-1)?.body as Record<string, unknown>;
    assert.equal(sent.response_format, 'b64_json');
    assert.equal(openai.requests.at(-1)?.headers.authorization, 'Bearer sk-images');
    const gpt = await generate({ prompt: 'an otter', model: 'gpt-image', provider: 'OpenaiAPI', response_format: 'b64_json' });
    assert.equal(gpt.response.status, 200);
    assert.equal(gpt.body.model, 'gpt-image-1');
    assert.equal((openai.requests.at(-1)?.body as Record<string, unknown>).response_format, undefined);
  });

  test('HuggingFace text-to-image: raw bytes from the router', async () => {
    const { response, body } = await generate({ prompt: 'a lighthouse', model: 'flux', provider: 'HuggingFace', seed: 5, response_format: 'b64_json' });
    assert.equal(response.status, 200);
    assert.equal(body.model, schnell);
    assert.ok(Buffer.from(body.data[0]?.b64_json ?? '', 'base64').equals(FAKE_PNG));
    const sent = hf.requests.at(-1);
    assert.equal(sent?.path, `/hf-inference/models/${schnell}`);
    assert.deepEqual(sent?.body, { inputs: 'a lighthouse', parameters: { seed: 5 } });
  });

  test('without provider, flux goes to the keyless image providers first', async () => {
    const { body } = await generate({ prompt: 'x', model: 'flux', response_format: 'b64_json' });
    assert.equal(body.provider, 'PollinationsAI');
    pollinations.setBehaviour({ kind: 'status', status: 500 });
    const next = await generate({ prompt: 'x', model: 'flux', response_format: 'b64_json' });
    pollinations.setBehaviour({ kind: 'ok' });
    assert.equal(next.body.provider, 'HuggingSpace');
  });

  test('requests no image provider can serve get a clear 4xx', async () => {
    const chatOnly = await gateway.post('/v1/images/generate', { prompt: 'x', provider: 'Groq' });
    assert.equal(chatOnly.status, 400);
    assert.match(((await chatOnly.json()) as ErrorBody).error.message, /Groq does not generate images/);
    const unknownModel = await gateway.post('/v1/images/generate', { prompt: 'x', model: 'no-such-image-model' });
    assert.equal(unknownModel.status, 404);
    assert.equal(((await unknownModel.json()) as ErrorBody).error.code, 'model_not_found');
    // An image model written slightly wrong: the hint names image models and image providers, never a GGUF file.
    const nearMiss = await gateway.post('/v1/images/generate', { prompt: 'x', model: 'flux-schnel' });
    assert.equal(nearMiss.status, 404);
    const message = ((await nearMiss.json()) as ErrorBody).error.message;
    assert.match(message, /No configured image provider serves model "flux-schnel"/);
    assert.match(message, /Did you mean "flux-schnell"/);
    assert.match(message, /image model GET \/v1\/models lists \(type "image"\)/);
    assert.doesNotMatch(message, /GGUF|INTERFERENCE_LOCAL_MODEL/);
    const local = await gateway.post('/v1/images/generate', { prompt: 'x', provider: 'Local' });
    assert.equal(local.status, 400);
  });

  for (const [name, body, param] of [
    ['missing prompt', {}, 'prompt'],
    ['empty prompt', { prompt: '  ' }, 'prompt'],
    ['bad n', { prompt: 'x', n: 0 }, 'n'],
    ['too many', { prompt: 'x', n: 11 }, 'n'],
    ['bad size', { prompt: 'x', size: 'big' }, 'size'],
    ['tiny size', { prompt: 'x', size: '8x8' }, 'size'],
    ['bad response_format', { prompt: 'x', response_format: 'png' }, 'response_format'],
    ['bad seed', { prompt: 'x', seed: -1 }, 'seed'],
  ] as const) {
    test(`${name} is a 400 with param ${param}`, async () => {
      const response = await gateway.post('/v1/images/generate', body);
      assert.equal(response.status, 400);
      const error = (await response.json()) as ErrorBody;
      assert.equal(error.error.param, param);
    });
  }

  test('/images serves only stored names: traversal and unknown names are 404', async () => {
    for (const path of [
      '/images/..%2F..%2Fpackage.json',
      '/images/../package.json',
      '/images/%2e%2e/%2e%2e/etc/passwd',
      '/images/0123456789abcdef0123456789abcdef.png',
      '/images/notes.txt',
    ]) {
      const response = await fetch(`${gateway.url}${path}`);
      assert.equal(response.status, 404, path);
      assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    }
  });
});
