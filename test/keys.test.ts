import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';
import { readSse } from './support/sse.js';
import { flushLog } from '../src/server/log.js';

const serverKeyA = 'sk-canary-server-A-7f3a9';
const requestKeyA = 'sk-canary-request-A-19c2e';
const requestKeyB = 'sk-canary-request-B-55d01';
const clientBearer = 'sk-canary-client-bearer-0b7e';
const canaries = [serverKeyA, requestKeyA, requestKeyB, clientBearer];

function authOf(fake: Fake, from: number): string[] {
  return fake.requests.slice(from).map((request) => String(request.headers.authorization ?? ''));
}

/** Keys reach only the provider they are meant for, and never a response or a log line. */
describe('api keys', () => {
  let a: Fake;
  let b: Fake;
  let gateway: Gateway;
  const logged: string[] = [];
  const originalWrite = process.stderr.write.bind(process.stderr);

  before(async () => {
    a = await startOpenAICompatibleFake({ reply: 'from A' });
    b = await startOpenAICompatibleFake({ reply: 'from B' });
    gateway = await startGateway({
      env: { INTERFERENCE_LOG: '1', PROVA_API_KEY: serverKeyA },
      config: {
        providers: [
          { id: 'ProvA', api: 'openai', baseUrl: a.url, models: ['test-model'] },
          { id: 'ProvB', api: 'openai', baseUrl: b.url, models: ['test-model'] },
        ],
      },
    });
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      logged.push(String(chunk));
      return (originalWrite as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
  });
  after(async () => {
    process.stderr.write = originalWrite;
    await gateway.close();
    await Promise.all([a.close(), b.close()]);
  });

  test('the server key goes to its provider only; the client Authorization header goes nowhere', async () => {
    const fromA = a.requests.length;
    const fromB = b.requests.length;
    const response = await gateway.post(
      '/v1/chat/completions',
      { provider: 'ProvB ProvA', messages: userMessage },
      { headers: { authorization: `Bearer ${clientBearer}` } },
    );
    assert.equal(response.status, 200);
    b.setBehaviour({ kind: 'status', status: 500 });
    await gateway.post('/v1/chat/completions', { provider: 'ProvB ProvA', messages: userMessage }, { headers: { authorization: `Bearer ${clientBearer}` } });
    b.setBehaviour({ kind: 'ok' });
    assert.deepEqual(authOf(a, fromA), [`Bearer ${serverKeyA}`]);
    assert.deepEqual(authOf(b, fromB), ['', '']);
  });

  test('api_key as a string goes to the one provider named, over the server key', async () => {
    const from = a.requests.length;
    const response = await gateway.post('/v1/chat/completions', { provider: 'ProvA', api_key: requestKeyA, messages: userMessage });
    assert.equal(response.status, 200);
    assert.deepEqual(authOf(a, from), [`Bearer ${requestKeyA}`]);
  });

  test('api_key as a string with several providers is a 400 (it would be ambiguous)', async () => {
    const response = await gateway.post('/v1/chat/completions', { provider: 'ProvA ProvB', api_key: requestKeyA, messages: userMessage });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { param: string; message: string } };
    assert.equal(body.error.param, 'api_key');
    assert.ok(!body.error.message.includes(requestKeyA));
  });

  test('api_key as an object: each provider gets its own key and no other', async () => {
    const fromA = a.requests.length;
    const fromB = b.requests.length;
    a.setBehaviour({ kind: 'status', status: 503 });
    const response = await gateway.post('/v1/chat/completions', {
      provider: 'ProvA ProvB',
      api_key: { ProvA: requestKeyA, provb: requestKeyB, Unknown: 'ignored' },
      messages: userMessage,
    });
    a.setBehaviour({ kind: 'ok' });
    assert.equal(response.status, 200);
    assert.deepEqual(authOf(a, fromA), [`Bearer ${requestKeyA}`]);
    assert.deepEqual(authOf(b, fromB), [`Bearer ${requestKeyB}`]);
  });

  test('an upstream error that echoes the key is redacted before it reaches the client', async () => {
    a.setBehaviour({
      kind: 'status',
      status: 401,
      body: JSON.stringify({
        error: { message: `Incorrect API key provided: ${requestKeyA}`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
      }),
    });
    const response = await gateway.post('/v1/chat/completions', { provider: 'ProvA', api_key: requestKeyA, messages: userMessage });
    a.setBehaviour({ kind: 'ok' });
    assert.equal(response.status, 401);
    const text = await response.text();
    assert.ok(!text.includes(requestKeyA), text);
    assert.match(text, /\[redacted\]/);
  });

  test('a mid-stream error that echoes the key is redacted too', async () => {
    a.setBehaviour({ kind: 'stream-break-after-content', afterChunks: 1 });
    const response = await gateway.post('/v1/chat/completions', { provider: 'ProvA', api_key: requestKeyA, messages: userMessage, stream: true });
    const sse = await readSse(response);
    a.setBehaviour({ kind: 'ok' });
    assert.ok(!sse.raw.includes(requestKeyA));
  });

  test('no key appears in the provider listings or in any log line', async () => {
    const listing = await (await gateway.get('/v1/providers')).text();
    const detail = await (await gateway.get('/v1/providers/ProvA')).text();
    const models = await (await gateway.get('/v1/models')).text();
    for (const canary of canaries) {
      assert.ok(!listing.includes(canary) && !detail.includes(canary) && !models.includes(canary));
    }
    flushLog(); // lines are written together, a few milliseconds after their requests
    const log = logged.join('');
    assert.ok(log.split('\n').filter((line) => line !== '').length > 3, 'request logging is on in this test');
    for (const canary of canaries) assert.ok(!log.includes(canary), `log leaks ${canary}`);
  });
});
