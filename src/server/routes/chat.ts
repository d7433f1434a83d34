import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../../core/errors.js';
import type { Registry } from '../../core/registry.js';
import type { RoutingPolicy } from '../../core/failover.js';
import { planChat, runChat, type ChatOutcome } from '../../core/router.js';
import { readJsonObject } from '../body.js';
import type { Admission } from '../admission.js';
import { abortOnClientClose, cutRequest, noteFailure } from '../client-abort.js';
import { answerHeaders, unknownProvidersHeader } from '../headers.js';
import { observerFor, type RequestContext } from '../context.js';
import { sendJsonText } from '../respond.js';
import { serialize } from '../../core/normalize.js';
import { SseWriter } from '../sse.js';
import { validateChatBody } from '../validate-chat.js';

export interface ChatRouteOptions {
  registry: Registry;
  policy: RoutingPolicy;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  maxMessages: number;
  admission: Admission;
}

/** POST /v1/chat/completions (and /api/{provider}/chat/completions with `pathProvider`). */
export function createChatRoute(options: ChatRouteOptions) {
  return async function chat(req: IncomingMessage, res: ServerResponse, context: RequestContext, pathProvider?: string): Promise<void> {
    const body = await readJsonObject(req, options.maxBodyBytes, options.bodyTimeoutMs);
    const input = validateChatBody(body, options.maxMessages);
    const provider = pathProvider ?? input.provider ?? context.query.get('provider') ?? undefined;
    const plan = planChat(options.registry, { provider, apiKey: input.apiKey, request: input.request });
    if (plan.unknown.length > 0) context.headers['x-interference-unknown-providers'] = unknownProvidersHeader(plan.unknown);

    const client = abortOnClientClose(res);
    let writer: SseWriter | undefined;
    options.admission.admit(res, () => cutRequest(res, context, writer, client.abort));
    let outcome: ChatOutcome;
    try {
      outcome = await runChat(plan, input.request, client.signal, options.policy, observerFor(context));
    } catch (error) {
      client.detach();
      if (noteFailure(context, error)) return;
      throw error;
    }
    const headers = answerHeaders(context, outcome);
    if (outcome.type === 'completion') {
      client.detach();
      sendJsonText(res, 200, serialize(outcome.completion), headers);
      return;
    }
    writer = new SseWriter(res, headers);
    try {
      for (const chunk of outcome.head) await writer.send(chunk);
      if (writer.closed) return;
      for (;;) {
        const next = await outcome.rest.next();
        if (next.done === true) break;
        const backpressure = writer.send(next.value);
        if (backpressure !== undefined) await backpressure;
        if (writer.closed) break;
      }
      writer.done();
    } catch (error) {
      if (!client.signal.aborted) {
        const message = error instanceof Error ? error.message : String(error);
        context.streamError = message;
        writer.fail(new ApiError(502, `${outcome.provider} failed after the stream started: ${message}`, { code: 'upstream_stream_error' }));
      }
    } finally {
      client.detach();
      await outcome.rest.return?.().catch(() => undefined);
    }
  };
}
