import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, UpstreamError, type FailureKind } from './errors.js';
import type { HealthBook } from './health.js';
import { linkAbort, type AbortLike, type LinkedAbort } from './abort.js';
import { after } from './deadlines.js';
import type { UpstreamLimits } from './http.js';
import type { Attempt, Plan } from './selection.js';

/** What happened to one provider during a request (for logs, headers and error messages). */
export interface AttemptRecord {
  provider: string;
  outcome: 'ok' | FailureKind | 'circuit_open';
  status?: number;
  message?: string;
  ms: number;
  /** Retries of this provider before this outcome. */
  retries?: number;
}

/** How attempts are run: health-driven skipping, same-provider retries, deadlines and caps. */
export interface RoutingPolicy {
  health: HealthBook;
  limits: UpstreamLimits;
  /** Longest wait for an attempt's first content (keep-alives and empty chunks do not count). */
  firstContentMs: number;
  /** Longest a non-streamed request may take, all attempts together. */
  requestMs: number;
  /** Told of an error of our own inside an attempt (a bug): the client gets a clean 502. */
  onInternalError?: (provider: string, error: unknown) => void;
  /** Retries of a lone provider after 429/5xx/connection failures (0: none). */
  retries: number;
  /** First backoff; doubles, with full jitter. */
  retryBaseMs: number;
  /** Longest wait before a retry; a `retry-after` above it is not waited for. */
  retryMaxWaitMs: number;
  /** Providers' own limits (their quotas), when any is configured: a provider over its limit is skipped. */
  providerLimits?: ProviderLimits;
}

/**
 * Per-provider rate limits, checked before each attempt (implemented at the edge: in memory or
 * shared by replicas). Past its limit a provider is skipped like a blocked attempt: failover to the
 * next, or a 429 with `retry-after` when it was the only one.
 */
export interface ProviderLimits {
  /** Undefined when the provider has no limit (no work at all); else whether it may be called now (never rejects). */
  take(provider: string): Promise<ProviderTake> | undefined;
  /** Tokens an answer of the provider used (its usage as reported), for a tokens-per-minute limit. */
  recordTokens(provider: string, tokens: number): void;
}

export type ProviderTake =
  | { allowed: true; /** Ends the attempt's hold on the provider (idempotent). */ release(): void }
  | { allowed: false; retryAfterSeconds: number; message: string };

const retryable = new Set<FailureKind>(['connection', 'server', 'rate_limit']);

/**
 * Told what happens during one operation, as it happens: how logs (and later metrics) see attempts
 * without the operation knowing about them.
 */
export interface OperationObserver {
  attemptStarted?(provider: string): void;
  attemptEnded?(record: AttemptRecord): void;
  /** The attempt's first content arrived, `ms` after the attempt started. */
  firstContent?(provider: string, ms: number): void;
  /** The upstream reported the tokens it used (a completion's usage, or a stream's usage chunk). */
  usage?(provider: string, usage: { prompt_tokens?: number; completion_tokens?: number }): void;
}

/** A time limit on the whole operation, all attempts together: past it the attempt under way is cut with `error()`. */
export interface Deadline {
  ms: number;
  error(): UpstreamError;
}

/** What `run` gets for one attempt. */
export interface AttemptScope {
  /** Aborts when the client leaves, the request's deadline passes, or `abort` is called. */
  readonly signal: AbortSignal;
  /** The same abort, cheaper to listen to: no AbortSignal is made unless `signal` is read. */
  readonly cancellation: AbortLike;
  /** Detaches the attempt from the client's signal: call it once the attempt is over (a stream: at its end). */
  release(): void;
  /** Ends the attempt now with `reason` (for example a deadline): `signal` aborts with it. */
  abort(reason: UpstreamError): void;
}

/**
 * The failover loop shared by chat and images. Attempts run in the plan's order; a provider
 * whose breaker is open is skipped at no cost; a lone provider is retried with jittered backoff
 * that honours `retry-after`. `run` gets the attempt's scope: a signal that aborts when the client
 * leaves, the request's deadline passes or the attempt is abandoned; `abort`, for the attempt's own
 * deadlines; and `release`, which detaches the signal from the client, called once the attempt is
 * over (a stream keeps it until its end). The observer hears of each attempt as it starts and ends.
 * A `deadline` ends the whole operation: the attempt (or the wait before a retry) under way is cut.
 */
