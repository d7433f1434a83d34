import { completionFromChunks, chunksFromCompletion } from './aggregate.js';
import { UpstreamError } from './errors.js';
import { asUpstreamError, failover, type AttemptRecord, type RoutingPolicy } from './failover.js';
import { hasContent, normalizeChunk, normalizeCompletion } from './normalize.js';
import type { Attempt, Plan } from './selection.js';
import type { ChatChunk, ChatCompletion, ChatRequest } from './types.js';

export type ChatOutcome =
  | { type: 'completion'; provider: string; completion: ChatCompletion; attempts: AttemptRecord[] }
  | {
      type: 'stream';
      provider: string;
      /** Chunks already read (up to and including the first with content). */
      head: ChatChunk[];
      /** The rest; `return()` cancels the upstream. */
      rest: AsyncIterator<ChatChunk>;
      attempts: AttemptRecord[];
      /** Normalizes later chunks the same way as `head`. */
      normalize: (chunk: ChatChunk) => ChatChunk;
    };

/**
 * Runs the plan's attempts in order until one answers. A failure before the first content
 * moves on to the next provider; nothing has been sent to the client yet, so the client still
 * gets a real status when all fail.
 */
export async function runChat(plan: Plan, request: ChatRequest, clientSignal: AbortSignal, policy: RoutingPolicy): Promise<ChatOutcome> {
  const stream = request.stream === true;
  const { value, provider, attempts } = await failover(plan, clientSignal, policy, (attempt, signal, release) =>
    tryAttempt(attempt, request, stream, signal, release, (error) => policy.health.record(attempt.entry.provider.id, error.kind, 0)),
  );
  return { ...value, provider, attempts };
}

type AttemptOutcome =
  | { type: 'completion'; completion: ChatCompletion }
  | { type: 'stream'; head: ChatChunk[]; rest: AsyncIterator<ChatChunk>; normalize: (chunk: ChatChunk) => ChatChunk };

async function tryAttempt(
  attempt: Attempt,
  request: ChatRequest,
  stream: boolean,
  signal: AbortSignal,
  release: () => void,
  /** A failure after content was sent: not a failover any more, but the provider's health hears of it. */
  onLateFailure: (error: UpstreamError) => void,
): Promise<AttemptOutcome> {
  const provider = attempt.entry.provider;
  const call = { request: { ...request, model: attempt.model, stream }, apiKey: attempt.apiKey, signal };
  if (provider.chat === undefined) throw new UpstreamError('bad_request', `${provider.id} does not do chat completions`);
  const result = await provider.chat(call);
  if (!stream) {
    try {
      const completion = result.type === 'completion' ? result.completion : await completionFromChunks(result.chunks);
      return { type: 'completion', completion: normalizeCompletion(completion, provider.id, attempt.model) };
    } finally {
      release();
    }
  }
  const normalize = (chunk: ChatChunk): ChatChunk => normalizeChunk(chunk, provider.id, attempt.model);
  const source: AsyncIterable<ChatChunk> = result.type === 'stream' ? result.chunks : fromArray(chunksFromCompletion(result.completion));
  const iterator = source[Symbol.asyncIterator]();
  const head: ChatChunk[] = [];
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) {
        if (head.length === 0) throw new UpstreamError('bad_response', 'the upstream stream ended without any chunk');
        break;
      }
      head.push(normalize(next.value));
      if (hasContent(next.value)) break;
    }
  } catch (error) {
    await iterator.return?.().catch(() => undefined);
    throw error;
  }
  // The client signal stays linked to this attempt for the rest of the stream.
  const rest: AsyncIterator<ChatChunk> = {
    next: async () => {
      try {
        return await iterator.next();
      } catch (caught) {
        const error = asUpstreamError(caught, attempt);
        if (!signal.aborted) onLateFailure(error);
        throw error;
      }
    },
    return: async (value?: unknown) => {
      release();
      return (await iterator.return?.(value)) ?? { done: true, value: undefined };
    },
  };
  return { type: 'stream', head, rest, normalize };
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
