import type { ServerResponse } from 'node:http';
import type { AbortLike } from '../core/abort.js';
import { ApiError } from '../core/errors.js';
import { planChat, runChat, type ChatOutcome } from '../core/router.js';
import type { ChatChunk, ChatRequest } from '../core/types.js';
import { abortOnClientClose, cutRequest, noteFailure } from './client-abort.js';
import { observerFor, type RequestContext } from './context.js';
import { restrictPlan } from './gateway-keys.js';
import { unknownProvidersHeader } from './headers.js';
import { takeKeyLimits, withTokenAccounting } from './limits.js';
import { sendError } from './respond.js';
import type { ChatRouteOptions } from './routes/chat.js';
import type { SseWriter } from './sse.js';

/** A chat operation under way for one HTTP request, whatever its entrance dialect. */
export interface ChatInFlight {
  outcome: ChatOutcome;
  /** Detaches the upstream work from the client's connection (once the answer is written). */
  detach(): void;
  /** Whether the client went away. */
  readonly signal: AbortLike;
  /** The stream writer, once there is one: a shutdown then ends the stream with its failure event. */
  streamTo(writer: Pick<SseWriter, 'fail'>): void;
}

/**
 * What every chat entrance (chat completions, Anthropic's messages, the Responses API) does between
 * parsing its dialect and writing the answer: plan (the `provider` field; unknown ids in a header),
 * take an admission slot (a shutdown cut answers in the dialect, through `sendCutError` or the
 * stream's writer), and run the chat operation with the client's signal and the request's observer.
 * Undefined when the client left before an answer (nothing to write).
 */
export async function runChatRequest(
  options: ChatRouteOptions,
  res: ServerResponse,
  context: RequestContext,
  input: { provider: unknown; apiKey: unknown; request: ChatRequest },
  sendCutError: (res: ServerResponse, error: ApiError, headers: Record<string, string>) => void = sendError,
): Promise<ChatInFlight | undefined> {
  noteErrorFields(context, input);
  // A listed key: only its providers (a 403 when none is left), then its limits (a 429 past them).
  const plan = restrictPlan(
    planChat(options.registry, { provider: input.provider, apiKey: input.apiKey, request: input.request, bearer: context.clientBearer }),
    context,
  );
  if (plan.unknown.length > 0) context.headers['x-interference-unknown-providers'] = unknownProvidersHeader(plan.unknown);
  const limited = takeKeyLimits(context);
  if (limited !== undefined) await limited;
  const client = abortOnClientClose(res, context);
  let writer: Pick<SseWriter, 'fail'> | undefined;
  options.admission.admit(context, () => cutRequest(res, context, writer, client.abort, sendCutError));
  try {
    const observer = withTokenAccounting(observerFor(context), context, options.policy);
    const outcome = await runChat(plan, input.request, client.signal, options.policy, observer);
    return { outcome, detach: client.detach, signal: client.signal, streamTo: (w) => (writer = w) };
  } catch (error) {
    client.detach();
    if (noteFailure(context, error)) return undefined;
    throw error;
  }
}

/** One event of a dialect's stream: its JSON, and its `event:` name when the dialect names events. */
export interface DialectEvent {
  data: unknown;
  event?: string;
}

/**
 * Writes a chat stream in a dialect: the `start` events, each chunk as the dialect's events
 * (`render`), the `finish` events, then the dialect's end; the writer's backpressure is honoured,
 * and a failure after the first byte ends with the dialect's failure event, never a clean end.
 * Returns whether the stream was written to its end.
 */
export async function writeStream(
  running: ChatInFlight,
  writer: SseWriter,
  context: RequestContext,
  render: (chunk: ChatChunk) => Iterable<DialectEvent>,
  edges: { start?: () => Iterable<DialectEvent>; finish?: () => Iterable<DialectEvent> } = {},
): Promise<boolean> {
  const { outcome } = running;
  if (outcome.type !== 'stream') throw new TypeError('writeStream needs a stream outcome');
  const send = (events: Iterable<DialectEvent>): Promise<void> | undefined => {
    let backpressure: Promise<void> | undefined;
    for (const event of events) backpressure = writer.send(event.data, event.event) ?? backpressure;
    return backpressure;
  };
  try {
    if (edges.start !== undefined) await send(edges.start());
    for (const chunk of outcome.head) await send(render(chunk));
    for (;;) {
      if (writer.closed) return false;
      const next = await outcome.rest.next();
      if (next.done === true) break;
      const backpressure = send(render(next.value));
      if (backpressure !== undefined) await backpressure;
    }
    if (writer.closed) return false;
    if (edges.finish !== undefined) send(edges.finish());
    writer.done();
    return true;
  } catch (error) {
    if (!running.signal.aborted) {
      const message = error instanceof Error ? error.message : String(error);
      context.streamError = message;
      writer.fail(new ApiError(502, `${outcome.provider} failed after the stream started: ${message}`, { code: 'upstream_stream_error' }));
    }
    return false;
  } finally {
    running.detach();
    await outcome.rest.return?.().catch(() => undefined);
  }
}

/** What an error body says beside `error` (gpt4free's clients read it): the model asked for, and the provider when exactly one was named. */
export function noteErrorFields(context: RequestContext, input: { provider: unknown; request: { model: string } }): void {
  const fields: Record<string, string> = {};
  if (input.request.model !== '') fields.model = input.request.model.slice(0, 200);
  if (typeof input.provider === 'string' && /^\s*[^\s,]+\s*$/.test(input.provider)) fields.provider = input.provider.trim().slice(0, 64);
  context.errorFields = fields;
}
