// Runs under Node 22 with the official `openai` SDK against the gateway at GATEWAY_URL, once with
// `provider: "Anthropic"` and once with `provider: "GeminiPro"`: a tool-call round trip (plain and
// streamed), images in the message (a data: URI and the http URL in IMAGE_URL), and a JSON-schema
// answer (plain and streamed). It does what SDK users do (push the assistant message back, gather
// streamed tool-call deltas by index) and prints every raw response object and chunk it received,
// with the gateway's headers, as one JSON object. Driven by test/native-families-sdk.test.ts.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.GATEWAY_URL}/v1`, apiKey: 'sk-dummy-not-a-provider-key', maxRetries: 0, timeout: 15_000 });
const imageUrl = process.env.IMAGE_URL;
const pngDataUri = `data:image/png;base64,${process.env.PNG_BASE64}`;

const families = [
  { provider: 'Anthropic', model: 'claude-sonnet-5' },
  { provider: 'GeminiPro', model: 'gemini-2.5-flash' },
];

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a location',
      parameters: {
        type: 'object',
        properties: { location: { type: 'string', description: 'City, or city and region' }, units: { type: 'string', enum: ['c', 'f'] } },
        required: ['location'],
        additionalProperties: false,
      },
    },
  },
];

const weatherFormat = {
  type: 'json_schema',
  json_schema: {
    name: 'weather_report',
    strict: true,
    schema: {
      type: 'object',
      properties: { city: { type: 'string' }, temperature_c: { type: 'number' }, conditions: { type: 'string' } },
      required: ['city', 'temperature_c', 'conditions'],
      additionalProperties: false,
    },
  },
};

/** The gateway headers an SDK user can read from the raw response. */
function headersOf(response) {
  return { provider: response.headers.get('x-interference-provider'), warnings: response.headers.get('x-interference-warnings') };
}

async function complete(body) {
  const { data, response } = await client.chat.completions.create(body).withResponse();
  return { headers: headersOf(response), completion: data };
}

/** A stream read as SDK users read it: text gathered, tool-call deltas merged by index. */
async function stream(body) {
  const { data, response } = await client.chat.completions.create({ ...body, stream: true }).withResponse();
  const chunks = [];
  let content = '';
  let finishReason = null;
  let usage = null;
  const calls = [];
  for await (const chunk of data) {
    chunks.push(chunk);
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (choice === undefined) continue;
    content += choice.delta?.content ?? '';
    for (const delta of choice.delta?.tool_calls ?? []) {
      const call = (calls[delta.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (delta.id) call.id = delta.id;
      if (delta.function?.name) call.function.name += delta.function.name;
      if (delta.function?.arguments) call.function.arguments += delta.function.arguments;
    }
    if (choice.finish_reason) finishReason = choice.finish_reason;
  }
  return { headers: headersOf(response), chunks, content, finishReason, usage, toolCalls: calls };
}

/** What the weather tool answers (the same for any location, as a fake tool would). */
function runTool(call) {
  const args = JSON.parse(call.function.arguments);
  return JSON.stringify({ location: args.location, temperature_c: 18, conditions: 'sunny' });
}

const out = {};
for (const { provider, model } of families) {
  const result = (out[provider] = {});
  const question = { role: 'user', content: 'What is the weather in Paris?' };

  // (1) Tool-call round trip, not streamed: the assistant message goes back as the SDK gave it.
  {
    const first = await complete({ model, provider, messages: [question], tools });
    const assistant = first.completion.choices[0].message;
    const call = assistant.tool_calls[0];
    const toolResult = runTool(call);
    const messages = [question, assistant, { role: 'tool', tool_call_id: call.id, content: toolResult }];
    const second = await complete({ model, provider, messages, tools });
    result.toolRound = { first, second, toolResult };
  }

  // (2) The same round trip streamed: the assistant message is rebuilt from the deltas.
  {
    const first = await stream({ model, provider, messages: [question], tools, stream_options: { include_usage: true } });
    const call = first.toolCalls[0];
    const toolResult = runTool(call);
    const assistant = { role: 'assistant', content: first.content === '' ? null : first.content, tool_calls: first.toolCalls };
    const messages = [question, assistant, { role: 'tool', tool_call_id: call.id, content: toolResult }];
    const second = await stream({ model, provider, messages, tools, stream_options: { include_usage: true } });
    result.streamedToolRound = { first, second, toolResult };
  }

  // (3) Images in the message: a data: URI, then an http URL the gateway must fetch. `stop` rides along.
  {
    const parts = (url) => [
      { type: 'text', text: 'What is in this picture?' },
      { type: 'image_url', image_url: { url } },
    ];
    const dataUri = await complete({ model, provider, messages: [{ role: 'user', content: parts(pngDataUri) }], stop: ['END'] });
    const httpUrl = await stream({ model, provider, messages: [{ role: 'user', content: parts(imageUrl) }], stream_options: { include_usage: true } });
    result.image = { dataUri, httpUrl };
  }

  // (4) JSON-schema answers, plain (with a seed) and streamed (without include_usage).
  {
    const messages = [{ role: 'user', content: 'Report the weather in Paris as JSON.' }];
    const plain = await complete({ model, provider, messages, response_format: weatherFormat, seed: 7 });
    const streamed = await stream({ model, provider, messages, response_format: weatherFormat });
    result.json = { plain, streamed };
  }
}

process.stdout.write(JSON.stringify(out));
