import { UpstreamError } from '../../core/errors.js';
import { completionId } from '../../core/normalize.js';
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../core/types.js';

/**
 * Anthropic `message` objects (upstream-protocols §2.2) as OpenAI chat completions, and the
 * pieces the stream reader shares: stop reasons and usage.
 */

/**
 * Anthropic `stop_reason` → OpenAI `finish_reason`. `model_context_window_exceeded` means the answer
 * was cut short, as `length` does; `pause_turn` (a server tool paused) and anything new → `stop`.
 * In JSON-schema mode the forced answer tool is the reply itself, so `tool_use` → `stop`.
 */
export function finishReasonFor(stopReason: unknown, jsonMode: boolean): FinishReason {
  switch (stopReason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return jsonMode ? 'stop' : 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/** Anthropic's token counts (each optional: a `message_delta` may carry only `output_tokens`). */
export interface TokenCounts {
  input: number;
  cacheCreation: number;
  cacheRead: number;
  output: number;
  /** Whether the upstream reported cache reads at all (then `cached_tokens` is passed on). */
  cacheReported: boolean;
}

export const noTokens = (): TokenCounts => ({ input: 0, cacheCreation: 0, cacheRead: 0, output: 0, cacheReported: false });

/** Takes what a usage object reports; counts it does not mention keep their value (they are cumulative). */
export function readTokens(counts: TokenCounts, usage: unknown): void {
  if (typeof usage !== 'object' || usage === null) return;
  const record = usage as Record<string, unknown>;
  const count = (key: string): number | undefined => {
    const value = record[key];
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
  };
  counts.input = count('input_tokens') ?? counts.input;
  counts.cacheCreation = count('cache_creation_input_tokens') ?? counts.cacheCreation;
  const cacheRead = count('cache_read_input_tokens');
  if (cacheRead !== undefined) ((counts.cacheRead = cacheRead), (counts.cacheReported = true));
  counts.output = count('output_tokens') ?? counts.output;
}

/**
 * OpenAI usage: `prompt_tokens` is every input token, as OpenAI counts it; Anthropic's
 * `input_tokens` excludes the cached part, so cache writes and reads are added back, and reads are
 * also reported as `prompt_tokens_details.cached_tokens`.
 */
export function usageFrom(counts: TokenCounts): Usage {
  const prompt = counts.input + counts.cacheCreation + counts.cacheRead;
  return {
    prompt_tokens: prompt,
    completion_tokens: counts.output,
    total_tokens: prompt + counts.output,
    ...(counts.cacheReported ? { prompt_tokens_details: { cached_tokens: counts.cacheRead } } : {}),
  };
}

export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * A non-streamed Anthropic answer as an OpenAI completion: text blocks joined as `content`,
 * `tool_use` blocks as `tool_calls` (input re-serialised), `thinking` as `reasoning_content`. In
 * JSON-schema mode (`jsonTool` named) that tool's input is the content.
 */
export function completionFromMessage(text: string, jsonTool: string | undefined, fallbackModel: string): ChatCompletion {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UpstreamError('bad_response', `the upstream answered 2xx with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null) throw new UpstreamError('bad_response', 'the upstream answered 2xx with a body that is not a JSON object');
  const message = value as Record<string, unknown>;
  if (message.type === 'error') {
    throw new UpstreamError('server', `the upstream answered 2xx with an error: ${JSON.stringify(message.error).slice(0, 300)}`);
  }
  if (!Array.isArray(message.content)) throw new UpstreamError('bad_response', 'the upstream answered 2xx without a `content` list');

  const texts: string[] = [];
  const thinking: string[] = [];
  const toolCalls: ToolCall[] = [];
  let json: string | undefined;
  for (const block of message.content as unknown[]) {
    if (typeof block !== 'object' || block === null) continue;
    const b = block as Record<string, unknown>;
    if (b.type === 'text' && typeof b.text === 'string') texts.push(b.text);
    else if (b.type === 'thinking' && typeof b.thinking === 'string') thinking.push(b.thinking);
    else if (b.type === 'tool_use') {
      if (typeof b.name !== 'string' || typeof b.id !== 'string')
        throw new UpstreamError('bad_response', 'the upstream sent a tool_use block without id or name');
      const input = JSON.stringify(b.input ?? {});
      if (jsonTool !== undefined && b.name === jsonTool) json ??= input;
      else toolCalls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: input } });
    }
    // Other blocks (redacted_thinking, server tool results) have no OpenAI counterpart.
  }
  const content = json ?? texts.join('');
  const counts = noTokens();
  readTokens(counts, message.usage);
  const completion: ChatCompletion = {
    id: typeof message.id === 'string' && message.id !== '' ? message.id : completionId(),
    object: 'chat.completion',
    created: unixNow(),
    model: typeof message.model === 'string' && message.model !== '' ? message.model : fallbackModel,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: content === '' && toolCalls.length > 0 ? null : content,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
          ...(thinking.length > 0 ? { reasoning_content: thinking.join('') } : {}),
        },
        logprobs: null,
        finish_reason: finishReasonFor(message.stop_reason, json !== undefined),
        native_finish_reason: typeof message.stop_reason === 'string' ? message.stop_reason : null,
      },
    ],
    usage: usageFrom(counts),
  };
  return completion;
}
