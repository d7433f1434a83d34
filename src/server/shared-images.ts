import type { SharedBlobs } from '../core/shared-blobs.js';
import { logEvent } from './log.js';

/** How long another replica can serve an image made here (its own disk keeps it for good). */
export const DEFAULT_SHARED_IMAGE_TTL_S = 24 * 3600;
/**
 * Largest image shared through Redis. Generated images are a few MB at most; anything far larger
 * is not worth Redis memory (it stays on the disk of the replica that made it).
 */
export const MAX_SHARED_IMAGE_BYTES = 16 * 1024 * 1024;

export interface SharedImagesOptions {
  ttlSeconds?: number;
  maxBytes?: number;
}

/**
 * The generated images other replicas can serve: a copy of each in shared storage under
 * `images:<file name>`, for a limited time. Never fails a save: when the storage is down the image
 * is still on this replica's disk, and the outage is logged once (until a copy succeeds again).
 */
export class SharedImages {
  readonly #blobs: SharedBlobs;
  readonly #ttlSeconds: number;
  readonly #maxBytes: number;
  #failing = false;

  constructor(blobs: SharedBlobs, options: SharedImagesOptions = {}) {
    this.#blobs = blobs;
    this.#ttlSeconds = options.ttlSeconds ?? DEFAULT_SHARED_IMAGE_TTL_S;
    this.#maxBytes = options.maxBytes ?? MAX_SHARED_IMAGE_BYTES;
  }

  /** Copies an image saved locally as `name`; resolves once the copy is stored (or given up). */
  async publish(name: string, bytes: Buffer): Promise<void> {
    if (bytes.length > this.#maxBytes) {
      logEvent({
        level: 'warn',
        event: 'image_not_shared',
        image: name,
        message: `image of ${bytes.length} bytes is over the ${this.#maxBytes}-byte limit of shared storage: served by this replica only`,
      });
      return;
    }
    try {
      await this.#blobs.put(key(name), bytes, this.#ttlSeconds);
      this.#failing = false;
    } catch {
      if (this.#failing) return;
      this.#failing = true;
      logEvent({ level: 'warn', event: 'images_local_only', message: 'shared storage unreachable: new images are served by the replica that made them only' });
    }
  }

  /**
   * The bytes of `name` as another replica stored them; undefined when there are none or they are
   * over the size limit. Rejects when shared storage is unreachable (the image may exist: the
   * caller says "try again", not "no such image").
   */
  async fetch(name: string): Promise<Buffer | undefined> {
    const bytes = await this.#blobs.get(key(name));
    return bytes === undefined || bytes.length > this.#maxBytes ? undefined : bytes;
  }
}

const key = (name: string): string => `images:${name}`;
