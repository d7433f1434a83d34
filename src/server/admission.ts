import { ApiError } from '../core/errors.js';
import { onClose, type RequestContext } from './context.js';

/** One admitted request: its cut, in a doubly linked list of those in flight. */
interface Admitted {
  cut: (() => void) | undefined;
  prev: Admitted | undefined;
  next: Admitted | undefined;
}

/**
 * The requests that call upstreams (chat, images), admitted once their body has arrived: a client
 * that trickles its upload holds no slot. Past `max` in flight, a 429 instead of a stall. Each
 * admitted request leaves a `cut` that ends it with a proper answer at shutdown.
 *
 * The requests in flight are a linked list (no Map added to and deleted from on every request).
 * It came with an 8% drop in CPU per JSON request in one alternating run (92.8 → 85.5 µs), taken
 * while young GCs promoted whole request graphs; the cause of that turned out to be V8's
 * pretenuring (see start.ts), so the share of this change in it is not known.
 */
export class Admission {
  readonly #max: number;
  #head: Admitted | undefined;
  #size = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get inFlight(): number {
    return this.#size;
  }

  admit(context: RequestContext, cut: () => void): void {
    if (this.#size >= this.#max) {
      throw new ApiError(429, `The gateway is serving ${this.#size} requests, its limit; retry shortly.`, {
        type: 'rate_limit_error',
        code: 'gateway_busy',
        headers: { 'retry-after': '1' },
      });
    }
    const entry: Admitted = { cut, prev: undefined, next: this.#head };
    if (this.#head !== undefined) this.#head.prev = entry;
    this.#head = entry;
    this.#size += 1;
    onClose(context, () => this.#remove(entry));
  }

  #remove(entry: Admitted): void {
    if (entry.cut === undefined) return; // cut at shutdown already
    if (entry.prev !== undefined) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next !== undefined) entry.next.prev = entry.prev;
    // A removed entry points at nothing: in the old generation, it would keep its neighbours alive.
    entry.cut = undefined;
    entry.prev = undefined;
    entry.next = undefined;
    this.#size -= 1;
  }

  /** Ends every admitted request now (shutdown past its grace period); returns how many. */
  cutAll(): number {
    const cuts: Array<() => void> = [];
    for (let entry = this.#head; entry !== undefined; entry = entry.next) {
      if (entry.cut !== undefined) cuts.push(entry.cut);
      entry.cut = undefined; // its request's close then removes nothing
    }
    this.#head = undefined;
    this.#size = 0;
    for (const cut of cuts) cut();
    return cuts.length;
  }
}
