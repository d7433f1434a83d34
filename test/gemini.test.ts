import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { completionFromChunks } from '../src/core/aggregate.js';
import { UpstreamError } from '../src/core/errors.js';
import { defaultLimits, type UpstreamLimits } from '../src/core/http.js';
import { normalizeChunk, normalizeCompletion } from '../src/core/normalize.js';
import type { ChatResult } from '../src/core/provider.js';
import type { ChatChunk, ChatCompletion, ChatRequest } from '../src/core/types.js';
import { createGeminiProvider, geminiBaseUrl, geminiDeclaration, type GeminiProvider } from '../src/providers/gemini/define.js';
import { skipSignature } from '../src/providers/gemini/request.js';
import { StrayJson } from '../src/providers/gemini/stream.js';
import { toGeminiSchema } from '../src/providers/gemini/schema.js';
import { startGeminiFake, type GeminiBehaviour, type GeminiFake } from './fakes/gemini-fake.js';
import { recordedFunctionCallStream, recordedTextStream, recordedThoughtStream } from './fakes/fixtures/gemini.js';
import { serveOnLoopback, type LoopbackServer } from './support/loopback.js';
import { assertOpenAIShape } from './support/openai-schema.js';

/**
 * The native Gemini family (src/providers/gemini/) against a fake of the Gemini API that answers
 * with recorded traffic (test/fakes/fixtures/gemini.ts): requests translated from OpenAI's chat
 * shape (inspected as the fake received them), answers translated back and checked against
 * OpenAI's schema, errors mapped to failure kinds, streams cancelled and bounded.
 */

const apiKey = 'AIzaTestKey-0123456789';
const timeouts = { connectMs: 2_000, firstByteMs: 5_000, idleMs: 5_000 };
// 1×1 transparent PNG.
const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

let fake: GeminiFake;
let provider: GeminiProvider;
let images: LoopbackServer;
let imagesUrl: string;
const imageRequests: Array<Record<string, string | string[] | undefined>> = [];

before(async () => {
  fake = await startGeminiFake({ apiKey });
  provider = createGeminiProvider({ ...geminiDeclaration, baseUrl: fake.url }, { timeouts });
  images = await serveOnLoopback(
    createServer((req, res) => {
      imageRequests.push(req.headers);
      if (req.url === '/cat.png') {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.length) });
        res.end(png);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    }),
  );
  imagesUrl = images.origin;
});

after(async () => {
  // No request ever put the key in its URL.
  assert.equal(fake.keysInUrl, 0);
  for (const request of fake.requests) assert.doesNotMatch(request.path, /key=/);
  await fake.close();
  await images.close();
});

function chat(
  request: Partial<ChatRequest>,
  options: { key?: string | undefined; limits?: UpstreamLimits; behaviour?: GeminiBehaviour } = {},
): Promise<ChatResult> {
  if (options.behaviour !== undefined) fake.setBehaviour(options.behaviour);
  else fake.setBehaviour({ kind: 'text' });
  return provider.chat!({
    request: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Hi' }], ...request },
    apiKey: 'key' in options ? options.key : apiKey,
    signal: AbortSignal.timeout(8_000),
    limits: options.limits ?? { ...defaultLimits, privateDownloads: true }, // images are served by the local fake
  });
}

async function completion(request: Partial<ChatRequest>, behaviour?: GeminiBehaviour): Promise<ChatCompletion> {
  const result = await chat(request, behaviour === undefined ? {} : { behaviour });
  assert.equal(result.type, 'completion');
  const value = (result as { completion: ChatCompletion }).completion;
  assertOpenAIShape('CreateChatCompletionResponse', normalizeCompletion(structuredClone(value), 'GeminiPro', 'gemini-2.5-flash'));
  return value;
}

