import type { ServerResponse } from 'node:http';
import { UpstreamError } from '../core/errors.js';
import { AllFailedError } from '../core/failover.js';
import type { RequestContext } from './context.js';
import { describeAttempts } from './headers.js';

/** A signal that aborts when the client goes away before the response is finished. */
export function abortOnClientClose(res: ServerResponse): { signal: AbortSignal; detach(): void } {
  const controller = new AbortController();
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort();
  };
  res.once('close', onClose);
  return { signal: controller.signal, detach: () => res.off('close', onClose) };
}

/**
 * What a route does with a failed upstream run: the attempts go to the log line and the
 * `x-interference-attempts` header; returns true when the client left (nothing to answer).
 */
export function noteFailure(context: RequestContext, error: unknown): boolean {
  if (error instanceof AllFailedError) {
    context.attempts = error.attempts;
    context.headers['x-interference-attempts'] = describeAttempts(error.attempts);
  }
  return error instanceof UpstreamError && error.kind === 'aborted';
}
