import { UpstreamError } from '../../core/errors.js';
import type { Readable } from 'node:stream';
import { discardBody, errorMessageFrom, networkError } from '../../core/http.js';
import { SseParser } from '../../core/sse-parser.js';
import type { ChatChunk } from '../../core/types.js';
import { rawJson } from '../../core/normalize.js';

/** After `[DONE]`, how long the upstream may take to end its response before the connection is dropped. */
const endGraceMs = 1000;
/** Parsed chunks held before the upstream body is paused (backpressure). */
const highWater = 64;

type Body = Readable;

/**
 * Reads an OpenAI-style SSE body (`data: <chunk>` … `data: [DONE]`) as chunk objects, as the bytes
 * arrive. A `data: {"error": …}` event, or a body that ends before `[DONE]` and before any
 * finish_reason, throws. Event-driven rather than `for await`: no promise chain per network read,
 * and a stream read to its end keeps its keep-alive connection (breaking out of an async iterator
 * would destroy it). `return()` (a consumer that stops early) drops the upstream response.
 */
export function chunksFromSse(body: Body, signal: AbortSignal, maxEventBytes?: number): AsyncIterableIterator<ChatChunk> {
  return new SseChunkReader(body, signal, maxEventBytes);
}

class SseChunkReader implements AsyncIterableIterator<ChatChunk> {
  readonly #body: Body;
  readonly #signal: AbortSignal;
  readonly #parser: SseParser;
  readonly #decoder = new TextDecoder();
  readonly #queue: ChatChunk[] = [];
  #error: unknown;
  /** `[DONE]` seen: no more chunks, whatever the body still carries. */
  #done = false;
  #finished = false;
  #ended = false;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(body: Body, signal: AbortSignal, maxEventBytes: number | undefined) {
    this.#parser = new SseParser(maxEventBytes);
    this.#body = body;
    this.#signal = signal;
    body.on('data', this.#onData);
    body.once('end', this.#onEnd);
    body.once('error', this.#onError);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ChatChunk> {
    return this;
  }

  async next(): Promise<IteratorResult<ChatChunk>> {
    for (;;) {
      const chunk = this.#queue.shift();
      if (chunk !== undefined) {
        if (this.#queue.length < highWater / 2 && this.#body.isPaused() && !this.#done) this.#body.resume();
        return { value: chunk, done: false };
      }
      if (this.#error !== undefined) {
        this.#close();
        throw this.#error;
      }
      if (this.#done || this.#ended) {
        this.#close();
        if (!this.#done && !this.#finished) throw new UpstreamError('connection', 'the upstream stream ended before [DONE]');
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<ChatChunk>> {
    this.#close();
    return { value: undefined, done: true };
  }

  readonly #onData = (raw: Buffer): void => {
    if (this.#done || this.#error !== undefined) return; // after [DONE]: read to the end, keep nothing
    try {
      for (const event of this.#parser.push(this.#decoder.decode(raw, { stream: true }))) {
        const chunk = parseEvent(event.event, event.data);
        if (chunk === 'done') {
          this.#done = true;
          break;
        }
        if (chunk === null) continue;
        if (chunk.choices.some((choice) => choice.finish_reason != null)) this.#finished = true;
        this.#queue.push(chunk);
      }
    } catch (error) {
      // A broken or oversized event: stop reading now (the queue still goes out first).
      this.#error = error;
      discardBody(this.#body);
    }
    if (this.#queue.length >= highWater && !this.#done) this.#body.pause();
    this.#notify();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    if (!this.#done && this.#error === undefined) {
      try {
        for (const event of this.#parser.end()) {
          const chunk = parseEvent(event.event, event.data);
          if (chunk === 'done') this.#done = true;
          else if (chunk !== null) {
            if (chunk.choices.some((choice) => choice.finish_reason != null)) this.#finished = true;
            this.#queue.push(chunk);
          }
        }
      } catch (error) {
        this.#error = error;
      }
    }
    this.#notify();
  };

  readonly #onError = (error: Error): void => {
    this.#error ??= networkError(error, this.#signal);
    this.#notify();
  };

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Lets go of the upstream: read politely to its end after `[DONE]`, else drop it now. */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const body = this.#body;
    body.off('data', this.#onData);
    if (this.#ended || body.destroyed) return;
    if (this.#done && this.#error === undefined) {
      // The upstream normally ends right after [DONE]: finish reading so its connection is reused.
      body.on('error', ignore);
      const timer = setTimeout(() => discardBody(body), endGraceMs);
      body.once('end', () => clearTimeout(timer));
      body.once('close', () => clearTimeout(timer));
      body.resume();
      return;
    }
    discardBody(body);
  }
}

function ignore(): void {
  // errors after we stopped listening do not matter
}

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