async function streamed(request: Partial<ChatRequest>, behaviour?: GeminiBehaviour): Promise<ChatChunk[]> {
  const result = await chat({ ...request, stream: true }, behaviour === undefined ? {} : { behaviour });
  assert.equal(result.type, 'stream');
  const chunks: ChatChunk[] = [];
  for await (const chunk of (result as { chunks: AsyncIterable<ChatChunk> }).chunks) {
    assertOpenAIShape('CreateChatCompletionStreamResponse', normalizeChunk(structuredClone(chunk), 'GeminiPro', 'gemini-2.5-flash'));
    chunks.push(chunk);
  }
  return chunks;
}

/** What the fake received last (the body as Gemini sees it). */
function lastBody(): Record<string, unknown> {
  return fake.requests.at(-1)?.body as Record<string, unknown>;
}

async function rejectsWith(promise: Promise<unknown>, kind: string, check?: (error: UpstreamError) => void): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof UpstreamError, `expected an UpstreamError, got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    check?.(error);
    return true;
  });
}

function eventOf(json: string): Record<string, any> {
  return JSON.parse(json) as Record<string, any>;
}

describe('Gemini requests', () => {
  test('endpoint, key header, system instruction, merged turns, generation config', async () => {
    await completion({
      model: 'models/gemini-2.5-flash',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in English.' }] },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Hi! How can I help?' },
        { role: 'user', content: 'Capital of Poland?' },
        { role: 'user', content: [{ type: 'text', text: 'One word.' }] },
      ],
      max_tokens: 100,
      max_completion_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop: 'END',
      seed: 42,
      n: 2,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
    });
    const request = fake.requests.at(-1)!;
    assert.equal(request.path, '/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(request.headers['x-goog-api-key'], apiKey);
    assert.equal(request.headers.authorization, undefined);
    assert.match(String(request.headers['content-type']), /^application\/json/);
    assert.deepEqual(request.body, {
      contents: [
        { role: 'user', parts: [{ text: 'Hello' }] },
        { role: 'model', parts: [{ text: 'Hi! How can I help?' }] },
        { role: 'user', parts: [{ text: 'Capital of Poland?' }, { text: 'One word.' }] },
      ],
      systemInstruction: { parts: [{ text: 'You are terse.' }, { text: 'Answer in English.' }] },
      generationConfig: {
        maxOutputTokens: 50,
        temperature: 0.2,
        topP: 0.9,
        candidateCount: 2,
        seed: 42,
        presencePenalty: 0.5,
        frequencyPenalty: 0.25,
        stopSequences: ['END'],
      },
    });
  });

  test('streaming uses streamGenerateContent?alt=sse; stop lists; max_tokens alone', async () => {
    await streamed({ stop: ['a', 'b'], max_tokens: 7 });
    const request = fake.requests.at(-1)!;
    assert.equal(request.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    assert.deepEqual(lastBody().generationConfig, { maxOutputTokens: 7, stopSequences: ['a', 'b'] });
  });

  test('a base URL without a version gets /v1beta', async () => {
    assert.equal(geminiBaseUrl('https://generativelanguage.googleapis.com/'), 'https://generativelanguage.googleapis.com/v1beta');
    assert.equal(geminiBaseUrl('https://generativelanguage.googleapis.com/v1/'), 'https://generativelanguage.googleapis.com/v1');
    const bare = createGeminiProvider({ ...geminiDeclaration, baseUrl: fake.origin }, { timeouts });
    assert.equal(bare.baseUrl, fake.url);
    fake.setBehaviour({ kind: 'text' });
    const result = await bare.chat!({
      request: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Hi' }] },
      apiKey,
      signal: AbortSignal.timeout(5_000),
      limits: defaultLimits,
    });
    assert.equal(result.type, 'completion');
    assert.equal(fake.requests.at(-1)!.path, '/v1beta/models/gemini-2.5-flash:generateContent');
  });

  test('a conversation of system messages only is sent as the user turn', async () => {
    await completion({ messages: [{ role: 'system', content: 'Say hi.' }] });
    assert.deepEqual(lastBody(), { contents: [{ role: 'user', parts: [{ text: 'Say hi.' }] }] });
  });

  test('tools, tool_choice, tool calls and tool results', async () => {
    await completion({
      messages: [
        { role: 'user', content: 'Weather in London and Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"London"}' } },
            { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_a', content: '{"temp": 18, "sky": "cloudy"}' },
        { role: 'tool', tool_call_id: 'call_b', content: '12:00' },
        { role: 'user', content: 'Thanks' },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather in a city',
            strict: true,
            parameters: {
              $schema: 'https://json-schema.org/draft/2020-12/schema',
              type: 'object',
              additionalProperties: false,
              properties: {
                city: { type: 'string', format: 'email', minLength: 1 },
                unit: { anyOf: [{ $ref: '#/$defs/unit' }, { type: 'null' }] },
                days: { type: ['integer', 'null'], exclusiveMinimum: 0 },
                mode: { const: 'fast' },
                level: { type: 'integer', enum: [1, 2, 3], description: 'Detail.' },
                tags: { type: 'array', items: { type: 'string' }, uniqueItems: true },
              },
              required: ['city', 'ghost'],
              $defs: { unit: { type: 'string', enum: ['c', 'f'] } },
            },
          },
        },
        { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const body = lastBody();
    assert.deepEqual(body.contents, [
      { role: 'user', parts: [{ text: 'Weather in London and Paris?' }] },
      {
        role: 'model',
        parts: [{ functionCall: { name: 'get_weather', args: { city: 'London' } } }, { functionCall: { name: 'get_time', args: {} } }],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { temp: 18, sky: 'cloudy' } } },
          { functionResponse: { name: 'get_time', response: { content: '12:00' } } },
          { text: 'Thanks' },
        ],
      },
    ]);
    assert.deepEqual(body.tools, [
      {
        functionDeclarations: [
          {
            name: 'get_weather',
            description: 'Weather in a city',
            parameters: {
              type: 'OBJECT',
              properties: {
                city: { type: 'STRING', minLength: 1 },
                unit: { type: 'STRING', enum: ['c', 'f'], nullable: true },
                days: { type: 'INTEGER', nullable: true },
                mode: { type: 'STRING', enum: ['fast'] },
                level: { type: 'INTEGER', description: 'Detail. Allowed values: 1, 2, 3.' },
                tags: { type: 'ARRAY', items: { type: 'STRING' } },
              },
              required: ['city'],
            },
          },
          { name: 'get_time' },
        ],
      },
    ]);
    assert.deepEqual(body.toolConfig, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } });
  });

  test('tool_choice strings map to AUTO, ANY and NONE', async () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'number' } } } } }];
    for (const [choice, mode] of [
      ['auto', 'AUTO'],
      ['required', 'ANY'],
      ['none', 'NONE'],
    ] as const) {
      await completion({ tools, tool_choice: choice });
      assert.deepEqual(lastBody().toolConfig, { functionCallingConfig: { mode } });
    }
    await completion({ tools });
    assert.equal(lastBody().toolConfig, undefined);
  });

  test('unusable tool input is refused before any request', async () => {
    const before = fake.requests.length;
    await rejectsWith(
      chat({ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: '{not json' } }] }] }),
      'bad_request',
    );
    await rejectsWith(chat({ messages: [{ role: 'tool', tool_call_id: 'nowhere', content: 'x' }] }), 'bad_request');
    await rejectsWith(chat({ tools: [{ type: 'web_search' }] }), 'bad_request');
    await rejectsWith(chat({ model: 'gemini/../../x' }), 'model_not_found');
    assert.equal(fake.requests.length, before);
  });

  test('images: data URIs and http(s) URLs are inlined (fetched without the key)', async () => {
    const dataUri = `data:image/png;base64,${png.toString('base64')}`;
    await completion({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare' },
            { type: 'image_url', image_url: { url: dataUri } },
            { type: 'image_url', image_url: { url: `${imagesUrl}/cat.png`, detail: 'low' } },
          ],
        },
      ],
    });
    assert.deepEqual(lastBody().contents, [
      {
        role: 'user',
        parts: [
          { text: 'Compare' },
          { inlineData: { mimeType: 'image/png', data: png.toString('base64') } },
          { inlineData: { mimeType: 'image/png', data: png.toString('base64') } },
        ],
      },
    ]);
    const headers = imageRequests.at(-1)!;
    assert.equal(headers['x-goog-api-key'], undefined);
    assert.equal(headers.authorization, undefined);
    const before = fake.requests.length;
    await rejectsWith(
      chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${imagesUrl}/missing.png` } }] }] }),
      'bad_request',
      (error) => assert.match(error.message, /could not fetch the image/),
    );
    assert.equal(fake.requests.length, before);
  });

  test('response_format: json_object and json_schema', async () => {
    await completion({ response_format: { type: 'json_object' } });
    assert.deepEqual(lastBody().generationConfig, { responseMimeType: 'application/json' });
    await completion({
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'city',
          strict: true,
          schema: {
            type: 'object',
            additionalProperties: false,
            properties: { name: { type: 'string' }, population: { type: 'integer' }, founded: { type: 'string', format: 'date-time' } },
            required: ['name', 'population'],
          },
        },
      },
    });
    assert.deepEqual(lastBody().generationConfig, {
      responseMimeType: 'application/json',
      responseSchema: {
        type: 'OBJECT',
        properties: { name: { type: 'STRING' }, population: { type: 'INTEGER' }, founded: { type: 'STRING', format: 'date-time' } },
        required: ['name', 'population'],
      },
    });
  });

  test('thought signatures go back with their function calls', async () => {
    const calls = [
      { id: 'a1', type: 'function', function: { name: 'sum', arguments: '{"a":2,"b":3}' }, extra_content: { google: { thought_signature: 'SIG==' } } },
      { id: 'a2', type: 'function', function: { name: 'sum', arguments: '{"a":4,"b":5}' } },
    ];
    const messages = [
      { role: 'user', content: 'Add' },
      { role: 'assistant', content: null, tool_calls: calls },
      { role: 'tool', tool_call_id: 'a1', content: '{"sum":5}' },
      { role: 'tool', tool_call_id: 'a2', content: '{"sum":9}' },
    ] as ChatRequest['messages'];
    await completion({ model: 'gemini-3-flash-preview', messages });
    assert.deepEqual((lastBody().contents as any[])[1].parts, [
      { functionCall: { name: 'sum', args: { a: 2, b: 3 } }, thoughtSignature: 'SIG==' },
      { functionCall: { name: 'sum', args: { a: 4, b: 5 } } },
    ]);
    // A history without signatures (a client that dropped them): Gemini 3 gets Google's documented placeholder.
    const bare = messages.map((message) =>
      message.tool_calls ? { ...message, tool_calls: calls.map(({ extra_content: _, ...call }) => call) } : message,
    ) as ChatRequest['messages'];
    await completion({ model: 'gemini-3-flash-preview', messages: bare });
    assert.equal((lastBody().contents as any[])[1].parts[0].thoughtSignature, skipSignature);
    assert.equal((lastBody().contents as any[])[1].parts[1].thoughtSignature, undefined);
    await completion({ model: 'gemini-2.5-flash', messages: bare });
    assert.equal((lastBody().contents as any[])[1].parts[0].thoughtSignature, undefined);
  });
});

