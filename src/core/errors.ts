import type { ErrorBody } from './types.js';

/** An error the gateway answers with: an HTTP status and OpenAI's error fields. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers (for example `retry-after`). */
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, options: { type?: string; param?: string | null; code?: string | null; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type ?? defaultType(status);
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function defaultType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return status === 502 || status === 503 || status === 504 ? 'upstream_error' : 'server_error';
  return 'invalid_request_error';
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null): ApiError =>
  new ApiError(400, message, { param, code });

/**
 * Why an upstream attempt failed, in the gateway's own words. The kind decides failover and the
 * final status; `status` is the upstream's HTTP status when there was one.
 */
export type FailureKind =
  | 'connection' // refused, reset, DNS
  | 'timeout'
  | 'server' // 5xx
  | 'rate_limit' // 429
  | 'auth' // 401/403 or no key configured
  | 'bad_response' // unparseable or wrong-shaped body
  | 'model_not_found' // the upstream does not serve the model
  | 'bad_request' // the upstream rejected the request itself (400/422)
  | 'unavailable' // the provider cannot run here now (no model file, not configured)
  | 'aborted'; // the client went away

export class UpstreamError extends Error {
  readonly kind: FailureKind;
  readonly status: number | undefined;
  readonly code: string | null;
  /** Seconds the upstream asked us to wait (`retry-after` / `retry-after-ms`). */
  readonly retryAfter: number | undefined;

  constructor(kind: FailureKind, message: string, options: { status?: number; code?: string | null; retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamError';
    this.kind = kind;
    this.status = options.status;
    this.code = options.code ?? null;
    this.retryAfter = options.retryAfter;
  }
}

/** Maps an upstream HTTP status to a failure kind. */
export function kindForStatus(status: number): FailureKind {
  if (status < 200 || (status >= 300 && status < 400)) return 'bad_response'; // a redirect, never followed
  if (status === 401 || status === 403 || status === 402) return 'auth';
  if (status === 429) return 'rate_limit';
  if (status === 404) return 'model_not_found';
  if (status === 408 || status === 504) return 'timeout';
  if (status >= 500) return 'server';
  return 'bad_request';
}

/** The longest wait an upstream may ask for (and that we pass on to a client): one hour. */
export const maxRetryAfterSeconds = 3600;

/**
 * Reads `retry-after-ms` then `retry-after` (seconds or an HTTP date) into seconds, clamped to
 * `[0, maxRetryAfterSeconds]`. A negative or unreadable value is ignored (as if absent): our own
 * backoff applies, never an immediate retry on the upstream's say-so.
 */
export function parseRetryAfter(headers: Record<string, string | string[] | undefined>): number | undefined {
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return clampWait(Number(ms) / 1000);
  const raw = first(headers['retry-after']);
  if (raw === undefined) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(raw)) return clampWait(Number(raw));
  // An HTTP date names a weekday or a month: a bare number with a sign is not one.
  if (!/[a-z]/i.test(raw)) return undefined;
  const date = Date.parse(raw);
  if (Number.isFinite(date)) return clampWait((date - Date.now()) / 1000);
  return undefined;
}

function clampWait(seconds: number): number | undefined {
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(maxRetryAfterSeconds, Math.max(0, seconds));
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
