import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from '../../core/registry.js';
import type { RoutingPolicy } from '../../core/failover.js';
import { readJsonObject } from '../body.js';
import type { Admission } from '../admission.js';
import { runChatRequest, writeStream } from '../chat-request.js';
import { answerHeaders } from '../headers.js';
import type { RequestContext } from '../context.js';
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
    const running = await runChatRequest(options, res, context, { provider, apiKey: input.apiKey, request: input.request });
    if (running === undefined) return;
    const { outcome } = running;
    const headers = answerHeaders(context, outcome);
    if (outcome.type === 'completion') {
      running.detach();
      sendJsonText(res, 200, serialize(outcome.completion), headers);
      return;
    }
    const writer = new SseWriter(res, headers);
    running.streamTo(writer);
    await writeStream(running, writer, context, (chunk) => [{ data: chunk }]);
  };
}
