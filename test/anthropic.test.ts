import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request as httpRequest } from 'undici';
import { UpstreamError, type FailureKind } from '../src/core/errors.js';
import { defaultLimits, type Timeouts, type UpstreamLimits } from '../src/core/http.js';
import type { ChatResult } from '../src/core/provider.js';
import type { ChatChunk, ChatCompletion, ChatRequest } from '../src/core/types.js';
import {
  anthropicBaseUrl,
  anthropicDeclaration,
  createAnthropicProvider,
  defaultMaxTokens,
  jsonToolName,
  toAnthropicRequest,
  type AnthropicProvider,
} from '../src/providers/anthropic/index.js';
import { startAnthropicFake, type AnthropicFake, type AnthropicFakeRequest } from './fakes/anthropic-fake.js';
import { RECORDED_BASIC_STREAM_EVENTS, sseEvent } from './fakes/fixtures/anthropic.js';
import { TINY_PNG } from './fakes/gradio-fake.js';
import { assertOpenAIShape } from './support/openai-schema.js';

const KEY = 'sk-ant-test-key';
const timeouts: Timeouts = { connectMs: 2000, firstByteMs: 3000, idleMs: 3000 };
const hello = [{ role: 'user' as const, content: 'Hi' }];

function providerFor(fake: AnthropicFake): AnthropicProvider {
  return createAnthropicProvider({ ...anthropicDeclaration, baseUrl: fake.url }, { timeouts });
}

async function chat(
  provider: AnthropicProvider,
  request: Partial<ChatRequest>,
  options: { apiKey?: string | null; limits?: UpstreamLimits; signal?: AbortSignal } = {},
): Promise<ChatResult> {
  const chatFn = provider.chat;
  assert.ok(chatFn !== undefined);
  return chatFn({
    request: { model: 'claude-sonnet-5', messages: hello, ...request } as ChatRequest,
    apiKey: options.apiKey === null ? undefined : (options.apiKey ?? KEY),
    signal: options.signal ?? AbortSignal.timeout(5000),
    limits: options.limits ?? { ...defaultLimits, privateDownloads: true }, // images are served by the local fake
  });
}

async function completion(provider: AnthropicProvider, request: Partial<ChatRequest>): Promise<ChatCompletion> {
  const result = await chat(provider, request);
  assert.equal(result.type, 'completion');
  assertOpenAIShape('CreateChatCompletionResponse', result.completion);
  return result.completion;
}

async function streamed(provider: AnthropicProvider, request: Partial<ChatRequest>): Promise<ChatChunk[]> {
  const result = await chat(provider, { ...request, stream: true });
  assert.equal(result.type, 'stream');
  const chunks: ChatChunk[] = [];
  for await (const chunk of result.chunks) {
    assertOpenAIShape('CreateChatCompletionStreamResponse', chunk);
    chunks.push(chunk);
  }
  return chunks;
}

function sentBody(fake: AnthropicFake): Record<string, unknown> {
  const last = fake.accepted.at(-1);
  assert.ok(last !== undefined, 'the fake accepted a request');
  return last.body as Record<string, unknown>;
}

function text(chunks: ChatChunk[]): string {
  return chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
}

