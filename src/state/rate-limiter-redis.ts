import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  leaseTtlMs,
  windowSeconds,
  type LimitReason,
  type LimitRule,
  type LimitVerdict,
  type RateLimiter,
  type WindowState,
  MemoryRateLimiter,
} from './rate-limiter.js';
import type { SharedRedis } from './redis.js';

/**
 * The limits shared by every replica: the algorithm of MemoryRateLimiter in one Lua script per
 * decision, so that the check and the count are one atomic step in Redis (two replicas can never
 * both take the last request of a window). Time is Redis's own (`TIME`): replicas whose clocks
 * differ still agree on the window. Per subject: a hash of one-second buckets for requests, one
 * for tokens (both expire with the window) and a sorted set of concurrency leases, each scored
 * with its expiry (a replica that dies mid-request frees its slots after `leaseTtlMs`).
 */
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local second = math.floor(now / 1000)
local current = string.format('%d', second)
local span = tonumber(ARGV[6])
-- The buckets of the seconds before this one never change again (tokens are always added to the
-- current second), so their sum is computed once per second per key and kept in the field 'c'
-- ("second:sum:oldest"); within a second a decision reads two fields instead of the whole hash.
local function load(key)
  local prev, oldest
  local cache = redis.call('HGET', key, 'c')
  if cache then
    local s, sum, old = string.match(cache, '^(%d+):(%d+):(%-?%d+)$')
    if tonumber(s) == second then prev, oldest = tonumber(sum), tonumber(old) end
  end
  if prev == nil then
    local flat = redis.call('HGETALL', key)
    local stale = {}
    prev, oldest = 0, -1
    for i = 1, #flat, 2 do
      local s = tonumber(flat[i])
      if s ~= nil then
        if s <= second - span then stale[#stale + 1] = flat[i]
        elseif s < second then
          prev = prev + tonumber(flat[i + 1])
          if oldest < 0 or s < oldest then oldest = s end
        end
      end
    end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    redis.call('HSET', key, 'c', current .. ':' .. string.format('%d', prev) .. ':' .. string.format('%d', oldest))
    redis.call('EXPIRE', key, span + 1)
  end
  local now_count = tonumber(redis.call('HGET', key, current) or '0')
  return prev + now_count, oldest, now_count
end
-- Over a limit (the rare path): when enough of the oldest buckets will have left the window.
local function waitBelow(key, used, limit)
  local flat = redis.call('HGETALL', key)
  local list = {}
  for i = 1, #flat, 2 do
    local s = tonumber(flat[i])
    if s ~= nil and s > second - span then list[#list + 1] = { s, tonumber(flat[i + 1]) } end
  end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  for _, bucket in ipairs(list) do
    used = used - bucket[2]
    if used < limit then return math.max(1, (bucket[1] + span) * 1000 - now) end
  end
  return 1000
end
local function reset(oldest, now_count)
  if oldest >= 0 then return math.max(0, (oldest + span) * 1000 - now) end
  if now_count > 0 then return math.max(0, (second + span) * 1000 - now) end
  return 0
end
local rpm, tpm, concurrent = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- Tokens this replica counted since its last call for the subject ride along, counted first.
local carried = tonumber(ARGV[7])
if carried > 0 then
  redis.call('HINCRBY', KEYS[2], current, carried)
  redis.call('EXPIRE', KEYS[2], span + 1)
end
local requestsUsed, requestsOldest, requestsNow = 0, -1, 0
local tokensUsed, tokensOldest, tokensNow = 0, -1, 0
if rpm > 0 then requestsUsed, requestsOldest, requestsNow = load(KEYS[1]) end
if tpm > 0 then tokensUsed, tokensOldest, tokensNow = load(KEYS[2]) end
local held = 0
if concurrent > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  held = redis.call('ZCARD', KEYS[3])
end
-- ARGV[8] requests of this replica ask at once (one script call decides them all): as many as the
-- window has room for are admitted, in order; the rest are refused like one over the limit.
local asking = tonumber(ARGV[8])
local usedBefore, granted = requestsUsed, 0
local verdict, wait = 'ok', 0
if concurrent > 0 and held >= concurrent then verdict, wait = 'concurrent', 1000
elseif rpm > 0 and requestsUsed >= rpm then verdict, wait = 'requests', waitBelow(KEYS[1], requestsUsed, rpm)
elseif tpm > 0 and tokensUsed >= tpm then verdict, wait = 'tokens', waitBelow(KEYS[2], tokensUsed, tpm)
else
  granted = asking
  if rpm > 0 then granted = math.min(granted, rpm - requestsUsed) end
  if concurrent > 0 then granted = math.min(granted, concurrent - held) end
  if rpm > 0 then
    redis.call('HINCRBY', KEYS[1], current, granted)
    requestsUsed, requestsNow = requestsUsed + granted, requestsNow + granted
  end
  if concurrent > 0 then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
    redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
  end
  if granted < asking then verdict, wait = 'requests', waitBelow(KEYS[1], requestsUsed, rpm) end
end
return { verdict, wait, requestsUsed, reset(requestsOldest, requestsNow), tokensUsed, reset(tokensOldest, tokensNow), granted, usedBefore }
`;

const addTokensScript = `
local t = redis.call('TIME')
local second = string.format('%d', tonumber(t[1]))
redis.call('HINCRBY', KEYS[1], second, tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + 1)
return 1
`;

type AcquireReply = [string, number, number, number, number, number, number, number];
/** The reply read as numbers (its first item, the refusal's reason, is read as it is). */
type AcquireNumbers = [number, number, number, number, number, number, number, number];

interface LimitCommands {
  interferenceLimitAcquire(requests: string, tokens: string, held: string, ...args: Array<string | number>): Promise<AcquireReply>;
  interferenceLimitTokens(tokens: string, amount: number, span: number): Promise<number>;
}

/** The shared limiter alone: its promises reject while Redis is down (see `SharedRateLimiter`). */
export class RedisRateLimiter implements RateLimiter {
  readonly #client: Redis & LimitCommands;
  /**
   * Tokens counted since the last script call for each subject: they ride along with the next
   * decision (one round trip per request, not two), or go out within `flushMs` when no request
   * comes. This replica's own next decision always sees them; the others within `flushMs`.
   */
  readonly #pending = new Map<string, number>();
  #flushing: NodeJS.Timeout | undefined;
  readonly #flushMs: number;
  /** Decisions waiting for this turn of the event loop to end, by subject and rule. */
  readonly #queued = new Map<
    string,
    { subject: string; rule: LimitRule; waiters: Array<{ resolve(verdict: LimitVerdict): void; reject(error: unknown): void }> }
  >();
  #scheduled = false;

  constructor(client: Redis, flushMs = 250) {
    this.#flushMs = flushMs;
    // Scripts run by EVALSHA once loaded; ioredis prefixes their keys like any command's.
    client.defineCommand('interferenceLimitAcquire', { numberOfKeys: 3, lua: acquireScript });
    client.defineCommand('interferenceLimitTokens', { numberOfKeys: 1, lua: addTokensScript });
    this.#client = client as Redis & LimitCommands;
  }

  /**
   * Decisions without a concurrency limit are batched: the requests for one subject that arrive in
   * the same turn of the event loop are decided by one script call (its per-call cost, on both
   * sides, shared by all of them), still atomically and in order.
   */
  acquire(subject: string, rule: LimitRule): Promise<LimitVerdict> {
    if (rule.concurrent !== undefined) return this.#decide(subject, rule, 1).then((verdicts) => verdicts[0] as LimitVerdict);
    return new Promise((resolve, reject) => {
      const key = `${subject}\u0000${rule.requestsPerMinute ?? 0}\u0000${rule.tokensPerMinute ?? 0}`;
      let batch = this.#queued.get(key);
      if (batch === undefined) {
        batch = { subject, rule, waiters: [] };
        this.#queued.set(key, batch);
      }
      batch.waiters.push({ resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#decideQueued());
      }
    });
  }

  #decideQueued(): void {
    this.#scheduled = false;
    const batches = [...this.#queued.values()];
    this.#queued.clear();
    for (const { subject, rule, waiters } of batches) {
      this.#decide(subject, rule, waiters.length).then(
        (verdicts) => waiters.forEach((waiter, index) => waiter.resolve(verdicts[index] as LimitVerdict)),
        (error: unknown) => waiters.forEach((waiter) => waiter.reject(error)),
      );
    }
  }

  /** One script call for `asking` requests of a subject: their verdicts, in order. */
  async #decide(subject: string, rule: LimitRule, asking: number): Promise<LimitVerdict[]> {
    const lease = rule.concurrent === undefined ? '' : randomUUID(); // names a concurrency slot, when there is one
    const keys = keysOf(subject);
    const carried = this.#pending.get(subject) ?? 0;
    if (carried > 0) this.#pending.delete(subject);
    let reply: AcquireReply;
    try {
      reply = await this.#client.interferenceLimitAcquire(
        keys.requests,
        keys.tokens,
        keys.held,
        rule.requestsPerMinute ?? 0,
        rule.tokensPerMinute ?? 0,
        rule.concurrent ?? 0,
        lease,
        leaseTtlMs,
        windowSeconds,
        carried,
        asking,
      );
    } catch (error) {
      if (carried > 0) this.#pending.set(subject, (this.#pending.get(subject) ?? 0) + carried); // not counted: keep it for the next call
      throw error;
    }
    const [, wait, requestsUsed, requestsReset, tokensUsed, tokensReset, granted, usedBefore] = reply.map(Number) as AcquireNumbers;
    const tokens = rule.tokensPerMinute === undefined ? {} : { tokens: state(rule.tokensPerMinute, tokensUsed, tokensReset) };
    const requests = (used: number) => (rule.requestsPerMinute === undefined ? {} : { requests: state(rule.requestsPerMinute, used, requestsReset) });
    const verdicts: LimitVerdict[] = [];
    for (let index = 0; index < asking; index++) {
      if (index < granted) {
        verdicts.push({ allowed: true, ...requests(usedBefore + index + 1), ...tokens, release: this.#release(rule, keys.held, lease) });
      } else {
        verdicts.push({ allowed: false, reason: reply[0] as LimitReason, retryAfterMs: wait, ...requests(requestsUsed), ...tokens });
      }
    }
    return verdicts;
  }

  /** Gives a concurrency slot back (once); nothing to give without a concurrency limit. */
  #release(rule: LimitRule, held: string, lease: string): () => void {
    if (rule.concurrent === undefined) return () => undefined;
    let holding = true;
    return () => {
      if (!holding) return;
      holding = false;
      // Lost while Redis is down: the lease then expires on its own (leaseTtlMs).
      this.#client.zrem(held, lease).catch(() => undefined);
    };
  }

  async addTokens(subject: string, tokens: number): Promise<void> {
    if (!(tokens > 0)) return;
    this.#pending.set(subject, (this.#pending.get(subject) ?? 0) + Math.round(tokens));
    this.#flushing ??= setTimeout(() => this.flush(), this.#flushMs).unref();
  }

  /** Sends the tokens no decision carried yet (pipelined: one write for all subjects). */
  async flush(): Promise<void> {
    this.#flushing = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    await Promise.all(
      pending.map(([subject, tokens]) =>
        this.#client.interferenceLimitTokens(keysOf(subject).tokens, tokens, windowSeconds).catch(() => {
          // Redis went away: keep them for when it answers again.
          this.#pending.set(subject, (this.#pending.get(subject) ?? 0) + tokens);
        }),
      ),
    );
  }
}

function keysOf(subject: string): { requests: string; tokens: string; held: string } {
  return { requests: `limits:${subject}:requests`, tokens: `limits:${subject}:tokens`, held: `limits:${subject}:held` };
}

function state(limit: number, used: number, resetMs: number): WindowState {
  return { limit, remaining: Math.max(0, limit - Number(used)), resetMs: Number(resetMs) };
}

/**
 * Redis while it answers, this process's own limits while it does not: requests keep being served
 * through an outage (each replica then enforces the limits alone, so the fleet may admit up to
 * replicas × limit until Redis is back). Said once per outage.
 */
export class SharedRateLimiter implements RateLimiter {
  readonly #redis: SharedRedis;
  readonly #shared: RedisRateLimiter;
  readonly #local = new MemoryRateLimiter();
  readonly #log: (fields: Record<string, unknown>) => void;
  #fallingBack = false;

  constructor(redis: SharedRedis, log: (fields: Record<string, unknown>) => void) {
    this.#redis = redis;
    this.#shared = new RedisRateLimiter(redis.client);
    this.#log = log;
    redis.onChange((up) => {
      if (up && this.#fallingBack) {
        this.#fallingBack = false;
        this.#log({ level: 'info', event: 'rate_limits_shared', message: 'rate limits are shared through Redis again' });
      }
    });
  }

  async acquire(subject: string, rule: LimitRule): Promise<LimitVerdict> {
    if (this.#redis.up) {
      try {
        return await this.#shared.acquire(subject, rule);
      } catch (error) {
        this.#fellBack(error);
      }
    } else this.#fellBack(undefined);
    return this.#local.acquireNow(subject, rule);
  }

  async addTokens(subject: string, tokens: number): Promise<void> {
    if (this.#redis.up) {
      try {
        await this.#shared.addTokens(subject, tokens);
        return;
      } catch (error) {
        this.#fellBack(error);
      }
    } else this.#fellBack(undefined);
    this.#local.addTokensNow(subject, tokens);
  }

  #fellBack(error: unknown): void {
    if (this.#fallingBack) return;
    this.#fallingBack = true;
    this.#log({
      level: 'warn',
      event: 'rate_limits_local',
      message: 'Redis unreachable: rate limits are counted by this replica alone until it is back',
      ...(error === undefined ? {} : { error: error instanceof Error ? error.message : String(error) }),
    });
  }
}
