import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, UpstreamError } from '../../core/errors.js';
import type { Registry } from '../../core/registry.js';
import { AllFailedError, runChat, type AttemptRecord, type ChatOutcome, type RoutingPolicy } from '../../core/router.js';
import { parseProviderField, planAttempts } from '../../core/selection.js';
import type { ChatChunk } from '../../core/types.js';
import { readJsonObject } from '../body.js';
import { overheadMs, type RequestContext } from '../context.js';
import { sendJsonText } from '../respond.js';
import { serialize } from '../../core/normalize.js';
import { SseWriter } from '../sse.js';
import { validateChatBody } from '../validate-chat.js';

export interface ChatRouteOptions {
  registry: Registry;
  policy: RoutingPolicy;
  maxBodyBytes: number;
  maxMessages: number;
}

/** POST /v1/chat/completions (and /api/{provider}/chat/completions with `pathProvider`). */
export function createChatRoute(options: ChatRouteOptions) {
  return async function chat(req: IncomingMessage, res: ServerResponse, context: RequestContext, pathProvider?: string): Promise<void> {
    const body = await readJsonObject(req, options.maxBodyBytes);
    const input = validateChatBody(body, options.maxMessages);
    const preference = parseProviderField(pathProvider ?? input.provider ?? context.query.get('provider') ?? undefined);
    const plan = planAttempts(options.registry, { preference, model: input.request.model, apiKey: input.apiKey });
    if (plan.unknown.length > 0) context.headers['x-interference-unknown-providers'] = unknownProvidersHeader(plan.unknown);

    const controller = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort();
    };
    res.once('close', onClose);
    let outcome: ChatOutcome;
    try {
      outcome = await runChat(plan, input.request, controller.signal, options.policy);
    } catch (error) {
      res.off('close', onClose);
      if (error instanceof UpstreamError && error.kind === 'aborted') return;
      if (error instanceof AllFailedError) {
        context.attempts = error.attempts;
        context.headers['x-interference-attempts'] = describeAttempts(error.attempts);
      }
      throw error;
    }
    context.provider = outcome.provider;
    context.attempts = outcome.attempts;
    const headers = {
      ...context.headers,
      'x-interference-provider': outcome.provider,
      'x-interference-attempts': describeAttempts(outcome.attempts),
      'x-interference-overhead-ms': overheadMs(context),
    };
    if (outcome.type === 'completion') {
      res.off('close', onClose);
      sendJsonText(res, 200, serialize(outcome.completion), headers);
      return;
    }
    const includeUsage = input.request.stream_options?.include_usage === true;
    const writer = new SseWriter(res, headers);
    const keep = (chunk: ChatChunk): boolean => includeUsage || chunk.choices.length > 0 || !chunk.usage;
    try {
      for (const chunk of outcome.head) if (keep(chunk)) await writer.send(chunk);
      for (;;) {
        const next = await outcome.rest.next();
        if (next.done === true) break;
        const chunk = outcome.normalize(next.value);
        if (keep(chunk)) {
          const backpressure = writer.send(chunk);
          if (backpressure !== undefined) await backpressure;
        }
        if (writer.closed) break;
      }
      writer.done();
    } catch (error) {
      if (!controller.signal.aborted) {
        const message = error instanceof Error ? error.message : String(error);
        context.streamError = message;
        writer.fail(new ApiError(502, `${outcome.provider} failed after the stream started: ${message}`, { code: 'upstream_stream_error' }));
      }
    } finally {
      res.off('close', onClose);
      await outcome.rest.return?.().catch(() => undefined);
    }
  };
}

/**
 * The ids that matched no provider, as a header value: each percent-encoded when it is not plain
 * printable ASCII (header values cannot carry it), at most 10 ids of 64 characters.
 */
export function unknownProvidersHeader(ids: readonly string[]): string {
  const shown = ids.slice(0, 10).map((id) => {
    const cut = id.length > 64 ? `${id.slice(0, 64)}…` : id;
    return /^[\x21-\x7e]+$/.test(cut) ? cut : encodeURIComponent(cut.toWellFormed());
  });
  return ids.length > 10 ? `${shown.join(' ')} (+${ids.length - 10} more)` : shown.join(' ');
}

/** `Groq=rate_limit OpenaiAPI=ok`: what each provider did, for the response header. */
export function describeAttempts(attempts: readonly AttemptRecord[]): string {
  return attempts.map((attempt) => `${attempt.provider}=${attempt.outcome}`).join(' ');
}
