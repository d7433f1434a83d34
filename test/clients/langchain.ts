// LangChain JS (`@langchain/openai`), choosing the upstream with Interference's `provider` field.
// ChatOpenAI merges `modelKwargs` into every request body, so `modelKwargs: { provider }` sends
// `"provider": "..."`; the gateway's URL goes in `configuration.baseURL`.
import { ChatOpenAI } from '@langchain/openai';

const provider = process.env.PROVIDER ?? 'Groq'; // or 'HuggingChat AnotherProvider': tried in order
const chat = new ChatOpenAI({
  model: process.env.MODEL ?? 'llama-3.3-70b',
  // The gateway's own key, if it has one; provider keys stay on the gateway. ChatOpenAI insists on a key.
  apiKey: process.env.INTERFERENCE_API_KEY ?? 'unused',
  configuration: { baseURL: process.env.INTERFERENCE_URL ?? 'http://localhost:1337/v1' },
  modelKwargs: { provider },
});

async function main(): Promise<void> {
  const reply = await chat.invoke('Say hello');
  console.log(reply.text);

  for await (const chunk of await chat.stream('Say hello')) process.stdout.write(chunk.text);
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
