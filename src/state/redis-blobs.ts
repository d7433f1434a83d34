import type { SharedBlobs } from '../core/shared-blobs.js';
import type { SharedRedis } from './redis.js';

/**
 * SharedBlobs in Redis: one string key per value (under the connection's `interference:` prefix),
 * with its expiry set by the same command. While Redis is down the commands fail fast (the
 * connection has no offline queue), so callers learn it at once and use their local copy.
 */
export class RedisBlobs implements SharedBlobs {
  readonly #redis: SharedRedis;

  constructor(redis: SharedRedis) {
    this.#redis = redis;
  }

  async put(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    if (!this.#redis.up) throw new Error('Redis is down');
    await this.#redis.client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
  }

  async get(key: string): Promise<Buffer | undefined> {
    if (!this.#redis.up) throw new Error('Redis is down');
    return (await this.#redis.client.getBuffer(key)) ?? undefined;
  }
}
