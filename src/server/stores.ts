import type { SharedRedis } from '../state/redis.js';
import { RedisBlobs } from '../state/redis-blobs.js';
import { SharedResponseStore } from './dialects/responses/shared-store.js';
import { ResponseStore, type ResponseRepository } from './dialects/responses/store.js';
import { ImageStore } from './image-store.js';
import { SharedImages } from './shared-images.js';

/** Stored responses: at most this many in a replica's memory… */
const RESPONSES_KEPT = 1000;
/** …each for an hour (their shared copies too). */
const RESPONSE_TTL_MS = 3_600_000;

/** The stores of what the gateway makes and serves again later. */
export interface Stores {
  responses: ResponseRepository;
  images: ImageStore;
}

/**
 * Without Redis: stored responses in memory, generated images on disk, each replica its own.
 * With Redis: the same local stores, plus a copy of everything in Redis, so any replica serves
 * an image or continues a response another one made.
 */
export function createStores(imagesDir: string, redis: SharedRedis | undefined): Stores {
  const local = new ResponseStore(RESPONSES_KEPT, RESPONSE_TTL_MS);
  if (redis === undefined) return { responses: local, images: new ImageStore(imagesDir) };
  const blobs = new RedisBlobs(redis);
  return {
    responses: new SharedResponseStore(local, blobs, { ttlSeconds: RESPONSE_TTL_MS / 1000 }),
    images: new ImageStore(imagesDir, { shared: new SharedImages(blobs) }),
  };
}
