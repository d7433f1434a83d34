/**
 * Tests of the image fakes: bytes, content types, cache headers, exact error bodies, auth, validation,
 * behaviours, the Pollinations OpenAI-compatible text endpoint (JSON and SSE), keep-alive and close().
 * Run: node --import tsx --test test/fakes/image-fakes.test.ts
 */
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { after, describe, it } from 'node:test';
import {
  FAKE_JPEG,
  FAKE_PNG,
  HF_DEFAULT_IMAGE_MODELS,
  OPENAI_CONTENT_POLICY_MESSAGE,
  POLLINATIONS_ERROR_TYPE,
  POLLINATIONS_REPLY,
  startHuggingFaceImagesFake,
  startOpenAIImagesFake,
  startPollinationsFake,
  type HuggingFaceImagesFake,
  type OpenAIImagesFake,
  type PollinationsFake,
} from './image-fakes.js';
import { OPENAI_ERROR_500, RECORDED_OPENAI_RATE_LIMIT_HEADERS } from './fixtures/openai.js';
import { call, type Answer } from '../support/http.js';
import { waitFor } from '../support/wait.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(fake: T): T {
  open.push(fake);
  return fake;
}
after(async () => {
  await Promise.all(open.map((f) => f.close()));
});

const record = (value: unknown): Record<string, unknown> => {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'expected an object');
  return value as Record<string, unknown>;
};
const openaiError = (message: string, param: string | null, code: string | null, type = 'invalid_request_error'): string =>
  JSON.stringify({ error: { message, type, param, code } });
/** Resolves once `n` requests have been recorded. */
const recorded = (fake: { requests: unknown[] }, n: number): Promise<void> => waitFor(() => fake.requests.length >= n, `${n} recorded requests`, 5000);

