import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../core/errors.js';
import type { GatewayKey, GatewayKeys } from './gateway-keys.js';

/**
 * The gateway's own key (never a provider key) and the listed keys of the config file: accepted as
 * `Authorization: Bearer <key>`, `x-api-key: <key>` or `g4f-api-key: <key>`, compared in constant
 * time (the presented key hashed first, then compared with each SHA-256). Returns the listed key
 * the request was admitted with, or undefined for the gateway's own key; undefined altogether when
 * the gateway has no key at all (open).
 */
export function createGatewayAuth(key: string | undefined, keys?: GatewayKeys): ((req: IncomingMessage) => GatewayKey | undefined) | undefined {
  if (key === undefined && (keys === undefined || keys.size === 0)) return undefined;
  const expected = key === undefined ? undefined : digest(key);
  return function authorize(req: IncomingMessage): GatewayKey | undefined {
    const presented = presentedKey(req);
    if (presented === undefined) {
      throw new ApiError(401, 'This gateway needs its API key: send "Authorization: Bearer <key>", "x-api-key: <key>" or "g4f-api-key: <key>".', {
        type: 'authentication_error',
        code: 'missing_api_key',
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
    const hash = digest(presented);
    const listed = keys?.match(hash);
    if (listed !== undefined) return listed;
    if (expected === undefined || !timingSafeEqual(hash, expected)) {
      throw new ApiError(401, 'The gateway API key is not valid.', {
        type: 'authentication_error',
        code: 'invalid_api_key',
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
    return undefined;
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
