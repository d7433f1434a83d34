import type { ServerResponse } from 'node:http';
import { ApiError } from '../core/errors.js';

/** Headers every response carries (CORS: the gateway is meant to be called from browsers too). */
export const commonHeaders: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'x-interference-provider, x-interference-attempts, x-interference-unknown-providers, x-request-id, retry-after',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`; // the newline keeps curl output readable
  res.writeHead(status, {
    ...commonHeaders,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Any error becomes an OpenAI-shaped body; unexpected ones are a generic 500 that leaks nothing. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError(500, 'internal error in the gateway; see the server log', { type: 'server_error', code: 'internal_error' });
}

export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): void {
  const apiError = toApiError(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, apiError.status, apiError.toBody(), { ...headers, ...apiError.headers });
}
