import type { ServerResponse } from 'node:http';
import { ApiError } from '../core/errors.js';

/** CORS headers, added to every response to a request that has an `Origin` (a browser's). */
export const corsHeaders: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers':
    'x-interference-provider, x-interference-attempts, x-interference-unknown-providers, x-interference-overhead-ms, x-request-id, retry-after',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** The same with the JSON already serialised. */
export function sendJsonText(res: ServerResponse, status: number, json: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(`${json}\n`); // the newline keeps curl output readable
  const out: Record<string, string | number> = { ...headers };
  out['content-type'] = 'application/json; charset=utf-8';
  out['content-length'] = bytes.length;
  res.writeHead(status, out);
  res.end(bytes);
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
