import type { IncomingMessage } from 'node:http';
import { ApiError, invalidRequest } from '../core/errors.js';

/**
 * Reads and parses a JSON request body, bounded by `maxBytes` (413 past it). An empty body,
 * bad JSON or a non-object is a 400 with `param` null and a message that says what is wrong.
 */
export async function readJsonObject(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw tooLarge(maxBytes);
  }
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > maxBytes) {
      req.resume();
      throw tooLarge(maxBytes);
    }
    parts.push(buffer);
  }
  if (size === 0) throw invalidRequest('the request body is empty; send a JSON object');
  const text = parts.length === 1 ? (parts[0] as Buffer).toString('utf8') : Buffer.concat(parts, size).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : 'parse error';
    throw invalidRequest(`the request body is not valid JSON (${detail})`, null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidRequest('the request body must be a JSON object', null, 'invalid_json');
  }
  return value as Record<string, unknown>;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, `the request body is larger than ${maxBytes} bytes`, { type: 'invalid_request_error', code: 'request_too_large' });
}
