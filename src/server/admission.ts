import type { ServerResponse } from 'node:http';
import { ApiError } from '../core/errors.js';
import { onClose, type RequestContext } from './context.js';

/**
 * The requests that call upstreams (chat, images), admitted once their body has arrived: a client
 * that trickles its upload holds no slot. Past `max` in flight, a 429 instead of a stall. Each
 * admitted request leaves a `cut` that ends it with a proper answer at shutdown.
 */
export class Admission {
  readonly #max: number;
  readonly #cuts = new Map<ServerResponse, () => void>();

  constructor(max: number) {
    this.#max = max;
  }

  get inFlight(): number {
    return this.#cuts.size;
  }

  admit(res: ServerResponse, context: RequestContext, cut: () => void): void {
    if (this.#cuts.size >= this.#max) {
      throw new ApiError(429, `The gateway is serving ${this.#cuts.size} requests, its limit; retry shortly.`, {
        type: 'rate_limit_error',
        code: 'gateway_busy',
        headers: { 'retry-after': '1' },
      });
    }
    this.#cuts.set(res, cut);
    onClose(context, () => this.#cuts.delete(res));
  }

  /** Ends every admitted request now (shutdown past its grace period); returns how many. */
  cutAll(): number {
    const cuts = [...this.#cuts.values()];
    this.#cuts.clear();
    for (const cut of cuts) cut();
    return cuts.length;
  }
}
