// The official `openai` Node SDK, with `provider` declared once for the whole program (a module
// augmentation), so that it can be written inline in every create() call. This file is
// type-checked on its own (tsconfig.augmented.json): the declaration is global to a program.
import OpenAI from 'openai';

declare module 'openai/resources/chat/completions' {
  interface ChatCompletionCreateParamsBase {
    /** Interference: who answers, e.g. "Groq", or "HuggingChat AnotherProvider" (tried in order). */
    provider?: string;
  }
}

const client = new OpenAI({
  baseURL: process.env.INTERFERENCE_URL ?? 'http://localhost:1337/v1',
  // The gateway's own key, if it has one; provider keys stay on the gateway. The SDK insists on a key.
  apiKey: process.env.INTERFERENCE_API_KEY ?? 'unused',
});
const provider = process.env.PROVIDER ?? 'Groq';
const model = process.env.MODEL ?? 'llama-3.3-70b';

async function main(): Promise<void> {
  const completion = await client.chat.completions.create({
    model,
    provider,
    messages: [{ role: 'user', content: 'Say hello' }],
  });
  console.log(completion.choices[0]?.message.content);

  const stream = await client.chat.completions.create({
    model,
    provider,
    messages: [{ role: 'user', content: 'Say hello' }],
    stream: true,
  });
  for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
