// Runs under Node 22 with the official `openai` SDK against the gateway at GATEWAY_URL, and prints
// what the SDK made of each Responses API call as one JSON object. Driven by
// test/responses-entrance.test.ts: with MODE=local only text from the embedded model (provider
// Local), else everything from its providers Good, OpenaiAPI, Tools and BreaksAfter.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.GATEWAY_URL}/v1`, apiKey: 'sk-dummy-not-a-provider-key', maxRetries: 0 });
const out = {};

const local = process.env.MODE === 'local';

if (process.env.MODE === 'anthropic') {
  // Against the Anthropic fake through provider Anthropic: text, a stream, a function call round
  // trip with previous_response_id, an image and a JSON schema answer.
  const base = { model: 'claude-sonnet-5', provider: 'Anthropic' };
  const result = {};
  const created = await client.responses.create({ ...base, input: 'Say hello' });
  result.create = { status: created.status, text: created.output_text, provider: created.provider };
  const stream = client.responses.stream({ ...base, input: 'Say hello' });
  let streamed = '';
  for await (const event of stream) if (event.type === 'response.output_text.delta') streamed += event.delta;
  const final = await stream.finalResponse();
  result.stream = { status: final.status, same: final.output_text === streamed && streamed.length > 0 };
  const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } }, strict: false }];
  const asked = await client.responses.create({ ...base, input: 'Weather in San Francisco?', tools });
  const call = asked.output.find((item) => item.type === 'function_call');
  const answered = await client.responses.create({
    ...base,
    previous_response_id: asked.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
    tools,
  });
  result.tool = { name: call.name, status: answered.status, answered: answered.output_text.length > 0 };
  const image = await client.responses.create({
    ...base,
    input: [
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'What is it?' },
          { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'auto' },
        ],
      },
    ],
  });
  result.image = image.status;
  const json = await client.responses.create({
    ...base,
    input: 'A color as JSON',
    text: {
      format: {
        type: 'json_schema',
        name: 'color',
        schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] },
        strict: true,
      },
    },
  });
  result.json = JSON.parse(json.output_text);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}
const text = local
  ? { model: '', input: 'Once upon a time', max_output_tokens: 12, provider: 'Local' }
  : { model: 'test-model', input: 'Say hello', provider: 'Good' };

const created = await client.responses.create(text);
out.create = { text: created.output_text, status: created.status, provider: created.provider };

const stream = client.responses.stream(text);
let streamed = '';
let last = '';
for await (const event of stream) {
  if (event.type === 'response.output_text.delta') streamed += event.delta;
  last = event.type;
}
const final = await stream.finalResponse();
out.stream = { text: streamed, status: final.status, last, same: final.output_text === streamed };
if (local) {
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const tools = [
  {
    type: 'function',
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
    strict: true,
  },
];
const asked = await client.responses.create({ model: 'gpt-4o', input: 'Weather in Paris?', tools, provider: 'Tools' });
const call = asked.output.find((item) => item.type === 'function_call');
const answered = await client.responses.create({
  model: 'gpt-4o',
  previous_response_id: asked.id,
  input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
  tools,
  provider: 'Tools',
});
out.tool = { call: `${call.name} ${call.arguments}`, answer: answered.output_text };

const image = await client.responses.create({
  model: 'gpt-4o',
  provider: 'OpenaiAPI',
  input: [
    {
      role: 'user',
      content: [
        { type: 'input_text', text: 'What is it?' },
        { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'auto' },
      ],
    },
  ],
});
out.image = image.output_text;

const json = await client.responses.create({
  model: 'test-model',
  provider: 'Good',
  input: 'A color as JSON',
  text: {
    format: {
      type: 'json_schema',
      name: 'color',
      schema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'], additionalProperties: false },
      strict: true,
    },
  },
});
out.json = json.output_text;

// A failure after content is the stream's own `response.failed`: the SDK ends with a failed response.
const broken = client.responses.stream({ model: 'test-model', input: 'Say hello', provider: 'BreaksAfter' });
let brokenLast = '';
for await (const event of broken) brokenLast = event.type;
const failed = await broken.finalResponse();
out.failed = { last: brokenLast, status: failed.status, code: failed.error?.code };

process.stdout.write(JSON.stringify(out));
