import type { ChatMessage } from '../../../core/types.js';
import type { ResponseObject } from './response.js';

/** One stored response: what GET returns, and the conversation a follow-up continues. */
export interface StoredResponse {
  response: ResponseObject;
  /** The chat messages of its input (the previous history included, instructions not) and its output. */
  history: ChatMessage[];
}

/**
 * Where stored responses are kept: this process's memory (ResponseStore), or shared storage beside
 * it when replicas share state (SharedResponseStore). Callers await both methods.
 */
export interface ResponseRepository {
  /** Keeps a finished response; the local copy is there when it returns, a shared copy once the promise settles (it never rejects). */
  put(stored: StoredResponse): void | Promise<void>;
  get(id: string): StoredResponse | undefined | Promise<StoredResponse | undefined>;
}

/**
 * Responses kept for `previous_response_id` and GET /v1/responses/{id}: in memory only (a restart
 * forgets them), at most `maxEntries` (the oldest goes first) and each for `ttlMs` after it was stored.
 */
export class ResponseStore implements ResponseRepository {
  readonly #entries = new Map<string, { stored: StoredResponse; expires: number }>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(maxEntries = 1000, ttlMs = 3_600_000, now: () => number = Date.now) {
    this.#maxEntries = Math.max(1, maxEntries);
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get size(): number {
    this.#sweep();
    return this.#entries.size;
  }

  put(stored: StoredResponse): void {
    this.#sweep();
    const id = stored.response.id;
    this.#entries.delete(id);
    this.#entries.set(id, { stored, expires: this.#now() + this.#ttlMs });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
  }

  get(id: string): StoredResponse | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(id);
      return undefined;
    }
    return entry.stored;
  }

  /** Drops the expired entries: they were stored in order, so the first live one ends the sweep. */
  #sweep(): void {
    const now = this.#now();
    for (const [id, entry] of this.#entries) {
      if (entry.expires > now) break;
      this.#entries.delete(id);
    }
  }
}
