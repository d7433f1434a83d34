import { ApiError } from '../core/errors.js';
import type { OperationObserver, ProviderLimits, RoutingPolicy } from '../core/failover.js';
import { MemoryRateLimiter, type LimitReason, type LimitRule, type LimitVerdict, type RateLimiter, type WindowState } from '../state/rate-limiter.js';
import { SharedRateLimiter } from '../state/rate-limiter-redis.js';
import type { SharedRedis } from '../state/redis.js';
import { onClose, type RequestContext } from './context.js';
import { admittedKey, GatewayKeys, hasLimit, type GatewayKeyEntry } from './gateway-keys.js';

/** What the limits are built from: the config file's `keys` and its providers' `limits`. */
export interface LimitsSettings {
  keys: readonly GatewayKeyEntry[];
  providers: ReadonlyArray<{ id: string; limits?: LimitRule | undefined }>;
  /** Shared by the replicas when given (this process's own limits while it is down). */
  redis: SharedRedis | undefined;
  log: (fields: Record<string, unknown>) => void;
}

/**
 * The listed keys and the providers' limits, over one limiter: none at all when nothing is
 * limited, so that a gateway without limits does no limit work per request.
 */
export function createLimits(settings: LimitsSettings): { keys: GatewayKeys | undefined; providers: ProviderLimits | undefined } {
  const limited = settings.keys.some((key) => key.limits !== undefined && hasLimit(key.limits)) || settings.providers.some((entry) => isLimited(entry.limits));
  const limiter: RateLimiter | undefined = !limited
    ? undefined
    : settings.redis === undefined
      ? new MemoryRateLimiter()
      : new SharedRateLimiter(settings.redis, settings.log);
  return {
    keys: settings.keys.length === 0 ? undefined : new GatewayKeys(settings.keys, limiter),
    providers: limiter === undefined ? undefined : providerLimits(settings.providers, limiter),
  };
}

function isLimited(rule: LimitRule | undefined): rule is LimitRule {
  return rule !== undefined && hasLimit(rule);
}

/** Providers' quotas for the failover loop: subjects `provider:<id>` (ids are case-insensitive). */
function providerLimits(providers: LimitsSettings['providers'], limiter: RateLimiter): ProviderLimits | undefined {
  const rules = new Map<string, LimitRule>();
  for (const entry of providers) if (isLimited(entry.limits)) rules.set(entry.id.toLowerCase(), entry.limits);
  if (rules.size === 0) return undefined;
  return {
    take(provider) {
      const id = provider.toLowerCase();
      const rule = rules.get(id);
      if (rule === undefined) return undefined;
      return limiter.acquire(`provider:${id}`, rule).then((verdict) => {
        if (verdict.allowed) return { allowed: true, release: verdict.release };
        const retryAfterSeconds = seconds(verdict.retryAfterMs);
        return { allowed: false, retryAfterSeconds, message: `skipped: over its configured ${describe(verdict.reason, rule)} (next in ${retryAfterSeconds}s)` };
      });
    },
    recordTokens(provider, tokens) {
      const id = provider.toLowerCase();
      if (rules.get(id)?.tokensPerMinute === undefined) return;
      limiter.addTokens(`provider:${id}`, tokens).catch(() => undefined);
    },
  };
}

/**
 * Admits the request under its key's limits (requests per minute counted here, tokens already used
 * in the window checked, a concurrency slot held until the response closes), or a 429. The
 * `x-ratelimit-*` headers go on the answer either way. Nothing to do for a request without a
 * limited key.
 */
export function takeKeyLimits(context: RequestContext): Promise<void> | undefined {
  const key = admittedKey(context);
  // No promise (and no turn of the event loop) for the usual request, which has no limited key.
  if (key?.limits === undefined) return undefined;
  return admitUnderLimits(context, key.name, key.limits);
}

async function admitUnderLimits(context: RequestContext, name: string, limits: { rule: LimitRule; limiter: RateLimiter }): Promise<void> {
  const { rule, limiter } = limits;
  const verdict = await limiter.acquire(`key:${name}`, rule);
  Object.assign(context.headers, rateLimitHeaders(verdict));
  if (verdict.allowed) {
    onClose(context, verdict.release);
    return;
  }
  const retryAfter = seconds(verdict.retryAfterMs);
  throw new ApiError(429, `This API key is over its ${describe(verdict.reason, rule)}; retry in ${retryAfter}s.`, {
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    headers: { 'retry-after': String(retryAfter) },
  });
}

/**
 * The operation's observer, also counting the tokens each answer used against the key's and the
 * provider's tokens-per-minute limits (the tokens are only known after the answer: post-hoc).
 */
export function withTokenAccounting(observer: OperationObserver, context: RequestContext, policy: RoutingPolicy): OperationObserver {
  const admitted = admittedKey(context);
  const key = admitted?.limits?.rule.tokensPerMinute === undefined ? undefined : { limiter: admitted.limits.limiter, subject: `key:${admitted.name}` };
  const providers = policy.providerLimits;
  if (key === undefined && providers === undefined) return observer;
  const inner = observer.usage;
  return {
    ...observer,
    usage(provider, usage) {
      inner?.(provider, usage);
      const tokens = (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0);
      if (!(tokens > 0)) return;
      key?.limiter.addTokens(key.subject, tokens).catch(() => undefined);
      providers?.recordTokens(provider, tokens);
    },
  };
}

/** The headers OpenAI's clients read (`x-ratelimit-*`), for the windows the key is limited in. */
function rateLimitHeaders(verdict: LimitVerdict): Record<string, string> {
  const headers: Record<string, string> = {};
  const put = (suffix: 'requests' | 'tokens', window: WindowState | undefined): void => {
    if (window === undefined) return;
    headers[`x-ratelimit-limit-${suffix}`] = String(window.limit);
    headers[`x-ratelimit-remaining-${suffix}`] = String(window.remaining);
    headers[`x-ratelimit-reset-${suffix}`] = `${seconds(window.resetMs, 0)}s`;
  };
  put('requests', verdict.requests);
  put('tokens', verdict.tokens);
  return headers;
}

function describe(reason: LimitReason, rule: LimitRule): string {
  if (reason === 'requests') return `limit of ${rule.requestsPerMinute} requests per minute`;
  if (reason === 'tokens') return `limit of ${rule.tokensPerMinute} tokens per minute`;
  return `limit of ${rule.concurrent} requests at once`;
}

/** Whole seconds, rounded up (a client that waits that long is admitted). */
function seconds(ms: number, min = 1): number {
  return Math.max(min, Math.ceil(ms / 1000));
}
