import { completionFromChunks, chunksFromCompletion } from './aggregate.js';
import { ApiError, UpstreamError, type FailureKind } from './errors.js';
import { hasContent, normalizeChunk, normalizeCompletion } from './normalize.js';
import type { Attempt, Plan } from './selection.js';
import type { ChatChunk, ChatCompletion, ChatRequest } from './types.js';

/** What happened to one provider during a request (for logs, headers and error messages). */
export interface AttemptRecord {
  provider: string;
  outcome: 'ok' | FailureKind;
  status?: number;
  message?: string;
  ms: number;
}

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
export async function runChat(plan: Plan, request: ChatRequest, clientSignal: AbortSignal): Promise<ChatOutcome> {
  const stream = request.stream === true;
  const { value, provider, attempts } = await failover(plan, clientSignal, (attempt, signal, release) =>
    tryAttempt(attempt, request, stream, signal, release),
  );
  return { ...value, provider, attempts };
}

/**
 * The failover loop shared by chat and images. `run` gets a signal that aborts when the client
 * leaves (or the attempt is abandoned) and `release`, which detaches that signal from the client:
 * called by `run` once the attempt is over (a stream keeps it until its end).
 */
export async function failover<T>(
  plan: Plan,
  clientSignal: AbortSignal,
  run: (attempt: Attempt, signal: AbortSignal, release: () => void) => Promise<T>,
): Promise<{ value: T; provider: string; attempts: AttemptRecord[] }> {
  const records: AttemptRecord[] = [];
  const failures: UpstreamError[] = [];
  for (const attempt of plan.attempts) {
    const provider = attempt.entry.provider.id;
    if (clientSignal.aborted) throw new UpstreamError('aborted', 'the client went away');
    if (attempt.blocked !== null) {
      const error = new UpstreamError(attempt.blocked.kind, attempt.blocked.message);
      records.push({ provider, outcome: error.kind, message: error.message, ms: 0 });
      failures.push(error);
      continue;
    }
    const started = performance.now();
    const controller = new AbortController();
    const onClientAbort = (): void => controller.abort(new UpstreamError('aborted', 'the client went away'));
    clientSignal.addEventListener('abort', onClientAbort, { once: true });
    const release = (): void => clientSignal.removeEventListener('abort', onClientAbort);
    try {
      const value = await run(attempt, controller.signal, release);
      records.push({ provider, outcome: 'ok', ms: elapsed(started) });
      return { value, provider, attempts: records };
    } catch (caught) {
      release();
      controller.abort();
      const error = asUpstreamError(caught, attempt);
      records.push({ provider, outcome: error.kind, ...(error.status ? { status: error.status } : {}), message: error.message, ms: elapsed(started) });
      if (error.kind === 'aborted' && clientSignal.aborted) throw error;
      failures.push(error);
    }
  }
  throw finalError(records, failures);
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
        throw asUpstreamError(caught, attempt);
      }
    },
    return: async (value?: unknown) => {
      release();
      return (await iterator.return?.(value)) ?? { done: true, value: undefined };
    },
  };
  return { type: 'stream', head, rest, normalize };
}

function asUpstreamError(caught: unknown, attempt: Attempt): UpstreamError {
  const error = caught instanceof UpstreamError ? caught : new UpstreamError('bad_response', caught instanceof Error ? caught.message : String(caught));
  if (attempt.apiKey === undefined || !error.message.includes(attempt.apiKey)) return error;
  return new UpstreamError(error.kind, redact(error.message, [attempt.apiKey]), {
    ...(error.status === undefined ? {} : { status: error.status }),
    code: error.code,
    ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }),
  });
}

/** Replaces every occurrence of each secret with `[redacted]`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('[redacted]');
  return out;
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

const codeForKind: Record<FailureKind, string> = {
  connection: 'upstream_unreachable',
  timeout: 'upstream_timeout',
  server: 'upstream_error',
  rate_limit: 'rate_limit_exceeded',
  auth: 'invalid_api_key',
  bad_response: 'upstream_bad_response',
  model_not_found: 'model_not_found',
  bad_request: 'upstream_rejected_request',
  unavailable: 'provider_unavailable',
  aborted: 'client_closed_request',
};

/** Every attempt failed; carries the attempt log for headers and the log line. */
export class AllFailedError extends ApiError {
  attempts: AttemptRecord[] = [];
}

/** One error for the client: every provider's failure, under the most telling status. */
function finalError(records: AttemptRecord[], failures: UpstreamError[]): AllFailedError {
  const kinds = new Set(failures.map((failure) => failure.kind));
  const only = kinds.size === 1 ? [...kinds][0] : undefined;
  let status = 502;
  if (only === 'rate_limit') status = 429;
  else if (only === 'auth') status = 401;
  else if (only === 'model_not_found') status = 404;
  else if (only === 'bad_request') status = failures.find((f) => f.status !== undefined)?.status ?? 400;
  else if (only === 'timeout') status = 504;
  else if (only === 'unavailable') status = 503;
  const failed = records.filter((record) => record.outcome !== 'ok');
  const lines = failed.map((record) => {
    const text = record.message ?? record.outcome;
    return text.startsWith(`${record.provider} `) ? text : `${record.provider}: ${text}`;
  });
  const message =
    failed.length === 1
      ? `${lines[0]}`
      : `All ${failed.length} providers failed. ${lines.join(' | ')}`;
  const headers: Record<string, string> = {};
  if (status === 429) {
    const waits = failures.map((failure) => failure.retryAfter).filter((wait): wait is number => wait !== undefined);
    if (waits.length > 0) headers['retry-after'] = String(Math.ceil(Math.min(...waits)));
  }
  const code = only !== undefined ? codeForKind[only] : 'all_providers_failed';
  const error = new AllFailedError(status, message, {
    type: status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status < 500 ? 'invalid_request_error' : 'upstream_error',
    param: status === 404 && only === 'model_not_found' ? 'model' : null,
    code,
    headers,
  });
  error.attempts = records;
  return error;
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
