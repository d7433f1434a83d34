import type { ServerResponse } from 'node:http';
import { ApiError } from '../core/errors.js';
import { copyHeaders } from './headers.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** The same with the JSON already serialised. */
export function sendJsonText(res: ServerResponse, status: number, json: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return; // answered already (a shutdown cut) or gone
  const text = `${json}\n`; // the newline keeps curl output readable
  const out: Record<string, string | number> = copyHeaders(headers);
  out['content-type'] = 'application/json; charset=utf-8';
  out['content-length'] = Buffer.byteLength(text);
  res.writeHead(status, out);
  // A string body goes out in one write with the head (Node joins them); a Buffer would make it two.
  res.end(text);
}

/** Any error becomes an OpenAI-shaped body; unexpected ones are a generic 500 that leaks nothing. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError(500, 'internal error in the gateway; see the server log', { type: 'server_error', code: 'internal_error' });
}

/**
 * An OpenAI-shaped error; `extra` adds top-level fields beside `error` (the `model` and `provider`
 * gpt4free's clients read; OpenAI's clients ignore extra keys).
 */
export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}, extra?: Record<string, string>): void {
  const apiError = toApiError(error);
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy(); // mid-body: only a reset tells the client
    return;
  }
  sendJson(res, apiError.status, extra === undefined ? apiError.toBody() : { ...extra, ...apiError.toBody() }, { ...headers, ...apiError.headers });
}
