// The official `openai` SDK's Responses API against Interference's /v1/responses: any provider
// answers, in the Responses format. `provider` is typed in as for chat completions.
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.INTERFERENCE_URL ?? 'http://localhost:1337/v1',
  // The gateway's own key, if it has one; provider keys stay on the gateway. The SDK insists on a key.
  apiKey: process.env.INTERFERENCE_API_KEY ?? 'unused',
});
const provider = process.env.PROVIDER ?? 'Groq'; // any provider: Anthropic, GeminiPro, Local, ...
const model = process.env.MODEL ?? 'llama-3.3-70b';

async function main(): Promise<void> {
  const params: OpenAI.Responses.ResponseCreateParamsNonStreaming & { provider: string } = { model, provider, input: 'Say hello' };
  const response = await client.responses.create(params);
  console.log(response.output_text);

  const stream = client.responses.stream({ ...params, stream: true } as OpenAI.Responses.ResponseCreateParamsStreaming & { provider: string });
  stream.on('response.output_text.delta', (event) => process.stdout.write(event.delta));
  const final = await stream.finalResponse();
  // A failure after the stream started is a `response.failed` event, not an exception.
  if (final.status === 'failed') throw new Error(final.error?.message ?? 'the response failed');
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