export async function failover<T>(
  plan: Plan,
  clientSignal: AbortLike,
  policy: RoutingPolicy,
  run: (attempt: Attempt, scope: AttemptScope) => Promise<T>,
  observer?: OperationObserver,
  deadline?: Deadline,
): Promise<{ value: T; provider: string; attempts: AttemptRecord[] }> {
  // The deadline cuts what is under way directly (no signal linked to the client's for it).
  let expired: UpstreamError | undefined;
  let current: Cuttable | undefined;
  const timer =
    deadline === undefined
      ? undefined
      : after(deadline.ms, () => {
          expired = deadline.error();
          current?.abort(expired);
        });
  try {
    return await attemptAll(plan, clientSignal, policy, run, observer, {
      stopped: () => clientSignal.aborted || expired !== undefined,
      reason: () => expired ?? (clientSignal.reason as unknown),
      cutBy: (target) => {
        current = target;
        if (target !== undefined && expired !== undefined) target.abort(expired);
      },
    });
  } finally {
    timer?.cancel();
  }
}

/** Whether the operation is over (client gone or deadline passed), why, and where the deadline cuts. */
interface Stop {
  stopped(): boolean;
  reason(): unknown;
  cutBy(target: Cuttable | undefined): void;
}

/** What the deadline cuts: the attempt under way, or the wait before a retry. */
interface Cuttable {
  abort(reason: unknown): void;
}

async function attemptAll<T>(
  plan: Plan,
  clientSignal: AbortLike,
  policy: RoutingPolicy,
  run: (attempt: Attempt, scope: AttemptScope) => Promise<T>,
  observer: OperationObserver | undefined,
  stop: Stop,
): Promise<{ value: T; provider: string; attempts: AttemptRecord[] }> {
  const records: AttemptRecord[] = [];
  const note = (record: AttemptRecord): void => {
    records.push(record);
    observer?.attemptEnded?.(record);
  };
  const failures: UpstreamError[] = [];
  const lone = plan.attempts.length === 1;
  for (const attempt of plan.attempts) {
    const provider = attempt.entry.provider.id;
    if (stop.stopped()) break;
    if (attempt.blocked !== null) {
      const error = new UpstreamError(attempt.blocked.kind, attempt.blocked.message);
      note({ provider, outcome: error.kind, message: error.message, ms: 0 });
      failures.push(error);
      continue;
    }
    const admission = policy.health.admit(provider);
    if (!admission.allowed) {
      const seconds = Math.max(1, Math.ceil(admission.retryInMs / 1000));
      const message = `skipped: ${admission.consecutiveFailures} failures in a row, circuit open (next try in ${seconds}s)`;
      note({ provider, outcome: 'circuit_open', message, ms: 0 });
      failures.push(new UpstreamError('unavailable', message, { retryAfter: seconds }));
      continue;
    }
    const take = policy.providerLimits?.take(provider);
    const limit = take === undefined ? undefined : await take;
    if (limit !== undefined && !limit.allowed) {
      policy.health.settle(provider); // a probe the breaker granted is not used
      note({ provider, outcome: 'rate_limit', message: limit.message, ms: 0 });
      failures.push(new UpstreamError('rate_limit', limit.message, { retryAfter: limit.retryAfterSeconds }));
      continue;
    }
    // The provider's concurrency slot: held until the attempt is over (a stream: at its end, by
    // the scope's release), given back at once when it fails.
    const release = limit?.release;
    const started = performance.now();
    observer?.attemptStarted?.(provider);
    let retries = 0;
    for (;;) {
      const attemptStarted = performance.now();
      try {
        const value = await once(attempt, clientSignal, run, release, stop);
        policy.health.record(provider, 'ok', performance.now() - attemptStarted);
        const record: AttemptRecord = { provider, outcome: 'ok', ms: elapsed(started) };
        if (retries > 0) record.retries = retries;
        note(record);
        return { value, provider, attempts: records };
      } catch (caught) {
        if (!(caught instanceof UpstreamError)) policy.onInternalError?.(provider, caught);
        const error = asUpstreamError(caught, attempt);
        if (stop.stopped() && error.kind === 'aborted') {
          release?.();
          policy.health.settle(provider); // the client left: ends a probe, counts nothing
          note({ provider, outcome: 'aborted', message: error.message, ms: elapsed(started) });
          throw error;
        }
        const wait = lone && retries < policy.retries && retryable.has(error.kind) ? backoff(policy, retries, error.retryAfter) : undefined;
        if (wait !== undefined && policy.health.admit(provider).allowed) {
          retries += 1;
          const pause = linkAbort(clientSignal);
          stop.cutBy(pause);
          const waited = await sleep(wait, true, { signal: pause.signal }).catch(() => false);
          stop.cutBy(undefined);
          pause.unlink();
          if (waited === true) continue;
        }
        // One request is at most one failure in the provider's health, whatever its retries. Every
        // outcome settles the attempt (a probe above all, or the breaker would wait on it for
        // ever); only what the upstream did counts against it: an error of our own (a bug, or a
        // body we could not serialise) must not open a provider's circuit for everyone.
        if (caught instanceof UpstreamError) policy.health.record(provider, error.kind, performance.now() - attemptStarted, error.retryAfter);
        else policy.health.settle(provider);
        note({
          provider,
          outcome: error.kind,
          ...(error.status ? { status: error.status } : {}),
          message: error.message,
          ms: elapsed(started),
          ...(retries > 0 ? { retries } : {}),
        });
        failures.push(error);
        release?.();
        break;
      }
    }
  }
  if (stop.stopped()) {
    // The request's own deadline (a timeout reason) still gets the full account of its attempts.
    const reason: unknown = stop.reason();
    if (!(reason instanceof UpstreamError) || reason.kind === 'aborted') throw new UpstreamError('aborted', 'the client went away');
    if (failures.at(-1) !== reason) {
      note({ provider: 'gateway', outcome: reason.kind, message: reason.message, ms: 0 });
      failures.push(reason);
    }
  }
  throw finalError(records, failures);
}

