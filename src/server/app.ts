import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import type { RoutingPolicy } from '../core/failover.js';
import { bearerToken, createGatewayAuth, isProtected } from './auth.js';
import { admitAs, admittedKey, type GatewayKeys } from './gateway-keys.js';
import { finalStatus, overheadMs, type RequestContext } from './context.js';
import { createLogger, type Logger } from './log.js';
import type { GatewayMetrics } from './metrics.js';
import { Admission } from './admission.js';
import { createOriginPolicy } from './origin.js';
import { sendError as sendOpenAIError, sendJson, toApiError } from './respond.js';
import { getModel, getProvider, listModels, listProviderModels, listProviders } from './routes/catalog.js';
import { sendMessagesError } from './dialects/messages/response.js';
import { createChatRoute } from './routes/chat.js';
import { createImagesRoute } from './routes/images.js';
import type { ImageStore } from './image-store.js';
import { createStores } from './stores.js';
import type { SharedRedis } from '../state/redis.js';
import { createApiDocs } from './routes/api-docs.js';
import { createChatPage } from './web/chat-page.js';

export interface AppOptions {
  registry: Registry;
  maxBodyBytes: number;
  /** A client's whole body must arrive within it (408). */
  bodyTimeoutMs: number;
  log: boolean;
  version: string;
  imagesDir: string;
  publicUrl: string | undefined;
  policy: RoutingPolicy;
  gatewayKey: string | undefined;
  /** The config file's listed keys (their providers and limits), when there are any. */
  keys?: GatewayKeys | undefined;
  maxMessages: number;
  /** Requests that call upstreams (chat, images) in flight at once; more get a 429. */
  maxConcurrent: number;
  imageTimeoutMs: number;
  /** Browser origins allowed besides the own and loopback ones (`*`: any). */
  corsOrigins: readonly string[];
  /** Prometheus metrics; `/metrics` on this app unless they are served on their own port. */
  metrics?: { collector: GatewayMetrics; route: boolean };
  /** State shared by replicas (REDIS_URL): generated images and stored responses are copied there too. */
  redis?: SharedRedis;
}

/** The request handler and what shutdown needs of it. */
export interface App {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Chat and image requests in flight; `cutAll()` ends them with a proper answer. */
  admission: Admission;
  store: ImageStore;
  logger: Logger;
}

