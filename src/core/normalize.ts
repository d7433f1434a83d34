import { randomBytes } from 'node:crypto';
import { UpstreamError } from './errors.js';
import type { ChatChunk, ChatCompletion, FinishReason, Usage } from './types.js';

/**
 * Makes upstream objects conform to OpenAI's schemas (openai-openapi.yaml) whatever the upstream
 * sent, and stamps the provider that answered. Mutates in place: the objects were just parsed.
 */

const finishReasons = new Set<string>(['stop', 'length', 'tool_calls', 'content_filter', 'function_call']);

export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('base64url')}`;
}

/**
 * The upstream's own JSON text of a parsed chunk or completion (a symbol key: JSON.stringify and
 * Object.keys never see it). Kept only while normalisation changes nothing, so that the writer can
 * send the upstream's bytes with `provider` spliced in instead of serialising the object again.
 */
export const rawJson = Symbol('rawJson');

type WithRaw = { [rawJson]?: string };

/** The JSON to send for a normalised object: the upstream's text plus `provider` when untouched. */
export function serialize(value: (ChatCompletion | ChatChunk) & WithRaw): string {
  const raw = value[rawJson];
  if (raw !== undefined) return `${raw.slice(0, raw.lastIndexOf('}'))},"provider":${JSON.stringify(value.provider)}}`;
  return JSON.stringify(value);
}

export function normalizeCompletion(completion: ChatCompletion & WithRaw, provider: string, fallbackModel: string): ChatCompletion {
  let changed = normalizeEnvelope(completion, 'chat.completion', provider, fallbackModel);
  completion.choices.forEach((choice, index) => {
    if (typeof choice !== 'object' || choice === null) throw notAChoice();
    if (typeof choice.index !== 'number') ((choice.index = index), (changed = true));
    if (typeof choice.message !== 'object' || choice.message === null) {
      choice.message = { role: 'assistant', content: null };
      changed = true;
    }
    const message = choice.message;
    if (message.role !== 'assistant') ((message.role = 'assistant'), (changed = true));
    if (message.content === undefined) ((message.content = null), (changed = true));
    if (message.refusal === undefined) ((message.refusal = null), (changed = true));
    if (choice.logprobs === undefined) ((choice.logprobs = null), (changed = true));
    if (!finishReasons.has(choice.finish_reason as string)) {
      // The upstream's own reason is kept beside the mapped one (as OpenRouter does).
      if (typeof choice.finish_reason === 'string' && choice.native_finish_reason === undefined) choice.native_finish_reason = choice.finish_reason;
      choice.finish_reason = 'stop';
      changed = true;
    }
  });
  if (completion.usage !== undefined && !isUsage(completion.usage)) {
    delete completion.usage;
    changed = true;
  }
  if (changed) delete completion[rawJson];
  return completion;
}

export function normalizeChunk(chunk: ChatChunk & WithRaw, provider: string, fallbackModel: string): ChatChunk {
  let changed = normalizeEnvelope(chunk, 'chat.completion.chunk', provider, fallbackModel);
  for (let index = 0; index < chunk.choices.length; index++) {
    const choice = chunk.choices[index] as ChatChunk['choices'][number];
    if (typeof choice !== 'object' || choice === null) throw notAChoice();
    if (typeof choice.index !== 'number') ((choice.index = index), (changed = true));
    if (typeof choice.delta !== 'object' || choice.delta === null) ((choice.delta = {}), (changed = true));
    const reason = choice.finish_reason;
    if (reason === undefined || (reason !== null && !finishReasons.has(reason))) {
      if (typeof reason === 'string' && choice.native_finish_reason === undefined) choice.native_finish_reason = reason;
      choice.finish_reason = reason === undefined || reason === null ? null : 'stop';
      changed = true;
    }
  }
  if (chunk.usage !== undefined && chunk.usage !== null && !isUsage(chunk.usage)) {
    delete chunk.usage;
    changed = true;
  }
  if (changed) delete chunk[rawJson];
  return chunk;
}

/** Fixes the shared fields and stamps `provider`; true when anything but `provider` changed. */
function normalizeEnvelope(value: ChatCompletion | ChatChunk, object: string, provider: string, fallbackModel: string): boolean {
  const record = value as Record<string, unknown>;
  let changed = false;
  if (record.object !== object) ((record.object = object), (changed = true));
  if (typeof record.id !== 'string' || record.id === '') ((record.id = completionId()), (changed = true));
  if (typeof record.created !== 'number' || !Number.isInteger(record.created) || record.created < 0) {
    record.created = Math.floor(Date.now() / 1000);
    changed = true;
  }
  if (typeof record.model !== 'string' || record.model === '') ((record.model = fallbackModel), (changed = true));
  if (record.system_fingerprint !== undefined && typeof record.system_fingerprint !== 'string') {
    delete record.system_fingerprint;
    changed = true;
  }
  if (!Array.isArray(record.choices)) ((record.choices = []), (changed = true));
  // An upstream that already says `provider` (another gateway) is re-serialised, not spliced.
  if (record.provider !== undefined) changed = true;
  record.provider = provider;
  return changed;
}

function notAChoice(): UpstreamError {
  return new UpstreamError('bad_response', 'the upstream sent a choice that is not an object');
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