describe('image constants', () => {
  it('FAKE_JPEG is a baseline JPEG: SOI FF D8 FF … EOI FF D9, with an SOF0 of 1x1', () => {
    assert.deepEqual([...FAKE_JPEG.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    assert.deepEqual([...FAKE_JPEG.subarray(-2)], [0xff, 0xd9]);
    const sof = FAKE_JPEG.indexOf(Buffer.from([0xff, 0xc0]));
    assert.ok(sof > 0);
    assert.equal(FAKE_JPEG.readUInt16BE(sof + 5), 1); // height
    assert.equal(FAKE_JPEG.readUInt16BE(sof + 7), 1); // width
  });
  it('FAKE_PNG is a 1x1 PNG whose chunk CRCs check and whose IDAT inflates to one RGBA row', () => {
    assert.deepEqual([...FAKE_PNG.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const types: string[] = [];
    for (let at = 8; at < FAKE_PNG.length;) {
      const length = FAKE_PNG.readUInt32BE(at);
      const typed = FAKE_PNG.subarray(at + 4, at + 8 + length);
      types.push(typed.subarray(0, 4).toString('latin1'));
      assert.equal(FAKE_PNG.readUInt32BE(at + 8 + length), zlib.crc32(typed));
      if (types.at(-1) === 'IHDR') assert.deepEqual([FAKE_PNG.readUInt32BE(at + 8), FAKE_PNG.readUInt32BE(at + 12)], [1, 1]);
      if (types.at(-1) === 'IDAT') assert.equal(zlib.inflateSync(typed.subarray(4)).length, 5);
      at += 12 + length;
    }
    assert.deepEqual(types, ['IHDR', 'IDAT', 'IEND']);
  });
});

describe('Pollinations fake', () => {
  let fake: PollinationsFake;
  const start = async (): Promise<PollinationsFake> => (fake = track(await startPollinationsFake()));
  const image = (query = '?width=512&height=512&seed=42&model=flux&nologo=true'): Promise<Answer> => call(`${fake.url}/prompt/a%20red%20fox${query}`);

  it('serves FAKE_JPEG with image/jpeg and the immutable cache headers; records the decoded path and query', async () => {
    await start();
    const res = await image();
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(res.headers['x-error-type'], undefined);
    assert.ok(res.bytes.equals(FAKE_JPEG));
    const req = fake.requests[0];
    assert.equal(req?.method, 'GET');
    assert.equal(req?.path, '/prompt/a red fox');
    assert.deepEqual(req?.query, { width: '512', height: '512', seed: '42', model: 'flux', nologo: 'true' });
  });

  it('lists image models as strings and text models as objects', async () => {
    const models = await call(`${fake.url}/models`);
    assert.equal(models.text, '["flux","kontext","turbo","gptimage"]');
    assert.equal(models.headers['content-type'], 'application/json');
    const text = await call(`${fake.url}/text/models`);
    const first = record((text.json() as unknown[])[0]);
    assert.equal(first.name, 'openai');
    assert.deepEqual(first.aliases, ['gpt-5-mini']);
  });

  it('rejects non-numeric width/height/seed with a 400 in its error shape', async () => {
    for (const key of ['width', 'height', 'seed']) {
      const res = await image(`?${key}=big`);
      assert.equal(res.status, 400);
      const body = record(res.json());
      assert.equal(body.error, 'Bad Request');
      assert.match(String(body.message), new RegExp(`Invalid ${key}`));
      assert.deepEqual(record(body.requestParameters).prompt, 'a red fox');
    }
  });

  it('answers an unknown model, and a status 500 behaviour, with the index.js 500 body', async () => {
    const unknown = record((await image('?model=dalle')).json());
    assert.equal(unknown.error, 'Internal Server Error');
    assert.match(String(unknown.message), /dalle/);
    fake.setBehaviour({ kind: 'status', status: 500 });
    const res = await image('?width=512&seed=7');
    fake.setBehaviour({ kind: 'ok' });
    assert.equal(res.status, 500);
    assert.equal(res.headers['content-type'], 'application/json');
    const body = record(res.json());
    assert.deepEqual(Object.keys(body), ['error', 'message', 'details', 'timingInfo', 'requestId', 'requestParameters']);
    assert.equal(body.error, 'Internal Server Error');
    assert.deepEqual([body.details, body.timingInfo, typeof body.requestId], [{}, [], 'string']);
    assert.deepEqual(body.requestParameters, { prompt: 'a red fox', width: 512, seed: 7, model: 'flux' });
  });

  it('answers an unknown path with the exact 404 body', async () => {
    const res = await call(`${fake.url}/x`);
    assert.equal(res.status, 404);
    assert.equal(res.text, '{"error":"Not Found","message":"The requested endpoint was not found","path":"/x"}');
  });

  it('placeholder: 200 image with x-error-type; not-image: 200 text/html; rate-limit: 429 retry-after', async () => {
    fake.setBehaviour({ kind: 'placeholder' });
    const placeholder = await image();
    assert.equal(placeholder.status, 200);
    assert.equal(placeholder.headers['content-type'], 'image/jpeg');
    assert.equal(placeholder.headers['x-error-type'], POLLINATIONS_ERROR_TYPE);
    assert.ok(placeholder.bytes.equals(FAKE_JPEG));
    fake.setBehaviour({ kind: 'not-image' });
    const html = await image();
    assert.equal(html.status, 200);
    assert.match(String(html.headers['content-type']), /^text\/html/);
    assert.match(html.text, /^<!DOCTYPE html>/);
    fake.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 5 });
    const limited = await image();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '5');
    assert.equal(record(limited.json()).error, 'Too Many Requests');
    fake.setBehaviour({ kind: 'ok' });
  });

  it('status with a body and headers sends them verbatim; the function form sees the request index', async () => {
    const base = fake.requests.length;
    fake.setBehaviour((i) =>
      i === base ? { kind: 'status', status: 502, body: 'upstream down', headers: { 'content-type': 'text/plain', 'x-a': '1' } } : { kind: 'ok' },
    );
    const first = await image();
    assert.deepEqual([first.status, first.text, first.headers['content-type'], first.headers['x-a']], [502, 'upstream down', 'text/plain', '1']);
    assert.equal((await image()).status, 200);
    fake.setBehaviour({ kind: 'ok' });
  });

  it('POST /openai answers an OpenAI chat completion', async () => {
    const res = await call(`${fake.url}/openai`, { body: { model: 'openai', messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = record(res.json());
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, 'openai');
    const choice = record((body.choices as unknown[])[0]);
    assert.deepEqual(record(choice.message).content, POLLINATIONS_REPLY);
    assert.equal(choice.finish_reason, 'stop');
  });

  it('POST /openai with stream:true sends `data: <json>\\n\\n` events ending in `data: [DONE]\\n\\n`', async () => {
    const res = await call(`${fake.url}/openai`, { body: { messages: [{ role: 'user', content: 'hi' }], stream: true } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    assert.ok(res.text.endsWith('\n\ndata: [DONE]\n\n'));
    const events = res.text.split('\n\n').slice(0, -1);
    assert.equal(events.at(-1), 'data: [DONE]');
    let content = '';
    for (const event of events.slice(0, -1)) {
      assert.match(event, /^data: \{/);
      const chunk = record(JSON.parse(event.slice(6)) as unknown);
      assert.equal(chunk.object, 'chat.completion.chunk');
      const delta = record(record((chunk.choices as unknown[])[0]).delta);
      if (typeof delta.content === 'string') content += delta.content;
    }
    assert.equal(content, POLLINATIONS_REPLY);
  });

  it('POST /openai without messages is a 400', async () => {
    assert.equal((await call(`${fake.url}/openai`, { body: { model: 'openai' } })).status, 400);
  });
});

describe('OpenAI images fake', () => {
  let fake: OpenAIImagesFake;
  const KEY = 'sk-test-1234567890';
  const gen = (body: unknown, key: string | null = KEY): Promise<Answer> =>
    call(`${fake.url}/v1/images/generations`, { body, headers: key === null ? {} : { authorization: `Bearer ${key}` } });

  it('checks Bearer auth with OpenAI 401 bodies', async () => {
    fake = track(await startOpenAIImagesFake({ apiKey: KEY }));
    const missing = await gen({ prompt: 'otter' }, null);
    assert.equal(missing.status, 401);
    assert.match(String(record(record(missing.json()).error).message), /^You didn't provide an API key/);
    const wrong = await gen({ prompt: 'otter' }, 'sk-wrong-000000000');
    assert.equal(wrong.status, 401);
    assert.equal(record(record(wrong.json()).error).code, 'invalid_api_key');
  });

  it('dall-e-2 default: n urls pointing back at the fake, which serve FAKE_PNG as image/png', async () => {
    const res = await gen({ prompt: 'otter', n: 2 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-ratelimit-limit-requests'], RECORDED_OPENAI_RATE_LIMIT_HEADERS['x-ratelimit-limit-requests']);
    const body = record(res.json());
    assert.equal(typeof body.created, 'number');
    const data = (body.data as unknown[]).map(record);
    assert.equal(data.length, 2);
    for (const item of data) {
      assert.deepEqual(Object.keys(item), ['url']);
      assert.ok(String(item.url).startsWith(`${fake.url}/files/`));
      const file = await call(String(item.url));
      assert.equal(file.headers['content-type'], 'image/png');
      assert.ok(file.bytes.equals(FAKE_PNG));
    }
    assert.equal((await call(`${fake.url}/files/img-nope.png`)).status, 404);
  });

  it('dall-e-3 b64_json carries revised_prompt; gpt-image-1 always answers b64_json with usage', async () => {
    const e3 = record(
      ((await gen({ model: 'dall-e-3', prompt: 'otter', response_format: 'b64_json', size: '1792x1024' })).json() as { data: unknown[] }).data[0],
    );
    assert.ok(Buffer.from(String(e3.b64_json), 'base64').equals(FAKE_PNG));
    assert.match(String(e3.revised_prompt), /otter/);
    const res = record((await gen({ model: 'gpt-image-1', prompt: 'otter', n: 3 })).json());
    assert.equal((res.data as unknown[]).length, 3);
    assert.ok(Buffer.from(String(record((res.data as unknown[])[0]).b64_json), 'base64').equals(FAKE_PNG));
    assert.equal(record(res.usage).total_tokens, 100);
  });

  it('validates fields with OpenAI 400 bodies', async () => {
    const cases: Array<[unknown, string]> = [
      [{ model: 'dall-e-3', prompt: 'p', n: 2 }, openaiError('You must provide n=1 for this model.', 'n', null)],
      [
        { prompt: 'p', n: 11 },
        openaiError("Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead.", 'n', 'integer_above_max_value'),
      ],
      [
        { prompt: 'p', n: 0 },
        openaiError("Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.", 'n', 'integer_below_min_value'),
      ],
      [
        { model: 'dall-e-3', prompt: 'p', size: '256x256' },
        openaiError("Invalid value: '256x256'. Supported values are: '1024x1024', '1792x1024', and '1024x1792'.", 'size', 'invalid_value'),
      ],
      [
        { model: 'gpt-image-1', prompt: 'p', response_format: 'url' },
        openaiError("Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter'),
      ],
      [
        { model: 'gpt-image-1', prompt: 'p', response_format: 'b64_json' },
        openaiError("Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter'),
      ],
      [
        { prompt: 'p', response_format: 'png' },
        openaiError("Invalid value: 'png'. Supported values are: 'url' and 'b64_json'.", 'response_format', 'invalid_value'),
      ],
      [{ model: 'dall-e-2' }, openaiError("Missing required parameter: 'prompt'.", 'prompt', null)],
    ];
    for (const [body, expected] of cases) {
      const res = await gen(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.text, expected);
    }
    assert.equal((await gen('{not json')).status, 400);
    const unknown = await gen({ model: 'dall-e-9', prompt: 'p' });
    assert.equal(unknown.status, 404);
    assert.equal(record(record(unknown.json()).error).code, 'model_not_found');
    assert.equal(fake.requests.at(-1)?.path, '/v1/images/generations');
  });

  it('behaviours: 429 with retry-after and x-ratelimit-*, status bodies, unknown route', async () => {
    fake.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 3 });
    const limited = await gen({ prompt: 'p' });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '3');
    assert.equal(limited.headers['x-ratelimit-remaining-requests'], '0');
    assert.equal(record(record(limited.json()).error).code, 'rate_limit_exceeded');
    fake.setBehaviour({ kind: 'status', status: 500 });
    const failed = await gen({ prompt: 'p' });
    assert.deepEqual([failed.status, failed.text], [500, OPENAI_ERROR_500]);
    fake.setBehaviour({ kind: 'status', status: 400 });
    assert.equal((await gen({ prompt: 'p' })).text, openaiError(OPENAI_CONTENT_POLICY_MESSAGE, null, 'content_policy_violation'));
    fake.setBehaviour({ kind: 'ok' });
    const route = await call(`${fake.url}/v1/images/edits`, { body: {}, headers: { authorization: `Bearer ${KEY}` } });
    assert.deepEqual([route.status, route.text], [404, openaiError('Invalid URL (POST /v1/images/edits)', null, null)]);
  });
});

describe('Hugging Face images fake', () => {
  let fake: HuggingFaceImagesFake;
  const KEY = 'hf_test';
  const MODEL = HF_DEFAULT_IMAGE_MODELS[0];
  const post = (model: string, body: unknown, key: string | null = KEY): Promise<Answer> =>
    call(`${fake.url}/hf-inference/models/${model}`, { body, headers: key === null ? {} : { authorization: `Bearer ${key}` } });

  it('returns FAKE_PNG bytes as image/png and records inputs and parameters', async () => {
    fake = track(await startHuggingFaceImagesFake({ apiKey: KEY }));
    const parameters = { width: 512, height: 512, seed: 1, num_inference_steps: 4 };
    const res = await post(MODEL, { inputs: 'a fox', parameters });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.ok(res.bytes.equals(FAKE_PNG));
    assert.equal(fake.requests[0]?.path, `/hf-inference/models/${MODEL}`);
    assert.deepEqual(fake.requests[0]?.body, { inputs: 'a fox', parameters });
  });

  it('auth, unknown model, validation and loading bodies are exact', async () => {
    const expect = async (res: Promise<Answer>, status: number, text: string): Promise<void> => {
      const r = await res;
      assert.deepEqual([r.status, r.text], [status, text]);
    };
    await expect(post(MODEL, { inputs: 'x' }, null), 401, '{"error":"Invalid credentials in Authorization header"}');
    await expect(post(MODEL, { inputs: 'x' }, 'hf_wrong'), 401, '{"error":"Invalid credentials in Authorization header"}');
    await expect(post('foo/bar', { inputs: 'x' }), 404, '{"error":"Model foo/bar does not exist"}');
    assert.equal((await post(MODEL, { parameters: {} })).status, 400);
    assert.equal((await post(MODEL, { inputs: 'x', parameters: { width: '512' } })).status, 400);
    fake.setBehaviour({ kind: 'status', status: 503 });
    await expect(post(MODEL, { inputs: 'x' }), 503, `{"error":"Model ${MODEL} is currently loading","estimated_time":20.0}`);
    fake.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 9 });
    const limited = await post(MODEL, { inputs: 'x' });
    assert.deepEqual([limited.status, limited.headers['retry-after']], [429, '9']);
    fake.setBehaviour({ kind: 'ok' });
  });

  it('without apiKey accepts any caller; custom models replace the defaults', async () => {
    const open = track(await startHuggingFaceImagesFake({ models: ['me/model'] }));
    const res = await call(`${open.url}/hf-inference/models/me/model`, { body: { inputs: 'x' } });
    assert.equal(res.status, 200);
    assert.equal((await call(`${open.url}/hf-inference/models/${MODEL}`, { body: { inputs: 'x' } })).status, 404);
  });
});

describe('connections', () => {
  it('keeps connections alive and consumes bodies', async () => {
    const fake = track(await startHuggingFaceImagesFake());
    const res = await call(`${fake.url}/hf-inference/models/${HF_DEFAULT_IMAGE_MODELS[1]}`, { body: { inputs: 'x'.repeat(100_000) } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'keep-alive');
    assert.equal(fake.requests[0]?.raw.length, JSON.stringify({ inputs: 'x'.repeat(100_000) }).length);
  });

  it('hang holds the request until the client aborts', async () => {
    const fake = track(await startPollinationsFake());
    fake.setBehaviour({ kind: 'hang' });
    const controller = new AbortController();
    const pending = call(`${fake.url}/prompt/x`, { signal: controller.signal });
    await recorded(fake, 1);
    controller.abort();
    await assert.rejects(pending);
  });

  it('close() ends hanging requests and idle keep-alive sockets and leaves no server or socket handle', async () => {
    const count = (type: string): number => process.getActiveResourcesInfo().filter((r) => r === type).length;
    const servers = count('TCPServerWrap');
    const sockets = count('TCPSocketWrap');
    const fake = await startOpenAIImagesFake();
    assert.equal(count('TCPServerWrap'), servers + 1);
    assert.equal((await call(`${fake.url}/v1/images/generations`, { body: { prompt: 'p' } })).status, 200); // leaves an idle socket
    fake.setBehaviour({ kind: 'hang' });
    const pending = call(`${fake.url}/v1/images/generations`, { body: { prompt: 'p' } });
    await recorded(fake, 2);
    await fake.close();
    await assert.rejects(pending);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(count('TCPServerWrap'), servers);
    assert.ok(count('TCPSocketWrap') <= sockets, `${count('TCPSocketWrap')} sockets open, ${sockets} before`);
    await fake.close(); // idempotent
  });
});