/** GET /metrics: the Prometheus text exposition. */
export async function sendMetrics(res: ServerResponse, metrics: GatewayMetrics, headers: Record<string, string>): Promise<void> {
  const { contentType, body } = await metrics.scrape();
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, { ...headers, 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * GET /ready, for load balancers: the configuration is loaded (or the server would not be
 * listening) and, when Redis is configured, Redis is reachable; else 503 and why. `/health`
 * stays the liveness check: a replica without Redis still serves, from its local state.
 */
function sendReady(res: ServerResponse, redis: { readonly up: boolean } | undefined, headers: Record<string, string>): void {
  const checks = { config: 'loaded', ...(redis === undefined ? {} : { redis: redis.up ? 'up' : 'down' }) };
  const extra = { ...headers, 'cache-control': 'no-store' };
  if (redis === undefined || redis.up) sendJson(res, 200, { status: 'ready', checks }, extra);
  else sendJson(res, 503, { status: 'not_ready', reason: 'Redis (REDIS_URL) is unreachable: this replica serves from its local state only', checks }, extra);
}

type Handler = (req: IncomingMessage, res: ServerResponse, context: RequestContext, param: string) => Promise<void> | void;

interface Route {
  method: 'GET' | 'POST';
  /** Exact path, or a prefix ending in `/` whose remainder is the route's parameter. */
  path: string;
  prefix: boolean;
  handler: Handler;
  /** The route as metrics label it: the path with its parameter named (bounded cardinality). */
  label?: string;
}

/** The paths of Anthropic's entrance, whose errors its SDK reads in its own shape. */
const anthropicPath = /^\/(?:v1\/messages(?:\/count_tokens)?|api\/[^/]+\/(?:v1\/)?messages)\/?$/;

/** Longest request target accepted (414 past it); Node's own header limit (16 KiB) is the outer bound. */
const maxUrlLength = 8192;

/** The request handler: a static route table and one error boundary. */
export function createApp(options: AppOptions): App {
  const { registry } = options;
  const { policy, maxBodyBytes, bodyTimeoutMs } = options;
  const admission = new Admission(options.maxConcurrent);
  const chatOptions = { registry, policy, maxBodyBytes, bodyTimeoutMs, maxMessages: options.maxMessages, admission };
  const chat = createChatRoute(chatOptions);
  // The other entrance dialects run the same chat operation.
  // The Anthropic and Responses entrances load on their first request: their schemas and
  // translators are ~2 MB of an idle gateway that may never see one.
  const messages = lazyRoute(async () => (await import('./dialects/messages/route.js')).createMessagesRoute(chatOptions));
  const countTokens = lazyRoute(async () => (await import('./dialects/messages/route.js')).createCountTokensRoute(chatOptions));
  // Local stores, each with a copy in Redis when replicas share state.
  const { responses: responseStore, images: store } = createStores(options.imagesDir, options.redis);
  const responses = lazyRoute(async () => (await import('./dialects/responses/route.js')).createResponsesRoute({ ...chatOptions, store: responseStore }));
  const getResponse = lazyRoute(async () => (await import('./dialects/responses/route.js')).createGetResponseRoute(responseStore));
  const images = createImagesRoute({
    registry,
    policy,
    store,
    maxBodyBytes,
    bodyTimeoutMs,
    admission,
    publicUrl: options.publicUrl,
    imageTimeoutMs: options.imageTimeoutMs,
  });
  const authorize = createGatewayAuth(options.gatewayKey, options.keys);
  const origins = createOriginPolicy({ allowed: options.corsOrigins, publicUrl: options.publicUrl });
  const logger: Logger = createLogger(options.log);
  // The faces: a web chat page and the API's own documentation.
  const metrics = options.metrics?.collector;
  const chatPage = createChatPage();
  const apiDocs = createApiDocs({ version: options.version, authenticated: authorize !== undefined });
  const index = {
    name: 'Interference',
    version: options.version,
    description: 'OpenAI-compatible API over many providers; choose them with the "provider" field',
    routes: [
      'GET /v1/models',
      'GET /v1/models/{id}',
      'GET /v1/providers',
      'GET /v1/providers/{id}',
      'POST /v1/chat/completions',
      'POST /api/{provider}/chat/completions',
      'POST /api/{provider}/{conversation_id}/chat/completions',
      'GET /api/{provider}/models',
      'POST /api/{provider}/images/generations',
      'POST /v1/messages',
      'POST /v1/messages/count_tokens',
      'POST /api/{provider}/messages',
      'POST /v1/responses',
      'GET /v1/responses/{id}',
      'POST /api/{provider}/responses',
      'POST /v1/images/generate',
      'POST /v1/images/generations',
      'GET /images/{file}',
      'GET /chat',
      'GET /docs',
      'GET /openapi.json',
      'GET /metrics',
      'GET /ready',
    ],
  };
  const routes: Route[] = [
    { method: 'POST', path: '/v1/chat/completions', prefix: false, handler: (req, res, context) => chat(req, res, context) },
    { method: 'POST', path: '/v1/messages', prefix: false, handler: (req, res, context) => messages(req, res, context) },
    { method: 'POST', path: '/v1/messages/count_tokens', prefix: false, handler: (req, res, context) => countTokens(req, res, context) },
    { method: 'POST', path: '/v1/responses', prefix: false, handler: (req, res, context) => responses(req, res, context) },
    { method: 'GET', path: '/v1/responses/', prefix: true, handler: (req, res, context, id) => getResponse(req, res, context, id) },
    { method: 'POST', path: '/v1/images/generate', prefix: false, handler: (req, res, context) => images(req, res, context) },
    { method: 'POST', path: '/v1/images/generations', prefix: false, handler: (req, res, context) => images(req, res, context) },
    { method: 'GET', path: '/images/', prefix: true, handler: (req, res, context, name) => store.serve(req, res, name, context.headers) },
    { method: 'GET', path: '/v1/models', prefix: false, handler: (_req, res, context) => listModels(res, registry, context.headers) },
    { method: 'GET', path: '/v1/models/', prefix: true, handler: (_req, res, context, id) => getModel(res, registry, id, context.headers) },
    { method: 'GET', path: '/v1/providers', prefix: false, handler: (_req, res, context) => listProviders(res, registry, policy.health, context.headers) },
    {
      method: 'GET',
      path: '/v1/providers/',
      prefix: true,
      handler: (_req, res, context, id) => getProvider(res, registry, policy.health, id, context.headers),
    },
    { method: 'POST', path: '/api/', prefix: true, handler: (req, res, context, rest) => providerScoped(rest, req, res, context) },
    { method: 'GET', path: '/api/', prefix: true, handler: (_req, res, context, rest) => providerScopedGet(rest, res, context) },
    { method: 'GET', path: '/', prefix: false, handler: (_req, res, context) => sendJson(res, 200, index, context.headers) },
    { method: 'GET', path: '/v1', prefix: false, handler: (_req, res, context) => sendJson(res, 200, index, context.headers) },
    { method: 'GET', path: '/health', prefix: false, handler: (_req, res, context) => sendJson(res, 200, { status: 'ok' }, context.headers) },
    { method: 'GET', path: '/ready', prefix: false, handler: (_req, res, context) => sendReady(res, options.redis, context.headers) },
    { method: 'GET', path: '/chat', prefix: false, handler: (req, res, context) => chatPage(req, res, context, '') },
    { method: 'GET', path: '/chat/', prefix: true, handler: (req, res, context, asset) => chatPage(req, res, context, asset) },
    { method: 'GET', path: '/openapi.json', prefix: false, handler: (req, res, context) => apiDocs.openapi(req, res, context) },
    { method: 'GET', path: '/docs', prefix: false, handler: (req, res, context) => apiDocs.docs(req, res, context, '') },
    { method: 'GET', path: '/docs/', prefix: true, handler: (req, res, context, asset) => apiDocs.docs(req, res, context, asset) },
  ];
  if (metrics !== undefined && options.metrics?.route === true) {
    routes.push({
      method: 'GET',
      path: '/metrics',
      prefix: false,
      handler: (_req, res, context) => {
        // Every provider's and key's traffic is in there: the gateway's own key, not a team's listed one.
        if (admittedKey(context) !== undefined) {
          throw new ApiError(403, "/metrics needs the gateway's own key (INTERFERENCE_API_KEY), not a listed key", { code: 'metrics_forbidden' });
        }
        return sendMetrics(res, metrics, context.headers);
      },
    });
  }
  for (const route of routes) route.label = route.prefix ? `${route.path}{${paramNames[route.path] ?? 'param'}}` : route.path;

  /**
   * POST /api/{provider}/...: gpt4free's per-provider base URL, the provider chosen by the path (also
   * under `/v1`): chat completions (with gpt4free's optional conversation id before it, accepted and
   * ignored), messages, responses and images. `rest` was decoded once already: no second decoding.
   */
  function providerScoped(rest: string, req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    const dialect = /^([^/]+)\/(?:v1\/)?(messages|responses)$/.exec(rest);
    if (dialect !== null) return (dialect[2] === 'messages' ? messages : responses)(req, res, context, dialect[1] as string);
    const image = /^([^/]+)\/(?:v1\/)?images\/(?:generations|generate)$/.exec(rest);
    if (image !== null) return images(req, res, context, image[1] as string);
    const match = /^([^/]+)\/(?:v1\/|([^/]+)\/)?chat\/completions$/.exec(rest);
    if (match === null) throw notFound(`/api/${rest}`);
    if (match[2] !== undefined)
      context.headers['x-interference-warnings'] = 'the conversation id in the path is accepted and ignored: send the whole conversation in messages';
    return chat(req, res, context, match[1] as string);
  }

  /** GET /api/{provider}/models (also under `/v1`): that provider's models, each with its type. */
  function providerScopedGet(rest: string, res: ServerResponse, context: RequestContext): void {
    const match = /^([^/]+)\/(?:v1\/)?models\/?$/.exec(rest);
    if (match === null) throw notFound(`/api/${rest}`);
    listProviderModels(res, registry, match[1] as string, context.headers);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const incomingId = req.headers['x-request-id'];
    const id = typeof incomingId === 'string' && /^[\w.-]{1,128}$/.test(incomingId) ? incomingId : randomUUID();
    const cors = origins.check(req);
    const headers: Record<string, string> = cors === undefined || cors === null ? { 'x-request-id': id } : { ...cors, 'x-request-id': id };
    const context: RequestContext = {
      id,
      started,
      query: queryAt === -1 || url.length > maxUrlLength ? noQuery : new URLSearchParams(url.slice(queryAt + 1)),
      headers,
    };
    // Errors in the dialect of the entrance: Anthropic's shape on its paths, OpenAI's elsewhere.
    const sendError = anthropicPath.test(path) ? sendMessagesError : sendOpenAIError;
    // Every request is logged and counted once it is over: answered, left by its client (499) or cut by shutdown.
    let label = 'unmatched';
    if (metrics !== undefined) context.metrics = metrics;
    // The request's one `close` listener (`close` is emitted once): what routes asked for (`onClose`), then the log and metrics.
    res.on('close', () => {
      const closers = context.closers;
      if (closers !== undefined) for (const closer of closers) closer();
      if (options.log) logger.request(req, res, context, started, path);
      if (metrics !== undefined) {
        metrics.requestEnded(label, context.provider, finalStatus(res, context), (performance.now() - started) / 1000, Number(overheadMs(context)) / 1000);
      }
    });
    req.once('error', () => res.destroy());

    if (cors === null) {
      req.resume();
      const origin = JSON.stringify(String(req.headers.origin).slice(0, 200));
      sendError(
        res,
        new ApiError(403, `Requests from the web page at ${origin} are not allowed; allow its origin with INTERFERENCE_CORS_ORIGINS.`, {
          code: 'origin_not_allowed',
        }),
        context.headers,
      );
      return;
    }

    if (req.method === 'OPTIONS') {
      req.resume();
      res.writeHead(204, {
        ...headers,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization, content-type, x-api-key').slice(0, 1024),
        'access-control-max-age': '86400',
      });
      res.end();
      return;
    }

    if (url.length > maxUrlLength) {
      req.resume();
      sendError(res, new ApiError(414, `the request URL is longer than ${maxUrlLength} characters`, { code: 'uri_too_long' }), context.headers);
      return;
    }

    // Without a gateway key, a Bearer token may be the one provider's key (gpt4free's clients send it so).
    if (authorize === undefined) {
      const bearer = bearerToken(req);
      if (bearer !== undefined) context.clientBearer = bearer;
    }
    let route: Route | undefined;
    let param = '';
    let pathMatched = false;
    for (const candidate of routes) {
      let matches = false;
      if (candidate.prefix) {
        if (path.startsWith(candidate.path) && path.length > candidate.path.length) {
          matches = true;
          param = safeDecode(path.slice(candidate.path.length));
        }
      } else matches = path === candidate.path || path === `${candidate.path}/`;
      if (!matches) continue;
      pathMatched = true;
      if (candidate.method === req.method || (req.method === 'HEAD' && candidate.method === 'GET')) {
        route = candidate;
        break;
      }
    }
    if (route !== undefined) label = route.label ?? route.path;
    // The key before anything else is said about the path (an unknown route under /v1 is a 401 too).
    if (authorize !== undefined && isProtected(path)) {
      try {
        const listed = authorize(req);
        if (listed !== undefined) admitAs(context, listed);
      } catch (error) {
        req.resume();
        sendError(res, error, context.headers);
        return;
      }
    }

    if (route === undefined) {
      req.resume();
      const error = pathMatched ? methodNotAllowed(req.method ?? '', path) : notFound(path);
      sendError(res, error, context.headers);
      return;
    }
    try {
      const pending = route.handler(req, res, context, param);
      if (pending !== undefined) pending.catch((error: unknown) => fail(res, context, error, sendError));
    } catch (error) {
      fail(res, context, error, sendError);
    }
  }

  function fail(res: ServerResponse, context: RequestContext, error: unknown, sendError = sendOpenAIError): void {
    if (!(error instanceof ApiError)) logger.crash(context, error);
    sendError(res, toApiError(error), context.headers, context.errorFields);
  }

  /** The methods a path answers to, for 405's `Allow`. */
  function methodNotAllowed(method: string, path: string): ApiError {
    const methods = new Set<string>(['OPTIONS']);
    for (const candidate of routes) {
      const matches = candidate.prefix
        ? path.startsWith(candidate.path) && path.length > candidate.path.length
        : path === candidate.path || path === `${candidate.path}/`;
      if (!matches) continue;
      methods.add(candidate.method);
      if (candidate.method === 'GET') methods.add('HEAD');
    }
    const allow = [...methods].sort().join(', ');
    return new ApiError(405, `${method.slice(0, 20)} is not allowed on ${path.slice(0, 200)}; use ${allow}`, {
      code: 'method_not_allowed',
      headers: { allow },
    });
  }

  return { handle, admission, store, logger };
}

/** What the parameter of each prefix route is, for the metrics' route label. */
const paramNames: Record<string, string> = {
  '/v1/responses/': 'id',
  '/images/': 'file',
  '/v1/models/': 'id',
  '/v1/providers/': 'id',
  '/api/': 'provider}/{operation',
  '/chat/': 'asset',
  '/docs/': 'asset',
};

/** Shared by requests without a query string: read only. */
const noQuery = new URLSearchParams();

function notFound(path: string): ApiError {
  return new ApiError(404, `Unknown route ${path.slice(0, 200)}. The API lives under /v1 (GET /v1 lists it).`, { code: 'route_not_found' });
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A route made on its first request, its module loaded then (once, whatever the concurrency). */
function lazyRoute<A extends unknown[]>(make: () => Promise<(...args: A) => Promise<void> | void>): (...args: A) => Promise<void> {
  let route: Promise<(...args: A) => Promise<void> | void> | undefined;
  return async (...args) => {
    route ??= make();
    await (
      await route
    )(...args);
  };
}
