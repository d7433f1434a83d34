import { completionFromChunks, chunksFromCompletion } from './aggregate.js';
import { UpstreamError } from './errors.js';
import type { AbortLike } from './abort.js';
import { copyFields } from './copy.js';
import { after } from './deadlines.js';
import type { UpstreamLimits } from './http.js';
import { asUpstreamError, failover, type AttemptRecord, type Deadline, type AttemptScope, type OperationObserver, type RoutingPolicy } from './failover.js';
import { ignoredParams, requiredFeatures } from './features.js';
import { servesModel, type ChatCall } from './provider.js';
import type { Registry } from './registry.js';
import { hasContent, normalizeChunk, normalizeCompletion } from './normalize.js';
import { parseProviderField, planAttempts, type Attempt, type Plan } from './selection.js';
import type { ChatChunk, ChatCompletion, ChatRequest } from './types.js';

export type ChatOutcome = (
  | { type: 'completion'; provider: string; completion: ChatCompletion; attempts: AttemptRecord[] }
  | {
      type: 'stream';
      provider: string;
      /** Chunks already read (up to and including the first with content). */
      head: ChatChunk[];
      /** The rest, normalised and with the usage policy applied; `return()` cancels the upstream. */
      rest: AsyncIterator<ChatChunk>;
      attempts: AttemptRecord[];
    }
) & {
  /** What the provider that answered did not honour (request fields it ignored): never silent. */
  warnings: string[];
};

/** The chat operation's plan: the `provider` field parsed, the providers ordered, the request's features checked. */
export function planChat(registry: Registry, input: { provider: unknown; apiKey: unknown; request: ChatRequest; bearer?: string | undefined }): Plan {
  let { provider } = input;
  let model = input.request.model;
  // gpt4free's way: a provider id as `model`, and no `provider`, means that provider with its default model.
  if ((provider === undefined || provider === null || provider === '') && model !== '' && registry.find(model) !== undefined) {
    provider = model;
    model = '';
  }
  // No spread of a conditional field: spread literals on this path held request objects through
  // young GCs (see runChat).
  return planAttempts(registry, {
    preference: parseProviderField(provider),
    model,
    apiKey: input.apiKey,
    needs: requiredFeatures(input.request),
    bearer: input.bearer,
  });
}

/**
 * Runs the plan's attempts in order until one answers. A failure before the first content
 * moves on to the next provider; nothing has been sent to the client yet, so the client still
 * gets a real status when all fail. Each attempt must show content within `firstContentMs`; a
 * non-streamed request must be answered whole within `requestMs`, all attempts together.
 */
export async function runChat(
  plan: Plan,
  request: ChatRequest,
  clientSignal: AbortLike,
  policy: RoutingPolicy,
  observer?: OperationObserver,
): Promise<ChatOutcome> {
  const stream = request.stream === true;
  const warn = (provider: string, translation: readonly string[]): string[] => {
    const entry = plan.attempts.find((attempt) => attempt.entry.provider.id === provider)?.entry;
    const ignored =
      entry === undefined ? [] : ignoredParams(entry.provider, request).map((field) => `${field} is not supported by ${provider} and was not sent`);
    // The embedded model answers with the model it has, whatever was asked: never silently.
    const substituted =
      entry?.lastResort === true && request.model !== '' && request.model !== provider && !servesModel(entry.provider, request.model)
        ? [`asked for model "${request.model.slice(0, 200)}", answered by ${provider}'s "${entry.provider.defaultModel}"`]
        : [];
    return [...substituted, ...ignored, ...translation.map((warning) => `${provider}: ${warning}`)];
  };
  // A stream has shown content before it is returned; a whole answer must come within the request deadline.
  const deadline: Deadline | undefined = stream
    ? undefined
    : { ms: policy.requestMs, error: () => new UpstreamError('timeout', `no complete answer within the request deadline of ${policy.requestMs} ms`) };
  const { value, provider, attempts } = await failover(
    plan,
    clientSignal,
    policy,
    (attempt, scope) =>
      tryAttempt(attempt, request, stream, scope, policy, observer, (error) => policy.health.record(attempt.entry.provider.id, error.kind, 0)),
    observer,
    deadline,
  );
  const warnings = warn(provider, value.translation);
  // Built field by field, not spread from `value`: the spread kept each request's objects alive
  // through young GCs (promotion per young GC measured at 250 KB with it, 100 KB without).
  return value.type === 'completion'
    ? { type: 'completion', provider, completion: value.completion, attempts, warnings }
    : { type: 'stream', provider, head: value.head, rest: value.rest, attempts, warnings };
}

/**
 * The request one attempt sends: the client's fields (copied without a spread, see `copyFields`),
 * with the provider's model and the stream flag.
 */
function attemptRequest(request: ChatRequest, model: string, stream: boolean): ChatRequest {
  const copy = copyFields(request);
  copy.model = model;
  copy.stream = stream;
  return copy as ChatRequest;
}

/**
 * What a provider gets for one attempt. `signal` is a getter (on the prototype: see failover's
 * `Scope` for why not on the object), so that an AbortSignal is made only for the providers that
 * read it; the gateway's own HTTP code takes `cancellation`.
 */
