import type { IncomingMessage, ServerResponse } from 'node:http';
import { linkAbort } from '../../../core/abort.js';
import { ApiError, UpstreamError } from '../../../core/errors.js';
import { planChat } from '../../../core/router.js';
import type { ChatRequest } from '../../../core/types.js';
import { readJsonObject } from '../../body.js';
import { runChatRequest, writeStream, type DialectEvent } from '../../chat-request.js';
import { abortOnClientClose } from '../../client-abort.js';
import type { RequestContext } from '../../context.js';
import { answerHeaders, warningsHeader } from '../../headers.js';
import { sendJson, toApiError } from '../../respond.js';
import type { ChatRouteOptions } from '../../routes/chat.js';
import { SseWriter } from '../../sse.js';
import { messagesToChat } from './request.js';
import { completionToMessage, messagesSse, MessagesStream, sendMessagesError, type MessagesEvent } from './response.js';

/** A stream quiet this long gets a `ping` event, as Anthropic's own streams do. */
const pingMs = 15_000;

/**
 * POST /v1/messages (and /api/{provider}/messages with `pathProvider`): Anthropic's Messages API
 * over the same chat operation as /v1/chat/completions (selection, failover before the first
 * content, health, keys, limits, cancellation, logs and warnings). Every error, before or after
 * the stream started, is in Anthropic's shape.
 */
export function createMessagesRoute(options: ChatRouteOptions) {
  return async function messages(req: IncomingMessage, res: ServerResponse, context: RequestContext, pathProvider?: string): Promise<void> {
    await answeringErrors(res, context, async () => {
      const body = await readJsonObject(req, options.maxBodyBytes, options.bodyTimeoutMs);
      const input = messagesToChat(body, options.maxMessages);
      const provider = pathProvider ?? input.provider ?? context.query.get('provider') ?? undefined;
      // A shutdown answers in Anthropic's shape: an error event once the stream started, else a 529.
      const running = await runChatRequest(options, res, context, { provider, apiKey: input.apiKey, request: input.request }, sendMessagesError);
      if (running === undefined) return;
      const { outcome } = running;
      const headers = answerHeaders(context, outcome);
      // The client's own model name, as Anthropic echoes it (the answering one is in the headers).
      const model =
        input.request.model === '' ? (outcome.type === 'completion' ? outcome.completion.model : (outcome.head[0]?.model ?? '')) : input.request.model;
      if (outcome.type === 'completion') {
        running.detach();
        sendJson(res, 200, completionToMessage(outcome.completion, model), headers);
        return;
      }
      const writer = new SseWriter(res, headers, messagesSse);
      running.streamTo(writer);
      const stream = new MessagesStream(model);
      const named = (events: Iterable<MessagesEvent>): DialectEvent[] => [...events].map((event) => ({ data: event, event: event.type }));
      // Anthropic's keep-alive while a long answer is on its way.
      const ping = setInterval(() => writer.send({ type: 'ping' }, 'ping'), pingMs);
      ping.unref();
      try {
        await writeStream(running, writer, context, (chunk) => named(stream.push(chunk)), { finish: () => named(stream.finish()) });
      } finally {
        clearInterval(ping);
      }
    });
  };
}

/**
 * POST /v1/messages/count_tokens: the exact count from the provider that would answer, where it can
 * count (the embedded model tokenizes the prompt as it would run it); else an estimate, said so in
 * `x-interference-warnings`. No upstream is called.
 */
export function createCountTokensRoute(options: Pick<ChatRouteOptions, 'registry' | 'maxBodyBytes' | 'bodyTimeoutMs' | 'maxMessages'>) {
  return async function countTokens(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    await answeringErrors(res, context, async () => {
      const body = await readJsonObject(req, options.maxBodyBytes, options.bodyTimeoutMs);
      // count_tokens takes no max_tokens: any value passes the shared validation.
      const { request, provider, apiKey } = messagesToChat({ ...body, max_tokens: 1, stream: false }, options.maxMessages);
      const plan = planChat(options.registry, { provider: provider ?? context.query.get('provider') ?? undefined, apiKey, request });
      const attempt = plan.attempts.find((candidate) => candidate.blocked === null);
      const counter = attempt?.entry.provider;
      let why = 'token count is an estimate (characters / 4)';
      if (attempt !== undefined && counter?.countTokens !== undefined) {
        const client = abortOnClientClose(res, context);
        try {
          const link = linkAbort(client.signal);
          const count = await counter.countTokens({ ...request, model: attempt.model }, link.signal).finally(() => link.unlink());
          sendJson(res, 200, { input_tokens: count }, { ...context.headers, 'x-interference-provider': counter.id });
          return;
        } catch (error) {
          if (!(error instanceof UpstreamError) || client.signal.aborted) throw error;
          why = `${why}: ${counter.id} could not count (${error.message})`;
        } finally {
          client.detach();
        }
      }
      sendJson(res, 200, { input_tokens: estimateTokens(request) }, { ...context.headers, 'x-interference-warnings': warningsHeader([why]) });
    });
  };
}

/** About 4 characters a token for English text and JSON; an image counts as its reference only. */
export function estimateTokens(request: ChatRequest): number {
  let characters = 0;
  for (const message of request.messages) {
    if (typeof message.content === 'string') characters += message.content.length;
    else for (const part of message.content ?? []) characters += (part.text ?? part.image_url?.url.slice(0, 256) ?? '').length;
    for (const call of message.tool_calls ?? []) characters += call.function.name.length + call.function.arguments.length;
  }
  if (request.tools !== undefined) characters += JSON.stringify(request.tools).length;
  return Math.max(1, Math.ceil(characters / 4));
}

/**
 * Runs a route body and answers its failure in Anthropic's shape. A failure that is not an
 * ApiError (a bug) is answered as a 500 and thrown on, so the app's boundary logs it; the
 * response is already ended then and the app writes nothing more.
 */
async function answeringErrors(res: ServerResponse, context: RequestContext, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    sendMessagesError(res, toApiError(error), context.headers);
    if (!(error instanceof ApiError)) throw error;
  }
}
