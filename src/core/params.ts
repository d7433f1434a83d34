/** The request fields of OpenAI's chat completions that the gateway knows how to pass on. */
export const openAIChatParams = [
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'user',
  'reasoning_effort',
] as const;

export type OpenAIChatParam = (typeof openAIChatParams)[number];

/** What a provider honours: OpenAI's fields without those it cannot carry, plus fields of its own (`top_k`). */
export function chatParamsWithout(excluded: readonly string[], extra: readonly string[] = []): string[] {
  const drop = new Set(excluded);
  return [...openAIChatParams.filter((param) => !drop.has(param)), ...extra];
}

/**
 * The base URL of a versioned API: trailing slashes dropped, and `/<version>` appended when the
 * path does not already end in a version segment (`v1`, `v1beta`, `v2alpha`…), as the vendors'
 * SDKs treat a bare host (`https://api.anthropic.com` → `https://api.anthropic.com/v1`).
 */
export function withApiVersion(url: string, version: string): string {
  const trimmed = url.trim().replace(/\/+$/, '');
  const scheme = trimmed.indexOf('://');
  const path = trimmed.slice(scheme === -1 ? 0 : scheme + 3);
  const slash = path.lastIndexOf('/');
  return slash !== -1 && /^v\d+([a-z]+\d*)?$/i.test(path.slice(slash + 1)) ? trimmed : `${trimmed}/${version}`;
}
