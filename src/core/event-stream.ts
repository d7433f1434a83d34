import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { AbortState } from './abort.js';
import { discardBody, networkError } from './http.js';
import { SseParser, type SseEvent } from './sse-parser.js';

/**
 * How a protocol turns the text of a streamed body into items (events, chunks): `push` takes each
 * decoded piece as it arrives and returns the items it completed; `end` the last ones once the body
 * ended (it throws when the stream was cut short). `done` turns true once the protocol's last
 * event was seen (OpenAI's `[DONE]`): nothing after it is decoded.
 */
export interface StreamDecoder<T> {
  push(text: string): readonly T[];
  end(): readonly T[];
  readonly done?: boolean;
}

export interface EventStream<T> extends AsyncIterableIterator<T> {
  /** Drops the upstream response now (a consumer that stops early). */
  return(): Promise<IteratorResult<T>>;
}

/** After the protocol's last event, how long the upstream may take to end its response before it is dropped. */
const endGraceMs = 1000;
/** Items held before the upstream body is paused (backpressure). */
const highWater = 64;

/**
 * The one reader of streamed upstream bodies, under every protocol's decoder (OpenAI chunks,
 * Anthropic events, Gemini responses):
 * - event-driven rather than `for await`: no promise per network read, and a body read to its end
 *   keeps its keep-alive connection (breaking out of an async iterator would destroy it);
 * - backpressure: past `highWater` items not yet taken the body is paused, and resumed once the
 *   consumer took half of them;
 * - bounded: what the decoder holds is its own bound (the SSE parser's event cap); a decoder error
 *   stops reading at once, after the items decoded before it;
 * - `return()` drops the upstream response at once; after the last event (`decoder.done`), what
 *   is left is read politely for a moment so that the connection can be reused.
 */
export function readEventStream<T>(body: Readable, signal: AbortState, decoder: StreamDecoder<T>): EventStream<T> {
  return new EventStreamReader(body, signal, decoder);
}

class EventStreamReader<T> implements EventStream<T> {
  readonly #body: Readable;
  readonly #signal: AbortState;
  readonly #decoder: StreamDecoder<T>;
  /** UTF-8 across chunk boundaries (node's StringDecoder: several times cheaper per read than TextDecoder). */
  readonly #text = new StringDecoder('utf8');
  /** No text decoded yet: a leading byte order mark is dropped (as TextDecoder and the SSE spec do). */
  #atStart = true;
  readonly #queue: T[] = [];
  #error: unknown;
  #ended = false;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(body: Readable, signal: AbortState, decoder: StreamDecoder<T>) {
    this.#body = body;
    this.#signal = signal;
    this.#decoder = decoder;
    body.on('data', this.#onData);
    body.once('end', this.#onEnd);
    body.once('error', this.#onError);
  }

  [Symbol.asyncIterator](): EventStream<T> {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      const item = this.#queue.shift();
      if (item !== undefined) {
        if (this.#queue.length < highWater / 2 && this.#body.isPaused() && !this.#closed && !this.#lastSeen()) this.#body.resume();
        return { value: item, done: false };
      }
      if (this.#error !== undefined) {
        this.#close();
        throw this.#error;
      }
      if (this.#ended || this.#closed || this.#lastSeen()) {
        this.#close();
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.#queue.length = 0;
    this.#close();
    return { value: undefined, done: true };
  }

  readonly #onData = (raw: Buffer): void => {
    if (this.#lastSeen() || this.#error !== undefined) return; // after the last event: read to the end, keep nothing
    try {
      for (const item of this.#decoder.push(this.#decode(raw))) this.#queue.push(item);
    } catch (error) {
      // A broken or oversized event: stop reading now (the queue still goes out first).
      this.#error = error;
      discardBody(this.#body);
    }
    if (this.#queue.length >= highWater && !this.#lastSeen()) this.#body.pause();
    this.#notify();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    if (!this.#lastSeen() && this.#error === undefined && !this.#closed) {
      try {
        const tail = this.#withoutBom(this.#text.end());
        if (tail !== '') for (const item of this.#decoder.push(tail)) this.#queue.push(item);
        for (const item of this.#decoder.end()) this.#queue.push(item);
      } catch (error) {
        this.#error = error;
      }
    }
    this.#notify();
  };

  readonly #onError = (error: Error): void => {
    if (this.#closed) return; // our own discard, or too late to matter
    this.#error ??= networkError(error, this.#signal);
    this.#notify();
  };

  #decode(raw: Buffer): string {
    const text = this.#text.write(raw);
    return this.#atStart ? this.#withoutBom(text) : text;
  }

  #withoutBom(text: string): string {
    if (!this.#atStart || text === '') return text;
    this.#atStart = false;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  /** The protocol's last event was decoded (a method: the decoder changes it as it goes). */
  #lastSeen(): boolean {
    return this.#decoder.done === true;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Lets go of the upstream: politely (read to its end within a grace period) after the last event, else at once. */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const body = this.#body;
    body.off('data', this.#onData);
    this.#notify();
    if (this.#ended || body.destroyed) return;
    if (this.#lastSeen() && this.#error === undefined) {
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

/**
 * A decoder of server-sent events (the linear-time parser, each event capped at `maxEventBytes`);
 * `isLast` names the protocol's final event, after which nothing more is decoded.
 */
export function sseDecoder(maxEventBytes: number, isLast: (event: SseEvent) => boolean = () => false): StreamDecoder<SseEvent> {
  const parser = new SseParser(maxEventBytes);
  let done = false;
  const keep = (events: SseEvent[]): SseEvent[] => {
    const last = events.findIndex(isLast);
    if (last === -1) return events;
    done = true;
    return events.slice(0, last + 1);
  };
  return {
    push: (text) => keep(parser.push(text)),
    end: () => keep(parser.end()),
    get done() {
      return done;
    },
  };
}
