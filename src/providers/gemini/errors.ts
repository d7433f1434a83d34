import { UpstreamError, kindForStatus, maxRetryAfterSeconds, parseRetryAfter, type FailureKind } from '../../core/errors.js';
import { discardBody, readLimited, type UpstreamResponse } from '../../core/http.js';
import { isRecord } from './schema.js';

/**
 * Gemini's errors are `google.rpc.Status` objects: `{"error": {"code": 429, "message": "…",
 * "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
 * "retryDelay": "37s"}, …]}}`, sometimes wrapped in a one-element array.
 */
export interface GeminiStatus {
  code: number | undefined;
  message: string;
  status: string | undefined;
  /** `ErrorInfo.reason`, e.g. `API_KEY_INVALID`. */
  reason: string | undefined;
  /** `RetryInfo.retryDelay` in seconds, clamped to [0, 3600]. */
  retryDelay: number | undefined;
}

/** Reads a google.rpc.Status out of parsed JSON (`{error}` or `[{error}]`); undefined when it is none. */
export function statusFrom(value: unknown): GeminiStatus | undefined {
  const root = Array.isArray(value) ? value[0] : value;
  if (!isRecord(root)) return undefined;
  const error = root.error;
  if (typeof error === 'string') return { code: undefined, message: error, status: undefined, reason: undefined, retryDelay: undefined };
  if (!isRecord(error)) return undefined;
  let reason: string | undefined;
  let retryDelay: number | undefined;
  if (Array.isArray(error.details)) {
    for (const detail of error.details) {
      if (!isRecord(detail)) continue;
      const type = typeof detail['@type'] === 'string' ? detail['@type'] : '';
      if (type.endsWith('google.rpc.ErrorInfo') && typeof detail.reason === 'string') reason ??= detail.reason;
      if (type.endsWith('google.rpc.RetryInfo')) retryDelay ??= parseDuration(detail.retryDelay);
    }
  }
  return {
    code: typeof error.code === 'number' && Number.isInteger(error.code) ? error.code : undefined,
    message: typeof error.message === 'string' ? error.message : JSON.stringify(error).slice(0, 500),
    status: typeof error.status === 'string' ? error.status : undefined,
    reason,
    retryDelay,
  };
}

/** A protobuf Duration in JSON (`"37s"`, `"1.5s"`, `"0.250s"`) in seconds, clamped; else undefined. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(value);
    if (match === null) return undefined;
    return clamp(Number(match[1]));
  }
  // The proto form, should a proxy re-encode it: {seconds, nanos}.
  if (isRecord(value)) {
    const seconds = Number(value.seconds ?? 0);
    const nanos = Number(value.nanos ?? 0);
    if (!Number.isFinite(seconds) || !Number.isFinite(nanos)) return undefined;
    return clamp(seconds + nanos / 1e9);
  }
  return undefined;
}

function clamp(seconds: number): number | undefined {
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(maxRetryAfterSeconds, Math.max(0, seconds));
}

/** Gemini status strings to failure kinds; the HTTP status decides when the string says nothing more. */
const kindForStatusString: Record<string, FailureKind> = {
  UNAUTHENTICATED: 'auth',
  PERMISSION_DENIED: 'auth',
  NOT_FOUND: 'model_not_found',
  RESOURCE_EXHAUSTED: 'rate_limit',
  DEADLINE_EXCEEDED: 'timeout',
  INTERNAL: 'server',
  UNAVAILABLE: 'server',
  UNKNOWN: 'server',
  INVALID_ARGUMENT: 'bad_request',
  FAILED_PRECONDITION: 'bad_request',
  OUT_OF_RANGE: 'bad_request',
};

/** ErrorInfo reasons that mean "this key is no good" whatever the HTTP status (Gemini says 400). */
const keyReasons = new Set([
  'API_KEY_INVALID',
  'API_KEY_EXPIRED',
  'API_KEY_SERVICE_BLOCKED',
  'API_KEY_HTTP_REFERRER_BLOCKED',
  'API_KEY_IP_ADDRESS_BLOCKED',
  'CREDENTIALS_MISSING',
  'ACCESS_TOKEN_EXPIRED',
]);

/**
 * The failure kind for an HTTP status and the Status it carried: an invalid key is `auth` although
 * Gemini answers 400; 404 is `model_not_found`; 429 `rate_limit`; 504 `timeout`; other 5xx
 * `server`; other 400 `bad_request`.
 */
export function kindFor(httpStatus: number | undefined, status: GeminiStatus | undefined): FailureKind {
  if (status?.reason !== undefined && keyReasons.has(status.reason)) return 'auth';
  if (httpStatus !== undefined && !(httpStatus >= 200 && httpStatus < 300)) {
    if (httpStatus === 400 && status?.status !== undefined) return kindForStatusString[status.status] ?? 'bad_request';
    return kindForStatus(httpStatus);
  }
  // Inside a 200 stream: the Status is all there is.
  if (status?.status !== undefined && kindForStatusString[status.status] !== undefined) return kindForStatusString[status.status] as FailureKind;
  if (status?.code !== undefined && status.code >= 400) return kindForStatus(status.code);
  return 'server';
}

/** An UpstreamError for a Status (from an HTTP error body, a 200 body or a stream). */
export function errorFromStatus(status: GeminiStatus, httpStatus: number | undefined, headerRetryAfter: number | undefined, where: string): UpstreamError {
  const kind = kindFor(httpStatus, status);
  const retryAfter = headerRetryAfter ?? status.retryDelay;
  const label = [status.status, status.reason].filter((part) => part !== undefined).join('/');
  const prefix = httpStatus !== undefined && !(httpStatus >= 200 && httpStatus < 300) ? `HTTP ${httpStatus}` : where;
  return new UpstreamError(kind, `${prefix}: ${label === '' ? '' : `${label}: `}${status.message || 'no error message'}`, {
    ...(httpStatus !== undefined && !(httpStatus >= 200 && httpStatus < 300)
      ? { status: httpStatus }
      : status.code !== undefined
        ? { status: status.code }
        : {}),
    code: status.reason ?? status.status ?? null,
    ...(retryAfter === undefined ? {} : { retryAfter }),
  });
}

/** Turns a non-2xx Gemini response into an UpstreamError, reading at most 64 KiB of its body. */
export async function errorFromGeminiResponse(response: UpstreamResponse, signal: AbortSignal): Promise<UpstreamError> {
  const httpStatus = response.statusCode;
  if (httpStatus < 200 || (httpStatus >= 300 && httpStatus < 400)) {
    // A redirect is never followed (it could take the key elsewhere) nor passed on as our status.
    discardBody(response.body);
    return new UpstreamError(
      'bad_response',
      `HTTP ${httpStatus}: the upstream answered with a redirect, which the gateway does not follow; check its base URL`,
      {
        status: httpStatus,
      },
    );
  }
  const text = await readLimited(response.body, signal).catch(() => '');
  const headerRetryAfter = parseRetryAfter(response.headers);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const status = statusFrom(parsed) ?? {
    code: undefined,
    message: text.trim().slice(0, 500),
    status: undefined,
    reason: undefined,
    retryDelay: undefined,
  };
  return errorFromStatus(status, httpStatus, headerRetryAfter, 'the upstream');
}
