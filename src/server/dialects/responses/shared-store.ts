import { ApiError } from '../../../core/errors.js';
import type { SharedBlobs } from '../../../core/shared-blobs.js';
import { logEvent } from '../../log.js';
import type { ResponseRepository, ResponseStore, StoredResponse } from './store.js';

/** The ids this gateway makes (`newId('resp')`): only those are looked up in shared storage. */
const RESPONSE_ID = /^resp_[0-9a-f]{48}$/;
/**
 * Largest stored response (with its history) copied to shared storage. A conversation grows with
 * every turn; past this it is continued only through the replica that holds it in memory.
 */
export const MAX_SHARED_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface SharedResponseStoreOptions {
  /** How long a shared copy lives: the same as the local store's. */
  ttlSeconds: number;
  maxBytes?: number;
}

/**
 * Stored responses shared by replicas: each one is kept in this process's memory (the local store,
 * bounded as without Redis) and copied to shared storage under `responses:<id>` with the same
 * expiry, so GET /v1/responses/{id} and `previous_response_id` work through any replica. Lookups
 * try memory first. While shared storage is down, new responses live in memory only (logged once
 * per outage) and still work through the replica that made them.
 */
export class SharedResponseStore implements ResponseRepository {
  readonly #local: ResponseStore;
  readonly #blobs: SharedBlobs;
  readonly #ttlSeconds: number;
  readonly #maxBytes: number;
  #failing = false;

  constructor(local: ResponseStore, blobs: SharedBlobs, options: SharedResponseStoreOptions) {
    this.#local = local;
    this.#blobs = blobs;
    this.#ttlSeconds = options.ttlSeconds;
    this.#maxBytes = options.maxBytes ?? MAX_SHARED_RESPONSE_BYTES;
  }

  put(stored: StoredResponse): Promise<void> {
    // In memory at once (synchronously): this replica can continue it whatever happens next.
    this.#local.put(stored);
    const id = stored.response.id;
    const json = Buffer.from(JSON.stringify(stored));
    if (json.length > this.#maxBytes) {
      logEvent({
        level: 'warn',
        event: 'response_not_shared',
        response_id: id,
        message: `stored response of ${json.length} bytes is over the ${this.#maxBytes}-byte limit of shared storage: kept by this replica only`,
      });
      return Promise.resolve();
    }
    return this.#blobs.put(key(id), json, this.#ttlSeconds).then(
      () => {
        if (!this.#failing) return;
        this.#failing = false;
        logEvent({ level: 'info', event: 'responses_shared', message: 'shared storage reachable again: stored responses are shared by the replicas' });
      },
      () => {
        if (this.#failing) return;
        this.#failing = true;
        logEvent({
          level: 'warn',
          event: 'responses_local_only',
          message: "shared storage unreachable: new stored responses are kept in this replica's memory only (fetch and continue them through it)",
        });
      },
    );
  }

  async get(id: string): Promise<StoredResponse | undefined> {
    const local = this.#local.get(id);
    if (local !== undefined || !RESPONSE_ID.test(id)) return local;
    let bytes: Buffer | undefined;
    try {
      bytes = await this.#blobs.get(key(id));
    } catch (error) {
      // Not a 404: the response may exist on another replica. SDKs retry a 503 by themselves.
      const apiError = new ApiError(503, `Response '${id}' is not on this replica and shared storage is unreachable; try again shortly.`, {
        code: 'shared_storage_unavailable',
        headers: { 'retry-after': '5' },
      });
      apiError.cause = error;
      throw apiError;
    }
    return bytes === undefined || bytes.length > this.#maxBytes ? undefined : parseStored(bytes, id);
  }
}

const key = (id: string): string => `responses:${id}`;

/** A shared copy read back; anything that is not a stored response with this id counts as absent. */
function parseStored(bytes: Buffer, id: string): StoredResponse | undefined {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { response, history } = value as Partial<StoredResponse>;
  if (typeof response !== 'object' || response === null || response.id !== id || !Array.isArray(history)) return undefined;
  return { response, history };
}
