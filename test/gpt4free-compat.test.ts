/**
 * gpt4free's clients against us (issue "gpt4free's own clients and documents work unchanged"), the
 * parts that landed: the `g4f-api-key` header as the gateway key, `type` and `vision` on
 * /v1/models entries, and image URLs that honour a reverse proxy's X-Forwarded-Host/-Proto.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOpenAIImagesFake, type OpenAIImagesFake } from './fakes/image-fakes.js';
import { startGateway, type Gateway } from './support/gateway.js';

describe('gpt4free compatibility', () => {
  let images: OpenAIImagesFake;
  let gateway: Gateway;
  const key = 'gateway-key-for-g4f-0123';

  before(async () => {
    images = await startOpenAIImagesFake({ apiKey: 'sk-images' });
    gateway = await startGateway({ env: { INTERFERENCE_API_KEY: key, OPENAIAPI_BASE_URL: `${images.url}/v1`, OPENAIAPI_API_KEY: 'sk-images' } });
  });
  after(async () => {
    await gateway.close();
    await images.close();
  });

  test('g4f-api-key is accepted as the gateway key, beside Bearer and x-api-key; a wrong one is a 401', async () => {
    const forms: Array<Record<string, string>> = [{ 'g4f-api-key': key }, { 'x-api-key': key }, { authorization: `Bearer ${key}` }];
    for (const headers of forms) {
      assert.equal((await fetch(`${gateway.base}/providers`, { headers })).status, 200, JSON.stringify(Object.keys(headers)));
    }
    assert.equal((await fetch(`${gateway.base}/providers`, { headers: { 'g4f-api-key': 'wrong' } })).status, 401);
    const missing = await fetch(`${gateway.base}/providers`);
    assert.equal(missing.status, 401);
    assert.match(((await missing.json()) as { error: { message: string } }).error.message, /g4f-api-key/);
  });

  test('/v1/models entries carry type (chat or image) and vision', async () => {
    const list = (await (await fetch(`${gateway.base}/models`, { headers: { 'g4f-api-key': key } })).json()) as {
      data: Array<{ id: string; type: string; vision: boolean; image: boolean }>;
    };
    const model = (id: string) => list.data.find((entry) => entry.id === id);
    assert.deepEqual([model('gpt-4o')?.type, model('gpt-4o')?.vision], ['chat', true]);
    assert.deepEqual([model('dall-e-3')?.type, model('dall-e-3')?.vision], ['image', false]);
    assert.ok(list.data.every((entry) => (entry.type === 'image') === entry.image));
    assert.ok(list.data.some((entry) => entry.type === 'chat' && entry.vision === false));
  });

  test('image URLs follow X-Forwarded-Host and X-Forwarded-Proto behind a reverse proxy', async () => {
    const response = await fetch(`${gateway.base}/images/generate`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'g4f-api-key': key,
        'x-forwarded-host': 'gw.example.com',
        'x-forwarded-proto': 'https, http',
      },
      body: JSON.stringify({ provider: 'OpenaiAPI', model: 'dall-e-2', prompt: 'a red square', response_format: 'url' }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { data: Array<{ url: string }> };
    assert.match(body.data[0]?.url ?? '', /^https:\/\/gw\.example\.com\/images\/[0-9a-f]{32}\.\w+$/);
  });
});
