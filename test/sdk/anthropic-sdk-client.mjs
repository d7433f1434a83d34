// Runs under Node 22 with the official `@anthropic-ai/sdk` against the gateway's /v1/messages at
// GATEWAY_URL, once per target in TARGETS (JSON: [{provider, model, tools, image}]), and prints what
// the SDK made of each answer as one JSON object. Driven by test/messages-entrance.test.ts.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: process.env.GATEWAY_URL, apiKey: 'sk-ant-dummy-not-a-provider-key', maxRetries: 0 });
const targets = JSON.parse(process.env.TARGETS ?? '[]');
const png = process.env.PNG_BASE64 ?? '';
const weatherTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const out = {};

/** What two answers must agree on (ids differ per request). */
const comparable = (message) => ({ role: message.role, model: message.model, content: message.content, stop_reason: message.stop_reason });
const describeError = (error) => ({ name: error.constructor.name, status: error.status ?? null, type: error.error?.error?.type ?? error.type ?? null, message: String(error.message) });

for (const target of targets) {
  const result = {};
  const base = { model: target.model, max_tokens: 16, temperature: 0, provider: target.provider };
  const messages = [{ role: 'user', content: 'Say hello' }];

  const message = await client.messages.create({ ...base, system: 'Be brief.', messages });
  result.message = message;
  const events = [];
  const stream = client.messages.stream({ ...base, system: 'Be brief.', messages });
  stream.on('streamEvent', (event) => events.push(event.type));
  const final = await stream.finalMessage();
  result.final = final;
  result.events = [...new Set(events)];
  result.same = JSON.stringify(comparable(message)) === JSON.stringify(comparable(final));

  if (target.tools) {
    const ask = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.messages.create({ ...base, max_tokens: 64, messages: ask, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' } });
    const use = first.content.find((block) => block.type === 'tool_use') ?? { type: 'tool_use', id: 'toolu_given', name: 'get_weather', input: { city: 'Paris' } };
    const streamedUse = await client.messages
      .stream({ ...base, max_tokens: 64, messages: ask, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' } })
      .finalMessage();
    const second = await client.messages.create({
      ...base,
      max_tokens: 64,
      tools: [weatherTool],
      messages: [
        ...ask,
        { role: 'assistant', content: [{ type: 'text', text: 'Let me check.' }, use] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: '21 degrees and sunny' }] }] },
      ],
    });
    result.tool = { first: { stop_reason: first.stop_reason, content: first.content }, streamed: { stop_reason: streamedUse.stop_reason, content: streamedUse.content }, second: { stop_reason: second.stop_reason, content: second.content } };
  }

  if (target.image) {
    const image = await client.messages.create({
      ...base,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }, { type: 'text', text: 'What is this?' }] }],
    });
    result.image = { stop_reason: image.stop_reason, content: image.content };
  }

  const counted = await client.messages.countTokens({ model: target.model, messages, system: 'Be brief.' });
  result.count = counted.input_tokens;
  out[target.provider] = result;
}

// Errors: a provider that does not exist, as the SDK's own typed error; a bad body; a stream that breaks after its content.
try {
  await client.messages.create({ model: 'test-model', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }], provider: 'Nope' });
  out.notFound = 'no error';
} catch (error) {
  out.notFound = describeError(error);
}
try {
  await client.messages.create({ model: 'test-model', messages: [{ role: 'user', content: 'Hi' }] });
  out.invalid = 'no error';
} catch (error) {
  out.invalid = describeError(error);
}
if (process.env.BROKEN_PROVIDER) {
  let partial = '';
  try {
    const stream = client.messages.stream({ model: 'test-model', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }], provider: process.env.BROKEN_PROVIDER });
    stream.on('text', (text) => (partial += text));
    await stream.finalMessage();
    out.midStream = 'no error';
  } catch (error) {
    out.midStream = { ...describeError(error), partial };
  }
}

process.stdout.write(JSON.stringify(out));
