/**
 * The Redis rate limiter against a real redis-server: the same decisions as the in-memory one
 * (requests, tokens, concurrency, remaining and reset), also across a second boundary, where the
 * script's cached sum of the earlier seconds is recomputed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisRateLimiter } from '../src/state/rate-limiter-redis.js';
import { MemoryRateLimiter, type LimitVerdict, type RateLimiter } from '../src/state/rate-limiter.js';
import { SharedRedis } from '../src/state/redis.js';
import { startRedis, type RedisServer } from './support/redis.js';

describe('the Redis rate limiter decides as the in-memory one does', () => {
  let server: RedisServer;
  let redis: SharedRedis;
  let shared: RateLimiter;
  before(async () => {
    server = await startRedis();
    redis = new SharedRedis(server.url, () => undefined, `limiter-test-${process.pid}:`);
    assert.equal(await redis.connect(), true);
    shared = new RedisRateLimiter(redis.client);
  });
  after(async () => {
    await redis.close();
    await server.stop();
  });

  /** What a test compares: the decision and the windows, with times reduced to "within the window". */
  const shape = (verdict: LimitVerdict) => ({
    allowed: verdict.allowed,
    reason: verdict.allowed ? null : verdict.reason,
    retry: verdict.allowed ? null : verdict.retryAfterMs > 0 && verdict.retryAfterMs <= 60_000,
    requests:
      verdict.requests === undefined
        ? null
        : { remaining: verdict.requests.remaining, reset: verdict.requests.resetMs > 0 && verdict.requests.resetMs <= 60_000 },
    tokens:
      verdict.tokens === undefined ? null : { remaining: verdict.tokens.remaining, reset: verdict.tokens.resetMs >= 0 && verdict.tokens.resetMs <= 60_000 },
  });

  async function both(run: (limiter: RateLimiter, subject: string) => Promise<unknown[]>, name: string): Promise<void> {
    const memory = await run(new MemoryRateLimiter(), name);
    const viaRedis = await run(shared, name);
    assert.deepEqual(viaRedis, memory);
  }

  test('requests per minute: remaining counts down, then a refusal with a wait inside the window', async () => {
    await both(async (limiter, subject) => {
      const out = [];
      for (let index = 0; index < 4; index++) out.push(shape(await limiter.acquire(subject, { requestsPerMinute: 3 })));
      return out;
    }, 'rpm');
  });

  test('requests arriving at once are decided together, in order: exactly as many as there is room for', async () => {
    await both(async (limiter, subject) => {
      const verdicts = await Promise.all(Array.from({ length: 5 }, () => limiter.acquire(subject, { requestsPerMinute: 3, tokensPerMinute: 1000 })));
      return verdicts.map(shape);
    }, 'burst');
  });

  test('tokens per minute: counted from what is added after each answer', async () => {
    await both(async (limiter, subject) => {
      const rule = { tokensPerMinute: 10 };
      const out = [shape(await limiter.acquire(subject, rule))];
      await limiter.addTokens(subject, 7);
      out.push(shape(await limiter.acquire(subject, rule)));
      await limiter.addTokens(subject, 5);
      out.push(shape(await limiter.acquire(subject, rule)));
      return out;
    }, 'tpm');
  });

  test('concurrent: a slot is held until released', async () => {
    await both(async (limiter, subject) => {
      const rule = { concurrent: 1 };
      const first = await limiter.acquire(subject, rule);
      const second = await limiter.acquire(subject, rule);
      if (first.allowed) first.release();
      const third = await limiter.acquire(subject, rule);
      if (third.allowed) third.release();
      return [shape(first), shape(second), shape(third)];
    }, 'concurrent');
  });

  test('the earlier seconds still count after a second boundary', async () => {
    const rule = { requestsPerMinute: 4, tokensPerMinute: 100 };
    for (let index = 0; index < 2; index++) assert.equal((await shared.acquire('boundary', rule)).allowed, true);
    await shared.addTokens('boundary', 30);
    await sleep(1100); // into the next second: the script recomputes its cached sum
    const next = await shared.acquire('boundary', rule);
    assert.equal(next.allowed, true);
    assert.equal(next.requests?.remaining, 1);
    assert.equal(next.tokens?.remaining, 70);
    assert.equal((await shared.acquire('boundary', rule)).requests?.remaining, 0);
    const refused = await shared.acquire('boundary', rule);
    assert.equal(refused.allowed, false);
    assert.equal(refused.allowed ? null : refused.reason, 'requests');
  });
});
