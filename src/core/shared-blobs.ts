/**
 * Values the replicas of a gateway share for a while: bytes under a key, each with its own expiry.
 * Redis implements it (src/state/redis-blobs.ts); the server's stores (generated images, stored
 * responses) use it beside their local copy. Shared storage may be down at any moment: every
 * method then rejects quickly, and the caller keeps working from its local state.
 */
export interface SharedBlobs {
  /** Keeps `value` under `key` for `ttlSeconds` (replacing any earlier value); rejects when the storage is unreachable. */
  put(key: string, value: Buffer, ttlSeconds: number): Promise<void>;
  /** The value under `key`; undefined when there is none (never stored, or expired); rejects when the storage is unreachable. */
  get(key: string): Promise<Buffer | undefined>;
}
