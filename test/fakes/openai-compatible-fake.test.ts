/**
 * Tests of the fake upstream itself: byte-exact framing per flavor, errors, behaviours, connections.
 * Run: node --import tsx --test test/fakes/openai-compatible-fake.test.ts
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { call, type Answer } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import { closedPortUrl, startOpenAICompatibleFake, type Behaviour, type Fake, type FakeOptions, type Flavor } from './openai-compatible-fake.js';
import {
  createWire,
  LLAMACPP_ERROR_401,
  OPENAI_ERROR_429_TOKENS,
  OPENAI_ERROR_500,
  RECORDED_OPENAI_CHAT_COMPLETION,
  RECORDED_OPENAI_RATE_LIMIT_HEADERS,
  RECORDED_OPENAI_STREAM_WITH_USAGE_NO_LOGPROBS,
  splitReply,
} from './fixtures/openai.js';

const FLAVORS: readonly Flavor[] = ['openai', 'ollama', 'llamacpp', 'huggingface'];
const REPLY = 'Hi there';
const MESSAGES = [{ role: 'user', content: 'one two three' }]; // 3 prompt words

const fakes: Fake[] = [];
async function fake(options: FakeOptions = {}): Promise<Fake> {
  const f = await startOpenAICompatibleFake({ reply: REPLY, ...options });
  fakes.push(f);
  return f;
}
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

const chat = (f: Fake, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Answer> =>
  call(`${f.url}/chat/completions`, { body: JSON.stringify({ model: 'm', messages: MESSAGES, ...body }), headers });

/** Reads a streamed body until it ends or breaks; returns what arrived and whether it broke. */
async function readStream(f: Fake, body: Record<string, unknown>): Promise<{ status: number; text: string; broke: boolean }> {
  const res = await request(`${f.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: MESSAGES, stream: true, ...body }),
  });
  let text = '';
  try {
    for await (const chunk of res.body) text += String(chunk);
    return { status: res.statusCode, text, broke: false };
  } catch {
    return { status: res.statusCode, text, broke: true };
  }
}

const idOf = (text: string): string => /"id": ?"([^"]+)"/.exec(text)?.[1] ?? assert.fail('no id');
const createdOf = (text: string): string => /"created": ?(\d+)/.exec(text)?.[1] ?? assert.fail('no created');
const events = (text: string): string[] => text.split(/(?<=\n\n)/);

// Expected streams for REPLY 'Hi there' (pieces "Hi", " there"), model "m", 3 prompt words, written
// out literally per flavor (independent of the fixture builders).
const expectedStream: Record<Flavor, (id: string, created: string, usage: boolean) => string> = {
  openai: (id, created, usage) => {
    const e = (rest: string): string =>
      `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"m","system_fingerprint":"fp_b40fb1c6fb","choices":${rest}}\n\n`;
    return (
      e('[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]') +
      e('[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]') +
      e('[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}]') +
      e('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]') +
      (usage ? e('[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"completion_tokens_details":{"reasoning_tokens":0}}') : '') +
      'data: [DONE]\n\n'
    );
  },
  huggingface: (id, created, usage) => {
    const e = (rest: string): string =>
      `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"m","system_fingerprint":null,"choices":${rest}}\n\n`;
    return (
      e('[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]') +
      e('[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]') +
      e('[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}]') +
      e('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]') +
      (usage ? e('[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}') : '') +
      'data: [DONE]\n\n'
    );
  },
  ollama: (id, created, usage) => {
    const e = (rest: string): string =>
      `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"m","system_fingerprint":"fp_ollama","choices":${rest}}\n\n`;
    return (
      e('[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]') +
      e('[{"index":0,"delta":{"content":" there"},"finish_reason":null}]') +
      e('[{"index":0,"delta":{},"finish_reason":"stop"}]') +
      (usage ? e('[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}') : '') +
      'data: [DONE]\n\n'
    );
  },
  llamacpp: (id, created, usage) => {
    const tail = `,"created":${created},"id":"${id}","model":"m","system_fingerprint":"b6950-0ce03597e","object":"chat.completion.chunk"`;
    const timings =
      ',"timings":{"cache_n":0,"prompt_n":3,"prompt_ms":1.5,"prompt_per_token_ms":0.5,"prompt_per_second":2000.0,"predicted_n":2,"predicted_ms":25.0,"predicted_per_token_ms":12.5,"predicted_per_second":80.0}';
    const e = (choices: string, extra = ''): string => `data: {"choices":${choices}${tail}${extra}}\n\n`;
    return (
      e('[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}]') +
      e('[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}]') +
      e('[{"finish_reason":null,"index":0,"delta":{"content":" there"}}]') +
      e('[{"finish_reason":"stop","index":0,"delta":{}}]', usage ? '' : timings) +
      (usage ? e('[]', `,"usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}${timings}`) : '') +
      'data: [DONE]\n\n'
    );
  },
};

