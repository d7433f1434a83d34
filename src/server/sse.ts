import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import type { ApiError } from '../core/errors.js';
import { commonHeaders } from './respond.js';

/**
 * The only SSE writer: headers once, one `data:` line per JSON object, `drain` honoured, and a
 * failure after the first byte ends as `data: {"error": …}` then `data: [DONE]`.
 */
export class SseWriter {
  readonly #res: ServerResponse;
  /** Corked and uncorked directly: the response lets go of its socket when it ends. */
  readonly #socket: Socket | null;
  #corked = false;

  constructor(res: ServerResponse, headers: Record<string, string>) {
    this.#res = res;
    this.#socket = res.socket;
    res.socket?.setNoDelay(true);
    res.writeHead(200, {
      ...commonHeaders,
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
  }

  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  /**
   * Writes one event. Events written in the same tick (those parsed from one upstream read) leave
   * in one packet: the socket is corked until the next tick, never longer. Returns a promise only
   * when the socket's buffer is full (await it: that is backpressure).
   */
  send(value: unknown): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (!this.#corked && this.#socket !== null) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(this.#uncork);
    }
    if (!this.#res.write(`data: ${JSON.stringify(value)}\n\n`)) return drained(this.#res);
    return undefined;
  }

  readonly #uncork = (): void => {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket?.uncork();
  };

  fail(error: ApiError): void {
    if (this.closed) return;
    this.#res.write(`data: ${JSON.stringify(error.toBody())}\n\n`);
    this.done();
  }

  done(): void {
    if (this.closed) return;
    this.#res.end('data: [DONE]\n\n');
    // Flush now, in the same packet: the socket may serve the next keep-alive request.
    this.#uncork();
  }
}

async function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, 'drain'), once(res, 'close')]);
}