/** Why an attempt was cut when its client's abort ended it: a deadline's own error, else the client's leaving. */
const attemptReason = (reason: unknown): UpstreamError => (reason instanceof UpstreamError ? reason : new UpstreamError('aborted', 'the client went away'));

/**
 * One call of `run` with its own abort linked to the client's, so that an abandoned or expired
 * attempt can be cancelled while the request moves on.
 */
async function once<T>(
  attempt: Attempt,
  clientSignal: AbortLike,
  run: (attempt: Attempt, scope: AttemptScope) => Promise<T>,
  onRelease: (() => void) | undefined,
  stop: Stop,
): Promise<T> {
  const cut = linkAbort(clientSignal, attemptReason);
  stop.cutBy(cut);
  const scope = new Scope(cut, onRelease);
  try {
    return await run(attempt, scope);
  } catch (error) {
    stop.cutBy(undefined);
    cut.unlink();
    cut.abort();
    // Aborted by a deadline: the deadline is the failure, whatever the provider made of the abort.
    const reason: unknown = cut.reason;
    if (reason instanceof UpstreamError && reason.kind !== 'aborted' && !(error instanceof UpstreamError && error.kind === reason.kind)) throw reason;
    throw error;
  }
}

/**
 * An attempt's scope. A class, not an object literal with a `signal` getter: such a literal held
 * each request's objects through young GCs (measured: 2.1 MB promoted per young GC instead of
 * 0.25 MB; bench/README.md, "GC, second finding").
 */
class Scope implements AttemptScope {
  constructor(
    readonly cancellation: LinkedAbort,
    private readonly onRelease: (() => void) | undefined,
  ) {}

  /** Made on first use only. */
  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  release(): void {
    this.cancellation.unlink();
    this.onRelease?.();
  }

  abort(reason: UpstreamError): void {
    this.cancellation.abort(reason);
  }
}