describe('recorded OpenAI stream', () => {
  it('the builder reproduces §1.4 (83b060ba, logprobs null) byte for byte', () => {
    const wire = createWire('openai', ['Foo', '!'], { systemFingerprint: 'fp_5050236cbd' });
    const s = wire.stream(
      { id: 'chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c', created: 1727346173, model: 'gpt-4o-2024-08-06', count: 2, finishReason: 'stop', promptTokens: 9 },
      true,
    );
    const text = [...s.prelude, ...s.contents, s.finish, s.usage ?? '', s.done].join('');
    assert.equal(text, RECORDED_OPENAI_STREAM_WITH_USAGE_NO_LOGPROBS);
  });

  it('the fake serves it over HTTP (id, created, fingerprint aside)', async () => {
    const f = await fake({ reply: ['Foo', '!'] });
    const nineWords = [{ role: 'user', content: 'a b c d e f g h i' }];
    const res = await chat(f, { model: 'gpt-4o-2024-08-06', messages: nineWords, stream: true, stream_options: { include_usage: true } });
    const normalised = res.text
      .replaceAll(idOf(res.text), 'chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c')
      .replaceAll(`"created":${createdOf(res.text)}`, '"created":1727346173')
      .replaceAll('fp_b40fb1c6fb', 'fp_5050236cbd');
    assert.equal(normalised, RECORDED_OPENAI_STREAM_WITH_USAGE_NO_LOGPROBS);
  });
});

