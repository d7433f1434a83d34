import { randomBytes } from 'node:crypto';
import { UpstreamError } from '../../core/errors.js';
import { completionId } from '../../core/normalize.js';
import type { ChatChunk, ChatCompletion, ChunkChoice, ChunkDelta, FinishReason, ToolCall, Usage } from '../../core/types.js';
import { errorFromStatus, statusFrom } from './errors.js';
import { isRecord } from './schema.js';

/**
 * Gemini `GenerateContentResponse` → OpenAI shapes.
 *
 * - `candidates[i]` → `choices[candidate.index ?? i]`; text parts are joined as `content`;
 *   `thought: true` parts (sent only when thoughts were asked for) become `reasoning_content`;
 *   other part kinds (inline images, executable code) are not passed on.
 * - `functionCall` parts → `tool_calls`: the id is Gemini's own `functionCall.id` when it sends one
 *   (Gemini 3 does), else `call_<24 random characters>`; `arguments` is `JSON.stringify(args)`; a
 *   part's `thoughtSignature` rides along as `extra_content.google.thought_signature`, where Google's
 *   OpenAI-compatible endpoint puts it, so that a client replaying the history returns it.
 * - `finishReason` → `finish_reason` (see `finishReasonOf`); the native value is kept in
 *   `native_finish_reason`.
 * - `usageMetadata` → `usage`: prompt = promptTokenCount + toolUsePromptTokenCount, completion =
 *   candidatesTokenCount + thoughtsTokenCount (reasoning counts as completion, as at OpenAI, and is
 *   detailed in `completion_tokens_details.reasoning_tokens`), total = totalTokenCount.
 */

export interface ResponseContext {
  /** The model asked for: used when the response does not name its `modelVersion`. */
  model: string;
}

const filtered = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'IMAGE_PROHIBITED_CONTENT', 'IMAGE_RECITATION']);

/** STOP (or no reason) with function calls → tool_calls; MAX_TOKENS → length; safety family → content_filter; others → stop. */
export function finishReasonOf(native: string | undefined, hasToolCalls: boolean): FinishReason {
  if (native === 'MAX_TOKENS') return 'length';
  if (native !== undefined && filtered.has(native)) return 'content_filter';
  if (hasToolCalls && (native === undefined || native === 'STOP' || native === 'FINISH_REASON_UNSPECIFIED')) return 'tool_calls';
  return 'stop';
}

export function usageOf(metadata: unknown): Usage | undefined {
  if (!isRecord(metadata)) return undefined;
  const count = (key: string): number => {
    const value = metadata[key];
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
  };
  // An event that carries no counts yet (`{trafficType}` only) says nothing.
  if (!['promptTokenCount', 'candidatesTokenCount', 'totalTokenCount', 'thoughtsTokenCount'].some((key) => typeof metadata[key] === 'number')) return undefined;
  const prompt = count('promptTokenCount') + count('toolUsePromptTokenCount');
  const thoughts = count('thoughtsTokenCount');
  const completion = count('candidatesTokenCount') + thoughts;
  const total = typeof metadata.totalTokenCount === 'number' && Number.isInteger(metadata.totalTokenCount) ? count('totalTokenCount') : prompt + completion;
  const usage: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total };
  const cached = count('cachedContentTokenCount');
  if (cached > 0) usage.prompt_tokens_details = { cached_tokens: cached };
  if (thoughts > 0) usage.completion_tokens_details = { reasoning_tokens: thoughts };
  return usage;
}

/** A tool call as this adapter writes it (OpenAI's fields plus Gemini's signature). */
type GeminiToolCall = ToolCall & { extra_content?: { google: { thought_signature: string } } };

interface CandidateParts {
  text: string[];
  reasoning: string[];
  calls: GeminiToolCall[];
}

