// The Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`), choosing the upstream with Interference's
// `provider` field. The OpenAI-compatible provider copies every key of
// `providerOptions.<its name>` into the request body, so with `name: 'interference'`,
// `providerOptions: { interference: { provider } }` sends `"provider": "..."`.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';

const interference = createOpenAICompatible({
  name: 'interference',
  baseURL: process.env.INTERFERENCE_URL ?? 'http://localhost:1337/v1',
  apiKey: process.env.INTERFERENCE_API_KEY, // the gateway's own key, if it has one
});
const provider = process.env.PROVIDER ?? 'Groq'; // or 'HuggingChat AnotherProvider': tried in order
const model = process.env.MODEL ?? 'llama-3.3-70b';

async function main(): Promise<void> {
  const { text } = await generateText({
    model: interference(model),
    providerOptions: { interference: { provider } },
    prompt: 'Say hello',
  });
  console.log(text);

  // textStream leaves errors out (a failed stream would just end early): onError receives them.
  let streamError: unknown;
  const result = streamText({
    model: interference(model),
    providerOptions: { interference: { provider } },
    prompt: 'Say hello',
    onError: ({ error }) => {
      streamError = error;
    },
  });
  for await (const text of result.textStream) process.stdout.write(text);
  if (streamError !== undefined) throw streamError;
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