describe('streams per flavor', () => {
  for (const flavor of FLAVORS) {
    for (const usage of [false, true]) {
      it(`${flavor}: exact bytes with include_usage ${usage ? 'on' : 'off'}`, async () => {
        const f = await fake({ flavor });
        const res = await chat(f, { stream: true, ...(usage ? { stream_options: { include_usage: true } } : {}) });
        assert.equal(res.status, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        assert.equal(res.text, expectedStream[flavor](idOf(res.text), createdOf(res.text), usage));
        assert.notEqual(res.headers.connection, 'close');
      });
    }
  }

  it('ids follow each flavor', async () => {
    const pattern: Record<Flavor, RegExp> = {
      openai: /^chatcmpl-[A-Za-z0-9]{29}$/,
      ollama: /^chatcmpl-\d{1,3}$/,
      llamacpp: /^chatcmpl-[A-Za-z0-9]{32}$/,
      huggingface: /^chatcmpl-[0-9a-f]{32}$/,
    };
    for (const flavor of FLAVORS) {
      const f = await fake({ flavor });
      assert.match(idOf((await chat(f, { stream: true })).text), pattern[flavor]);
      assert.match(idOf((await chat(f, {})).text), pattern[flavor]);
    }
  });

  it('stream_options without include_usage sends no usage chunk', async () => {
    const f = await fake();
    const res = await chat(f, { stream: true, stream_options: { include_usage: false } });
    assert.ok(!res.text.includes('"usage"'));
  });

  it('max_tokens / max_completion_tokens truncate with finish_reason length', async () => {
    const f = await fake({ reply: 'one two three four' });
    const streamed = await chat(f, { stream: true, max_tokens: 2, stream_options: { include_usage: true } });
    assert.equal(events(streamed.text).filter((e) => e.includes('"content":"') && !e.includes('"role"')).length, 2);
    assert.match(streamed.text, /"finish_reason":"length"/);
    assert.match(streamed.text, /"completion_tokens":2,/);
    const json = JSON.parse((await chat(f, { max_completion_tokens: 3 })).text) as typeof RECORDED_OPENAI_CHAT_COMPLETION;
    assert.equal(json.choices[0].message.content, 'one two three');
    assert.equal(json.choices[0].finish_reason, 'length');
    const enough = JSON.parse((await chat(f, { max_tokens: 4 })).text) as typeof RECORDED_OPENAI_CHAT_COMPLETION;
    assert.equal(enough.choices[0].finish_reason, 'stop');
  });
});

describe('JSON answers', () => {
  it('openai: the recorded shape, pretty-printed, with OpenAI headers', async () => {
    const f = await fake();
    const res = await chat(f, {});
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.match(String(res.headers['x-request-id']), /^req_[0-9a-f]{32}$/);
    assert.equal(res.headers['openai-version'], '2020-10-01');
    assert.ok(res.headers['openai-processing-ms'] !== undefined);
    for (const [name, value] of Object.entries(RECORDED_OPENAI_RATE_LIMIT_HEADERS)) assert.equal(res.headers[name], value);
    const body = JSON.parse(res.text) as Record<string, unknown>;
    assert.equal(res.text, `${JSON.stringify(body, null, 2)}\n`);
    const expected = {
      ...RECORDED_OPENAI_CHAT_COMPLETION,
      id: body.id,
      created: body.created,
      model: 'm',
      choices: [{ ...RECORDED_OPENAI_CHAT_COMPLETION.choices[0], message: { role: 'assistant', content: REPLY, refusal: null } }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, completion_tokens_details: { reasoning_tokens: 0 } },
    };
    assert.deepEqual(body, expected);
    assert.deepEqual(Object.keys(body), Object.keys(RECORDED_OPENAI_CHAT_COMPLETION));
  });

  it('ollama: fp_ollama, no logprobs key, trailing newline', async () => {
    const f = await fake({ flavor: 'ollama' });
    const res = await chat(f, {});
    const id = idOf(res.text);
    assert.equal(
      res.text,
      `{"id":"${id}","object":"chat.completion","created":${createdOf(res.text)},"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n`,
    );
  });

  it('llamacpp: ordered_json key order and timings', async () => {
    const f = await fake({ flavor: 'llamacpp' });
    const res = await chat(f, {});
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(
      res.text,
      `{"choices":[{"finish_reason":"stop","index":0,"message":{"role":"assistant","content":"Hi there"}}],"created":${createdOf(res.text)},"model":"m","system_fingerprint":"b6950-0ce03597e","object":"chat.completion","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}},"id":"${idOf(res.text)}","timings":{"cache_n":0,"prompt_n":3,"prompt_ms":1.5,"prompt_per_token_ms":0.5,"prompt_per_second":2000.0,"predicted_n":2,"predicted_ms":25.0,"predicted_per_token_ms":12.5,"predicted_per_second":80.0}}`,
    );
  });

  it('llamacpp: model may be omitted (single-model mode), answered with the served id', async () => {
    const f = await fake({ flavor: 'llamacpp' });
    const res = await call(`${f.url}/chat/completions`, { body: JSON.stringify({ messages: MESSAGES }) });
    assert.equal(res.status, 200);
    assert.match(res.text, /"model":"\.\.\/models\/Meta-Llama-3\.1-8B-Instruct-Q4_K_M\.gguf"/);
  });

  it('huggingface: system_fingerprint null', async () => {
    const f = await fake({ flavor: 'huggingface' });
    const body = JSON.parse((await chat(f, {})).text) as Record<string, unknown>;
    assert.equal(body.system_fingerprint, null);
    assert.equal(body.object, 'chat.completion');
  });
});

describe('errors', () => {
  it('400 for a body that is not JSON or lacks messages/model, in each flavor shape', async () => {
    const f = await fake();
    const notJson = await call(`${f.url}/chat/completions`, { body: '{"model":' });
    assert.equal(notJson.status, 400);
    assert.match(notJson.text, /^\{"error":\{"message":"We could not parse the JSON body/);
    const noMessages = await call(`${f.url}/chat/completions`, { body: '{"model":"m"}' });
    assert.equal(noMessages.status, 400);
    assert.equal(
      noMessages.text,
      `{"error":{"message":"Missing required parameter: 'messages'.","type":"invalid_request_error","param":"messages","code":null}}`,
    );
    const noModel = await call(`${f.url}/chat/completions`, { body: JSON.stringify({ messages: MESSAGES }) });
    assert.equal(noModel.status, 400);
    assert.match(noModel.text, /"param":"model"/);

    const shapes: Record<Exclude<Flavor, 'openai'>, RegExp> = {
      ollama: /^\{"error":\{"message":"\[\] is too short - 'messages'","type":"invalid_request_error","param":null,"code":null\}\}\n$/,
      llamacpp: /^\{"error":\{"code":400,"message":"'messages' is required","type":"invalid_request_error"\}\}$/,
      huggingface: /^\{"error":"[^"]+"\}$/,
    };
    for (const [flavor, shape] of Object.entries(shapes)) {
      const g = await fake({ flavor: flavor as Flavor });
      const res = await call(`${g.url}/chat/completions`, { body: '{"model":"m","messages":[]}' });
      assert.equal(res.status, 400, flavor);
      assert.match(res.text, shape, flavor);
    }
  });

  it('401 with a wrong or missing key, per flavor; the right key passes', async () => {
    const expected: Record<Flavor, string> = {
      openai:
        '{"error":{"message":"Incorrect API key provided: sk-**ong1. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}',
      ollama: '{"error":{"message":"unauthorized","type":"api_error","param":null,"code":null}}\n',
      llamacpp: LLAMACPP_ERROR_401,
      huggingface: '{"error":"Invalid credentials in Authorization header"}',
    };
    for (const flavor of FLAVORS) {
      const f = await fake({ flavor, apiKey: 'sk-right' });
      const wrong = await chat(f, {}, { authorization: 'Bearer sk-wrong1' });
      assert.equal(wrong.status, 401, flavor);
      assert.equal(wrong.text, expected[flavor], flavor);
      assert.equal((await chat(f, {})).status, 401, flavor);
      assert.equal((await chat(f, {}, { authorization: 'Bearer sk-right' })).status, 200, flavor);
      assert.equal((await call(`${f.url}/models`, { method: 'GET' })).status, 401, flavor);
    }
    const f = await fake({ apiKey: 'sk-right' });
    assert.match((await chat(f, {})).text, /"message":"You didn't provide an API key\./);
  });

  it('unknown model: each flavor’s real model-not-found reply', async () => {
    const expected: Record<Flavor, [number, string]> = {
      openai: [
        404,
        '{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}',
      ],
      ollama: [404, `{"error":{"message":"model 'gpt-9' not found","type":"not_found_error","param":null,"code":null}}\n`],
      llamacpp: [404, '{"error":{"code":404,"message":"model is not found","type":"not_found_error"}}'],
      huggingface: [400, `{"error":"The requested model 'gpt-9' is not supported by any provider you have enabled."}`],
    };
    for (const flavor of FLAVORS) {
      const f = await fake({ flavor, models: ['m'] });
      const res = await chat(f, { model: 'gpt-9' });
      assert.deepEqual([res.status, res.text], expected[flavor], flavor);
      assert.equal((await chat(f, {})).status, 200, flavor);
    }
  });

  it('unknown routes get the flavor 404', async () => {
    const expected: Record<Flavor, string> = {
      openai: '{"error":{"message":"Invalid URL (POST /v1/nope)","type":"invalid_request_error","param":null,"code":null}}',
      ollama: '404 page not found',
      llamacpp: '{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}',
      huggingface: '{"error":"Not Found"}',
    };
    for (const flavor of FLAVORS) {
      const f = await fake({ flavor });
      const res = await call(`${f.url}/nope`, { body: '{}' });
      assert.deepEqual([res.status, res.text], [404, expected[flavor]], flavor);
    }
  });
});

describe('GET /models', () => {
  it('lists the served models in each flavor shape', async () => {
    const o = await fake({ models: ['gpt-4o-mini', 'gpt-4o'] });
    const list = JSON.parse((await call(`${o.url}/models`, { method: 'GET' })).text) as { object: string; data: unknown[] };
    assert.deepEqual(list, {
      object: 'list',
      data: [
        { id: 'gpt-4o-mini', object: 'model', created: 1686935002, owned_by: 'system' },
        { id: 'gpt-4o', object: 'model', created: 1686935002, owned_by: 'system' },
      ],
    });
    const ol = await fake({ flavor: 'ollama', models: ['llama3.2:latest', 'alice/tiny:1b'] });
    assert.equal(
      (await call(`${ol.url}/models`, { method: 'GET' })).text,
      '{"object":"list","data":[{"id":"llama3.2:latest","object":"model","created":1746405464,"owned_by":"library"},{"id":"alice/tiny:1b","object":"model","created":1746405464,"owned_by":"alice"}]}\n',
    );
    const lc = await fake({ flavor: 'llamacpp' });
    const lcList = JSON.parse((await call(`${lc.url}/models`, { method: 'GET' })).text) as { data: Array<{ id: string; owned_by: string }> };
    assert.equal(lcList.data[0]?.owned_by, 'llamacpp');
    const hf = await fake({ flavor: 'huggingface' });
    assert.match((await call(`${hf.url}/models`, { method: 'GET' })).text, /"providers":\[\{"provider":"novita"/);
  });
});

describe('behaviours', () => {
  it('status: the flavor default body, or the given body and headers', async () => {
    const f = await fake({ behaviour: { kind: 'status', status: 500 } });
    const res = await chat(f, {});
    assert.deepEqual([res.status, res.text], [500, OPENAI_ERROR_500]);
    f.setBehaviour({ kind: 'status', status: 503, body: 'upstream down', headers: { 'content-type': 'text/plain', 'x-should-retry': 'false' } });
    const custom = await chat(f, {});
    assert.deepEqual(
      [custom.status, custom.text, custom.headers['content-type'], custom.headers['x-should-retry']],
      [503, 'upstream down', 'text/plain', 'false'],
    );
    f.setBehaviour({ kind: 'status', status: 429 });
    assert.equal((await chat(f, {})).text, OPENAI_ERROR_429_TOKENS);
    const l = await fake({ flavor: 'llamacpp', behaviour: { kind: 'status', status: 503 } });
    assert.equal((await chat(l, {})).text, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}');
  });

  it('rate-limit: 429, retry-after, x-ratelimit-*, the flavor body', async () => {
    for (const flavor of FLAVORS) {
      const f = await fake({ flavor, behaviour: { kind: 'rate-limit', retryAfterSeconds: 7 } });
      const res = await chat(f, {});
      assert.equal(res.status, 429, flavor);
      assert.equal(res.headers['retry-after'], '7', flavor);
      assert.equal(res.headers['x-ratelimit-remaining-requests'], '0', flavor);
      assert.equal(res.headers['x-ratelimit-reset-requests'], '7s', flavor);
      assert.equal(res.headers['x-ratelimit-limit-requests'], '5000', flavor);
      assert.ok(JSON.parse(res.text) !== null, flavor);
    }
    const f = await fake({ behaviour: { kind: 'rate-limit', retryAfterSeconds: 2 } });
    const body = JSON.parse((await chat(f, {})).text) as { error: { type: string; code: string; message: string } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.equal(body.error.type, 'requests');
    assert.match(body.error.message, /Please try again in 2s\./);
  });

  it('hang: no headers; the client abort is seen as a closed connection', async () => {
    const f = await fake({ behaviour: { kind: 'hang' } });
    const controller = new AbortController();
    const pending = chat(f, {}, undefined).catch((e: unknown) => e);
    const aborted = call(`${f.url}/chat/completions`, { body: JSON.stringify({ model: 'm', messages: MESSAGES }), signal: controller.signal });
    await waitFor(() => f.requests.length === 2, 'both requests');
    assert.equal(f.openConnections(), 2);
    assert.equal(f.closedConnections, 0);
    controller.abort();
    await assert.rejects(aborted);
    await waitFor(() => f.closedConnections === 1, 'closedConnections 1');
    assert.equal(f.openConnections(), 1);
    await f.close(); // ends the other hanging request
    assert.ok((await pending) instanceof Error);
    assert.equal(f.closedConnections, 1);
  });

  it('malformed: 200 application/json that does not parse', async () => {
    const f = await fake({ behaviour: { kind: 'malformed' } });
    const res = await chat(f, {});
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.ok(res.text.length > 0);
    assert.throws(() => JSON.parse(res.text) as unknown);
  });

  it('stream-break-before-content: the role chunk, then the socket dies', async () => {
    const f = await fake({ behaviour: { kind: 'stream-break-before-content' } });
    const res = await readStream(f, {});
    assert.equal(res.status, 200);
    assert.ok(res.broke);
    assert.equal(events(res.text).length, 1);
    assert.match(res.text, /"delta":\{"role":"assistant","content":"","refusal":null\}/);
    assert.equal(f.closedConnections, 0); // the fake's own break is not a client close
  });

  it('stream-break-after-content: afterChunks content chunks, then the socket dies', async () => {
    const f = await fake({ reply: 'a b c d e', behaviour: { kind: 'stream-break-after-content', afterChunks: 3 } });
    const res = await readStream(f, {});
    assert.ok(res.broke);
    const sent = events(res.text);
    assert.equal(sent.length, 4); // role + 3 content
    assert.match(sent[3] ?? '', /"delta":\{"content":" c"\}/);
    assert.ok(!res.text.includes('[DONE]'));
  });

  it('stream-error-event: one content chunk, the OpenAI error event, a clean end', async () => {
    const f = await fake({ behaviour: { kind: 'stream-error-event' } });
    const res = await readStream(f, {});
    assert.ok(!res.broke);
    const sent = events(res.text);
    assert.equal(sent.length, 3);
    assert.equal(sent[2], `data: ${OPENAI_ERROR_500}\n\n`);
    const l = await fake({ flavor: 'llamacpp', behaviour: { kind: 'stream-error-event' } });
    assert.match((await readStream(l, {})).text, /data: \{"error":\{"code":500,"message":"[^"]+","type":"server_error"\}\}\n\n$/);
  });

  it('stream-stall: some chunks, then silence until the client leaves', async () => {
    const f = await fake({ reply: 'a b c d', behaviour: { kind: 'stream-stall', afterChunks: 2 } });
    const controller = new AbortController();
    const res = await request(`${f.url}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', messages: MESSAGES, stream: true }),
      signal: controller.signal,
    });
    let text = '';
    const reading = (async () => {
      try {
        for await (const chunk of res.body) text += String(chunk);
      } catch {
        /* aborted */
      }
    })();
    await waitFor(() => events(text).length === 3 && text.endsWith('\n\n'), 'role + 2 chunks');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(events(text).length, 3); // nothing more arrived
    controller.abort();
    await reading;
    await waitFor(() => f.closedConnections === 1 && f.openConnections() === 0, 'client close seen');
  });

  it('slow-stream: the normal stream, delayMs between events', async () => {
    const f = await fake({ behaviour: { kind: 'slow-stream', delayMs: 30 } });
    const started = Date.now();
    const res = await readStream(f, {});
    const elapsed = Date.now() - started;
    assert.equal(res.text, expectedStream.openai(idOf(res.text), createdOf(res.text), false));
    assert.ok(elapsed >= 30 * 4, `took ${elapsed} ms`); // 5 events → 4 gaps
  });

  it('non-streaming requests: breaks cut the JSON body, stalls hold it', async () => {
    const f = await fake({ behaviour: { kind: 'stream-break-after-content' } });
    await assert.rejects(chat(f, {}));
    f.setBehaviour({ kind: 'stream-break-before-content' });
    await assert.rejects(chat(f, {}));
    f.setBehaviour({ kind: 'stream-error-event' });
    assert.equal((await chat(f, {})).status, 500);
    f.setBehaviour({ kind: 'slow-stream', delayMs: 5 });
    assert.equal((await chat(f, {})).status, 200);
    f.setBehaviour({ kind: 'stream-stall', afterChunks: 1 });
    const stalled = await request(`${f.url}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', messages: MESSAGES }),
      signal: AbortSignal.timeout(150),
    });
    assert.equal(stalled.statusCode, 200); // headers promise the whole body, half of it arrives
    await assert.rejects(stalled.body.text());
  });

  it('a behaviour function sees each request and its index', async () => {
    const seen: Array<[string, number]> = [];
    const plan = (req: { path: string }, index: number): Behaviour => {
      seen.push([req.path, index]);
      return index === 0 ? { kind: 'status', status: 502 } : { kind: 'ok' };
    };
    const f = await fake({ behaviour: plan });
    assert.equal((await chat(f, {})).status, 502);
    assert.equal((await chat(f, {})).status, 200);
    assert.equal((await call(`${f.url}/models`, { method: 'GET' })).status, 200);
    assert.deepEqual(seen, [
      ['/v1/chat/completions', 0],
      ['/v1/chat/completions', 1],
      ['/v1/models', 2],
    ]);
    assert.equal(f.requests.length, 3);
    assert.deepEqual(f.requests[0]?.body, { model: 'm', messages: MESSAGES });
  });
});

describe('connections and options', () => {
  it('keeps connections alive between requests', async () => {
    const f = await fake();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (): Promise<{ reused: boolean; connection: string | undefined }> =>
      new Promise((resolve, reject) => {
        const req = http.request(`${f.url}/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ reused: req.reusedSocket, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', messages: MESSAGES, stream: true }));
      });
    const first = await post();
    const second = await post();
    assert.equal(first.connection, 'keep-alive');
    assert.equal(second.reused, true);
    assert.equal(f.openConnections(), 1);
    agent.destroy();
  });

  it('closedPortUrl refuses connections', async () => {
    const url = await closedPortUrl();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    await assert.rejects(call(`${url}/chat/completions`, { body: '{}' }), (e: unknown) => {
      const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
      return code === 'ECONNREFUSED';
    });
  });

  it('record: false keeps no requests; basePath moves the routes', async () => {
    const f = await fake({ record: false, basePath: '/openai/v1/' });
    assert.equal(f.url, `${f.origin}/openai/v1`);
    assert.equal((await chat(f, {})).status, 200);
    assert.equal(f.requests.length, 0);
    assert.equal((await call(`${f.origin}/v1/chat/completions`, { body: '{}' })).status, 404);
  });

  it('splitReply keeps leading spaces on words', () => {
    assert.deepEqual(splitReply('Hello from  the fake.'), ['Hello', ' from', '  the', ' fake.']);
    assert.deepEqual(splitReply(''), []);
  });
});