function readParts(candidate: Record<string, unknown>): CandidateParts {
  const out: CandidateParts = { text: [], reasoning: [], calls: [] };
  const content = candidate.content;
  if (content === undefined || content === null) return out;
  if (!isRecord(content)) throw badResponse('a candidate whose content is not an object');
  const parts = content.parts;
  if (parts === undefined || parts === null) return out;
  if (!Array.isArray(parts)) throw badResponse('a candidate whose parts are not an array');
  for (const part of parts) {
    if (!isRecord(part)) throw badResponse('a part that is not an object');
    if (typeof part.text === 'string') {
      if (part.text === '') continue;
      if (part.thought === true) out.reasoning.push(part.text);
      else out.text.push(part.text);
    } else if (part.functionCall !== undefined) {
      const call = part.functionCall;
      if (!isRecord(call) || typeof call.name !== 'string' || call.name === '') throw badResponse('a functionCall without a name');
      const args = call.args === undefined || call.args === null ? {} : call.args;
      const toolCall: GeminiToolCall = { id: toolCallId(call.id), type: 'function', function: { name: call.name, arguments: JSON.stringify(args) } };
      if (typeof part.thoughtSignature === 'string' && part.thoughtSignature !== '')
        toolCall.extra_content = { google: { thought_signature: part.thoughtSignature } };
      out.calls.push(toolCall);
    }
  }
  return out;
}

/** Gemini's own call id when it is a plain short token; otherwise one of ours. */
function toolCallId(id: unknown): string {
  if (typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id)) return id;
  return `call_${randomBytes(18).toString('base64url')}`;
}

function candidatesOf(response: Record<string, unknown>): Record<string, unknown>[] {
  const candidates = response.candidates;
  if (candidates === undefined || candidates === null) return [];
  if (!Array.isArray(candidates)) throw badResponse('candidates that are not an array');
  return candidates.map((candidate) => {
    if (!isRecord(candidate)) throw badResponse('a candidate that is not an object');
    return candidate;
  });
}

function candidateIndex(candidate: Record<string, unknown>, position: number): number {
  const index = candidate.index;
  return typeof index === 'number' && Number.isInteger(index) && index >= 0 && index < 1024 ? index : position;
}

function blockReasonOf(response: Record<string, unknown>): string | undefined {
  const feedback = response.promptFeedback;
  if (!isRecord(feedback)) return undefined;
  return typeof feedback.blockReason === 'string' ? feedback.blockReason : undefined;
}

function idOf(response: Record<string, unknown>): string {
  return typeof response.responseId === 'string' && /^[\w-]{1,200}$/.test(response.responseId) ? `chatcmpl-${response.responseId}` : completionId();
}

function modelOf(response: Record<string, unknown>, fallback: string): string {
  return typeof response.modelVersion === 'string' && response.modelVersion !== '' ? response.modelVersion : fallback;
}

/** A parsed JSON value that must be a GenerateContentResponse; a Status in it becomes its error. */
function asResponse(value: unknown, where: string): Record<string, unknown> {
  const status = statusFrom(value);
  if (status !== undefined) throw errorFromStatus(status, undefined, undefined, where);
  if (!isRecord(value)) throw badResponse(`${where === 'the upstream' ? 'a body' : 'an event'} that is not a JSON object`);
  return value;
}

/** A whole `generateContent` answer as a chat.completion. */
export function completionFromResponse(value: unknown, context: ResponseContext): ChatCompletion {
  const response = asResponse(value, 'the upstream');
  const choices: ChatCompletion['choices'] = [];
  for (const [position, candidate] of candidatesOf(response).entries()) {
    const parts = readParts(candidate);
    const native = typeof candidate.finishReason === 'string' ? candidate.finishReason : undefined;
    const message: ChatCompletion['choices'][number]['message'] = {
      role: 'assistant',
      content: parts.text.length > 0 || parts.calls.length === 0 ? parts.text.join('') : null,
      refusal: null,
    };
    if (parts.calls.length > 0) message.tool_calls = parts.calls;
    if (parts.reasoning.length > 0) message.reasoning_content = parts.reasoning.join('');
    choices.push({
      index: candidateIndex(candidate, position),
      message,
      finish_reason: finishReasonOf(native, parts.calls.length > 0),
      ...(native === undefined ? {} : { native_finish_reason: native }),
      logprobs: null,
    });
  }
  if (choices.length === 0) {
    const blocked = blockReasonOf(response);
    if (blocked === undefined) throw badResponse('an answer without candidates');
    // The prompt itself was blocked: an empty, filtered answer (as OpenAI reports moderation).
    choices.push({
      index: 0,
      message: { role: 'assistant', content: '', refusal: null },
      finish_reason: 'content_filter',
      native_finish_reason: blocked,
      logprobs: null,
    });
  }
  choices.sort((a, b) => a.index - b.index);
  const completion: ChatCompletion = {
    id: idOf(response),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: modelOf(response, context.model),
    choices,
  };
  const usage = usageOf(response.usageMetadata);
  if (usage !== undefined) completion.usage = usage;
  return completion;
}

