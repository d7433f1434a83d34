import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/** Response headers a browser may read. */
const exposed =
  'x-interference-provider, x-interference-attempts, x-interference-unknown-providers, x-interference-warnings, x-interference-overhead-ms, x-request-id, retry-after';

export interface OriginOptions {
  /** Extra allowed origins (`https://app.example`), or `*` for any. */
  allowed: readonly string[];
  /** INTERFERENCE_PUBLIC_URL, whose origin is the server's own. */
  publicUrl: string | undefined;
}

/**
 * Which browser pages may call the gateway. A page's request carries `Origin`; a request from a
 * page that is not allowed is refused before any work, whatever its method or content type (a
 * `text/plain` POST needs no preflight, so CORS headers alone would not stop it from spending the
 * configured keys). Allowed: the server's own origin, loopback pages (`http://localhost:*`,
 * `http://127.0.0.1:*`, `http://[::1]:*`) and the configured list. Requests without `Origin`
 * (curl, SDKs, servers) are not browsers' and pass.
 *
 * The own origin is taken from `Host` only when `Host` is an IP address or `localhost`: a DNS
 * name there could be a rebinding attacker's (`evil.example` resolved to 127.0.0.1), whose page
 * would otherwise be same-origin. Name the server's DNS name in INTERFERENCE_PUBLIC_URL.
 */
export function createOriginPolicy(options: OriginOptions) {
  const any = options.allowed.includes('*');
  const listed = new Set(options.allowed);
  if (options.publicUrl !== undefined) listed.add(new URL(options.publicUrl).origin);

  function allowed(origin: string, host: string | undefined): boolean {
    if (any || listed.has(origin)) return true;
    const match = /^https?:\/\/(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/.exec(origin);
    if (match !== null) return true;
    if (host === undefined) return false;
    const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d{1,5}$/, '');
    return (isIP(name) !== 0 || name === 'localhost') && (origin === `http://${host}` || origin === `https://${host}`);
  }

  return {
    /** CORS headers for a request, or null when its page is not allowed (403). */
    check(req: IncomingMessage): Record<string, string> | null | undefined {
      const origin = req.headers.origin;
      if (origin === undefined) return undefined;
      if (!allowed(origin, req.headers.host)) return null;
      return { 'access-control-allow-origin': origin, 'access-control-expose-headers': exposed, vary: 'origin' };
    },
  };
}
