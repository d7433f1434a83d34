import { randomBytes } from 'node:crypto';
import type { ChatChunk, ChatCompletion, FinishReason, Usage } from './types.js';

/**
 * Makes upstream objects conform to OpenAI's schemas (openai-openapi.yaml) whatever the upstream
 * sent, and stamps the provider that answered. Mutates in place: the objects were just parsed.
 */

const finishReasons = new Set<string>(['stop', 'length', 'tool_calls', 'content_filter', 'function_call']);

export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('base64url')}`;
}

export function normalizeCompletion(completion: ChatCompletion, provider: string, fallbackModel: string): ChatCompletion {
  normalizeEnvelope(completion, 'chat.completion', provider, fallbackModel);
  completion.choices.forEach((choice, index) => {
    if (typeof choice.index !== 'number') choice.index = index;
    const message = (typeof choice.message === 'object' && choice.message !== null ? choice.message : {}) as ChatCompletion['choices'][number]['message'];
    message.role = 'assistant';
    if (message.content === undefined) message.content = null;
    if (message.refusal === undefined) message.refusal = null;
    choice.message = message;
    if (choice.logprobs === undefined) choice.logprobs = null;
    if (!finishReasons.has(choice.finish_reason as string)) choice.finish_reason = 'stop';
  });
  if (completion.usage !== undefined && !isUsage(completion.usage)) delete completion.usage;
  return completion;
}

export function normalizeChunk(chunk: ChatChunk, provider: string, fallbackModel: string): ChatChunk {
  normalizeEnvelope(chunk, 'chat.completion.chunk', provider, fallbackModel);
  for (let index = 0; index < chunk.choices.length; index++) {
    const choice = chunk.choices[index] as ChatChunk['choices'][number];
    if (typeof choice.index !== 'number') choice.index = index;
    if (typeof choice.delta !== 'object' || choice.delta === null) choice.delta = {};
    const reason = choice.finish_reason;
    if (reason === undefined || (reason !== null && !finishReasons.has(reason))) {
      choice.finish_reason = reason === undefined || reason === null ? null : 'stop';
    }
  }
  if (chunk.usage !== undefined && chunk.usage !== null && !isUsage(chunk.usage)) delete chunk.usage;
  // Groq reports stream usage in `x_groq.usage` on the last chunk.
  const groq = chunk.x_groq as { usage?: unknown } | undefined;
  if ((chunk.usage === undefined || chunk.usage === null) && isUsage(groq?.usage)) chunk.usage = groq.usage;
  return chunk;
}

function normalizeEnvelope(value: ChatCompletion | ChatChunk, object: string, provider: string, fallbackModel: string): void {
  const record = value as Record<string, unknown>;
  record.object = object;
  if (typeof record.id !== 'string' || record.id === '') record.id = completionId();
  if (typeof record.created !== 'number' || !Number.isInteger(record.created) || record.created < 0) {
    record.created = Math.floor(Date.now() / 1000);
  }
  if (typeof record.model !== 'string' || record.model === '') record.model = fallbackModel;
  if (record.system_fingerprint !== undefined && typeof record.system_fingerprint !== 'string') delete record.system_fingerprint;
  if (!Array.isArray(record.choices)) record.choices = [];
  record.provider = provider;
}

function isUsage(value: unknown): value is Usage {
  if (typeof value !== 'object' || value === null) return false;
  const usage = value as Record<string, unknown>;
  return Number.isInteger(usage.prompt_tokens) && Number.isInteger(usage.completion_tokens) && Number.isInteger(usage.total_tokens);
}

/** True when a chunk carries something a client would show: text, a tool call, a refusal, or the end. */
export function hasContent(chunk: ChatChunk): boolean {
  for (const choice of chunk.choices) {
    if (choice.finish_reason != null) return true;
    const delta = choice.delta;
    if (delta === undefined || delta === null) continue;
    if (typeof delta.content === 'string' && delta.content !== '') return true;
    if (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) return true;
    if (typeof delta.refusal === 'string' && delta.refusal !== '') return true;
    if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') return true;
    if (typeof delta.reasoning === 'string' && delta.reasoning !== '') return true;
  }
  return false;
}

export type { FinishReason };
