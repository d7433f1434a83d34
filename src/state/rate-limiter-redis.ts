import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { leaseTtlMs, windowSeconds, type LimitRule, type LimitVerdict, type RateLimiter, type WindowState, MemoryRateLimiter } from './rate-limiter.js';
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
local span = tonumber(ARGV[6])
local function load(key)
  local flat = redis.call('HGETALL', key)
  local list, used, stale = {}, 0, {}
  for i = 1, #flat, 2 do
    local s, c = tonumber(flat[i]), tonumber(flat[i + 1])
    if s <= second - span then stale[#stale + 1] = flat[i] else list[#list + 1] = { s, c }; used = used + c end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list, used
end
local function waitBelow(list, used, limit)
  for _, bucket in ipairs(list) do
    used = used - bucket[2]
    if used < limit then return math.max(1, (bucket[1] + span) * 1000 - now) end
  end
  return 1000
end
local function reset(list)
  if #list == 0 then return 0 end
  return math.max(0, (list[1][1] + span) * 1000 - now)
end
local rpm, tpm, concurrent = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local requests, requestsUsed = load(KEYS[1])
local tokens, tokensUsed = load(KEYS[2])
local held = 0
if concurrent > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  held = redis.call('ZCARD', KEYS[3])
end
local verdict, wait = 'ok', 0
if concurrent > 0 and held >= concurrent then verdict, wait = 'concurrent', 1000
elseif rpm > 0 and requestsUsed >= rpm then verdict, wait = 'requests', waitBelow(requests, requestsUsed, rpm)
elseif tpm > 0 and tokensUsed >= tpm then verdict, wait = 'tokens', waitBelow(tokens, tokensUsed, tpm)
end
if verdict == 'ok' then
  if rpm > 0 then
    redis.call('HINCRBY', KEYS[1], string.format('%d', second), 1)
    redis.call('EXPIRE', KEYS[1], span + 1)
    requestsUsed = requestsUsed + 1
    if #requests == 0 then requests = { { second, 1 } } end
  end
  if concurrent > 0 then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
    redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
  end
end
return { verdict, wait, requestsUsed, reset(requests), tokensUsed, reset(tokens) }
`;

const addTokensScript = `
local t = redis.call('TIME')
local second = string.format('%d', tonumber(t[1]))
redis.call('HINCRBY', KEYS[1], second, tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + 1)
return 1
`;

type AcquireReply = [string, number, number, number, number, number];

interface LimitCommands {
  interferenceLimitAcquire(requests: string, tokens: string, held: string, ...args: Array<string | number>): Promise<AcquireReply>;
  interferenceLimitTokens(tokens: string, amount: number, span: number): Promise<number>;
}

/** The shared limiter alone: its promises reject while Redis is down (see `SharedRateLimiter`). */
export class RedisRateLimiter implements RateLimiter {
  readonly #client: Redis & LimitCommands;

  constructor(client: Redis) {
    // Scripts run by EVALSHA once loaded; ioredis prefixes their keys like any command's.
    client.defineCommand('interferenceLimitAcquire', { numberOfKeys: 3, lua: acquireScript });
    client.defineCommand('interferenceLimitTokens', { numberOfKeys: 1, lua: addTokensScript });
    this.#client = client as Redis & LimitCommands;
  }

  async acquire(subject: string, rule: LimitRule): Promise<LimitVerdict> {
    const lease = randomUUID();
    const keys = keysOf(subject);
    const reply = await this.#client.interferenceLimitAcquire(
      keys.requests,
      keys.tokens,
      keys.held,
      rule.requestsPerMinute ?? 0,
      rule.tokensPerMinute ?? 0,
      rule.concurrent ?? 0,
      lease,
      leaseTtlMs,
      windowSeconds,
    );
    const [verdict, wait, requestsUsed, requestsReset, tokensUsed, tokensReset] = reply;
    const windows: { requests?: WindowState; tokens?: WindowState } = {};
    if (rule.requestsPerMinute !== undefined) windows.requests = state(rule.requestsPerMinute, requestsUsed, requestsReset);
    if (rule.tokensPerMinute !== undefined) windows.tokens = state(rule.tokensPerMinute, tokensUsed, tokensReset);
    if (verdict !== 'ok') return { allowed: false, reason: verdict as 'requests' | 'tokens' | 'concurrent', retryAfterMs: Number(wait), ...windows };
    let release = (): void => undefined;
    if (rule.concurrent !== undefined) {
      let held = true;
      release = () => {
        if (!held) return;
        held = false;
        // Lost while Redis is down: the lease then expires on its own (leaseTtlMs).
        this.#client.zrem(keys.held, lease).catch(() => undefined);
      };
    }
    return { allowed: true, ...windows, release };
  }

  async addTokens(subject: string, tokens: number): Promise<void> {
    if (!(tokens > 0)) return;
    await this.#client.interferenceLimitTokens(keysOf(subject).tokens, Math.round(tokens), windowSeconds);
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
