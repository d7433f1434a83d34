import { timingSafeEqual } from 'node:crypto';
import { ApiError } from '../core/errors.js';
import type { Plan } from '../core/selection.js';
import type { LimitRule, RateLimiter } from '../state/rate-limiter.js';
import type { RequestContext } from './context.js';

/** A key of the config file's `keys`, as the file gives it (the key itself is never there: only its SHA-256). */
export interface GatewayKeyEntry {
  name: string;
  keyHash: string;
  providers?: string[] | undefined;
  limits?: LimitRule | undefined;
}

/** A listed key a request was admitted with. Its name may be logged; nothing else of it is ever shown. */
export interface GatewayKey {
  readonly name: string;
  /** Provider ids (lower case) it may use; undefined: any. */
  readonly providers: ReadonlySet<string> | undefined;
  /** Its limits, and the limiter that counts them; undefined: unlimited. */
  readonly limits: { rule: LimitRule; limiter: RateLimiter } | undefined;
}

/** The listed keys, looked up by the SHA-256 of what a request presents. */
export class GatewayKeys {
  readonly #entries: Array<{ hash: Buffer; key: GatewayKey }>;

  constructor(entries: readonly GatewayKeyEntry[], limiter: RateLimiter | undefined) {
    this.#entries = entries.map((entry) => ({
      hash: Buffer.from(entry.keyHash.slice('sha256:'.length), 'hex'),
      key: Object.freeze({
        name: entry.name,
        providers: entry.providers === undefined ? undefined : new Set(entry.providers.map((id) => id.toLowerCase())),
        limits: entry.limits === undefined || limiter === undefined || !hasLimit(entry.limits) ? undefined : { rule: entry.limits, limiter },
      }),
    }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * The key whose hash is `digest` (a SHA-256 of 32 bytes), comparing with every entry in constant
   * time and without stopping at a match: the time taken says nothing about which key is close.
   */
  match(digest: Buffer): GatewayKey | undefined {
    let found: GatewayKey | undefined;
    for (const entry of this.#entries) if (timingSafeEqual(entry.hash, digest)) found ??= entry.key;
    return found;
  }
}

export function hasLimit(rule: LimitRule): boolean {
  return rule.requestsPerMinute !== undefined || rule.tokensPerMinute !== undefined || rule.concurrent !== undefined;
}

/**
 * The listed key each request was admitted with (none for the gateway's own key or without keys).
 * Kept beside the context rather than in it so that nothing that serialises a context can show it.
 */
const admitted = new WeakMap<RequestContext, GatewayKey>();

export function admitAs(context: RequestContext, key: GatewayKey): void {
  admitted.set(context, key);
}

export function admittedKey(context: RequestContext): GatewayKey | undefined {
  return admitted.get(context);
}

/**
 * The plan cut to the providers the request's key may use (automatic routing and named providers
 * alike); a 403 when none is left. Without a listed key, or with one allowed every provider, the
 * plan as it is.
 */
export function restrictPlan(plan: Plan, context: RequestContext): Plan {
  const allowed = admitted.get(context)?.providers;
  if (allowed === undefined) return plan;
  const attempts = plan.attempts.filter((attempt) => allowed.has(attempt.entry.provider.id.toLowerCase()));
  if (attempts.length === plan.attempts.length) return plan;
  if (attempts.length === 0) {
    const named = plan.explicit ? plan.attempts.map((attempt) => attempt.entry.provider.id).slice(0, 5) : [];
    const what = named.length > 0 ? `${named.join(', ')} ${named.length === 1 ? 'is' : 'are'}` : 'No provider that could answer this request is';
    throw new ApiError(403, `${what} not among the providers this API key may use (${[...allowed].join(', ') || 'none'}).`, {
      type: 'permission_error',
      param: 'provider',
      code: 'provider_not_allowed',
    });
  }
  return { ...plan, attempts };
}
