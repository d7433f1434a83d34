import type { IncomingMessage } from 'node:http';
import { ApiError, invalidRequest } from '../core/errors.js';
import { after } from '../core/deadlines.js';

/**
 * Reads and parses a JSON request body, bounded by `maxBytes` (413 past it). An empty body,
 * bad JSON or a non-object is a 400 with `param` null and a message that says what is wrong.
 */
export async function readJsonObject(req: IncomingMessage, maxBytes: number, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw tooLarge(maxBytes);
  }
  const buffer = await readBody(req, maxBytes, timeoutMs);
  if (buffer.length === 0) throw invalidRequest('the request body is empty; send a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(buffer.toString('utf8'));
  } catch (error) {
    const detail = error instanceof Error ? error.message : 'parse error';
    throw invalidRequest(`the request body is not valid JSON (${detail})`, null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidRequest('the request body must be a JSON object', null, 'invalid_json');
  }
  const tooDeep = deeperThan(value as Record<string, unknown>, maxDepth);
  if (tooDeep !== null) throw invalidRequest(`the request body is nested more than ${maxDepth} levels deep`, tooDeep, 'invalid_json');
  return value as Record<string, unknown>;
}

/** Deeper than any real request; serialising deeper values could overflow the stack. */
const maxDepth = 64;

/**
 * The top-level field that holds a value nested deeper than `limit`, or null. Iterative (no
 * recursion), with the objects still to visit and their depths in two plain arrays: no entry
 * arrays or tuples per value.
 */
function deeperThan(root: Record<string, unknown>, limit: number): string | null {
  const items: object[] = [];
  const depths: number[] = [];
  for (const field in root) {
    const value = root[field];
    if (typeof value !== 'object' || value === null) continue;
    items.push(value);
    depths.push(2);
    while (items.length > 0) {
      const item = items.pop() as object;
      const depth = depths.pop() as number;
      if (depth > limit) return field;
      if (Array.isArray(item)) {
        for (const child of item as unknown[]) {
          if (typeof child === 'object' && child !== null) {
            items.push(child);
            depths.push(depth + 1);
          }
        }
        continue;
      }
      for (const key in item) {
        const child = (item as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) {
          items.push(child);
          depths.push(depth + 1);
        }
      }
    }
  }
  return null;
}

/**
 * Collects the body with plain events (cheaper than an async iterator per request), within
 * `timeoutMs`: a client that trickles its upload gets a 408 and its connection is closed.
 */
function readBody(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const deadline = after(timeoutMs, () => {
      cleanup();
      reject(new ApiError(408, `the request body did not arrive within ${timeoutMs} ms`, { code: 'request_timeout', headers: { connection: 'close' } }));
    });
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      parts.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new ApiError(400, `the request body could not be read (${error.message})`, { code: 'body_read_error' }));
    };
    const cleanup = (): void => {
      deadline.cancel();
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, `the request body is larger than ${maxBytes} bytes`, { type: 'invalid_request_error', code: 'request_too_large' });
}
