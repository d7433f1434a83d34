/**
 * Rate limits for gateway keys and providers: requests and tokens in any 60 seconds, and requests in
 * flight at once. The window slides by the second: counts are kept in one-second buckets and a
 * bucket leaves the window 60 s after its second began, so a limit of N admits at most N in any
 * minute (exactly, not estimated), without a burst of 2N at a minute's edge as a fixed window allows.
 *
 * Two implementations share this contract: `MemoryRateLimiter` (one process) and the Redis one
 * (rate-limiter-redis.ts; the same algorithm in one Lua script, exact across replicas).
 */

/** What one key or provider may do; an absent field is no limit of that kind. */
export interface LimitRule {
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  concurrent?: number | undefined;
}

/** One window's state after the decision, for the `x-ratelimit-*` headers. */
export interface WindowState {
  limit: number;
  remaining: number;
  /** Until the window is back to its full budget (the oldest counted second leaves it), ms. */
  resetMs: number;
}

export type LimitReason = 'requests' | 'tokens' | 'concurrent';

export type LimitVerdict =
  | {
      allowed: true;
      requests?: WindowState;
      tokens?: WindowState;
      /** Gives the concurrency slot back (idempotent; nothing to do without a `concurrent` limit). */
      release(): void;
    }
  | {
      allowed: false;
      reason: LimitReason;
      /** Until a request would be admitted again, ms. */
      retryAfterMs: number;
      requests?: WindowState;
      tokens?: WindowState;
    };

export interface RateLimiter {
  /**
   * Admits one request for `subject` (`key:team-a`, `provider:groq`) under `rule`, or says why not:
   * counts it in the requests window and holds a concurrency slot. Tokens are checked as already
   * used: they are only known after the answer (`addTokens`).
   */
  acquire(subject: string, rule: LimitRule): Promise<LimitVerdict>;
  /** Counts tokens an answer used (its usage as the upstream reported it) in the window. */
  addTokens(subject: string, tokens: number): Promise<void>;
}

/** Seconds a window spans. */
export const windowSeconds = 60;

/**
 * How long a concurrency slot is held at most when its release never comes (a replica that died
 * mid-request): longer than a request may run in practice, short enough to heal.
 */
export const leaseTtlMs = 15 * 60_000;

/** One-second buckets, oldest first (Map keeps insertion order and seconds only grow). */
type Buckets = Map<number, number>;

interface SubjectState {
  requests: Buckets;
  tokens: Buckets;
  held: number;
}

/**
 * The limits of one process. Subjects are the configured keys and providers: a bounded set, so
 * their state is never evicted; each holds at most 60 buckets per window.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly #subjects = new Map<string, SubjectState>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  acquire(subject: string, rule: LimitRule): Promise<LimitVerdict> {
    return Promise.resolve(this.acquireNow(subject, rule));
  }

  /** The decision itself, synchronous: nothing can interleave between the check and the count. */
  acquireNow(subject: string, rule: LimitRule): LimitVerdict {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    const state = this.#state(subject);
    prune(state.requests, second);
    prune(state.tokens, second);
    const requestsUsed = sum(state.requests);
    const tokensUsed = sum(state.tokens);
    const windows = (requestsNow: number) => ({
      ...(rule.requestsPerMinute === undefined ? {} : { requests: windowState(rule.requestsPerMinute, requestsNow, state.requests, now) }),
      ...(rule.tokensPerMinute === undefined ? {} : { tokens: windowState(rule.tokensPerMinute, tokensUsed, state.tokens, now) }),
    });
    if (rule.concurrent !== undefined && state.held >= rule.concurrent) {
      return { allowed: false, reason: 'concurrent', retryAfterMs: 1000, ...windows(requestsUsed) };
    }
    if (rule.requestsPerMinute !== undefined && requestsUsed >= rule.requestsPerMinute) {
      return {
        allowed: false,
        reason: 'requests',
        retryAfterMs: waitBelow(state.requests, requestsUsed, rule.requestsPerMinute, now),
        ...windows(requestsUsed),
      };
    }
    if (rule.tokensPerMinute !== undefined && tokensUsed >= rule.tokensPerMinute) {
      return { allowed: false, reason: 'tokens', retryAfterMs: waitBelow(state.tokens, tokensUsed, rule.tokensPerMinute, now), ...windows(requestsUsed) };
    }
    if (rule.requestsPerMinute !== undefined) state.requests.set(second, (state.requests.get(second) ?? 0) + 1);
    let release = noop;
    if (rule.concurrent !== undefined) {
      state.held += 1;
      let held = true;
      release = () => {
        if (!held) return;
        held = false;
        state.held -= 1;
      };
    }
    return { allowed: true, ...windows(requestsUsed + 1), release };
  }

  addTokens(subject: string, tokens: number): Promise<void> {
    this.addTokensNow(subject, tokens);
    return Promise.resolve();
  }

  addTokensNow(subject: string, tokens: number): void {
    if (!(tokens > 0)) return;
    const second = Math.floor(this.#now() / 1000);
    const state = this.#state(subject);
    prune(state.tokens, second);
    state.tokens.set(second, (state.tokens.get(second) ?? 0) + tokens);
  }

  #state(subject: string): SubjectState {
    let state = this.#subjects.get(subject);
    if (state === undefined) {
      state = { requests: new Map(), tokens: new Map(), held: 0 };
      this.#subjects.set(subject, state);
    }
    return state;
  }
}

function noop(): void {}

/** Drops the buckets that left the window (older than the last 60 seconds, this one included). */
function prune(buckets: Buckets, second: number): void {
  for (const bucket of buckets.keys()) {
    if (bucket > second - windowSeconds) break;
    buckets.delete(bucket);
  }
}

function sum(buckets: Buckets): number {
  let total = 0;
  for (const count of buckets.values()) total += count;
  return total;
}

/** How long until enough old buckets have left the window for `used` to fall below `limit`. */
function waitBelow(buckets: Buckets, used: number, limit: number, now: number): number {
  let left = used;
  for (const [second, count] of buckets) {
    left -= count;
    if (left < limit) return Math.max(1, (second + windowSeconds) * 1000 - now);
  }
  return 1000;
}

function windowState(limit: number, used: number, buckets: Buckets, now: number): WindowState {
  const oldest = buckets.keys().next();
  const resetMs = oldest.done === true ? 0 : Math.max(0, (oldest.value + windowSeconds) * 1000 - now);
  return { limit, remaining: Math.max(0, limit - used), resetMs };
}
