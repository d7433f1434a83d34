import { randomBytes } from 'node:crypto';
import type { ApiError } from '../../../core/errors.js';
import type { ChatChunk, ChatCompletion, ChatMessage, FinishReason, ToolCall, Usage } from '../../../core/types.js';
import type { ResponseEcho } from './request.js';

export type OutputItem =
  | {
      type: 'message';
      id: string;
      status: 'in_progress' | 'completed' | 'incomplete';
      role: 'assistant';
      content: Array<{ type: 'output_text'; text: string; annotations: []; logprobs: [] }>;
    }
  | { type: 'function_call'; id: string; call_id: string; name: string; arguments: string; status: 'in_progress' | 'completed' | 'incomplete' };

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

/** OpenAI's response object, plus the gateway's `provider`. */
export interface ResponseObject extends ResponseEcho {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  output: OutputItem[];
  /** Absent until the answer is complete (the schema has no null usage). */
  usage?: ResponseUsage;
  provider?: string;
}

export interface ResponseUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  output_tokens_details: { reasoning_tokens: number };
}

/** `resp_…`, `msg_…`, `fc_…`: OpenAI's id prefixes with 24 random bytes in hex. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(24).toString('hex')}`;

/** A response with no output yet (what `response.created` carries). */
export function emptyResponse(echo: ResponseEcho): ResponseObject {
  return {
    id: newId('resp'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    ...echo,
    output: [],
  };
}

/** The whole answer of a non-streamed request. */
export function responseFromCompletion(echo: ResponseEcho, completion: ChatCompletion, provider: string): ResponseObject {
  const response = emptyResponse(echo);
  const choice = completion.choices[0];
  const status = itemStatus(choice?.finish_reason ?? 'stop');
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') {
    response.output.push({
      type: 'message',
      id: newId('msg'),
      status,
      role: 'assistant',
      content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
    });
  }
  for (const call of choice?.message.tool_calls ?? []) {
    response.output.push({ type: 'function_call', id: newId('fc'), call_id: call.id, name: call.function.name, arguments: call.function.arguments, status });
  }
  return finish(response, choice?.finish_reason ?? 'stop', completion.usage, provider, completion.model);
}

/** Sets the final status, usage, model and provider. */
export function finish(
  response: ResponseObject,
  reason: FinishReason | null,
  usage: Usage | null | undefined,
  provider: string,
  model: string,
): ResponseObject {
  const incomplete = reason === 'length' || reason === 'content_filter';
  response.status = incomplete ? 'incomplete' : 'completed';
  response.incomplete_details = incomplete ? { reason: reason === 'length' ? 'max_output_tokens' : 'content_filter' } : null;
  if (usage !== undefined && usage !== null) response.usage = responseUsage(usage);
  response.model = model;
  response.provider = provider;
  return response;
}

function itemStatus(reason: FinishReason | null): 'completed' | 'incomplete' {
  return reason === 'length' || reason === 'content_filter' ? 'incomplete' : 'completed';
}

function responseUsage(usage: Usage): ResponseUsage {
  const cached = (usage.prompt_tokens_details as { cached_tokens?: unknown } | undefined)?.cached_tokens;
  const reasoning = (usage.completion_tokens_details as { reasoning_tokens?: unknown } | undefined)?.reasoning_tokens;
  return {
    input_tokens: usage.prompt_tokens,
    output_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens,
    input_tokens_details: { cached_tokens: typeof cached === 'number' ? cached : 0, cache_write_tokens: 0 },
    output_tokens_details: { reasoning_tokens: typeof reasoning === 'number' ? reasoning : 0 },
  };
}

/** The output as chat messages: what a follow-up's history continues with. */
export function outputMessages(output: readonly OutputItem[]): ChatMessage[] {
  const text = output.flatMap((item) => (item.type === 'message' ? item.content.map((part) => part.text) : [])).join('');
  const calls: ToolCall[] = output.flatMap((item) =>
    item.type === 'function_call' ? [{ id: item.call_id, type: 'function' as const, function: { name: item.name, arguments: item.arguments } }] : [],
  );
  if (text === '' && calls.length === 0) return [];
  return [{ role: 'assistant', content: text === '' ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) }];
}

/** The Responses API's error code for a failure: only OpenAI's own codes validate. */
function errorCode(error: ApiError): string {
  return error.status === 429 ? 'rate_limit_exceeded' : 'server_error';
}

export interface StreamEvent {
  type: string;
  sequence_number: number;
  [key: string]: unknown;
}

/**
 * Turns the chat chunks of one answer into the Responses API's typed events, numbered from 0:
 * `response.created` and `.in_progress`, then each output item opened (`output_item.added`,
 * `content_part.added`), filled (`output_text.delta`, `function_call_arguments.delta`) and closed
 * (`….done`), and at the end `response.completed` (or `.incomplete`, or `.failed`).
 */
