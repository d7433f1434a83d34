import type { ServerResponse } from 'node:http';
import type { ApiError } from '../../../core/errors.js';
import { sendJson, toApiError } from '../../respond.js';
import type { ChatChunk, ChatCompletion, FinishReason, Usage } from '../../../core/types.js';
import type { SseDialect } from '../../sse.js';

/** Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`. */
export interface MessagesErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

/**
 * Our error in Anthropic's words: its status codes and error types. Upstream trouble (502, 504)
 * keeps its status as `api_error`; a 503 (no provider can answer now, or shutting down) becomes
 * Anthropic's 529 `overloaded_error`. Its SDK retries both, as it would against Anthropic.
 */
export function messagesError(error: ApiError): { status: number; body: MessagesErrorBody } {
  const status = error.status === 503 ? 529 : error.status;
  return { status, body: { type: 'error', error: { type: errorType(status), message: error.message } } };
}

function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** An error in Anthropic's shape (also for the app's own errors on these paths: 401, 405, 403…). */
export function sendMessagesError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): void {
  const apiError = toApiError(error);
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy(); // mid-body: only a reset tells the client
    return;
  }
  const { status, body } = messagesError(apiError);
  sendJson(res, status, body, { ...headers, ...apiError.headers });
}

/** Anthropic's stream: no terminator, a failure is `event: error`. */
export const messagesSse: SseDialect = {
  terminator: null,
  failure: (error) => ({ event: 'error', data: messagesError(error).body }),
};

type StopReason = 'end_turn' | 'max_tokens' | 'tool_use' | 'refusal';

function stopReason(reason: FinishReason | null | undefined): StopReason {
  if (reason === 'length') return 'max_tokens';
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_use';
  if (reason === 'content_filter') return 'refusal';
  return 'end_turn';
}

const messageId = (openAIId: string): string => (openAIId.startsWith('msg_') ? openAIId : `msg_${openAIId.replace(/[^\w-]/g, '')}`);

type ContentBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown };

/** A chat completion as an Anthropic message (first choice only: Anthropic has no `n`). */
export function completionToMessage(completion: ChatCompletion, model: string): Record<string, unknown> {
  const choice = completion.choices[0];
  const content: ContentBlock[] = [];
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  for (const call of choice?.message.tool_calls ?? [])
    content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: parseInput(call.function.arguments) });
  return {
    id: messageId(completion.id),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason(choice?.finish_reason),
    stop_sequence: null,
    usage: usageOf(completion.usage),
  };
}

/** Tool arguments are JSON text in OpenAI and an object in Anthropic; unreadable text is kept as `{_raw}`. */
function parseInput(args: string): unknown {
  if (args.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(args);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : { _raw: args };
  } catch {
    return { _raw: args };
  }
}

function usageOf(usage: Usage | null | undefined): { input_tokens: number; output_tokens: number } {
  return { input_tokens: usage?.prompt_tokens ?? 0, output_tokens: usage?.completion_tokens ?? 0 };
}

/** An event to write: its SSE name is its `type`. */
export interface MessagesEvent {
  type: string;
  [key: string]: unknown;
}

/**
 * Turns OpenAI chunks into Anthropic stream events. Content blocks open as the text or a tool
 * call starts and close when the next begins; `finish()` closes the last one and writes
 * message_delta (stop_reason and usage) and message_stop. Only the first choice is read.
 */
export class MessagesStream {
  readonly #model: string;
  #started = false;
  /** The open block: its index, and the OpenAI tool call index when it is a tool_use block. */
  #open: { index: number; tool?: number } | undefined;
  #next = 0;
  #finish: FinishReason | null = null;
  #usage: Usage | null | undefined;

  constructor(model: string) {
    this.#model = model;
  }

  /** The events one chunk makes (message_start before the first). */
  push(chunk: ChatChunk): MessagesEvent[] {
    const events: MessagesEvent[] = [];
    if (chunk.usage) this.#usage = chunk.usage;
    if (!this.#started) {
      this.#started = true;
      events.push({
        type: 'message_start',
        message: {
          id: messageId(chunk.id),
          type: 'message',
          role: 'assistant',
          model: this.#model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: chunk.usage?.prompt_tokens ?? 0, output_tokens: 0 },
        },
      });
    }
    const choice = chunk.choices.find((item) => item.index === 0);
    if (choice === undefined) return events;
    const text = choice.delta.content;
    if (typeof text === 'string' && text !== '') {
      if (this.#open === undefined || this.#open.tool !== undefined) this.#startBlock(events, { type: 'text', text: '' });
      events.push({ type: 'content_block_delta', index: this.#open?.index, delta: { type: 'text_delta', text } });
    }
    for (const call of choice.delta.tool_calls ?? []) {
      if (this.#open?.tool !== call.index) {
        this.#startBlock(events, { type: 'tool_use', id: call.id ?? `toolu_${call.index}`, name: call.function?.name ?? '', input: {} }, call.index);
      }
      const partial = call.function?.arguments;
      if (partial !== undefined && partial !== '') {
        events.push({ type: 'content_block_delta', index: this.#open?.index, delta: { type: 'input_json_delta', partial_json: partial } });
      }
    }
    if (choice.finish_reason !== null) this.#finish = choice.finish_reason;
    return events;
  }

  /** The closing events of a stream that ended cleanly. */
  finish(): MessagesEvent[] {
    const events: MessagesEvent[] = [];
    this.#closeBlock(events);
    events.push({
      type: 'message_delta',
      delta: { stop_reason: stopReason(this.#finish), stop_sequence: null },
      usage: { input_tokens: this.#usage?.prompt_tokens ?? 0, output_tokens: this.#usage?.completion_tokens ?? 0 },
    });
    events.push({ type: 'message_stop' });
    return events;
  }

  #startBlock(events: MessagesEvent[], block: ContentBlock, tool?: number): void {
    this.#closeBlock(events);
    this.#open = tool === undefined ? { index: this.#next } : { index: this.#next, tool };
    this.#next += 1;
    events.push({ type: 'content_block_start', index: this.#open.index, content_block: block });
  }

  #closeBlock(events: MessagesEvent[]): void {
    if (this.#open === undefined) return;
    events.push({ type: 'content_block_stop', index: this.#open.index });
    this.#open = undefined;
  }
}
