import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../../../core/errors.js';
import { planChat, runChat, type ChatOutcome } from '../../../core/router.js';
import type { ChatMessage } from '../../../core/types.js';
import { readJsonObject } from '../../body.js';
import { abortOnClientClose, cutRequest, noteFailure } from '../../client-abort.js';
import { observerFor, type RequestContext } from '../../context.js';
import { answerHeaders, unknownProvidersHeader } from '../../headers.js';
import { sendJson } from '../../respond.js';
import type { ChatRouteOptions } from '../../routes/chat.js';
import { SseWriter, type SseDialect } from '../../sse.js';
import { validateChatBody } from '../../validate-chat.js';
import { readResponsesBody, type ResponsesInput } from './request.js';
import { outputMessages, ResponseEvents, responseFromCompletion, type ResponseObject, type StreamEvent } from './response.js';
import type { ResponseStore } from './store.js';

/**
 * POST /v1/responses (and /api/{provider}/responses with `pathProvider`): OpenAI's Responses API
 * over the same chat operation as /v1/chat/completions (selection, failover before the first
 * content, health, keys, limits, cancellation, logs and warnings unchanged).
 */
export function createResponsesRoute(options: ChatRouteOptions & { store: ResponseStore }) {
  return async function responses(req: IncomingMessage, res: ServerResponse, context: RequestContext, pathProvider?: string): Promise<void> {
    const body = await readJsonObject(req, options.maxBodyBytes, options.bodyTimeoutMs);
    const input = readResponsesBody(body, options.store);
    const chat = validateChatBody(input.chatBody, options.maxMessages);
    const provider = pathProvider ?? chat.provider ?? context.query.get('provider') ?? undefined;
    const plan = planChat(options.registry, { provider, apiKey: chat.apiKey, request: chat.request });
    if (plan.unknown.length > 0) context.headers['x-interference-unknown-providers'] = unknownProvidersHeader(plan.unknown);

    const client = abortOnClientClose(res);
    let writer: SseWriter | undefined;
    options.admission.admit(res, () => cutRequest(res, context, writer, client.abort));
    let outcome: ChatOutcome;
    try {
      outcome = await runChat(plan, chat.request, client.signal, options.policy, observerFor(context));
    } catch (error) {
      client.detach();
      if (noteFailure(context, error)) return;
      throw error;
    }
    outcome.warnings.push(...input.ignored.map((field) => `${field} is not supported by /v1/responses and was ignored`));
    const headers = answerHeaders(context, outcome);
    if (outcome.type === 'completion') {
      client.detach();
      const response = responseFromCompletion(input.echo, outcome.completion, outcome.provider);
      keep(options.store, input, response);
      sendJson(res, 200, response, headers);
      return;
    }
    const events = new ResponseEvents(input.echo);
    const dialect: SseDialect = { terminator: null, failure: (error) => ({ event: 'response.failed', data: events.failed(error, outcome.provider) }) };
    const sse = new SseWriter(res, headers, dialect);
    writer = sse;
    /** Each event named by its type; the last send's backpressure, if any, is the batch's. */
    const send = (batch: readonly StreamEvent[]): Promise<void> | undefined => {
      let backpressure: Promise<void> | undefined;
      for (const event of batch) backpressure = sse.send(event, event.type) ?? backpressure;
      return backpressure;
    };
    try {
      await send(events.start());
      for (const chunk of outcome.head) await send(events.chunk(chunk));
      if (sse.closed) return;
      for (;;) {
        const next = await outcome.rest.next();
        if (next.done === true) break;
        const backpressure = send(events.chunk(next.value));
        if (backpressure !== undefined) await backpressure;
        if (sse.closed) break;
      }
      if (sse.closed) return;
      await send(events.end(outcome.provider));
      keep(options.store, input, events.response);
      sse.done();
    } catch (error) {
      if (!client.signal.aborted) {
        const message = error instanceof Error ? error.message : String(error);
        context.streamError = message;
        sse.fail(new ApiError(502, `${outcome.provider} failed after the stream started: ${message}`, { code: 'upstream_stream_error' }));
      }
    } finally {
      client.detach();
      await outcome.rest.return?.().catch(() => undefined);
    }
  };
}

/** GET /v1/responses/{id}: a stored response, or OpenAI's 404. */
export function createGetResponseRoute(store: ResponseStore) {
  return function getResponse(_req: IncomingMessage, res: ServerResponse, context: RequestContext, id: string): void {
    const stored = store.get(id);
    if (stored === undefined) {
      throw new ApiError(404, `Response with id '${id.slice(0, 200)}' not found; stored responses are kept in memory for a limited time.`, {
        type: 'invalid_request_error',
        code: 'response_not_found',
      });
    }
    sendJson(res, 200, stored.response, context.headers);
  };
}

/** Stores a finished response (unless `store: false`) with the conversation a follow-up continues. */
function keep(store: ResponseStore, input: ResponsesInput, response: ResponseObject): void {
  if (!input.store) return;
  const history: ChatMessage[] = [...input.history, ...outputMessages(response.output)];
  store.put({ response, history });
}
