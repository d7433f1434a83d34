import type { ServerResponse } from 'node:http';
import type { ApiError } from '../core/errors.js';
import { rawJson, serialize } from '../core/normalize.js';
import type { ChatChunk } from '../core/types.js';
import { copyHeaders } from './headers.js';

/**
 * How an entrance dialect frames the end of its stream: OpenAI's chat ends with `data: [DONE]` and
 * fails with `data: {"error": …}`; Anthropic's has no terminator and fails with `event: error`;
 * the Responses API fails with its own typed event.
 */
export interface SseDialect {
  /** The last line's data (`[DONE]`), or null for none. */
  readonly terminator: string | null;
  /** The event a failure after the first byte is written as. */
  failure(error: ApiError): { event?: string; data: unknown };
}

/** OpenAI's chat completions stream. */
export const openAIChatSse: SseDialect = { terminator: '[DONE]', failure: (error) => ({ data: error.toBody() }) };

/**
 * The only SSE writer: headers once, one event per JSON object (`event:` when named, then `data:`),
 * `drain` honoured, and the dialect's own end and failure. Events sent in the same tick (those
 * parsed from one upstream read) go out in one write at the end of that tick: one chunk of the
 * chunked encoding and one packet, never later than the upstream's own boundary.
 */
export class SseWriter {
  readonly #res: ServerResponse;
  #pending = '';
  #scheduled = false;
  /** Set while the socket's buffer is full: later sends wait on it. */
  #drain: Promise<void> | undefined;
  /** Stops waiting for `drain` (listeners removed, `#drain` resolved): once the stream has ended. */
  #stopWaiting: (() => void) | undefined;

  readonly #dialect: SseDialect;

  constructor(res: ServerResponse, headers: Record<string, string>, dialect: SseDialect = openAIChatSse) {
    this.#res = res;
    this.#dialect = dialect;
    res.socket?.setNoDelay(true);
    const head = copyHeaders(headers);
    head['content-type'] = 'text/event-stream; charset=utf-8';
    head['cache-control'] = 'no-cache';
    head['x-accel-buffering'] = 'no';
    res.writeHead(200, head);
  }

  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  /** Queues one event for this tick's write. Returns a promise only under backpressure: await it. */
  send(value: unknown, event?: string): Promise<void> | undefined {
    if (this.closed) return undefined;
    const data = typeof value === 'object' && value !== null && rawJson in value ? serialize(value as unknown as ChatChunk) : JSON.stringify(value);
    this.#pending += event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flush);
    }
    return this.#drain;
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#pending === '' || this.closed) return;
    const text = this.#pending;
    this.#pending = '';
    if (!this.#res.write(text) && this.#drain === undefined) {
      const { promise, stop } = drained(this.#res, () => {
        this.#drain = undefined;
        this.#stopWaiting = undefined;
      });
      this.#stopWaiting = stop;
      this.#drain = promise;
    }
  };

  /**
   * Ends the stream with the dialect's failure event, then its terminator (the headers are already out).
   * Safe to call more than once, and after `done()`: only the first end counts. Whoever awaits a
   * `send()` under backpressure is released at once (a shutdown does not wait on a client that
   * never reads again).
   */
  fail(error: ApiError): void {
    if (this.closed) return;
    const { event, data } = this.#dialect.failure(error);
    this.#pending += event === undefined ? `data: ${JSON.stringify(data)}\n\n` : `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    this.done();
  }

  done(): void {
    if (this.closed) return;
    const terminator = this.#dialect.terminator;
    const text = terminator === null ? this.#pending : `${this.#pending}data: ${terminator}\n\n`;
    this.#pending = '';
    this.#res.end(text);
    this.#stopWaiting?.();
  }
}

/**
 * Resolves on the response's next `drain` or `close`, whichever comes first; both listeners are
 * removed as soon as either fires (or `stop()` is called), so a slow reader never piles them up.
 * `settled` runs synchronously then, before any later write can look at the writer's state.
 */
function drained(res: ServerResponse, settled: () => void): { promise: Promise<void>; stop: () => void } {
  if (res.destroyed) return { promise: Promise.resolve(), stop: () => undefined };
  let stop: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    stop = (): void => {
      res.off('drain', stop);
      res.off('close', stop);
      settled();
      resolve();
    };
    res.on('drain', stop);
    res.on('close', stop);
  });
  return { promise, stop };
}
