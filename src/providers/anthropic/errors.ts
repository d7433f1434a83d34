import { UpstreamError, kindForStatus, parseRetryAfter, type FailureKind } from '../../core/errors.js';
import { discardBody, errorMessageFrom, readBounded, type UpstreamResponse } from '../../core/http.js';

/**
 * Anthropic's error body: `{"type":"error","error":{"type":"…","message":"…"},"request_id":"req_…"}`
 * (upstream-protocols §2.4), as an HTTP answer or as an `event: error` inside a 200 stream.
 */

/** What each Anthropic error type means to the gateway; a type not listed falls back to the status. */
const kindForType: ReadonlyMap<string, FailureKind> = new Map<string, FailureKind>([
  ['invalid_request_error', 'bad_request'],
  ['request_too_large', 'bad_request'],
  ['authentication_error', 'auth'],
  ['permission_error', 'auth'],
  ['billing_error', 'auth'],
  ['not_found_error', 'model_not_found'],
  ['rate_limit_error', 'rate_limit'],
  ['api_error', 'server'],
  ['overloaded_error', 'server'],
  ['timeout_error', 'timeout'],
]);

/** Error bodies are read up to 64 KiB, the rest dropped. */
const maxErrorBodyBytes = 64 * 1024;

/** Turns a non-2xx answer into an UpstreamError (the body read bounded; a 3xx is never followed). */
export async function anthropicErrorFromResponse(response: UpstreamResponse, signal: AbortSignal): Promise<UpstreamError> {
  const status = response.statusCode;
  if (status >= 300 && status < 400) {
    discardBody(response.body);
    return new UpstreamError('bad_response', `HTTP ${status}: the upstream answered with a redirect, which the gateway does not follow; check its base URL`, {
      status,
    });
  }
  const text = await readBounded(response.body, signal, maxErrorBodyBytes, 'truncate')
    .then((bytes) => bytes.toString('utf8'))
    .catch(() => '');
  const { type, message } = readErrorBody(text);
  const retryAfter = parseRetryAfter(response.headers);
  // The body's type says more than the status (529 is an overload, not just "a 5xx"); a body
  // without one (Cloudflare's 413 page) goes by the status.
  const kind = (type === undefined ? undefined : kindForType.get(type)) ?? kindForStatus(status);
  const requestId = header(response.headers['request-id']);
  const detail = [type, message || 'no error message'].filter(Boolean).join(': ');
  return new UpstreamError(kind, `HTTP ${status}: ${detail}${requestId === undefined ? '' : ` (request-id ${requestId})`}`, {
    status,
    code: type ?? null,
    ...(retryAfter === undefined ? {} : { retryAfter }),
  });
}

/** The error an `event: error` in a 200 stream stands for. */
export function anthropicErrorFromEvent(data: string): UpstreamError {
  const { type, message } = readErrorBody(data);
  // In a stream there is no status to fall back on: an unknown type is the upstream's failure.
  const kind = type === undefined ? 'server' : (kindForType.get(type) ?? 'server');
  const label = type ?? 'error';
  return new UpstreamError(kind, `error event in the stream: ${label}: ${message || 'no error message'}`, { code: type ?? null });
}

function readErrorBody(text: string): { type: string | undefined; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { type: undefined, message: errorMessageFrom(text).message };
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const error = (parsed as Record<string, unknown>).error;
    if (typeof error === 'object' && error !== null) {
      const inner = error as Record<string, unknown>;
      const type = typeof inner.type === 'string' && inner.type !== '' ? inner.type : undefined;
      const message = typeof inner.message === 'string' ? inner.message : JSON.stringify(inner).slice(0, 500);
      return { type, message: message.slice(0, 2000) };
    }
  }
  return { type: undefined, message: errorMessageFrom(text).message };
}

function header(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first.slice(0, 200);
}
