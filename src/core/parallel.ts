import { linkAbort } from './abort.js';

/**
 * Runs `count` jobs in parallel on a shared child signal; the first failure cancels the others
 * (nothing is left running when the caller sees the error).
 */
export async function allOrCancel<T>(count: number, signal: AbortSignal, job: (index: number, signal: AbortSignal) => Promise<T>): Promise<T[]> {
  if (count === 1) return [await job(0, signal)];
  const link = linkAbort(signal);
  try {
    const jobs = Array.from({ length: count }, (_, index) =>
      job(index, link.signal).catch((error: unknown) => {
        link.abort(error);
        throw error;
      }),
    );
    const settled = await Promise.allSettled(jobs);
    const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) throw link.reason ?? failed.reason;
    return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
  } finally {
    link.unlink();
  }
}
