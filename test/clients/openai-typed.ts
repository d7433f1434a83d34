// The official `openai` Node SDK, choosing the upstream with Interference's `provider` field.
// `provider` is not in the SDK's request types, so an object literal with it passed straight to
// create() fails to compile (TS2769). Typing the params as "SDK params & { provider: string }"
// compiles, and the SDK sends every field of the object as it is.
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.INTERFERENCE_URL ?? 'http://localhost:1337/v1',
  // The gateway's own key, if it has one; provider keys stay on the gateway. The SDK insists on a key.
  apiKey: process.env.INTERFERENCE_API_KEY ?? 'unused',
});
const provider = process.env.PROVIDER ?? 'Groq'; // or 'HuggingChat AnotherProvider': tried in order
const model = process.env.MODEL ?? 'llama-3.3-70b';

async function main(): Promise<void> {
  const params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & { provider: string } = {
    model,
    provider,
    messages: [{ role: 'user', content: 'Say hello' }],
  };
  const completion = await client.chat.completions.create(params);
  console.log(completion.choices[0]?.message.content);

  const streamParams: OpenAI.Chat.ChatCompletionCreateParamsStreaming & { provider: string } = {
    model,
    provider,
    messages: [{ role: 'user', content: 'Say hello' }],
    stream: true,
  };
  const stream = await client.chat.completions.create(streamParams);
  for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
