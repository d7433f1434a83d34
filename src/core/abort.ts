/** A child abort that follows `parent` (see `LinkedAbort`), with the parent's own reason by default. */
export function linkAbort(parent: AbortLike, reason: (parentReason: unknown) => unknown = (parentReason) => parentReason): LinkedAbort {
  return new LinkedAbort(parent, reason);
}

/** What reading an aborted operation's outcome needs: whether it was aborted, and why. */
export interface AbortState {
  readonly aborted: boolean;
  readonly reason: unknown;
}

/**
 * What an operation needs of the signal that ends it (the client's): an AbortSignal has it, and so
 * have the cheaper `ClientAbort` and `LinkedAbort`.
 */
export interface AbortLike extends AbortState {
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An abort as a flag and a list of listeners. An AbortController, its EventTarget and a listener
 * on it cost more per request than the rest of the request's bookkeeping, and kept request objects
 * alive through young GCs: replacing the attempt's AbortController with this cut the bytes each
 * young GC promoted from 420 to 250 KB (bench/README.md, "GC, second finding").
 */
class Abort implements AbortLike {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listeners === undefined) this.#listeners = [listener];
    else this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    if (listeners === undefined) return;
    const at = listeners.indexOf(listener);
    if (at !== -1) listeners.splice(at, 1);
  }

  /** Aborts once (later calls do nothing), with `reason` or an AbortError as AbortController does; each listener runs once. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }
}

/** A request's own abort: its client left, or shutdown cut it. */
export class ClientAbort extends Abort {}

/**
 * A child abort that follows a parent (an attempt's, linked to its request's): it aborts when the
 * parent does (with `reason(parent.reason)`), including when the parent was aborted already, and
 * can be aborted on its own (a deadline). The gateway's own HTTP code listens to it directly;
 * `signal`, a real AbortSignal for fetch and the libraries that need one, is made on first use
 * only. `unlink()` detaches it from the parent.
 */
export class LinkedAbort extends Abort {
  readonly #parent: AbortLike;
  readonly #onParentAbort: () => void;
  #controller: AbortController | undefined;

  constructor(parent: AbortLike, reason: (parentReason: unknown) => unknown) {
    super();
    this.#parent = parent;
    this.#onParentAbort = () => this.abort(reason(parent.reason));
    if (parent.aborted) this.#onParentAbort();
    else parent.addEventListener('abort', this.#onParentAbort, { once: true });
  }

  get signal(): AbortSignal {
    let controller = this.#controller;
    if (controller === undefined) {
      const made = new AbortController();
      controller = made;
      this.#controller = made;
      if (this.aborted) made.abort(this.reason);
      else this.addEventListener('abort', () => made.abort(this.reason));
    }
    return controller.signal;
  }

  /** Detaches from the parent (the attempt is over). */
  unlink(): void {
    this.#parent.removeEventListener('abort', this.#onParentAbort);
  }
}