async function rejects(promise: Promise<unknown>, kind: FailureKind, extra: (error: UpstreamError) => void = () => {}): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UpstreamError, `an UpstreamError, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    extra(error);
    return error;
  }
  assert.fail(`expected an UpstreamError (${kind})`);
}

async function drain(result: ChatResult): Promise<ChatChunk[]> {
  assert.equal(result.type, 'stream');
  const chunks: ChatChunk[] = [];
  for await (const chunk of result.chunks) chunks.push(chunk);
  return chunks;
}

describe('Anthropic provider: request translation', () => {
  let fake: AnthropicFake;
  let provider: AnthropicProvider;
  before(async () => {
    fake = await startAnthropicFake({ apiKey: KEY, files: { 'tiny.png': TINY_PNG, 'note.txt': Buffer.from('not an image') } });
    provider = providerFor(fake);
  });
  after(() => fake.close());

  test('headers, endpoint, default max_tokens, system and developer hoisted, same-role turns merged', async () => {
    await completion(provider, {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in English.' }] },
        { role: 'user', content: 'Hello' },
        { role: 'user', content: [{ type: 'text', text: 'Are you there?' }] },
        { role: 'assistant', content: 'Yes.' },
        { role: 'user', content: 'Good.' },
      ],
      seed: 7,
    });
    const received = fake.accepted.at(-1) as AnthropicFakeRequest;
    assert.equal(received.path, '/v1/messages');
    assert.equal(received.headers['x-api-key'], KEY);
    assert.equal(received.headers['anthropic-version'], '2023-06-01');
    assert.match(String(received.headers['content-type']), /^application\/json/);
    assert.equal(received.headers.authorization, undefined);
    assert.ok(!received.raw.slice(received.raw.indexOf('"messages"')).includes(KEY), 'the key is only in the header');
    assert.deepEqual(received.body, {
      model: 'claude-sonnet-5',
      max_tokens: defaultMaxTokens,
      system: 'Be brief.\n\nAnswer in English.',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hello' },
            { type: 'text', text: 'Are you there?' },
          ],
        },
        { role: 'assistant', content: [{ type: 'text', text: 'Yes.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Good.' }] },
      ],
    });
  });

  test('sampling fields: max_completion_tokens, temperature clamped, top_p only without temperature, stop, user, top_k', async () => {
    await completion(provider, { max_completion_tokens: 50, max_tokens: 9, temperature: 1.6, top_p: 0.5, stop: 'END', user: 'u-1' });
    assert.deepEqual(
      { ...sentBody(fake), messages: undefined },
      { model: 'claude-sonnet-5', max_tokens: 50, temperature: 1, stop_sequences: ['END'], metadata: { user_id: 'u-1' }, messages: undefined },
    );
    await completion(provider, { max_tokens: 9, top_p: 0.5, top_k: 20, stop: ['a', 'b'] });
    const body = sentBody(fake);
    assert.equal(body.max_tokens, 9);
    assert.equal(body.top_p, 0.5);
    assert.equal(body.top_k, 20);
    assert.deepEqual(body.stop_sequences, ['a', 'b']);
    assert.equal(body.temperature, undefined);
  });

  test('warnings name what was dropped or changed', async () => {
    const translated = await toAnthropicRequest({ model: 'm', messages: hello, seed: 1, temperature: 2, top_p: 0.9, presence_penalty: 0.5 } as ChatRequest, {
      signal: AbortSignal.timeout(1000),
      timeouts,
      limits: defaultLimits,
    });
    assert.equal(translated.warnings.length, 4, translated.warnings.join('; '));
    assert.ok(translated.warnings.some((w) => w.startsWith('seed')));
    assert.ok(translated.warnings.some((w) => w.includes('clamped')));
  });

  test('tools, tool_choice, tool calls and tool results across turns', async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
      { type: 'function', function: { name: 'get_time' } },
    ];
    const messages = [
      { role: 'user', content: 'Weather and time in Paris?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'toolu_2', type: 'function', function: { name: 'get_time', arguments: '' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C, clear' },
      { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: '14:05' }] },
      { role: 'user', content: 'Thanks; summarise.' },
    ];
    await completion(provider, { messages, tools, tool_choice: 'required' } as Partial<ChatRequest>);
    const body = sentBody(fake);
    assert.deepEqual(body.tools, [
      {
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
      { name: 'get_time', input_schema: { type: 'object', properties: {} } },
    ]);
    assert.deepEqual(body.tool_choice, { type: 'any' });
    assert.deepEqual(body.messages, [
      { role: 'user', content: [{ type: 'text', text: 'Weather and time in Paris?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'get_time', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C, clear' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: '14:05' }] },
          { type: 'text', text: 'Thanks; summarise.' },
        ],
      },
    ]);

    const cases: Array<[unknown, unknown, boolean?]> = [
      ['auto', { type: 'auto' }],
      ['none', { type: 'none' }],
      [
        { type: 'function', function: { name: 'get_time' } },
        { type: 'tool', name: 'get_time' },
      ],
      [undefined, { type: 'auto', disable_parallel_tool_use: true }, false],
      ['required', { type: 'any', disable_parallel_tool_use: true }, false],
    ];
    for (const [choice, expected, parallel] of cases) {
      await completion(provider, { tools, tool_choice: choice, ...(parallel === undefined ? {} : { parallel_tool_calls: parallel }) } as Partial<ChatRequest>);
      assert.deepEqual(sentBody(fake).tool_choice, expected, JSON.stringify(choice));
    }
  });

  test('invalid tool-call arguments, n > 1 and unknown parts are bad requests that never reach the upstream', async () => {
    const before = fake.requests.length;
    const badArgs = [
      { role: 'user', content: 'x' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{not json' } }] },
      { role: 'tool', tool_call_id: 't', content: 'r' },
    ];
    await rejects(chat(provider, { messages: badArgs } as Partial<ChatRequest>), 'bad_request', (e) => assert.match(e.message, /not valid JSON/));
    await rejects(chat(provider, { n: 2 }), 'bad_request');
    await rejects(
      chat(provider, { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }] }] }),
      'bad_request',
    );
    await rejects(chat(provider, { messages: [{ role: 'system', content: 'only a system prompt' }] }), 'bad_request');
    await rejects(chat(provider, { messages: [{ role: 'function', name: 'f', content: 'r' }] }), 'bad_request');
    assert.equal(fake.requests.length, before);
  });

  test('images: a data: URI is passed as base64, an http URL is fetched without the key and inlined', async () => {
    const dataUri = `data:image/png;base64,${TINY_PNG.toString('base64')}`;
    const imageUrl = `${fake.origin}/files/tiny.png`;
    await completion(provider, {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare' },
            { type: 'image_url', image_url: { url: dataUri } },
            { type: 'image_url', image_url: { url: imageUrl, detail: 'low' } },
          ],
        },
      ],
    });
    const source = { type: 'base64', media_type: 'image/png', data: TINY_PNG.toString('base64') };
    assert.deepEqual((sentBody(fake).messages as unknown[])[0], {
      role: 'user',
      content: [
        { type: 'text', text: 'Compare' },
        { type: 'image', source },
        { type: 'image', source },
      ],
    });
    const download = fake.requests.find((request) => request.path === '/files/tiny.png');
    assert.ok(download !== undefined);
    assert.equal(download.headers['x-api-key'], undefined);
    assert.equal(download.headers.authorization, undefined);

    const image = (url: string) => ({ messages: [{ role: 'user' as const, content: [{ type: 'image_url', image_url: { url } }] }] });
    await rejects(chat(provider, image(`${fake.origin}/files/missing.png`)), 'bad_request', (e) => assert.match(e.message, /could not be fetched/));
    await rejects(chat(provider, image(`${fake.origin}/files/note.txt`)), 'bad_request');
    await rejects(chat(provider, image('data:text/plain;base64,aGVsbG8=')), 'bad_request');
    await rejects(chat(provider, image('ftp://example.com/a.png')), 'bad_request');
  });

  test('json_schema: a forced json_answer tool whose input comes back as the content, streamed or not', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const response_format = { type: 'json_schema', json_schema: { name: 'reply', schema } };
    const done = await completion(provider, { response_format });
    const body = sentBody(fake);
    assert.deepEqual(body.tool_choice, { type: 'tool', name: jsonToolName });
    assert.deepEqual(
      (body.tools as Array<{ name: string; input_schema: unknown }>).map((t) => [t.name, t.input_schema]),
      [[jsonToolName, schema]],
    );
    assert.deepEqual(JSON.parse(done.choices[0]?.message.content ?? ''), { answer: '42' });
    assert.equal(done.choices[0]?.finish_reason, 'stop');
    assert.equal(done.choices[0]?.message.tool_calls, undefined);

    const chunks = await streamed(provider, { response_format });
    assert.deepEqual(JSON.parse(text(chunks)), { answer: '42' });
    assert.ok(chunks.every((chunk) => chunk.choices[0]?.delta.tool_calls === undefined));
    assert.equal(chunks.find((chunk) => chunk.choices[0]?.finish_reason)?.choices[0]?.finish_reason, 'stop');

    // With tools of its own the request keeps them; the schema becomes an instruction.
    await completion(provider, {
      response_format,
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    } as Partial<ChatRequest>);
    assert.match(String(sentBody(fake).system), /JSON Schema \(reply\)/);
    assert.equal(sentBody(fake).tool_choice, undefined);

    await completion(provider, { messages: [{ role: 'system', content: 'S' }, ...hello], response_format: { type: 'json_object' } });
    assert.match(String(sentBody(fake).system), /^S\n\nRespond with a single valid JSON object/);
  });

  test('a final assistant message (prefill) loses trailing whitespace', async () => {
    await completion(provider, { messages: [...hello, { role: 'assistant', content: 'The answer is ' }] });
    assert.deepEqual((sentBody(fake).messages as unknown[]).at(-1), { role: 'assistant', content: [{ type: 'text', text: 'The answer is' }] });
  });

  test('anthropicBaseUrl appends /v1 only to a base without a version segment', () => {
    assert.equal(anthropicBaseUrl('https://api.anthropic.com'), 'https://api.anthropic.com/v1');
    assert.equal(anthropicBaseUrl('https://api.anthropic.com/'), 'https://api.anthropic.com/v1');
    assert.equal(anthropicBaseUrl('https://api.anthropic.com/v1/'), 'https://api.anthropic.com/v1');
    assert.equal(anthropicBaseUrl('http://127.0.0.1:8080/proxy/anthropic'), 'http://127.0.0.1:8080/proxy/anthropic/v1');
    assert.equal(anthropicBaseUrl('http://gw.local/v2beta'), 'http://gw.local/v2beta');
    assert.equal(createAnthropicProvider({ ...anthropicDeclaration, baseUrl: 'https://api.anthropic.com' }).baseUrl, 'https://api.anthropic.com/v1');
  });
});

describe('Anthropic provider: responses', () => {
  let fake: AnthropicFake;
  let crlf: AnthropicFake;
  let provider: AnthropicProvider;
  before(async () => {
    fake = await startAnthropicFake({ apiKey: KEY });
    crlf = await startAnthropicFake({ apiKey: KEY, framing: 'crlf' });
    provider = providerFor(fake);
  });
  after(async () => {
    await fake.close();
    await crlf.close();
  });

  test('the recorded message becomes a chat.completion', async () => {
    fake.setBehaviour({ kind: 'ok' });
    const done = await completion(provider, {});
    assert.equal(done.id, 'msg_01T4jd6NyD9xGGtTPDC4ogy5');
    assert.equal(done.model, 'claude-sonnet-4-5-20250929');
    assert.equal(done.object, 'chat.completion');
    assert.deepEqual(done.choices[0]?.message, { role: 'assistant', content: '{"items":[…],"total":14.0}', refusal: null });
    assert.equal(done.choices[0]?.finish_reason, 'stop');
    assert.equal(done.choices[0]?.native_finish_reason, 'end_turn');
    assert.equal(done.choices[0]?.logprobs, null);
    assert.deepEqual(done.usage, { prompt_tokens: 406, completion_tokens: 50, total_tokens: 456, prompt_tokens_details: { cached_tokens: 0 } });
  });

  test('a tool_use answer becomes tool_calls with JSON-string arguments', async () => {
    fake.setBehaviour({ kind: 'tool' });
    const done = await completion(provider, {});
    assert.deepEqual(done.choices[0]?.message.tool_calls, [
      { id: 'toolu_011MDRpaZRMRRjtFkJizD6nS', type: 'function', function: { name: 'get_weather', arguments: '{"location":"San Francisco, CA","units":"c"}' } },
    ]);
    assert.equal(done.choices[0]?.message.content, 'Let me look that up.');
    assert.equal(done.choices[0]?.finish_reason, 'tool_calls');
  });

  test('the recorded stream becomes OpenAI chunks: role, text, finish, usage; ping ignored', async () => {
    fake.setBehaviour({ kind: 'ok' });
    for (const target of [fake, crlf]) {
      const chunks = await streamed(providerFor(target), {});
      assert.deepEqual(
        chunks.map((chunk) => [chunk.choices[0]?.delta ?? null, chunk.choices[0]?.finish_reason ?? null]),
        [
          [{ role: 'assistant', content: '' }, null],
          [{ content: 'Hello' }, null],
          [{ content: ' there' }, null],
          [{}, 'stop'],
          [null, null],
        ],
      );
      assert.ok(chunks.every((chunk) => chunk.id === 'msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK' && chunk.model === 'claude-3-opus-latest'));
      assert.equal(new Set(chunks.map((chunk) => chunk.created)).size, 1);
      assert.equal(chunks[3]?.choices[0]?.native_finish_reason, 'end_turn');
      assert.deepEqual(chunks[4]?.choices, []);
      assert.deepEqual(chunks[4]?.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
    }
  });

  test('the recorded tool stream reassembles into one tool call', async () => {
    fake.setBehaviour({ kind: 'tool' });
    const chunks = await streamed(provider, {});
    const calls = new Map<number, { id?: string; name?: string; arguments: string }>();
    for (const chunk of chunks) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        const call = calls.get(delta.index) ?? { arguments: '' };
        if (delta.id !== undefined) call.id = delta.id;
        if (delta.function?.name !== undefined) call.name = delta.function.name;
        call.arguments += delta.function?.arguments ?? '';
        calls.set(delta.index, call);
      }
    }
    assert.deepEqual([...calls], [[0, { id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', name: 'get_weather', arguments: '{"location": "Paris"}' }]]);
    const opening = chunks.find((chunk) => chunk.choices[0]?.delta.tool_calls !== undefined);
    assert.deepEqual(opening?.choices[0]?.delta.tool_calls, [
      { index: 0, id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', type: 'function', function: { name: 'get_weather', arguments: '' } },
    ]);
    assert.equal(text(chunks), "I'll check the weather in Paris.");
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'tool_calls');
    assert.deepEqual(chunks.at(-1)?.usage, { prompt_tokens: 377, completion_tokens: 65, total_tokens: 442, prompt_tokens_details: { cached_tokens: 0 } });
  });

  test('stop reasons map to finish reasons, native one kept', async () => {
    const expected: Array<[string, string]> = [
      ['end_turn', 'stop'],
      ['stop_sequence', 'stop'],
      ['max_tokens', 'length'],
      ['tool_use', 'tool_calls'],
      ['refusal', 'content_filter'],
      ['model_context_window_exceeded', 'length'],
      ['pause_turn', 'stop'],
      ['something_new', 'stop'],
    ];
    for (const [native, finish] of expected) {
      fake.setBehaviour({ kind: 'text', pieces: ['a', 'b'], stopReason: native });
      const done = await completion(provider, {});
      assert.equal(done.choices[0]?.finish_reason, finish, native);
      assert.equal(done.choices[0]?.native_finish_reason, native);
      const chunks = await streamed(provider, {});
      const last = chunks.find((chunk) => chunk.choices[0]?.finish_reason !== null && chunk.choices.length > 0);
      assert.equal(last?.choices[0]?.finish_reason, finish, `${native} (stream)`);
      assert.equal(text(chunks), 'ab');
    }
  });

  test('cache tokens count in prompt_tokens and as cached_tokens', async () => {
    fake.setBehaviour({
      kind: 'json',
      body: JSON.stringify({
        id: 'msg_c',
        type: 'message',
        role: 'assistant',
        model: 'claude-haiku-4-5',
        content: [{ type: 'text', text: 'ok' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 10, cache_creation_input_tokens: 5, cache_read_input_tokens: 100, output_tokens: 3 },
      }),
    });
    const done = await completion(provider, {});
    assert.deepEqual(done.usage, { prompt_tokens: 115, completion_tokens: 3, total_tokens: 118, prompt_tokens_details: { cached_tokens: 100 } });
  });
});

describe('Anthropic provider: failures', () => {
  let fake: AnthropicFake;
  let provider: AnthropicProvider;
  before(async () => {
    fake = await startAnthropicFake({ apiKey: KEY, models: ['claude-sonnet-5'] });
    provider = providerFor(fake);
  });
  after(() => fake.close());

  test('HTTP errors become the right UpstreamError kinds', async () => {
    fake.setBehaviour({ kind: 'ok' });
    await rejects(chat(provider, {}, { apiKey: 'sk-wrong' }), 'auth', (e) => {
      assert.equal(e.status, 401);
      assert.equal(e.code, 'authentication_error');
      assert.match(e.message, /invalid x-api-key \(request-id req_/);
    });
    await rejects(chat(provider, {}, { apiKey: null }), 'auth', (e) => assert.match(e.message, /x-api-key header is required/));
    await rejects(chat(provider, { model: 'claude-nope' }), 'model_not_found', (e) => {
      assert.equal(e.status, 404);
      assert.match(e.message, /not_found_error: model: claude-nope/);
    });

    fake.setBehaviour({ kind: 'rate-limit', retryAfterSeconds: 7 });
    await rejects(chat(provider, {}), 'rate_limit', (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.retryAfter, 7);
      assert.equal(e.code, 'rate_limit_error');
    });
    fake.setBehaviour({ kind: 'overloaded', retryAfterSeconds: 2 });
    await rejects(chat(provider, { stream: true }), 'server', (e) => {
      assert.equal(e.status, 529);
      assert.equal(e.code, 'overloaded_error');
      assert.equal(e.retryAfter, 2);
    });
    fake.setBehaviour({ kind: 'status', status: 500 });
    await rejects(chat(provider, {}), 'server', (e) => assert.equal(e.code, 'api_error'));
    fake.setBehaviour({ kind: 'status', status: 403, body: '{"type":"error","error":{"type":"permission_error","message":"no access"}}' });
    await rejects(chat(provider, {}), 'auth');
    fake.setBehaviour({ kind: 'status', status: 400, body: '{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}' });
    await rejects(chat(provider, {}), 'bad_request', (e) => assert.match(e.message, /prompt is too long/));
    fake.setBehaviour({
      kind: 'status',
      status: 413,
      body: '<html><body>413 Request Entity Too Large</body></html>',
      headers: { 'content-type': 'text/html' },
    });
    await rejects(chat(provider, {}), 'bad_request', (e) => assert.match(e.message, /413 Request Entity Too Large/));
    fake.setBehaviour({ kind: 'status', status: 302, body: '', headers: { location: 'https://elsewhere.example/' } });
    await rejects(chat(provider, {}), 'bad_response', (e) => assert.match(e.message, /redirect/));
    fake.setBehaviour({ kind: 'json', body: '{"id":"msg_x","type":"message","content":[{"type":"text","tex' });
    await rejects(chat(provider, {}), 'bad_response');
  });

  test('an error event inside a 200 stream is thrown from the iterator after the chunks before it', async () => {
    fake.setBehaviour({ kind: 'stream-error' });
    const result = await chat(provider, { stream: true });
    assert.equal(result.type, 'stream');
    const seen: ChatChunk[] = [];
    await rejects(
      (async () => {
        for await (const chunk of result.chunks) seen.push(chunk);
      })(),
      'server',
      (e) => {
        assert.equal(e.code, 'overloaded_error');
        assert.match(e.message, /Overloaded/);
      },
    );
    assert.equal(text(seen), 'Hello');

    const rateLimited = sseEvent('error', { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
    fake.setBehaviour({ kind: 'events', events: [...RECORDED_BASIC_STREAM_EVENTS.slice(0, 2), rateLimited] });
    await rejects(chat(provider, { stream: true }).then(drain), 'rate_limit');
  });

  test('a stream that ends before message_stop fails; one that ends after the stop reason does not', async () => {
    fake.setBehaviour({ kind: 'cut', afterEvents: 4 });
    await rejects(chat(provider, { stream: true }).then(drain), 'connection');
    fake.setBehaviour({ kind: 'events', events: RECORDED_BASIC_STREAM_EVENTS.slice(0, 7) });
    const chunks = await chat(provider, { stream: true }).then(drain);
    assert.equal(text(chunks), 'Hello there');
    assert.deepEqual(chunks.at(-1)?.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
  });

  test('return() on the iterator drops the upstream response', async () => {
    fake.setBehaviour({ kind: 'stall', afterEvents: 4 });
    const aborted = fake.abortedResponses;
    const result = await chat(provider, { stream: true });
    assert.equal(result.type, 'stream');
    const iterator = result.chunks[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    await iterator.return?.();
    await fake.waitForAborts(aborted + 1);
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  test('an event over maxEventBytes, or a body over maxBodyBytes, is a bad response', async () => {
    const limits = { maxBodyBytes: 2048, maxEventBytes: 1024 };
    fake.setBehaviour({ kind: 'oversized', bytes: 4096 });
    const result = await chat(provider, { stream: true }, { limits });
    await rejects(drain(result), 'bad_response', (e) => assert.match(e.message, /larger than 1024/));
    fake.setBehaviour({ kind: 'text', pieces: ['y'.repeat(4096)] });
    await rejects(chat(provider, {}, { limits }), 'bad_response');
  });

  test('a client abort mid-stream ends the iterator as aborted', async () => {
    fake.setBehaviour({ kind: 'stall', afterEvents: 3 });
    const controller = new AbortController();
    const result = await chat(provider, { stream: true }, { signal: controller.signal });
    assert.equal(result.type, 'stream');
    const iterator = result.chunks[Symbol.asyncIterator]();
    await iterator.next();
    setTimeout(() => controller.abort(), 20);
    await rejects(
      (async () => {
        for (;;) if ((await iterator.next()).done === true) break;
      })(),
      'aborted',
    );
  });
});

describe('Anthropic fake: validates like the API', () => {
  let fake: AnthropicFake;
  before(async () => {
    fake = await startAnthropicFake({ apiKey: KEY });
  });
  after(() => fake.close());

  async function post(body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; error: { type: string; message: string } }> {
    const response = await httpRequest(`${fake.url}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', ...headers },
      body: JSON.stringify(body),
    });
    const json = (await response.body.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(json.type, 'error');
    assert.ok(response.headers['request-id'] !== undefined);
    return { status: response.statusCode, error: json.error };
  }

  test('rejects what the real API rejects', async () => {
    const ok = { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    assert.equal((await post(ok, { 'x-api-key': '' })).status, 401);
    assert.match((await post(ok, { 'anthropic-version': '' })).error.message, /anthropic-version/);
    assert.match((await post({ ...ok, max_tokens: undefined })).error.message, /max_tokens: Field required/);
    assert.match((await post({ ...ok, seed: 1 })).error.message, /seed: Extra inputs are not permitted/);
    assert.match((await post({ ...ok, messages: [{ role: 'system', content: 's' }, ...ok.messages] })).error.message, /Unexpected role "system"/);
    assert.match((await post({ ...ok, messages: [...ok.messages, ...ok.messages] })).error.message, /roles must alternate/);
    const toolResult = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'r' }] };
    assert.match(
      (await post({ ...ok, messages: [...ok.messages, { role: 'assistant', content: 'a' }, toolResult] })).error.message,
      /unexpected `tool_use_id`/,
    );
    const toolUse = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_y', name: 'f', input: {} }] };
    assert.match((await post({ ...ok, messages: [...ok.messages, toolUse, { role: 'user', content: 'no result' }] })).error.message, /without `tool_result`/);
  });
});