describe('Gemini answers', () => {
  test('a recorded text answer becomes a chat.completion', async () => {
    const value = await completion({});
    assert.equal(value.object, 'chat.completion');
    assert.equal(value.id, 'chatcmpl-xlWYafXAOKSf1e8PpcODiAg');
    assert.equal(value.model, 'gemini-2.5-flash');
    assert.deepEqual(value.choices, [
      { index: 0, message: { role: 'assistant', content: 'Paris', refusal: null }, finish_reason: 'stop', native_finish_reason: 'STOP', logprobs: null },
    ]);
    assert.deepEqual(value.usage, { prompt_tokens: 11, completion_tokens: 35, total_tokens: 46, completion_tokens_details: { reasoning_tokens: 34 } });
  });

  test('a recorded function call becomes tool_calls with finish_reason tool_calls', async () => {
    const value = await completion({}, { kind: 'function-call' });
    const choice = value.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.native_finish_reason, 'STOP');
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls!;
    assert.equal(calls.length, 1);
    assert.match(calls[0]!.id, /^call_[A-Za-z0-9_-]{20,}$/);
    assert.deepEqual(calls[0]!.function, { name: 'get_weather_report', arguments: '{"city":"London"}' });
    assert.match((calls[0] as any).extra_content.google.thought_signature, /^CpAEAb4/);
    assert.deepEqual(value.usage, { prompt_tokens: 113, completion_tokens: 152, total_tokens: 265, completion_tokens_details: { reasoning_tokens: 135 } });
  });

  test('finish reasons map to OpenAI values and keep the native one', async () => {
    for (const [native, expected] of [
      ['MAX_TOKENS', 'length'],
      ['SAFETY', 'content_filter'],
      ['RECITATION', 'content_filter'],
      ['PROHIBITED_CONTENT', 'content_filter'],
      ['SPII', 'content_filter'],
      ['BLOCKLIST', 'content_filter'],
      ['MALFORMED_FUNCTION_CALL', 'stop'],
      ['OTHER', 'stop'],
    ] as const) {
      const value = await completion({}, { kind: 'finish', reason: native });
      assert.equal(value.choices[0]!.finish_reason, expected, native);
      assert.equal(value.choices[0]!.native_finish_reason, native);
      const chunks = await streamed({}, { kind: 'finish', reason: native });
      const finish = chunks.flatMap((chunk) => chunk.choices).find((choice) => choice.finish_reason !== null)!;
      assert.equal(finish.finish_reason, expected, `${native} (stream)`);
      assert.equal(finish.native_finish_reason, native);
    }
  });

  test('a blocked prompt is a content_filter answer', async () => {
    const value = await completion({}, { kind: 'blocked', reason: 'PROHIBITED_CONTENT' });
    assert.deepEqual(value.choices, [
      {
        index: 0,
        message: { role: 'assistant', content: '', refusal: null },
        finish_reason: 'content_filter',
        native_finish_reason: 'PROHIBITED_CONTENT',
        logprobs: null,
      },
    ]);
    const chunks = await streamed({}, { kind: 'blocked' });
    assert.equal(chunks[0]!.choices[0]!.finish_reason, 'content_filter');
    assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 9, completion_tokens: 0, total_tokens: 9 });
  });

  for (const framing of ['crlf', 'lf'] as const) {
    test(`a recorded text stream (${framing} framing) becomes chunks, usage once at the end`, async () => {
      let local: GeminiFake | undefined;
      try {
        let chunks: ChatChunk[];
        if (framing === 'crlf') chunks = await streamed({});
        else {
          local = await startGeminiFake({ apiKey, framing });
          const p = createGeminiProvider({ ...geminiDeclaration, baseUrl: local.url }, { timeouts });
          const result = await p.chat!({
            request: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Hi' }], stream: true },
            apiKey,
            signal: AbortSignal.timeout(5_000),
            limits: defaultLimits,
          });
          chunks = [];
          for await (const chunk of (result as { chunks: AsyncIterable<ChatChunk> }).chunks) chunks.push(chunk);
        }
        const events = recordedTextStream.map(eventOf);
        const text = events.map((event) => event.candidates[0].content.parts[0].text).join('');
        assert.equal(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''), text);
        assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
        assert.ok(
          chunks.every(
            (chunk) => chunk.id === `chatcmpl-${events[0]!.responseId}` && chunk.object === 'chat.completion.chunk' && chunk.model === 'gemini-2.5-flash',
          ),
        );
        const withUsage = chunks.filter((chunk) => chunk.usage != null);
        assert.equal(withUsage.length, 1, 'usage is reported once');
        assert.equal(chunks.at(-1), withUsage[0]);
        assert.deepEqual(chunks.at(-1)!.choices, []);
        const last = events.at(-1)!.usageMetadata;
        assert.deepEqual(chunks.at(-1)!.usage, {
          prompt_tokens: last.promptTokenCount,
          completion_tokens: last.candidatesTokenCount + last.thoughtsTokenCount,
          total_tokens: last.totalTokenCount,
          completion_tokens_details: { reasoning_tokens: last.thoughtsTokenCount },
        });
        const finishes = chunks.flatMap((chunk) => chunk.choices).filter((choice) => choice.finish_reason !== null);
        assert.deepEqual(
          finishes.map((choice) => choice.finish_reason),
          ['stop'],
        );
      } finally {
        await local?.close();
      }
    });
  }

  test('a JSON answer to a streaming call (the array form) still becomes chunks', async () => {
    const body = `[${recordedTextStream.join(',\r\n')}]`;
    const chunks = await streamed({}, { kind: 'raw', status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' }, body });
    const events = recordedTextStream.map(eventOf);
    assert.equal(
      chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''),
      events.map((event) => event.candidates[0].content.parts[0].text).join(''),
    );
    assert.equal(chunks.at(-1)!.usage?.total_tokens, events.at(-1)!.usageMetadata.totalTokenCount);
    // A Status in a 200 body is that error.
    await rejectsWith(
      chat(
        {},
        {
          behaviour: {
            kind: 'raw',
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: '{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}',
          },
        },
      ),
      'rate_limit',
    );
  });

  test('thought parts stream as reasoning_content', async () => {
    const chunks = await streamed({}, { kind: 'thoughts' });
    const events = recordedThoughtStream.map(eventOf);
    const parts = events.flatMap((event) => event.candidates[0].content.parts as Array<{ text: string; thought?: boolean }>);
    const reasoning = chunks.map((chunk) => chunk.choices[0]?.delta.reasoning_content ?? '').join('');
    const content = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    assert.equal(
      reasoning,
      parts
        .filter((part) => part.thought === true)
        .map((part) => part.text)
        .join(''),
    );
    assert.equal(
      content,
      parts
        .filter((part) => part.thought !== true)
        .map((part) => part.text)
        .join(''),
    );
    assert.ok(reasoning.startsWith('**Calculating Prime Sum**'));
    const aggregated = await completionFromChunks(
      (async function* () {
        yield* chunks;
      })(),
    );
    assert.equal(aggregated.choices[0]!.message.reasoning_content, reasoning);
  });

  test('streamed function calls become tool_call deltas and finish_reason tool_calls', async () => {
    const chunks = await streamed({ model: 'gemini-3-flash-preview' }, { kind: 'function-call' });
    const deltas = chunks.flatMap((chunk) => chunk.choices.flatMap((choice) => choice.delta.tool_calls ?? []));
    assert.deepEqual(
      deltas.map((delta) => [delta.index, delta.id, delta.type, delta.function?.name, delta.function?.arguments]),
      [
        [0, '3ae8iwca', 'function', 'sum', '{"b":3,"a":2}'],
        [1, 'up3kf30e', 'function', 'sum', '{"a":4,"b":5}'],
        [2, 'ycroch25', 'function', 'sum', '{"b":7,"a":6}'],
      ],
    );
    const signature = eventOf(recordedFunctionCallStream[0]!).candidates[0].content.parts[0].thoughtSignature as string;
    assert.equal((deltas[0] as any).extra_content.google.thought_signature, signature);
    const finishes = chunks.flatMap((chunk) => chunk.choices).filter((choice) => choice.finish_reason !== null);
    assert.deepEqual(
      finishes.map((choice) => [choice.finish_reason, choice.native_finish_reason]),
      [['tool_calls', 'STOP']],
    );
    assert.deepEqual(chunks.at(-1)!.usage, {
      prompt_tokens: 161,
      completion_tokens: 93,
      total_tokens: 254,
      completion_tokens_details: { reasoning_tokens: 45 },
    });
    const aggregated = await completionFromChunks(
      (async function* () {
        yield* chunks;
      })(),
    );
    assert.equal(aggregated.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(aggregated.choices[0]!.message.tool_calls!.length, 3);
  });
});

