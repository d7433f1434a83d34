/**
 * A child abort controller that follows a parent signal: it aborts when the parent does (with
 * `reason(parent.reason)`, the parent's own reason by default), including when the parent was
 * aborted already, and can also be aborted on its own. `unlink()` detaches it from the parent.
 */
export interface LinkedAbort {
  readonly controller: AbortController;
  readonly signal: AbortSignal;
  unlink(): void;
}

export function linkAbort(parent: AbortLike, reason: (parentReason: unknown) => unknown = (parentReason) => parentReason): LinkedAbort {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(reason(parent.reason));
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  return { controller, signal: controller.signal, unlink: () => parent.removeEventListener('abort', onAbort) };
}

/**
 * What an operation needs of the signal that ends it (the client's): an AbortSignal has it, and so
 * has the cheaper `ClientAbort`.
 */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A request's own abort (its client left, or shutdown cut it), as `AbortLike`: a flag and a list of
 * listeners. An AbortController, its EventTarget and a listener on it cost more per request than
 * the rest of the request's bookkeeping; the one real AbortSignal a request needs is its
 * attempt's, linked to this with `linkAbort`.
 */
export class ClientAbort implements AbortLike {
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
