import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { ApiError } from '../core/errors.js';
import { commonHeaders } from './respond.js';

/**
 * The only SSE writer: headers once, one `data:` line per JSON object, `drain` honoured, and a
 * failure after the first byte ends as `data: {"error": …}` then `data: [DONE]`.
 */
export class SseWriter {
  readonly #res: ServerResponse;

  constructor(res: ServerResponse, headers: Record<string, string>) {
    this.#res = res;
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

  /** Writes one event; waits for `drain` when the socket's buffer is full. */
  async send(value: unknown): Promise<void> {
    if (this.closed) return;
    if (!this.#res.write(`data: ${JSON.stringify(value)}\n\n`)) await drained(this.#res);
  }

  fail(error: ApiError): void {
    if (this.closed) return;
    this.#res.write(`data: ${JSON.stringify(error.toBody())}\n\n`);
    this.done();
  }

  done(): void {
    if (this.closed) return;
    this.#res.end('data: [DONE]\n\n');
  }
}

async function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, 'drain'), once(res, 'close')]);
}
