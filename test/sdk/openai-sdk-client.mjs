// Runs under Node 22 with the official `openai` SDK against the gateway at GATEWAY_URL, and prints
// what the SDK made of each response as one JSON object. Driven by test/openai-sdk.test.ts.
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.GATEWAY_URL}/v1`, apiKey: 'sk-dummy-not-a-provider-key', maxRetries: 0 });
const messages = [{ role: 'user', content: 'Say hello' }];
const out = {};

const completion = await client.chat.completions.create({ model: 'test-model', messages, provider: 'Good' });
out.completion = { content: completion.choices[0].message.content, provider: completion.provider, model: completion.model };

const stream = await client.chat.completions.create({ model: 'test-model', messages, provider: 'Good', stream: true, stream_options: { include_usage: true } });
let text = '';
let usage = null;
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
out.stream = { text, usage };

try {
  await client.chat.completions.create({ model: 'test-model', messages, provider: 'Nope' });
  out.notFound = 'no error';
} catch (error) {
  out.notFound = { name: error.constructor.name, status: error.status, code: error.code, param: error.param };
}

try {
  const broken = await client.chat.completions.create({ model: 'test-model', messages, provider: 'Broken', stream: true });
  let partial = '';
  for await (const chunk of broken) partial += chunk.choices[0]?.delta?.content ?? '';
  out.midStream = { noError: partial };
} catch (error) {
  out.midStream = { name: error.constructor.name, message: error.message };
}

const models = [];
for await (const model of client.models.list()) models.push(model.id);
out.models = models.length;

process.stdout.write(JSON.stringify(out));
