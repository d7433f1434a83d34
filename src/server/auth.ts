import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../core/errors.js';

/**
 * The gateway's own key (never a provider key): accepted as `Authorization: Bearer <key>` or
 * `x-api-key: <key>`, compared in constant time (both sides hashed to the same length first).
 */
export function createGatewayAuth(key: string | undefined): ((req: IncomingMessage) => void) | undefined {
  if (key === undefined) return undefined;
  const expected = digest(key);
  return function authorize(req: IncomingMessage): void {
    const presented = presentedKey(req);
    if (presented === undefined) {
      throw new ApiError(401, 'This gateway needs its API key: send "Authorization: Bearer <key>", "x-api-key: <key>" or "g4f-api-key: <key>".', {
        type: 'authentication_error',
        code: 'missing_api_key',
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
    if (!timingSafeEqual(digest(presented), expected)) {
      throw new ApiError(401, 'The gateway API key is not valid.', {
        type: 'authentication_error',
        code: 'invalid_api_key',
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
  };
}

/** The token of `Authorization: Bearer <token>`, if the request has one. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
}

function presentedKey(req: IncomingMessage): string | undefined {
  const bearer = bearerToken(req);
  if (bearer !== undefined) return bearer;
  // `x-api-key` (Anthropic's SDKs) and `g4f-api-key` (gpt4free's clients) carry the same key.
  for (const name of ['x-api-key', 'g4f-api-key']) {
    const value = req.headers[name];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Routes behind the key: the API and the stored images. */
export function isProtected(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/') || path.startsWith('/api/') || path.startsWith('/images/') || path === '/metrics' || path === '/metrics/';
}
