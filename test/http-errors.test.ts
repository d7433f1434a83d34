import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';
import { assertErrorBody, rawExchange, type ErrorBody } from './support/http.js';

/** Writes raw bytes to the gateway and returns all it answers until it closes the connection (6 s at most). */
async function rawText(base: string, request: string): Promise<string> {
  return (await rawExchange(Number(new URL(base).port), request)).text;
}

async function expectError(response: Response, status: number, param?: string | null): Promise<ErrorBody> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /application\/json/);
  const body: unknown = await response.json();
  assertErrorBody(body);
  if (param !== undefined) assert.equal(body.error.param, param);
  return body;
}

/** Bad input gets a clear OpenAI-shaped 4xx; nothing a client sends causes a 500. */
describe('bad requests', () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await startGateway({ env: { INTERFERENCE_MAX_BODY_BYTES: '4096' } });
  });
  after(() => gateway.close());

  test('bad JSON, empty body and non-object bodies are 400', async () => {
    await expectError(await gateway.post('/v1/chat/completions', '{"messages": ['), 400, null);
    await expectError(await gateway.post('/v1/chat/completions', ''), 400, null);
    await expectError(await gateway.post('/v1/chat/completions', '[1,2]'), 400, null);
    await expectError(await gateway.post('/v1/chat/completions', 'null'), 400, null);
  });

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing messages', {}, 'messages'],
    ['messages not an array', { messages: 'hi' }, 'messages'],
    ['empty messages', { messages: [] }, 'messages'],
    ['a message that is not an object', { messages: [5] }, 'messages[0]'],
    ['an unknown role', { messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    ['missing content', { messages: [{ role: 'user' }] }, 'messages[0].content'],
    ['content of the wrong type', { messages: [{ role: 'user', content: 42 }] }, 'messages[0].content'],
    ['a content part without type', { messages: [{ role: 'user', content: [{ text: 'x' }] }] }, 'messages[0].content[0]'],
    ['model not a string', { model: 7, messages: userMessage }, 'model'],
    ['stream not a boolean', { stream: 'yes', messages: userMessage }, 'stream'],
    ['temperature out of range', { temperature: 9, messages: userMessage }, 'temperature'],
    ['max_tokens not an integer', { max_tokens: 1.5, messages: userMessage }, 'max_tokens'],
    ['stop of the wrong type', { stop: [1], messages: userMessage }, 'stop'],
    ['provider of the wrong type', { provider: 12, messages: userMessage }, 'provider'],
    ['api_key of the wrong type', { provider: 'Local', api_key: 12, messages: userMessage }, 'api_key'],
    [
      'stream_options.include_usage not a boolean',
      { stream: true, stream_options: { include_usage: 1 }, messages: userMessage },
      'stream_options.include_usage',
    ],
  ];
  for (const [name, body, param] of cases) {
    test(`${name} is a 400 with param ${param}`, async () => {
      await expectError(await gateway.post('/v1/chat/completions', body), 400, param);
    });
  }

  test('a body over the limit is a 413', async () => {
    const big = { messages: [{ role: 'user', content: 'x'.repeat(10_000) }] };
    await expectError(await gateway.post('/v1/chat/completions', big), 413);
  });

  test('unknown routes and ids are JSON 404s; a wrong method is a 405', async () => {
    await expectError(await gateway.get('/v2/nothing'), 404);
    await expectError(await gateway.get('/v1/providers/NoSuchProvider'), 404, 'provider');
    await expectError(await gateway.get('/v1/models/no-such-model'), 404, 'model');
    await expectError(await gateway.post('/v1/models', {}), 405);
    await expectError(await gateway.get('/v1/chat/completions'), 405);
  });

  test('CORS pre-flight is answered for an allowed page, with its own origin echoed (never *)', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-headers': 'authorization, content-type' },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    assert.equal(response.headers.get('vary'), 'origin');
    const foreign = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://app.example' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  });

  test('allowed browser requests get CORS headers on every response, errors included; foreign pages a 403', async () => {
    const withOrigin = await fetch(`${gateway.url}/v1/providers/Nope`, { headers: { origin: 'http://127.0.0.1:8080' } });
    assert.equal(withOrigin.status, 404);
    assert.equal(withOrigin.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8080');
    assert.match(withOrigin.headers.get('access-control-expose-headers') ?? '', /x-interference-provider/);
    const own = await fetch(`${gateway.url}/v1/providers`, { headers: { origin: gateway.url } });
    assert.equal(own.status, 200);
    const foreign = await fetch(`${gateway.url}/v1/providers`, { headers: { origin: 'https://app.example' } });
    await expectError(foreign, 403);
    // DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own name as Host.
    const port = new URL(gateway.url).port;
    const rebound = await rawText(
      gateway.url,
      `GET /v1/providers HTTP/1.1\r\nHost: evil.example:${port}\r\nOrigin: http://evil.example:${port}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(rebound, /^HTTP\/1\.1 403/);
    const plain = await gateway.get('/v1/providers/Nope');
    assert.equal(plain.headers.get('access-control-allow-origin'), null);
  });

  test('405 names the allowed methods; over-long URLs are 414, over-large headers 431', async () => {
    const wrong = await gateway.get('/v1/chat/completions');
    await expectError(wrong, 405);
    assert.equal(wrong.headers.get('allow'), 'OPTIONS, POST');
    await expectError(await gateway.get(`/v1/models/${'m'.repeat(9000)}`), 414);
    assert.match(await rawText(gateway.url, `GET /v1/models/${'m'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 414/);
    assert.match(await rawText(gateway.url, `GET /v1/models HTTP/1.1\r\nHost: x\r\nx-big: ${'h'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431/);
    assert.equal((await gateway.get('/v1/providers')).status, 200);
  });

  test('a malformed HTTP request gets a 400 and the server keeps serving', async () => {
    const raw = await rawText(gateway.url, 'GARBAGE /\r\n\r\n');
    assert.match(raw, /400/);
    const ok = await gateway.get('/v1/providers');
    assert.equal(ok.status, 200);
  });
});
