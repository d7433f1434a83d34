import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../../../core/errors.js';
import type { ChatMessage } from '../../../core/types.js';
import { readJsonObject } from '../../body.js';
import { runChatRequest, writeStream, type DialectEvent } from '../../chat-request.js';
import type { RequestContext } from '../../context.js';
import { answerHeaders } from '../../headers.js';
import { sendJson } from '../../respond.js';
import type { ChatRouteOptions } from '../../routes/chat.js';
import { SseWriter, type SseDialect } from '../../sse.js';
import { validateChatBody } from '../../validate-chat.js';
import { readResponsesBody, type ResponsesInput } from './request.js';
import { outputMessages, ResponseEvents, responseFromCompletion, type ResponseObject, type StreamEvent } from './response.js';
import type { ResponseRepository } from './store.js';

/**
 * POST /v1/responses (and /api/{provider}/responses with `pathProvider`): OpenAI's Responses API
 * over the same chat operation as /v1/chat/completions (selection, failover before the first
 * content, health, keys, limits, cancellation, logs and warnings unchanged).
 */
export function createResponsesRoute(options: ChatRouteOptions & { store: ResponseRepository }) {
  return async function responses(req: IncomingMessage, res: ServerResponse, context: RequestContext, pathProvider?: string): Promise<void> {
    const body = await readJsonObject(req, options.maxBodyBytes, options.bodyTimeoutMs);
    const input = await readResponsesBody(body, options.store);
    const chat = validateChatBody(input.chatBody, options.maxMessages);
    const provider = pathProvider ?? chat.provider ?? context.query.get('provider') ?? undefined;
    const running = await runChatRequest(options, res, context, { provider, apiKey: chat.apiKey, request: chat.request });
    if (running === undefined) return;
    const { outcome } = running;
    outcome.warnings.push(...input.ignored.map((field) => `${field} is not supported by /v1/responses and was ignored`));
    const headers = answerHeaders(context, outcome);
    if (outcome.type === 'completion') {
      running.detach();
      const response = responseFromCompletion(input.echo, outcome.completion, outcome.provider);
      // Stored (shared copy included) before the answer: a follow-up may go to another replica.
      await keep(options.store, input, response);
      sendJson(res, 200, response, headers);
      return;
    }
    const events = new ResponseEvents(input.echo);
    const dialect: SseDialect = { terminator: null, failure: (error) => ({ event: 'response.failed', data: events.failed(error, outcome.provider) }) };
    const sse = new SseWriter(res, headers, dialect);
    running.streamTo(sse);
    const named = (batch: readonly StreamEvent[]): DialectEvent[] => batch.map((event) => ({ data: event, event: event.type }));
    let kept: Promise<void> | undefined;
    await writeStream(running, sse, context, (chunk) => named(events.chunk(chunk)), {
      start: () => named(events.start()),
      finish: () => {
        const end = named(events.end(outcome.provider));
        // `finish` cannot wait: the shared copy's command is sent now, before the final events
        // are written, so it reaches shared storage ahead of any follow-up the client sends.
        kept = keep(options.store, input, events.response);
        return end;
      },
    });
    await kept;
  };
}

/** GET /v1/responses/{id}: a stored response, or OpenAI's 404. */
export function createGetResponseRoute(store: ResponseRepository) {
  return async function getResponse(_req: IncomingMessage, res: ServerResponse, context: RequestContext, id: string): Promise<void> {
    const stored = await store.get(id);
    if (stored === undefined) {
      throw new ApiError(404, `Response with id '${id.slice(0, 200)}' not found; stored responses are kept for one hour.`, {
        type: 'invalid_request_error',
        code: 'response_not_found',
      });
    }
    sendJson(res, 200, stored.response, context.headers);
  };
}

/** Stores a finished response (unless `store: false`) with the conversation a follow-up continues. */
async function keep(store: ResponseRepository, input: ResponsesInput, response: ResponseObject): Promise<void> {
  if (!input.store) return;
  const history: ChatMessage[] = [...input.history, ...outputMessages(response.output)];
  await store.put({ response, history });
}
