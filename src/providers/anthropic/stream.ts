import { UpstreamError } from '../../core/errors.js';
import { completionId } from '../../core/normalize.js';
import type { SseEvent } from '../../core/sse-parser.js';
import type { ChatChunk, ChunkDelta, FinishReason } from '../../core/types.js';
import { anthropicErrorFromEvent } from './errors.js';
import { finishReasonFor, noTokens, readTokens, unixNow, usageFrom } from './response.js';
import type { EventStream } from '../../core/event-stream.js';

/**
 * Anthropic stream events (upstream-protocols §2.3) as OpenAI chunks:
 *
 * | Anthropic                                        | OpenAI chunk                                             |
 * |--------------------------------------------------|----------------------------------------------------------|
 * | message_start                                    | `delta: {role: "assistant", content: ""}`                |
 * | content_block_start text (non-empty text)        | `delta: {content}`                                       |
 * | content_block_start tool_use                     | `delta: {tool_calls: [{index, id, type, function: {name, arguments: ""}}]}` |
 * | content_block_delta text_delta                   | `delta: {content}`                                       |
 * | content_block_delta input_json_delta             | `delta: {tool_calls: [{index, function: {arguments}}]}`  |
 * | content_block_delta thinking_delta               | `delta: {reasoning_content}`                             |
 * | message_delta (stop_reason)                      | `delta: {}`, `finish_reason`, `native_finish_reason`     |
 * | message_stop                                     | `choices: []` with `usage` (as OpenAI's include_usage)   |
 * | ping, content_block_stop, signature_delta, other | nothing                                                  |
 * | error                                            | throws (overloaded/api_error → server, rate_limit_error → rate_limit) |
 *
 * In JSON-schema mode the forced answer tool's `input_json_delta` pieces are the content.
 * The stream must end with `message_stop`, or at least after the finish chunk; else it throws.
 */
export function chunksFromAnthropicEvents(
  events: EventStream<SseEvent>,
  options: { jsonTool: string | undefined; fallbackModel: string },
): AsyncIterableIterator<ChatChunk> {
  return new AnthropicChunks(events, options.jsonTool, options.fallbackModel);
}

type BlockKind = { kind: 'text' } | { kind: 'tool'; toolIndex: number } | { kind: 'json' } | { kind: 'thinking' } | { kind: 'other' };

class AnthropicChunks implements AsyncIterableIterator<ChatChunk> {
  readonly #events: EventStream<SseEvent>;
  readonly #jsonTool: string | undefined;
  readonly #pending: ChatChunk[] = [];
  /** Anthropic's message id once message_start said it; one id for every chunk either way. */
  #id = completionId();
  #model: string;
  readonly #created = unixNow();
  readonly #tokens = noTokens();
  /** Content block index → what its deltas become. */
  readonly #blocks = new Map<number, BlockKind>();
  #toolCount = 0;
  #jsonMode = false;
  #started = false;
  #finished = false;
  #done = false;

  constructor(events: EventStream<SseEvent>, jsonTool: string | undefined, fallbackModel: string) {
    this.#events = events;
    this.#jsonTool = jsonTool;
    this.#model = fallbackModel;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ChatChunk> {
    return this;
  }