class AttemptCall implements ChatCall {
  constructor(
    readonly request: ChatRequest,
    readonly apiKey: string | undefined,
    readonly limits: UpstreamLimits,
    private readonly scope: AttemptScope,
  ) {}

  get signal(): AbortSignal {
    return this.scope.signal;
  }

  get cancellation(): AbortLike {
    return this.scope.cancellation;
  }
}

type AttemptOutcome = ({ type: 'completion'; completion: ChatCompletion } | { type: 'stream'; head: ChatChunk[]; rest: AsyncIterator<ChatChunk> }) & {
  translation: readonly string[];
};

async function tryAttempt(
  attempt: Attempt,
  request: ChatRequest,
  stream: boolean,
  scope: AttemptScope,
  policy: RoutingPolicy,
  observer: OperationObserver | undefined,
  /** A failure after content was sent: not a failover any more, but the provider's health hears of it. */
  onLateFailure: (error: UpstreamError) => void,
): Promise<AttemptOutcome> {
  const provider = attempt.entry.provider;
  const { cancellation } = scope;
  if (provider.chat === undefined) throw new UpstreamError('bad_request', `${provider.id} does not do chat completions`);
  const call = new AttemptCall(attemptRequest(request, attempt.model, stream), attempt.apiKey, policy.limits, scope);
  // Bytes that trickle in (keep-alives, empty chunks) keep the idle timer alive: this one only
  // stops for content.
  const firstContent = after(policy.firstContentMs, () =>
    scope.abort(new UpstreamError('timeout', `no content within the first-content deadline of ${policy.firstContentMs} ms`)),
  );
  const attemptStarted = performance.now();
  let arrived = false;
  const contentArrived = (): void => {
    firstContent.cancel();
    if (arrived) return;
    arrived = true;
    observer?.firstContent?.(provider.id, performance.now() - attemptStarted);
  };
  if (!stream) {
    try {
      const result = await provider.chat(call);
      if (result.type === 'completion') contentArrived();
      const completion =
        result.type === 'completion' ? result.completion : await completionFromChunks(untilContent(result.chunks, contentArrived), policy.limits.maxBodyBytes);
      const normalized = normalizeCompletion(completion, provider.id, attempt.model);
      if (normalized.usage) observer?.usage?.(provider.id, normalized.usage);
      return { type: 'completion', completion: normalized, translation: result.warnings ?? [] };
    } finally {
      firstContent.cancel();
      scope.release();
    }
  }
  const normalize = (chunk: ChatChunk): ChatChunk => {
    const normalized = normalizeChunk(chunk, provider.id, attempt.model);
    if (normalized.usage) observer?.usage?.(provider.id, normalized.usage);
    return normalized;
  };
  // The usage policy: upstreams are always asked for usage; the client sees the usage-only chunk
  // only when it asked (`stream_options.include_usage`).
  const includeUsage = request.stream_options?.include_usage === true;
  const shown = (chunk: ChatChunk): boolean => includeUsage || chunk.choices.length > 0 || !chunk.usage;
  const head: ChatChunk[] = [];
  let iterator: AsyncIterator<ChatChunk> | undefined;
  let translation: readonly string[] = [];
  try {
    const result = await provider.chat(call);
    translation = result.warnings ?? [];
    const source: AsyncIterable<ChatChunk> = result.type === 'stream' ? result.chunks : fromArray(chunksFromCompletion(result.completion));
    iterator = source[Symbol.asyncIterator]();
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) {
        if (head.length === 0) throw new UpstreamError('bad_response', 'the upstream stream ended without any chunk');
        break;
      }
      head.push(normalize(next.value));
      if (hasContent(next.value)) {
        contentArrived();
        break;
      }
      if (head.length > maxHeadChunks) throw new UpstreamError('bad_response', `the upstream sent ${maxHeadChunks} chunks without content`);
    }
  } catch (error) {
    await iterator?.return?.().catch(() => undefined);
    throw error;
  } finally {
    firstContent.cancel();
  }
  const chunks = iterator;
  // The client signal stays linked to this attempt for the rest of the stream.
  const rest: AsyncIterator<ChatChunk> = {
    next: async () => {
      try {
        for (;;) {
          const next = await chunks.next();
          if (next.done === true) return next;
          const chunk = normalize(next.value);
          if (shown(chunk)) return { done: false, value: chunk };
        }
      } catch (caught) {
        const error = asUpstreamError(caught, attempt);
        if (!cancellation.aborted) onLateFailure(error);
        throw error;
      }
    },
    return: async (value?: unknown) => {
      scope.release();
      return (await chunks.return?.(value)) ?? { done: true, value: undefined };
    },
  };
  return { type: 'stream', head: head.filter(shown), rest, translation };
}

/** Chunks held before the first content: a stream of empty chunks fails instead of growing `head`. */
const maxHeadChunks = 1000;

/** Passes chunks through and calls `arrived` at the first one with content. */
async function* untilContent(chunks: AsyncIterable<ChatChunk>, arrived: () => void): AsyncGenerator<ChatChunk> {
  let waiting = true;
  for await (const chunk of chunks) {
    if (waiting && hasContent(chunk)) {
      waiting = false;
      arrived();
    }
    yield chunk;
  }
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
