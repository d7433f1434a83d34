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

export function linkAbort(parent: AbortSignal, reason: (parentReason: unknown) => unknown = (parentReason) => parentReason): LinkedAbort {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(reason(parent.reason));
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  return { controller, signal: controller.signal, unlink: () => parent.removeEventListener('abort', onAbort) };
}
