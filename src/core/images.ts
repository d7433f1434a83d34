import type { AbortLike } from './abort.js';
import { after } from './deadlines.js';
import { UpstreamError } from './errors.js';
import { failover, type AttemptRecord, type OperationObserver, type RoutingPolicy } from './failover.js';
import type { Registry } from './registry.js';
import { parseProviderField, planAttempts, type Plan } from './selection.js';
import type { ImageRequest, ImageResult } from './types.js';

export interface ImagesOutcome {
  provider: string;
  result: ImageResult;
  attempts: AttemptRecord[];
}

/** The images operation's plan: the `provider` field parsed, the image providers ordered. */
export function planImages(registry: Registry, input: { provider: unknown; apiKey: unknown; request: ImageRequest; bearer?: string | undefined }): Plan {
  return planAttempts(registry, {
    preference: parseProviderField(input.provider),
    model: input.request.model,
    apiKey: input.apiKey,
    capability: 'images',
    ...(input.bearer === undefined ? {} : { bearer: input.bearer }),
  });
}

/**
 * The images operation: the plan's providers in order with chat's failover, each attempt bounded
 * as a whole by `timeoutMs` (a Space that only sends heartbeats never trips an idle timeout), and
 * an answer without an image is a failed attempt.
 */
export async function runImages(
  plan: Plan,
  request: ImageRequest,
  clientSignal: AbortLike,
  policy: RoutingPolicy,
  timeoutMs: number,
  observer?: OperationObserver,
): Promise<ImagesOutcome> {
  const { value, provider, attempts } = await failover(
    plan,
    clientSignal,
    policy,
    async (attempt, scope) => {
      const deadline = after(timeoutMs, () => scope.abort(new UpstreamError('timeout', `no image within ${timeoutMs} ms`)));
      try {
        const generate = attempt.entry.provider.images;
        if (generate === undefined) throw new UpstreamError('bad_request', `${attempt.entry.provider.id} does not generate images`);
        const result = await generate({ request: { ...request, model: attempt.model }, apiKey: attempt.apiKey, signal: scope.signal, limits: policy.limits });
        if (result.images.length === 0) throw new UpstreamError('bad_response', 'the provider returned no image');
        return result;
      } finally {
        deadline.cancel();
        scope.release();
      }
    },
    observer,
  );
  return { provider, result: value, attempts };
}