interface ChoiceState {
  /** `role` was sent. */
  started: boolean;
  /** Tool calls sent so far (the next one's index). */
  tools: number;
  finished: boolean;
}

/**
 * Turns the events of a `streamGenerateContent` answer into chat.completion.chunk objects, one
 * event at a time. Gemini's text parts are increments and its function calls arrive whole, one
 * tool_call delta each; `usageMetadata` is cumulative on every event, so only the last one counts,
 * sent once by `end()` in a final chunk with `choices: []`.
 */
export class StreamTranslator {
  readonly #context: ResponseContext;
  readonly #created = Math.floor(Date.now() / 1000);
  #id: string | undefined;
  #model: string | undefined;
  #usage: Usage | undefined;
  readonly #choices = new Map<number, ChoiceState>();
  /** A finish (or a blocked prompt) was seen: the stream may end. */
  finished = false;

  constructor(context: ResponseContext) {
    this.#context = context;
  }

  /** One parsed event; throws the stream's error if the event is one. */
  event(value: unknown): ChatChunk[] {
    const response = asResponse(value, 'error in the stream');
    this.#id ??= idOf(response);
    this.#model ??= modelOf(response, this.#context.model);
    const usage = usageOf(response.usageMetadata);
    if (usage !== undefined) this.#usage = usage;

    const content: ChunkChoice[] = [];
    const finishes: ChunkChoice[] = [];
    const candidates = candidatesOf(response);
    for (const [position, candidate] of candidates.entries()) {
      const index = candidateIndex(candidate, position);
      let state = this.#choices.get(index);
      if (state === undefined) {
        state = { started: false, tools: 0, finished: false };
        this.#choices.set(index, state);
      }
      const parts = readParts(candidate);
      const delta: ChunkDelta = {};
      if (parts.text.length > 0) delta.content = parts.text.join('');
      if (parts.reasoning.length > 0) delta.reasoning_content = parts.reasoning.join('');
      if (parts.calls.length > 0) {
        delta.tool_calls = parts.calls.map((call) => ({ index: state.tools++, ...call }));
      }
      if (Object.keys(delta).length > 0) {
        if (!state.started) {
          state.started = true;
          content.push({
            index,
            delta: { role: 'assistant', ...(delta.content === undefined ? { content: '' } : {}), ...delta },
            finish_reason: null,
            logprobs: null,
          });
        } else content.push({ index, delta, finish_reason: null, logprobs: null });
      }
      const native = typeof candidate.finishReason === 'string' && candidate.finishReason !== '' ? candidate.finishReason : undefined;
      if (native !== undefined && !state.finished) {
        state.finished = true;
        this.finished = true;
        const started = state.started;
        state.started = true;
        finishes.push({
          index,
          delta: started ? {} : { role: 'assistant', content: '' },
          finish_reason: finishReasonOf(native, state.tools > 0),
          native_finish_reason: native,
          logprobs: null,
        });
      }
    }
    if (candidates.length === 0) {
      const blocked = blockReasonOf(response);
      if (blocked !== undefined && !this.finished) {
        this.finished = true;
        finishes.push({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: 'content_filter', native_finish_reason: blocked, logprobs: null });
      }
    }
    const chunks: ChatChunk[] = [];
    if (content.length > 0) chunks.push(this.#chunk(content));
    if (finishes.length > 0) chunks.push(this.#chunk(finishes));
    return chunks;
  }

  /** The usage chunk, once the stream ended. */
  end(): ChatChunk[] {
    if (this.#usage === undefined) return [];
    return [{ ...this.#chunk([]), usage: this.#usage }];
  }

  #chunk(choices: ChunkChoice[]): ChatChunk {
    return {
      id: (this.#id ??= completionId()),
      object: 'chat.completion.chunk',
      created: this.#created,
      model: this.#model ?? this.#context.model,
      choices,
    };
  }
}

function badResponse(what: string): UpstreamError {
  return new UpstreamError('bad_response', `the upstream sent ${what}`);
}
