import type { AttemptRecord, OperationObserver } from '../core/failover.js';
import type { GatewayMetrics } from './metrics.js';

/** Per-request state shared by the app and a route: for headers and the log line. */
export interface RequestContext {
  readonly id: string;
  /** performance.now() when the request arrived. */
  readonly started: number;
  readonly query: URLSearchParams;
  /** Headers to add to the response, whatever its status. */
  readonly headers: Record<string, string>;
  provider?: string;
  attempts?: AttemptRecord[];
  streamError?: string;
  /** Ended by shutdown past its grace period. */
  cut?: boolean;
  /** Request fields the answering provider ignored. */
  warnings?: string[];
  /** Milliseconds from the start of the answering attempt to its first content. */
  firstContentMs?: number;
  /** Top-level fields an error body carries beside `error` when known: the model asked for, the provider named. */
  errorFields?: Record<string, string>;
  /** Where the operation reports attempts, failovers and tokens, when metrics are on. */
  metrics?: GatewayMetrics;
  /** The client's `Authorization: Bearer` token, only when the gateway has no key of its own (a provider key, under selection's rule). */
  clientBearer?: string;
  /** What runs when the response closes, finished or not (see `onClose`). */
  closers?: Array<() => void>;
}

/**
 * Runs `closer` when the response closes, finished or left by its client, before the log line:
 * the request's one `close` listener runs them all (a listener each cost more than the work).
 */
export function onClose(context: RequestContext, closer: () => void): void {
  if (context.closers === undefined) context.closers = [closer];
  else context.closers.push(closer);
}

/**
 * The gateway's own time so far: everything but the upstream attempts (their time includes
 * reading the upstream's answer up to its first content).
 */
export function overheadMs(context: RequestContext): string {
  const upstream = (context.attempts ?? []).reduce((sum, attempt) => sum + attempt.ms, 0);
  return Math.max(0, performance.now() - context.started - upstream).toFixed(3);
}

/**
 * The status a request ended with, as its log line and metrics count it: the one sent, 503 when
 * shutdown cut it, 499 (nginx's "client closed request") when its client left before the end.
 */
export function finalStatus(res: { readonly writableFinished: boolean; readonly statusCode: number }, context: RequestContext): number {
  return context.cut === true ? 503 : res.writableFinished ? res.statusCode : 499;
}

/** What the request's log line and the metrics learn from the operation as it runs. */
export function observerFor(context: RequestContext): OperationObserver {
  const metrics = context.metrics;
  const observer: OperationObserver = {
    firstContent(_provider, ms) {
      context.firstContentMs = Math.round(ms * 100) / 100;
    },
  };
  if (metrics === undefined) return observer;
  // A failover: an attempt starts after another failed or was skipped (a lone provider's retries are one attempt).
  let failed = false;
  observer.attemptStarted = () => {
    if (failed) metrics.failover();
  };
  observer.attemptEnded = (record) => {
    metrics.attemptEnded(record);
    if (record.outcome !== 'ok') failed = true;
  };
  observer.usage = (provider, usage) => metrics.tokens(provider, usage);
  return observer;
}