export class ResponseEvents {
  readonly response: ResponseObject;
  #sequence = 0;
  /** The item being filled (its index in `output`), closed when another one starts. */
  #open: number | undefined;
  /** The chat tool-call index of the open function call item. */
  #openCall: number | undefined;
  #reason: FinishReason | null = null;
  #usage: Usage | null = null;
  #model: string;

  constructor(echo: ResponseEcho) {
    this.response = emptyResponse(echo);
    this.#model = echo.model;
  }

  start(): StreamEvent[] {
    return [this.#event('response.created', { response: this.#snapshot() }), this.#event('response.in_progress', { response: this.#snapshot() })];
  }

  chunk(chunk: ChatChunk): StreamEvent[] {
    const events: StreamEvent[] = [];
    if (chunk.model !== '') this.#model = chunk.model;
    if (chunk.usage !== undefined && chunk.usage !== null) this.#usage = chunk.usage;
    const choice = chunk.choices[0];
    if (choice === undefined) return events;
    const text = choice.delta.content;
    if (typeof text === 'string' && text !== '') {
      let item = this.#current('message');
      if (item === undefined) {
        events.push(...this.#close());
        item = { type: 'message', id: newId('msg'), status: 'in_progress', role: 'assistant', content: [] };
        const index = this.#add(item, events);
        events.push(this.#event('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: textPart('') }));
        item.content.push(textPart(''));
      }
      const part = item.content[0] as { text: string };
      part.text += text;
      events.push(this.#event('response.output_text.delta', { item_id: item.id, output_index: this.#open, content_index: 0, delta: text, logprobs: [] }));
    }
    for (const delta of choice.delta.tool_calls ?? []) {
      let item = this.#current('function_call');
      if (item === undefined || this.#openCall !== delta.index) {
        events.push(...this.#close());
        item = {
          type: 'function_call',
          id: newId('fc'),
          call_id: delta.id ?? newId('call'),
          name: delta.function?.name ?? '',
          arguments: '',
          status: 'in_progress',
        };
        this.#openCall = delta.index;
        this.#add(item, events);
      } else if (delta.function?.name !== undefined && item.name === '') item.name = delta.function.name;
      const fragment = delta.function?.arguments ?? '';
      if (fragment === '') continue;
      item.arguments += fragment;
      events.push(this.#event('response.function_call_arguments.delta', { item_id: item.id, output_index: this.#open, delta: fragment }));
    }
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) this.#reason = choice.finish_reason;
    return events;
  }

  /** Closes the open item and ends with `response.completed` (or `response.incomplete`). */
  end(provider: string): StreamEvent[] {
    const events = this.#close();
    finish(this.response, this.#reason, this.#usage, provider, this.#model);
    const type = this.response.status === 'incomplete' ? 'response.incomplete' : 'response.completed';
    events.push(this.#event(type, { response: this.#snapshot() }));
    return events;
  }

  /** `response.failed`: the response so far, with the error. */
  failed(error: ApiError, provider: string | undefined): StreamEvent {
    this.response.status = 'failed';
    this.response.error = { code: errorCode(error), message: error.message };
    if (provider !== undefined) this.response.provider = provider;
    this.response.model = this.#model;
    return this.#event('response.failed', { response: this.#snapshot() });
  }

  #current<T extends OutputItem['type']>(type: T): Extract<OutputItem, { type: T }> | undefined {
    const item = this.#open === undefined ? undefined : this.response.output[this.#open];
    return item?.type === type ? (item as Extract<OutputItem, { type: T }>) : undefined;
  }

  #add(item: OutputItem, events: StreamEvent[]): number {
    const index = this.response.output.length;
    this.response.output.push(item);
    this.#open = index;
    events.push(this.#event('response.output_item.added', { output_index: index, item: structuredClone(item) }));
    return index;
  }

  #close(): StreamEvent[] {
    const index = this.#open;
    const item = index === undefined ? undefined : this.response.output[index];
    if (index === undefined || item === undefined) return [];
    this.#open = undefined;
    this.#openCall = undefined;
    item.status = itemStatus(this.#reason);
    const events: StreamEvent[] = [];
    if (item.type === 'message') {
      const text = item.content[0]?.text ?? '';
      events.push(this.#event('response.output_text.done', { item_id: item.id, output_index: index, content_index: 0, text, logprobs: [] }));
      events.push(this.#event('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part: textPart(text) }));
    } else {
      events.push(this.#event('response.function_call_arguments.done', { item_id: item.id, name: item.name, output_index: index, arguments: item.arguments }));
    }
    events.push(this.#event('response.output_item.done', { output_index: index, item: structuredClone(item) }));
    return events;
  }

  #snapshot(): ResponseObject {
    return structuredClone(this.response);
  }

  #event(type: string, fields: Record<string, unknown>): StreamEvent {
    return { type, sequence_number: this.#sequence++, ...fields };
  }
}

const textPart = (text: string): { type: 'output_text'; text: string; annotations: []; logprobs: [] } => ({
  type: 'output_text',
  text,
  annotations: [],
  logprobs: [],
});
