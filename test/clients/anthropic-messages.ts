// The official Anthropic SDK against Interference's /v1/messages: any provider answers, in
// Anthropic's format. `provider` is not in the SDK's request types, so the params are typed as
// "SDK params & { provider: string }" (an object literal with it passed straight would not compile).
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({
  // The SDK adds /v1/messages itself: give it the gateway's root.
  baseURL: (process.env.INTERFERENCE_URL ?? 'http://localhost:1337/v1').replace(/\/v1\/?$/, ''),
  // The gateway's own key, if it has one; provider keys stay on the gateway. The SDK insists on a key.
  apiKey: process.env.INTERFERENCE_API_KEY ?? 'unused',
});
const provider = process.env.PROVIDER ?? 'Groq'; // any provider: Groq, GeminiPro, Local, ...
const model = process.env.MODEL ?? 'llama-3.3-70b';

async function main(): Promise<void> {
  const params: Anthropic.MessageCreateParamsNonStreaming & { provider: string } = {
    model,
    provider,
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Say hello' }],
  };
  const message = await client.messages.create(params);
  console.log(message.content.map((block) => (block.type === 'text' ? block.text : '')).join(''));

  const stream = client.messages.stream(params);
  stream.on('text', (text) => process.stdout.write(text));
  await stream.finalMessage(); // throws the stream's `event: error`, if any
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
