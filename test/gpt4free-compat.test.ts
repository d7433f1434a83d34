/**
 * gpt4free's clients against us (issue "gpt4free's own clients and documents work unchanged"), the
 * parts that landed: the `g4f-api-key` header as the gateway key, `type` and `vision` on
 * /v1/models entries, and image URLs that honour a reverse proxy's X-Forwarded-Host/-Proto.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOpenAIImagesFake, type OpenAIImagesFake } from './fakes/image-fakes.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
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

  test('images as gpt4free sends them: width and height, or an aspect ratio, reach the provider as its size', async () => {
    // The size the provider was asked for (the OpenAI fake then judges it as OpenAI would); undefined when we refused first.
    const sizeSent = async (fields: Record<string, unknown>) => {
      const before = images.requests.length;
      const response = await fetch(`${gateway.base}/images/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'g4f-api-key': key },
        body: JSON.stringify({ provider: 'OpenaiAPI', model: 'dall-e-2', prompt: 'a red square', response_format: 'b64_json', ...fields }),
      });
      await response.body?.cancel();
      return images.requests.length > before ? (images.requests.at(-1)?.body as { size?: string }).size : `refused ${response.status}`;
    };
    assert.equal(await sizeSent({ width: 512, height: 768 }), '512x768');
    assert.equal(await sizeSent({ width: 512 }), '512x512');
    assert.equal(await sizeSent({ width: '512', height: '768' }), '512x768', 'digits as strings, as the g4f.dev client types them');
    assert.equal(await sizeSent({ aspect_ratio: '16:9' }), '1024x576');
    assert.equal(await sizeSent({ aspect_ratio: '9:16' }), '576x1024');
    assert.equal(await sizeSent({ width: 256, size: '1024x1024' }), '256x256', 'width and height win over size');
    assert.equal(await sizeSent({ width: 'wide' }), 'refused 400');
    assert.equal(await sizeSent({ aspect_ratio: 'tall' }), 'refused 400');
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

  describe('chat as gpt4free users write it', () => {
    let mistral: Fake;
    let chatGateway: Gateway;
    const png = 'data:image/png;base64,iVBORw0KGgo=';
    before(async () => {
      mistral = await startOpenAICompatibleFake({ reply: 'I see a picture.', apiKey: 'mistral-key' });
      chatGateway = await startGateway({ env: { MISTRAL_BASE_URL: mistral.url, MISTRAL_API_KEY: 'mistral-key' } });
    });
    after(async () => {
      await chatGateway.close();
      await mistral.close();
    });
    const lastUserContent = () => ((mistral.requests.at(-1)?.body as { messages: Array<{ role: string; content: unknown }> }).messages.at(-1) ?? {}).content;

    test('vision through images, image and media reaches the upstream as image_url parts on the last user message', async () => {
      const base = { provider: 'Mistral', model: 'pixtral-large-latest', messages: [{ role: 'user', content: 'What is this?' }] };
      const withImages = await chatGateway.post('/v1/chat/completions', { ...base, images: [[png, 'a.png'], 'https://example.com/b.png'] });
      assert.equal(withImages.status, 200);
      assert.deepEqual(lastUserContent(), [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: png } },
        { type: 'image_url', image_url: { url: 'https://example.com/b.png' } },
      ]);
      assert.equal((await chatGateway.post('/v1/chat/completions', { ...base, image: png, image_name: 'a.png' })).status, 200);
      assert.deepEqual(lastUserContent(), [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: png } },
      ]);
      assert.equal((await chatGateway.post('/v1/chat/completions', { ...base, media: [[png, 'a.png']] })).status, 200);
      const bad = await chatGateway.post('/v1/chat/completions', { ...base, images: ['file:///etc/passwd'] });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: { param: string } }).error.param, 'images[0]');
      // Only providers with vision: the embedded model has none.
      const local = await chatGateway.post('/v1/chat/completions', { provider: 'Local', messages: [{ role: 'user', content: 'What?' }], images: [png] });
      assert.equal(local.status, 400);
      assert.match(((await local.json()) as { error: { message: string } }).error.message, /vision/);
    });

    test("error bodies carry the model and the provider named, beside OpenAI's error object", async () => {
      mistral.setBehaviour({ kind: 'status', status: 500 });
      try {
        const response = await chatGateway.post('/v1/chat/completions', {
          provider: 'Mistral',
          model: 'mistral-small-latest',
          messages: [{ role: 'user', content: 'Hi' }],
        });
        assert.equal(response.status, 502);
        const body = (await response.json()) as { model?: string; provider?: string; error: { message: string } };
        assert.deepEqual([body.model, body.provider], ['mistral-small-latest', 'Mistral']);
        assert.ok(body.error.message.length > 0);
      } finally {
        mistral.setBehaviour({ kind: 'ok' });
      }
      const several = (await (
        await chatGateway.post('/v1/chat/completions', { provider: 'Nope1 Nope2', model: 'x', messages: [{ role: 'user', content: 'Hi' }] })
      ).json()) as Record<string, unknown>;
      assert.deepEqual([several.model, several.provider], ['x', undefined], 'no single provider named: none said');
    });

    test('a provider id as model means that provider with its default model', async () => {
      const response = await chatGateway.post('/v1/chat/completions', { model: 'Mistral', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-interference-provider'), 'Mistral');
      assert.equal((mistral.requests.at(-1)?.body as { model: string }).model, 'mistral-small-latest');
    });

    test('gpt4free fields we do not act on are accepted, not forwarded, and named in x-interference-warnings', async () => {
      const fields = {
        web_search: true,
        conversation_id: 'c-1',
        proxy: 'http://127.0.0.1:9',
        timeout: 30,
        history_disabled: true,
        auto_continue: true,
        download_media: false,
      };
      const response = await chatGateway.post('/v1/chat/completions', {
        provider: 'Mistral',
        model: 'mistral-small-latest',
        messages: [{ role: 'user', content: 'Hi' }],
        ...fields,
      });
      assert.equal(response.status, 200);
      const warnings = response.headers.get('x-interference-warnings') ?? '';
      for (const field of Object.keys(fields)) assert.match(warnings, new RegExp(`${field} is not supported by Mistral and was not sent`));
      const sent = mistral.requests.at(-1)?.body as Record<string, unknown>;
      for (const field of Object.keys(fields)) assert.equal(sent[field], undefined, field);
    });
  });

  describe('the per-provider base URL, /api/{provider}', () => {
    let mistral: Fake;
    let scoped: Gateway;
    before(async () => {
      mistral = await startOpenAICompatibleFake({ reply: 'Scoped.', apiKey: 'mistral-key' });
      scoped = await startGateway({
        env: { MISTRAL_BASE_URL: mistral.url, MISTRAL_API_KEY: 'mistral-key', OPENAIAPI_BASE_URL: `${images.url}/v1`, OPENAIAPI_API_KEY: 'sk-images' },
      });
    });
    after(async () => {
      await scoped.close();
      await mistral.close();
    });

    test('models, images and chat (with a conversation id) under /api/{provider}, also under /v1; unknown paths and providers are 404s', async () => {
      for (const path of ['/api/Mistral/models', '/api/Mistral/v1/models', '/api/mistral/models']) {
        const list = (await (await scoped.get(path)).json()) as { data: Array<{ id: string; providers: string[]; type: string }> };
        assert.ok(list.data.length > 0, path);
        assert.ok(
          list.data.every((model) => model.providers.length === 1 && model.providers[0] === 'Mistral' && model.type === 'chat'),
          path,
        );
      }
      const unknownProvider = await scoped.get('/api/Nope/models');
      assert.equal(unknownProvider.status, 404);
      assert.match(((await unknownProvider.json()) as { error: { message: string } }).error.message, /Provider "Nope" not found/);
      assert.equal((await scoped.get('/api/Mistral/whatever')).status, 404);
      assert.equal((await scoped.post('/api/Mistral/what/ever/else', {})).status, 404);

      const image = await scoped.post('/api/OpenaiAPI/images/generations', { model: 'dall-e-2', prompt: 'a square', response_format: 'b64_json' });
      assert.equal(image.status, 200);
      assert.equal(image.headers.get('x-interference-provider'), 'OpenaiAPI');
      assert.equal(
        (await scoped.post('/api/OpenaiAPI/v1/images/generate', { model: 'dall-e-2', prompt: 'a square', response_format: 'b64_json' })).status,
        200,
      );

      const chat = await scoped.post('/api/Mistral/conv-123/chat/completions', { model: 'mistral-small-latest', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(chat.status, 200);
      assert.equal(chat.headers.get('x-interference-provider'), 'Mistral');
      assert.match(chat.headers.get('x-interference-warnings') ?? '', /conversation id in the path is accepted and ignored/);
    });
  });

  describe('Authorization: Bearer as the provider key, the way gpt4free clients send it', () => {
    let keyless: Fake;
    let keyed: Fake;
    let other: Fake;
    let open: Gateway;
    before(async () => {
      keyless = await startOpenAICompatibleFake({ reply: 'keyless' });
      keyed = await startOpenAICompatibleFake({ reply: 'keyed' });
      other = await startOpenAICompatibleFake({ reply: 'other' });
      open = await startGateway({
        config: {
          providers: [
            { id: 'NoKey', api: 'openai', baseUrl: keyless.url, models: ['m'] },
            { id: 'HasKey', api: 'openai', baseUrl: keyed.url, models: ['m'], apiKey: 'server-key' },
            { id: 'Other', api: 'openai', baseUrl: other.url, models: ['m'] },
          ],
        },
      });
    });
    after(async () => {
      await open.close();
      await Promise.all([keyless.close(), keyed.close(), other.close()]);
    });
    const ask = (body: Record<string, unknown>) =>
      open.post(
        '/v1/chat/completions',
        { model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...body },
        { headers: { authorization: 'Bearer client-key' } },
      );
    const sentKey = (fake: Fake) => fake.requests.at(-1)?.headers.authorization;

    test('used for the one provider named that has no server key; never otherwise', async () => {
      assert.equal((await ask({ provider: 'NoKey' })).status, 200);
      assert.equal(sentKey(keyless), 'Bearer client-key', 'one provider named, no server key: the client key');
      assert.equal((await ask({ provider: 'HasKey' })).status, 200);
      assert.equal(sentKey(keyed), 'Bearer server-key', "the server's key wins");
      assert.equal((await ask({ provider: 'NoKey', api_key: 'body-key' })).status, 200);
      assert.equal(sentKey(keyless), 'Bearer body-key', 'api_key in the body wins');
      assert.equal((await ask({ provider: 'NoKey Other' })).status, 200);
      assert.equal(sentKey(keyless), undefined, 'two providers named: no one gets it');
      assert.equal((await ask({})).status, 200);
      assert.ok(
        [keyless, other].every((fake) => sentKey(fake) === undefined),
        'automatic routing: no one gets it',
      );
      const path = await open.post(
        '/api/NoKey/chat/completions',
        { model: 'm', messages: [{ role: 'user', content: 'Hi' }] },
        { headers: { authorization: 'Bearer path-key' } },
      );
      assert.equal(path.status, 200);
      assert.equal(sentKey(keyless), 'Bearer path-key', 'the provider named by the /api/ path');
    });

    test('with a gateway key, Bearer is the gateway key and goes to no provider', async () => {
      const guarded = await startGateway({
        env: { INTERFERENCE_API_KEY: 'gw-key-0123456789' },
        config: { providers: [{ id: 'NoKey', api: 'openai', baseUrl: keyless.url, models: ['m'] }] },
      });
      try {
        const response = await guarded.post(
          '/v1/chat/completions',
          { provider: 'NoKey', model: 'm', messages: [{ role: 'user', content: 'Hi' }] },
          { headers: { authorization: 'Bearer gw-key-0123456789' } },
        );
        assert.equal(response.status, 200);
        assert.equal(sentKey(keyless), undefined);
      } finally {
        await guarded.close();
      }
    });
  });
});