describe('Gemini failures', () => {
  test('a wrong key is the recorded 400 API_KEY_INVALID → auth; no key → 403 → auth', async () => {
    await rejectsWith(chat({}, { key: 'wrong-key' }), 'auth', (error) => {
      assert.equal(error.status, 400);
      assert.equal(error.code, 'API_KEY_INVALID');
      assert.match(error.message, /API key not valid/);
    });
    await rejectsWith(chat({}, { key: undefined }), 'auth', (error) => assert.equal(error.status, 403));
  });

  test('404 → model_not_found', async () => {
    await rejectsWith(chat({ model: 'gemini-1.5-flash' }, { behaviour: { kind: 'error', status: 404 } }), 'model_not_found', (error) => {
      assert.equal(error.status, 404);
      assert.match(error.message, /models\/gemini-1.5-flash is not found/);
    });
  });

  test('429 RESOURCE_EXHAUSTED → rate_limit with RetryInfo.retryDelay as retryAfter', async () => {
    await rejectsWith(chat({}, { behaviour: { kind: 'error', status: 429, retryDelay: '37s' } }), 'rate_limit', (error) => {
      assert.equal(error.retryAfter, 37);
      assert.equal(error.code, 'RESOURCE_EXHAUSTED');
    });
    await rejectsWith(chat({}, { behaviour: { kind: 'error', status: 429, retryDelay: '1.5s' } }), 'rate_limit', (error) =>
      assert.equal(error.retryAfter, 1.5),
    );
    await rejectsWith(chat({}, { behaviour: { kind: 'error', status: 429, retryDelay: '86400s' } }), 'rate_limit', (error) =>
      assert.equal(error.retryAfter, 3600),
    );
    // A retry-after header wins over the body.
    await rejectsWith(
      chat({ stream: true }, { behaviour: { kind: 'error', status: 429, retryDelay: '37s', headers: { 'retry-after': '5' } } }),
      'rate_limit',
      (error) => assert.equal(error.retryAfter, 5),
    );
  });

  test('5xx: 500 and 503 → server, 504 → timeout; redirects and HTML → right kinds', async () => {
    await rejectsWith(chat({}, { behaviour: { kind: 'error', status: 503 } }), 'server', (error) => assert.match(error.message, /overloaded/));
    await rejectsWith(chat({ stream: true }, { behaviour: { kind: 'error', status: 500 } }), 'server');
    await rejectsWith(chat({}, { behaviour: { kind: 'error', status: 504 } }), 'timeout');
    await rejectsWith(chat({}, { behaviour: { kind: 'raw', status: 302, headers: { location: 'https://elsewhere.example/' }, body: '' } }), 'bad_response');
    await rejectsWith(
      chat({}, { behaviour: { kind: 'raw', status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad Gateway</html>' } }),
      'server',
    );
    await rejectsWith(chat({}, { behaviour: { kind: 'raw', status: 200, headers: { 'content-type': 'application/json' }, body: '{"candid' } }), 'bad_response');
  });

  for (const form of ['raw-line', 'pretty', 'data'] as const) {
    test(`an error after the stream started (${form}) throws from the iterator after the content`, async () => {
      const result = await chat({ stream: true }, { behaviour: { kind: 'mid-stream-error', form, afterEvents: 2 } });
      assert.equal(result.type, 'stream');
      const seen: ChatChunk[] = [];
      await rejectsWith(
        (async () => {
          for await (const chunk of (result as { chunks: AsyncIterable<ChatChunk> }).chunks) seen.push(chunk);
        })(),
        'server',
        (error) => assert.match(error.message, form === 'raw-line' ? /INTERNAL: Error/ : /UNAVAILABLE: The model is overloaded/),
      );
      assert.equal(seen.length, 2);
      assert.ok(seen.every((chunk) => typeof chunk.choices[0]?.delta.content === 'string'));
    });
  }

  test('a stream that ends before any finishReason is a connection failure', async () => {
    await rejectsWith(streamed({}, { kind: 'cut', afterEvents: 3 }), 'connection');
  });

  test('an oversized event is a bad response', async () => {
    await rejectsWith(
      (async () => {
        const result = await chat(
          { stream: true },
          { behaviour: { kind: 'huge-event', bytes: 64 * 1024 }, limits: { maxBodyBytes: 1024 * 1024, maxEventBytes: 16 * 1024 } },
        );
        for await (const _ of (result as { chunks: AsyncIterable<ChatChunk> }).chunks) {
          // drain
        }
      })(),
      'bad_response',
    );
    await rejectsWith(chat({}, { limits: { maxBodyBytes: 100, maxEventBytes: 100 } }), 'bad_response');
  });

  test('return() on the iterator closes the upstream response', async () => {
    const abandoned = fake.abandoned;
    const result = await chat({ stream: true }, { behaviour: { kind: 'stall', afterEvents: 2 } });
    const iterator = (result as { chunks: AsyncIterable<ChatChunk> }).chunks[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    await iterator.return!();
    await fake.waitForAbandoned(abandoned + 1);
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  });
});

describe('Gemini helpers', () => {
  test('schema conversion: recursion, allOf, oneOf, tuple items, bounded expansion', () => {
    const schema = {
      $defs: { node: { type: 'object', properties: { value: { type: 'string' }, next: { $ref: '#/$defs/node' } } } },
      allOf: [{ properties: { a: { type: 'string' } }, required: ['a'] }, { properties: { b: { oneOf: [{ type: 'string' }, { type: 'number' }] } } }],
      properties: { list: { $ref: '#/$defs/node' }, pair: { type: 'array', items: [{ type: 'string' }, { type: 'integer' }] } },
      type: 'object',
    };
    assert.deepEqual(toGeminiSchema(schema, 'test'), {
      type: 'OBJECT',
      properties: {
        list: { type: 'OBJECT', properties: { value: { type: 'STRING' }, next: { type: 'OBJECT' } } },
        pair: { type: 'ARRAY', items: { anyOf: [{ type: 'STRING' }, { type: 'INTEGER' }] } },
        a: { type: 'STRING' },
        b: { anyOf: [{ type: 'STRING' }, { type: 'NUMBER' }] },
      },
      required: ['a'],
    });
    // A DAG of references that doubles at each level cannot expand without end.
    const defs: Record<string, unknown> = { d0: { type: 'string' } };
    for (let i = 1; i <= 30; i++) defs[`d${i}`] = { type: 'object', properties: { l: { $ref: `#/$defs/d${i - 1}` }, r: { $ref: `#/$defs/d${i - 1}` } } };
    assert.throws(
      () => toGeminiSchema({ $defs: defs, $ref: '#/$defs/d30' }, 'test'),
      (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_request',
    );
  });

  test('stray JSON outside SSE lines is found whatever the chunking', () => {
    const text = 'data: {"a": 1}\r\n\r\n{\n  "error": {\n    "code": 500,\n    "message": "a } in a \\" string"\n  }\n}\n';
    for (const size of [1, 2, 3, 7, 1000]) {
      const stray = new StrayJson(1024);
      const documents: string[] = [];
      for (let i = 0; i < text.length; i += size) documents.push(...stray.push(text.slice(i, i + size)));
      assert.equal(stray.end(), undefined);
      assert.equal(documents.length, 1, `chunk size ${size}`);
      assert.deepEqual(JSON.parse(documents[0]!), { error: { code: 500, message: 'a } in a " string' } });
    }
    const small = new StrayJson(16);
    assert.throws(
      () => small.push(`{"error": "${'x'.repeat(100)}"}`),
      (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response',
    );
  });
});
