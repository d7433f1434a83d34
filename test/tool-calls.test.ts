import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startGateway, type Gateway } from './support/gateway.js';
import { readSse } from './support/sse.js';
import { readBody, serveOnLoopback, type LoopbackServer } from './support/loopback.js';
import { assertOpenAIShape } from './support/openai-schema.js';

/**
 * Tool calls pass through both ways: `tools` reach the upstream, and the upstream's streamed
 * tool-call fragments reach the client as they are, or merged into `message.tool_calls` for a
 * non-streaming client. The stream is OpenAI's recorded one (openai-python's inline snapshot
 * 2018feb6…, quoted in shared/notes/upstream-protocols.md §1.4), fragments as recorded.
 */
const head =
  '{"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":';
const recordedToolStream = [
  `${head}{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_4XzlGBLtUe9dy3GVNV4jhq7h","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}`,
  ...['{\\"', 'city', '\\":\\"', 'New', ' York', ' City', '\\"}'].map(
    (piece) => `${head}{"tool_calls":[{"index":0,"function":{"arguments":"${piece}"}}]},"logprobs":null,"finish_reason":null}]}`,
  ),
  `${head}{},"logprobs":null,"finish_reason":"tool_calls"}]}`,
  '{"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[],"usage":{"prompt_tokens":44,"completion_tokens":16,"total_tokens":60,"completion_tokens_details":{"reasoning_tokens":0}}}',
];

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

describe('tool calls', () => {
  let upstream: LoopbackServer;
  let received: Array<Record<string, unknown>> = [];
  let gateway: Gateway;

  before(async () => {
    upstream = await serveOnLoopback(
      createServer((req, res) =>
        readBody(req, (raw) => {
          received.push(JSON.parse(raw) as Record<string, unknown>);
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
          for (const event of recordedToolStream) res.write(`data: ${event}\n\n`);
          res.end('data: [DONE]\n\n');
        }),
      ),
    );
    gateway = await startGateway({ config: { providers: [{ id: 'Tools', api: 'openai', baseUrl: `${upstream.origin}/v1`, models: ['gpt-4o'] }] } });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  const body = (stream: boolean) => ({
    provider: 'Tools',
    model: 'gpt-4o',
    stream,
    stream_options: stream ? { include_usage: true } : undefined,
    tools,
    tool_choice: 'auto',
    messages: [{ role: 'user', content: 'Weather in New York City?' }],
  });

  test('streamed: every tool-call fragment reaches the client, in order, conforming to the chunk schema', async () => {
    received = [];
    const response = await gateway.post('/v1/chat/completions', body(true));
    assert.equal(response.status, 200);
    const sse = await readSse(response);
    assert.equal(sse.done, true);
    assert.deepEqual(received[0]?.tools, tools, 'tools reached the upstream unchanged');
    assert.equal(received[0]?.tool_choice, 'auto');
    for (const event of sse.events) assertOpenAIShape('CreateChatCompletionStreamResponse', event);
    type Chunk = { choices: Array<{ delta: { tool_calls?: Array<{ function?: { arguments?: string; name?: string } }> }; finish_reason: string | null }> };
    const chunks = sse.events as Chunk[];
    const args = chunks.map((chunk) => chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '').join('');
    assert.equal(args, '{"city":"New York City"}');
    assert.equal(chunks[0]?.choices[0]?.delta.tool_calls?.[0]?.function?.name, 'get_weather');
    assert.equal(chunks.find((chunk) => chunk.choices[0]?.finish_reason)?.choices[0]?.finish_reason, 'tool_calls');
  });

  // This upstream always streams, so here the gateway builds the completion from the fragments.
  test('not streamed: fragments merged into message.tool_calls with finish_reason tool_calls', async () => {
    const response = await gateway.post('/v1/chat/completions', body(false));
    assert.equal(response.status, 200);
    const completion = (await response.json()) as {
      choices: Array<{
        message: { content: string | null; tool_calls: Array<{ id: string; type: string; function: { name: string; arguments: string } }> };
        finish_reason: string;
      }>;
      usage: { total_tokens: number };
    };
    assertOpenAIShape('CreateChatCompletionResponse', completion);
    const choice = completion.choices[0];
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.equal(choice?.message.content, null);
    assert.deepEqual(choice?.message.tool_calls, [
      { id: 'call_4XzlGBLtUe9dy3GVNV4jhq7h', type: 'function', function: { name: 'get_weather', arguments: '{"city":"New York City"}' } },
    ]);
    assert.equal(completion.usage.total_tokens, 60);
  });
});