  async next(): Promise<IteratorResult<ChatChunk>> {
    for (;;) {
      const chunk = this.#pending.shift();
      if (chunk !== undefined) return { value: chunk, done: false };
      if (this.#done) return { value: undefined, done: true };
      let result: IteratorResult<SseEvent>;
      try {
        result = await this.#events.next();
      } catch (error) {
        this.#done = true;
        throw error;
      }
      if (result.done === true) {
        this.#done = true;
        // A body that ends after the stop reason but without message_stop still said everything.
        if (!this.#finished) throw new UpstreamError('connection', 'the upstream stream ended before message_stop');
        this.#pending.push(this.#usageChunk());
        continue;
      }
      try {
        this.#handle(result.value);
      } catch (error) {
        this.#done = true;
        this.#pending.length = 0;
        await this.#events.return();
        throw error;
      }
    }
  }

  async return(): Promise<IteratorResult<ChatChunk>> {
    this.#done = true;
    this.#pending.length = 0;
    await this.#events.return();
    return { value: undefined, done: true };
  }

  #handle(event: SseEvent): void {
    if (event.event === 'error') throw anthropicErrorFromEvent(event.data);
    const data = parseData(event.data);
    const name = event.event === 'message' ? (typeof data.type === 'string' ? data.type : '') : event.event;
    switch (name) {
      case 'message_start': {
        const message = (data.message ?? {}) as Record<string, unknown>;
        if (typeof message.id === 'string' && message.id !== '') this.#id = message.id;
        if (typeof message.model === 'string' && message.model !== '') this.#model = message.model;
        readTokens(this.#tokens, message.usage);
        this.#start();
        return;
      }
      case 'content_block_start':
        return this.#blockStart(data);
      case 'content_block_delta':
        return this.#blockDelta(data);
      case 'message_delta': {
        readTokens(this.#tokens, data.usage);
        const delta = (data.delta ?? {}) as Record<string, unknown>;
        if (delta.stop_reason !== undefined && delta.stop_reason !== null) this.#finish(delta.stop_reason);
        return;
      }
      case 'message_stop':
        if (!this.#finished) this.#finish(null);
        this.#pending.push(this.#usageChunk());
        this.#done = true;
        return;
      case 'error':
        throw anthropicErrorFromEvent(event.data);
      default:
        // ping, content_block_stop, and event types added later.
        return;
    }
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#push({ role: 'assistant', content: '' });
  }

  #blockStart(data: Record<string, unknown>): void {
    const index = blockIndex(data);
    const block = (data.content_block ?? {}) as Record<string, unknown>;
    this.#start();
    switch (block.type) {
      case 'text':
        this.#blocks.set(index, { kind: 'text' });
        if (typeof block.text === 'string' && block.text !== '') this.#push({ content: block.text });
        return;
      case 'tool_use': {
        if (typeof block.id !== 'string' || typeof block.name !== 'string')
          throw new UpstreamError('bad_response', 'the upstream started a tool_use block without id or name');
        if (this.#jsonTool !== undefined && block.name === this.#jsonTool) {
          this.#blocks.set(index, { kind: 'json' });
          this.#jsonMode = true;
          return;
        }
        const toolIndex = this.#toolCount++;
        this.#blocks.set(index, { kind: 'tool', toolIndex });
        this.#push({ tool_calls: [{ index: toolIndex, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] });
        return;
      }
      case 'thinking':
        this.#blocks.set(index, { kind: 'thinking' });
        return;
      default:
        this.#blocks.set(index, { kind: 'other' });
    }
  }

  #blockDelta(data: Record<string, unknown>): void {
    const block = this.#blocks.get(blockIndex(data));
    const delta = (data.delta ?? {}) as Record<string, unknown>;
    if (block === undefined) throw new UpstreamError('bad_response', 'the upstream sent a content_block_delta for a block it never started');
    switch (delta.type) {
      case 'text_delta':
        if (typeof delta.text === 'string' && delta.text !== '') this.#push({ content: delta.text });
        return;
      case 'input_json_delta': {
        const piece = delta.partial_json;
        if (typeof piece !== 'string' || piece === '') return;
        if (block.kind === 'json') this.#push({ content: piece });
        else if (block.kind === 'tool') this.#push({ tool_calls: [{ index: block.toolIndex, function: { arguments: piece } }] });
        return;
      }
      case 'thinking_delta':
        if (typeof delta.thinking === 'string' && delta.thinking !== '') this.#push({ reasoning_content: delta.thinking });
        return;
      default:
        // signature_delta, citations_delta: nothing an OpenAI client reads.
        return;
    }
  }

  #finish(stopReason: unknown): void {
    if (this.#finished) return;
    this.#start();
    this.#finished = true;
    const reason: FinishReason = finishReasonFor(stopReason, this.#jsonMode);
    this.#pending.push({
      ...this.#envelope(),
      choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: reason, native_finish_reason: typeof stopReason === 'string' ? stopReason : null }],
    });
  }

  #push(delta: ChunkDelta): void {
    this.#pending.push({ ...this.#envelope(), choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] });
  }

  #usageChunk(): ChatChunk {
    return { ...this.#envelope(), choices: [], usage: usageFrom(this.#tokens) };
  }

  #envelope(): { id: string; object: 'chat.completion.chunk'; created: number; model: string } {
    return { id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model };
  }
}

function parseData(data: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new UpstreamError('bad_response', `the upstream sent an SSE event that is not JSON: ${data.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UpstreamError('bad_response', 'the upstream sent an SSE event that is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function blockIndex(data: Record<string, unknown>): number {
  const index = data.index;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0)
    throw new UpstreamError('bad_response', 'the upstream sent a content block event without an index');
  return index;
}