/** Full-jitter exponential backoff; `retry-after` wins when given, and past the cap there is no retry. */
function backoff(policy: RoutingPolicy, retry: number, retryAfterSeconds: number | undefined): number | undefined {
  if (retryAfterSeconds !== undefined) {
    const asked = retryAfterSeconds * 1000;
    return asked > policy.retryMaxWaitMs ? undefined : asked;
  }
  const ceiling = Math.min(policy.retryMaxWaitMs, policy.retryBaseMs * 2 ** retry);
  return Math.random() * ceiling;
}

export function asUpstreamError(caught: unknown, attempt: Attempt): UpstreamError {
  // An error of our own: its text (a TypeError's, say) is for the log, never for the client.
  const error =
    caught instanceof UpstreamError
      ? caught
      : new UpstreamError('bad_response', `the gateway could not process ${attempt.entry.provider.id}'s answer (internal error, logged)`, { cause: caught });
  if (attempt.apiKey === undefined) return error;
  const message = redact(error.message, [attempt.apiKey]);
  if (message === error.message) return error;
  return new UpstreamError(error.kind, message, {
    ...(error.status === undefined ? {} : { status: error.status }),
    code: error.code,
    ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }),
  });
}

/**
 * Replaces every occurrence of each secret with `[redacted]`, and a message cut in the middle of
 * one (upstream text is truncated before it reaches us): a tail that is a secret's first 4+
 * characters is redacted too.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    out = out.split(secret).join('[redacted]');
    for (let length = Math.min(secret.length - 1, out.length); length >= 4; length--) {
      if (out.endsWith(secret.slice(0, length))) {
        out = `${out.slice(0, out.length - length)}[redacted]`;
        break;
      }
    }
  }
  return out;
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

const codeForKind: Record<FailureKind, string> = {
  connection: 'upstream_unreachable',
  timeout: 'upstream_timeout',
  server: 'upstream_error',
  rate_limit: 'rate_limit_exceeded',
  auth: 'invalid_api_key',
  bad_response: 'upstream_bad_response',
  model_not_found: 'model_not_found',
  bad_request: 'upstream_rejected_request',
  unavailable: 'provider_unavailable',
  aborted: 'client_closed_request',
};

/** Every attempt failed; carries the attempt log for headers and the log line. */
export class AllFailedError extends ApiError {
  attempts: AttemptRecord[] = [];
}

/** One error for the client: every provider's failure, under the most telling status. */
function finalError(records: AttemptRecord[], failures: UpstreamError[]): AllFailedError {
  const kinds = new Set(failures.map((failure) => failure.kind));
  const only = kinds.size === 1 ? [...kinds][0] : undefined;
  let status = 502;
  if (only === 'rate_limit') status = 429;
  else if (only === 'auth') status = 401;
  else if (only === 'model_not_found') status = 404;
  else if (only === 'bad_request') status = failures.find((f) => f.status !== undefined && f.status >= 400 && f.status < 500)?.status ?? 400;
  else if (only === 'timeout') status = 504;
  else if (only === 'unavailable') status = 503;
  const failed = records.filter((record) => record.outcome !== 'ok');
  const lines = failed.map((record) => {
    const text = record.message ?? record.outcome;
    return text.startsWith(`${record.provider} `) ? text : `${record.provider}: ${text}`;
  });
  const message = failed.length === 1 ? `${lines[0]}` : `All ${failed.length} providers failed. ${lines.join(' | ')}`;
  const headers: Record<string, string> = {};
  if (status === 429 || status === 503) {
    const waits = failures.map((failure) => failure.retryAfter).filter((wait): wait is number => wait !== undefined);
    if (waits.length > 0) headers['retry-after'] = String(Math.ceil(Math.min(...waits)));
  }
  const code = only !== undefined ? codeForKind[only] : 'all_providers_failed';
  const error = new AllFailedError(status, message, {
    type: status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status < 500 ? 'invalid_request_error' : 'upstream_error',
    param: status === 404 && only === 'model_not_found' ? 'model' : null,
    code,
    headers,
  });
  error.attempts = records;
  return error;
}
