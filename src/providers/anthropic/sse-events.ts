import type { Readable } from 'node:stream';
import { discardBody, networkError } from '../../core/http.js';
import { SseParser, type SseEvent } from '../../core/sse-parser.js';

/**
 * A generic reader of server-sent events off an upstream body: what the OpenAI family's
 * `sse-chunks.ts` does for `data:` chunks, without knowing what the events mean. Candidate for
 * `src/core/` once a third family needs it (Gemini).
 *
 * - Bounded: one event may hold at most `maxEventBytes` (the parser fails it as `bad_response`).
 * - Backpressure: past `highWater` parsed events not yet taken, the body is paused; it resumes
 *   once the consumer took half of them.
 * - Event-driven, not `for await`: a stream read to its end keeps its keep-alive connection.
 * - `return()` (a consumer that stops early) drops the upstream response at once; `finish()` (the
 *   consumer saw the protocol's last event) reads what is left politely for a moment, then drops it.
 */
export interface SseEventReader extends AsyncIterableIterator<SseEvent> {
  /** Drops the upstream response now. */
  return(): Promise<IteratorResult<SseEvent>>;
  /** The consumer needs no more events: let the upstream end its response (connection reuse). */
  finish(): void;
}

/** After `finish()`, how long the upstream may take to end its response before it is dropped. */
const endGraceMs = 1000;
/** Parsed events held before the upstream body is paused. */
const highWater = 64;

export function readSseEvents(body: Readable, signal: AbortSignal, maxEventBytes: number): SseEventReader {
  return new EventReader(body, signal, maxEventBytes);
}

class EventReader implements SseEventReader {
  readonly #body: Readable;
  readonly #signal: AbortSignal;
  readonly #parser: SseParser;
  readonly #decoder = new TextDecoder();
  readonly #queue: SseEvent[] = [];
  #error: unknown;
  #ended = false;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(body: Readable, signal: AbortSignal, maxEventBytes: number) {
    this.#body = body;
    this.#signal = signal;
    this.#parser = new SseParser(maxEventBytes);
    body.on('data', this.#onData);
    body.once('end', this.#onEnd);
    body.once('error', this.#onError);
  }

  [Symbol.asyncIterator](): SseEventReader {
    return this;
  }

  async next(): Promise<IteratorResult<SseEvent>> {
    for (;;) {
      const event = this.#queue.shift();
      if (event !== undefined) {
        if (this.#queue.length < highWater / 2 && this.#body.isPaused() && !this.#closed) this.#body.resume();
        return { value: event, done: false };
      }
      if (this.#error !== undefined) {
        this.#close(false);
        throw this.#error;
      }
      if (this.#ended || this.#closed) {
        this.#close(false);
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<SseEvent>> {
    this.#close(false);
    return { value: undefined, done: true };
  }

  finish(): void {
    this.#close(true);
  }

  readonly #onData = (raw: Buffer): void => {
    if (this.#error !== undefined) return;
    try {
      for (const event of this.#parser.push(this.#decoder.decode(raw, { stream: true }))) this.#queue.push(event);
    } catch (error) {
      // An oversized event: stop reading now (what was parsed before it still goes out first).
      this.#error = error;
      discardBody(this.#body);
    }
    if (this.#queue.length >= highWater && !this.#closed) this.#body.pause();
    this.#notify();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    if (this.#error === undefined && !this.#closed) {
      try {
        const tail = this.#decoder.decode();
        if (tail !== '') this.#queue.push(...this.#parser.push(tail));
        this.#queue.push(...this.#parser.end());
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

  /** Lets go of the upstream: politely (read to its end within a grace period) or at once. */
  #close(polite: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    const body = this.#body;
    body.off('data', this.#onData);
    this.#notify();
    if (this.#ended || body.destroyed) return;
    if (polite && this.#error === undefined) {
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
