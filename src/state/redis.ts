import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * The one Redis connection of a replica (plus its pub/sub twin), for state the replicas share:
 * provider health, rate limits, generated images, stored responses. Redis being down never fails a
 * request: commands fail fast (no offline queue), callers fall back to local state, ioredis
 * reconnects by itself and `onChange` tells when sharing stops and resumes.
 */
export class SharedRedis {
  /** This process among the replicas: messages it published itself are ignored on receipt. */
  readonly replicaId = randomUUID();
  readonly client: Redis;
  readonly #subscriber: Redis;
  readonly #handlers = new Map<string, Array<(message: string) => void>>();
  readonly #listeners = new Set<(up: boolean) => void>();
  readonly #log: (event: string, fields: Record<string, unknown>) => void;
  #up = false;
  #closed = false;

  constructor(url: string, log: (event: string, fields: Record<string, unknown>) => void, prefix = 'interference:') {
    this.#log = log;
    const options = {
      lazyConnect: true,
      keyPrefix: prefix,
      // Fail fast while down: the caller serves from local state instead of waiting in a queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      commandTimeout: 1000,
      // No auto-pipelining: it would hold a command until the next tick, after the answer that
      // relies on it (a stored response another replica is asked for at once). The rate limiter
      // batches its own decisions instead.
      // Keep trying, at most every 2 s: sharing resumes on its own when Redis is back.
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    };
    this.client = new Redis(url, options);
    // Pub/sub needs its own connection; the key prefix does not apply to channels.
    this.#subscriber = new Redis(url, { ...options, keyPrefix: undefined, enableOfflineQueue: true });
    this.client.on('ready', () => this.#set(true));
    this.client.on('close', () => this.#set(false));
    // Errors arrive as events too (refused connections while down): the state change says it once.
    this.client.on('error', () => undefined);
    this.#subscriber.on('error', () => undefined);
    this.#subscriber.on('message', (channel: string, raw: string) => {
      const separator = raw.indexOf(' ');
      if (separator === -1 || raw.slice(0, separator) === this.replicaId) return;
      for (const handler of this.#handlers.get(channel) ?? []) handler(raw.slice(separator + 1));
    });
  }

  /** Whether commands reach Redis now. */
  get up(): boolean {
    return this.#up;
  }

  /** First connection: waits up to `timeoutMs`; starting while Redis is down is allowed (local state until it is up). */
  async connect(timeoutMs = 2000): Promise<boolean> {
    const connected = Promise.all([this.client.connect(), this.#subscriber.connect()]).then(
      () => true,
      () => false,
    );
    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    return Promise.race([connected, timer]);
  }

  onChange(listener: (up: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells the other replicas; lost while Redis is down (each replica then keeps its own view). */
  publish(channel: string, message: string): void {
    if (!this.#up) return;
    this.client.publish(this.#channel(channel), `${this.replicaId} ${message}`).catch(() => undefined);
  }

  /** Messages other replicas publish on `channel`. */
  subscribe(channel: string, handler: (message: string) => void): void {
    const full = this.#channel(channel);
    const handlers = this.#handlers.get(full);
    if (handlers !== undefined) {
      handlers.push(handler);
      return;
    }
    this.#handlers.set(full, [handler]);
    this.#subscriber.subscribe(full).catch(() => undefined); // re-subscribed by ioredis after a reconnect
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await Promise.all([this.client.quit().catch(() => this.client.disconnect()), this.#subscriber.quit().catch(() => this.#subscriber.disconnect())]);
  }

  #channel(name: string): string {
    return `interference:${name}`;
  }

  #set(up: boolean): void {
    if (up === this.#up || this.#closed) return;
    this.#up = up;
    this.#log(up ? 'redis_up' : 'redis_down', up ? { message: 'shared state on' } : { message: 'Redis unreachable: serving from local state; reconnecting' });
    for (const listener of this.#listeners) listener(up);
  }
}
