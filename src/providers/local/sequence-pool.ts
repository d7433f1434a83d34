/**
 * A FIFO queue in front of a context's sequences. The context is created with
 * `sequences: parallel`; a request takes a fresh sequence (so the token meter counts the whole
 * prompt) and disposes it when done, which frees the slot for the next waiter. Concurrent
 * requests beyond `parallel` wait here instead of failing with "No sequences left".
 */
import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

export interface Disposable {
  dispose(): Promise<void>;
}

export interface Lease<T> {
  readonly sequence: T;
  /** Disposes the sequence and hands its slot to the next waiter. Safe to call twice. */
  release(): Promise<void>;
}

interface Waiter<T> {
  resolve(lease: Lease<T>): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class SequencePool<T extends Disposable = LlamaContextSequence> {
  readonly size: number;
  private readonly create: () => T;
  private readonly waiters: Waiter<T>[] = [];
  private inUse = 0;
  private closedReason: Error | undefined;

  constructor(options: { size: number; create: () => T }) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError('pool size must be a positive integer');
    this.size = options.size;
    this.create = options.create;
  }

  /** Sequences of `context` (created with `sequences: size`). */
  static forContext(context: LlamaContext, size: number): SequencePool<LlamaContextSequence> {
    return new SequencePool({ size, create: () => context.getSequence() });
  }

  /** Requests holding a sequence now. */
  get active(): number {
    return this.inUse;
  }

  /** Requests queued for a sequence. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * A sequence as soon as one is free, in arrival order. Rejects with `signal.reason` if the
   * signal aborts first (the waiter leaves the queue), or when the pool is closed.
   */
  acquire(signal?: AbortSignal): Promise<Lease<T>> {
    if (this.closedReason !== undefined) return Promise.reject(this.closedReason);
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (this.inUse < this.size && this.waiters.length === 0) {
      try {
        return Promise.resolve(this.lease());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<Lease<T>>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Rejects every waiter; later `acquire` calls reject too. Leased sequences stay with their holders. */
  close(reason: Error = new Error('sequence pool closed')): void {
    this.closedReason = reason;
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
  }

  /** Takes a slot and creates its sequence; the slot is given back if creation throws. */
  private lease(): Lease<T> {
    this.inUse++;
    let sequence: T;
    try {
      sequence = this.create();
    } catch (error) {
      this.inUse--;
      throw error;
    }
    let released = false;
    return {
      sequence,
      release: async () => {
        if (released) return;
        released = true;
        try {
          await sequence.dispose();
        } finally {
          this.inUse--;
          this.drain();
        }
      },
    };
  }

  private drain(): void {
    while (this.inUse < this.size && this.closedReason === undefined) {
      const waiter = this.waiters.shift();
      if (waiter === undefined) return;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      try {
        waiter.resolve(this.lease());
      } catch (error) {
        waiter.reject(error);
      }
    }
  }
}
