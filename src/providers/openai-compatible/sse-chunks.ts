import type { Readable } from 'node:stream';
import type { AbortState } from '../../core/abort.js';
import { UpstreamError } from '../../core/errors.js';
import { readEventStream, type StreamDecoder } from '../../core/event-stream.js';
import { errorMessageFrom } from '../../core/http.js';
import { rawJson } from '../../core/normalize.js';
import { SseParser, defaultMaxEventBytes } from '../../core/sse-parser.js';
import type { ChatChunk } from '../../core/types.js';
import { ChunkTemplate } from './chunk-template.js';

/**
 * Reads an OpenAI-style SSE body (`data: <chunk>` … `data: [DONE]`) as chunk objects, as the bytes
 * arrive, on the shared event-stream reader (backpressure, bounded events, `return()` drops the
 * upstream, after `[DONE]` the body is read out politely so the connection is reused). A
 * `data: {"error": …}` event, or a body that ends before `[DONE]` and before any finish_reason,
 * throws.
 */
export function chunksFromSse(
  body: Readable,
  signal: AbortState,
  maxEventBytes = defaultMaxEventBytes,
  mapChunk?: (chunk: ChatChunk) => boolean,
): AsyncIterableIterator<ChatChunk> {
  return readEventStream(body, signal, new ChunkDecoder(maxEventBytes, mapChunk));
}

class ChunkDecoder implements StreamDecoder<ChatChunk> {
  readonly #parser: SseParser;
  /** `[DONE]` seen: no more chunks, whatever the body still carries. */
  done = false;
  /** A finish_reason seen: a body that ends without `[DONE]` after it is complete enough. */
  #finished = false;

  readonly #mapChunk: ((chunk: ChatChunk) => boolean) | undefined;
  /** The last event of the common form (see ChunkTemplate): the next ones like it are not parsed again. */
  #template: ChunkTemplate | undefined;
  /** Events parsed in full since the template last matched: past `maxMisses`, no more templates are made. */
  #misses = 0;

  constructor(maxEventBytes: number, mapChunk: ((chunk: ChatChunk) => boolean) | undefined) {
    this.#parser = new SseParser(maxEventBytes);
    this.#mapChunk = mapChunk;
  }

  push(text: string): ChatChunk[] {
    return this.#chunks(this.#parser.push(text));
  }

  end(): ChatChunk[] {
    const chunks = this.#chunks(this.#parser.end());
    if (!this.done && !this.#finished) throw new UpstreamError('connection', 'the upstream stream ended before [DONE]');
    return chunks;
  }

  #chunks(events: ReadonlyArray<{ event: string; data: string }>): ChatChunk[] {
    const chunks: ChatChunk[] = [];
    for (const event of events) {
      const known = event.event === 'message' ? this.#template?.read(event.data) : undefined;
      const chunk = known ?? parseEvent(event.event, event.data);
      if (chunk === 'done') {
        this.done = true;
        break;
      }
      if (chunk === null) continue;
      if (known !== undefined) this.#misses = 0;
      // A vendor's fix changes the object: the upstream's own text no longer says the same.
      const mapped = this.#mapChunk?.(chunk) === true;
      if (mapped) delete (chunk as { [rawJson]?: string })[rawJson];
      else if (known === undefined && this.#misses++ < maxMisses && event.event === 'message') {
        this.#template = ChunkTemplate.from(event.data, chunk) ?? this.#template;
      }
      if (chunk.choices.some((choice) => choice?.finish_reason != null)) this.#finished = true;
      chunks.push(chunk);
    }
    return chunks;
  }
}

/**
 * A stream whose events never match their predecessor (a field that changes in every event, such
 * as OpenAI's `obfuscation`) stops trying templates after this many events parsed in full.
 */
const maxMisses = 8;

function parseEvent(name: string, data: string): ChatChunk | 'done' | null {
  if (data === '[DONE]') return 'done';
  if (data === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new UpstreamError('bad_response', `the upstream sent an SSE event that is not JSON: ${data.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null) {
    throw new UpstreamError('bad_response', 'the upstream sent an SSE event that is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  if (name === 'error' || record.error !== undefined) {
    const { message, code } = errorMessageFrom(data);
    throw new UpstreamError('server', `error event in the stream: ${message}`, { code });
  }
  if (!Array.isArray(record.choices)) {
    if (name === 'ping' || record.type === 'ping') return null;
    throw new UpstreamError('bad_response', 'the upstream sent a chunk without choices');
  }
  // One line of JSON (multi-line data cannot be re-sent as one `data:` line).
  if (!data.includes('\n')) (value as { [rawJson]?: string })[rawJson] = data;
  return value as ChatChunk;
}
