import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from '../../core/registry.js';
import type { RoutingPolicy } from '../../core/failover.js';
import { planImages, runImages, type ImagesOutcome } from '../../core/images.js';
import { readJsonObject } from '../body.js';
import { observerFor, type RequestContext } from '../context.js';
import type { ImageStore } from '../image-store.js';
import { sendJson } from '../respond.js';
import { validateImagesBody } from '../validate-images.js';
import type { Admission } from '../admission.js';
import { noteErrorFields } from '../chat-request.js';
import { abortOnClientClose, cutRequest, noteFailure } from '../client-abort.js';
import { answerHeaders, unknownProvidersHeader } from '../headers.js';
import { restrictPlan } from '../gateway-keys.js';
import { takeKeyLimits } from '../limits.js';

export interface ImagesRouteOptions {
  registry: Registry;
  policy: RoutingPolicy;
  store: ImageStore;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  admission: Admission;
  publicUrl: string | undefined;
  /** Longest a provider may take for one images request (all `n` images). */
  imageTimeoutMs: number;
}

/** POST /v1/images/generate and /v1/images/generations: one handler, the chat routes' provider selection and failover. */
export function createImagesRoute(options: ImagesRouteOptions) {
  return async function images(req: IncomingMessage, res: ServerResponse, context: RequestContext, pathProvider?: string): Promise<void> {
    const input = validateImagesBody(await readJsonObject(req, options.maxBodyBytes, options.bodyTimeoutMs));
    const provider = pathProvider ?? input.provider ?? context.query.get('provider') ?? undefined;
    noteErrorFields(context, { provider, request: input.request });
    const planned = planImages(options.registry, {
      provider,
      apiKey: input.apiKey,
      request: input.request,
      bearer: context.clientBearer,
    });
    const plan = restrictPlan(planned, context);
    if (plan.unknown.length > 0) context.headers['x-interference-unknown-providers'] = unknownProvidersHeader(plan.unknown);
    const limited = takeKeyLimits(context);
    if (limited !== undefined) await limited;

    const client = abortOnClientClose(res, context);
    options.admission.admit(context, () => cutRequest(res, context, undefined, client.abort));
    let outcome: ImagesOutcome;
    try {
      outcome = await runImages(plan, input.request, client.signal, options.policy, options.imageTimeoutMs, observerFor(context));
    } catch (error) {
      if (noteFailure(context, error)) return;
      throw error;
    } finally {
      client.detach();
    }
    const headers = answerHeaders(context, outcome);
    const base = options.publicUrl ?? baseUrlOf(req);
    const data = await Promise.all(
      outcome.result.images.map(async (image) => {
        const entry: Record<string, unknown> =
          input.responseFormat === 'b64_json'
            ? { b64_json: image.bytes.toString('base64') }
            : { url: `${base}/images/${await options.store.save(image.bytes)}` };
        if (image.revisedPrompt !== undefined) entry.revised_prompt = image.revisedPrompt;
        if (image.seed !== undefined) entry.seed = image.seed;
        return entry;
      }),
    );
    sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data, model: outcome.result.model, provider: outcome.provider }, headers);
  };
}

/** `http://<Host>` from the request, or the socket's own address when the Host header is odd. */
function baseUrlOf(req: IncomingMessage): string {
  // Behind a reverse proxy the client's host and scheme are in X-Forwarded-Host/-Proto (the first of a list).
  const forwardedHost = first(req.headers['x-forwarded-host']);
  const host = forwardedHost ?? req.headers.host;
  const proto = first(req.headers['x-forwarded-proto']) === 'https' ? 'https' : 'http';
  if (typeof host === 'string' && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host)) return `${proto}://${host}`;
  const address = req.socket.localAddress ?? '127.0.0.1';
  return `http://${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort ?? 80}`;
}

/** The first value of a header that may be repeated or a comma list (`a, b`). */
function first(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const head = text?.split(',')[0]?.trim();
  return head === undefined || head === '' ? undefined : head;
}
