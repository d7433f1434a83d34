import type { ServerResponse } from 'node:http';
import { ClientAbort, type AbortLike } from '../core/abort.js';
import { ApiError, UpstreamError } from '../core/errors.js';
import { AllFailedError } from '../core/failover.js';
import { onClose, type RequestContext } from './context.js';
import { describeAttempts } from './headers.js';
import { sendError } from './respond.js';
import type { SseWriter } from './sse.js';

/** A signal that aborts when the client goes away before the response is finished (until `detach`). */
export function abortOnClientClose(res: ServerResponse, context: RequestContext): { signal: AbortLike; detach(): void; abort(reason: unknown): void } {
  const controller = new ClientAbort();
  let attached = true;
  onClose(context, () => {
    if (attached && !res.writableFinished) controller.abort();
  });
  return {
    signal: controller,
    detach: () => {
      attached = false;
    },
    abort: (reason) => controller.abort(reason),
  };
}

/** The answer a request cut by shutdown gets: a 503, or an error event when its stream had started. */
export const shuttingDown = (): ApiError =>
  new ApiError(503, 'The gateway is shutting down; retry on another instance or in a moment.', {
    code: 'server_shutting_down',
    headers: { connection: 'close' },
  });

/**
 * Ends a request at shutdown: its stream gets an error event and `[DONE]`, a request still waiting
 * a 503; then its upstream work is cancelled.
 */
export function cutRequest(
  res: ServerResponse,
  context: RequestContext,
  writer: Pick<SseWriter, 'fail'> | undefined,
  abort: (reason: unknown) => void,
  send: (res: ServerResponse, error: ApiError, headers: Record<string, string>) => void = sendError,
): void {
  context.cut = true;
  const error = shuttingDown();
  if (writer !== undefined) writer.fail(error);
  else if (!res.headersSent) send(res, error, context.headers);
  abort(new UpstreamError('aborted', 'the gateway is shutting down'));
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
