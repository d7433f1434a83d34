import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { Config } from './config.js';
import { closeAgents } from './core/http.js';
import type { Registry } from './core/registry.js';
import { HealthBook } from './core/health.js';
import type { RoutingPolicy } from './core/failover.js';
import { buildRegistry } from './providers/index.js';
import { createApp, sendMetrics } from './server/app.js';
import { GatewayMetrics } from './server/metrics.js';
import type { SharedRedis } from './state/redis.js';
import { SharedHealth } from './state/shared-health.js';
import { createLimits } from './server/limits.js';
import { flushLog, logEvent } from './server/log.js';

export interface RunningServer {
  server: Server;
  registry: Registry;
  policy: RoutingPolicy;
  url: string;
  /** The shared-state connection, when REDIS_URL is set. */
  redis?: SharedRedis;
  /** Where Prometheus scrapes, when the metrics have their own port (INTERFERENCE_METRICS_PORT). */
  metricsUrl?: string;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts what is left. */
  close(graceMs?: number): Promise<void>;
}

export const version = readVersion();

function readVersion(): string {
  // src/start.ts under tsx, dist/src/start.js once built.
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

/** Builds and starts the gateway; used by the CLI and by tests (port 0). */
export async function startServer(config: Config, registry: Registry = buildRegistry(config)): Promise<RunningServer> {
  withoutPretenuring();
  const policy: RoutingPolicy = {
    health: new HealthBook({
      threshold: config.breaker.failures,
      cooldownMs: config.breaker.cooldownMs,
      maxCooldownMs: config.breaker.maxCooldownMs,
      window: 50,
    }),
    retries: config.retries.count,
    retryBaseMs: config.retries.baseMs,
    retryMaxWaitMs: config.retries.maxWaitMs,
    limits: config.upstreamLimits,
    firstContentMs: config.deadlines.firstContentMs,
    requestMs: config.deadlines.requestMs,
    onInternalError: (provider, error) =>
      logEvent({
        level: 'error',
        event: 'internal_error_in_attempt',
        provider,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      }),
  };
  // State shared by replicas, when Redis is configured; a Redis that is down only means local state for now.
  const redis =
    config.redisUrl === undefined
      ? undefined
      : // Loaded only when configured: the Redis client is a fifth of the idle footprint.
        new (await import('./state/redis.js')).SharedRedis(config.redisUrl, (event, fields) =>
          logEvent({ level: event === 'redis_down' ? 'warn' : 'info', event, ...fields }),
        );
  if (redis !== undefined) await redis.connect();
  // Breakers shared by the replicas; a probe's outcome is known within the first-content deadline, so that bounds its lease.
  const sharedHealth =
    redis === undefined
      ? undefined
      : new SharedHealth(redis, policy.health, { providers: registry.all().map((entry) => entry.provider.id), leaseMs: config.deadlines.firstContentMs });
  // Listed keys and rate limits (keys' and providers'): nothing at all when none is configured.
  const limits = createLimits({ keys: config.keys, providers: config.providers, redis, log: logEvent });
  // A key allowed only providers that do not exist can do nothing: say so at start.
  for (const key of config.keys) {
    const unknown = (key.providers ?? []).filter((id) => registry.find(id) === undefined);
    if (unknown.length > 0) config.warnings.push(`keys: "${key.name}" names unknown provider(s) ${unknown.join(', ')}; GET /v1/providers lists the ids`);
  }
  if (limits.providers !== undefined) policy.providerLimits = limits.providers;
  const metrics = config.metrics.enabled ? new GatewayMetrics(registry, policy.health, redis) : undefined;
  const app = createApp({
    ...(metrics === undefined ? {} : { metrics: { collector: metrics, route: config.metrics.port === undefined } }),
    policy,
    gatewayKey: config.gatewayKey,
    keys: limits.keys,
    maxMessages: config.limits.maxMessages,
    maxConcurrent: config.limits.maxConcurrent,
    imageTimeoutMs: config.imageTimeoutMs,
    registry,
    maxBodyBytes: config.maxBodyBytes,
    bodyTimeoutMs: config.client.bodyMs,
    log: config.log,
    version,
    imagesDir: config.imagesDir,
    publicUrl: config.publicUrl,
    corsOrigins: config.corsOrigins,
    ...(redis === undefined ? {} : { redis }),
  });
  await app.store.init();
  const server = createServer(
    {
      keepAliveTimeout: 65_000,
      // Complete headers within headersMs; the whole request (headers and body) within both
      // limits (the route's own body timer answers first, with a JSON 408). Checked every second.
      headersTimeout: config.client.headersMs,
      requestTimeout: config.client.headersMs + config.client.bodyMs,
      connectionsCheckingInterval: 1000,
    },
    app.handle,
  );
  server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message] = clientErrorStatus(error);
    const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code } });
    socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  let metricsServer: Server | undefined;
  try {
    await listen(server, config.port, config.host);
    if (metrics !== undefined && config.metrics.port !== undefined) metricsServer = await listenForMetrics(metrics, config.host, config.metrics.port);
  } catch (error) {
    // Could not start (a port in use): let go of what was opened for it.
    server.close();
    sharedHealth?.close();
    await redis?.close();
    throw error;
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const port = listeningPort(server, config.port);
  let closing: Promise<void> | undefined;
  return {
    server,
    registry,
    policy,
    url: `http://${host}:${port}`,
    ...(redis === undefined ? {} : { redis }),
    ...(metricsServer === undefined ? {} : { metricsUrl: `http://${host}:${listeningPort(metricsServer, 0)}/metrics` }),
    close(graceMs = 0) {
      closing ??= shutdown(graceMs);
      return closing;
    },
  };

  async function shutdown(graceMs: number): Promise<void> {
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Keep-alive sockets that finish their request while we wait are closed too.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    let cutting: Promise<void> | undefined;
    const deadline = setTimeout(() => {
      cutting = cutAfterGrace();
    }, graceMs);
    await closed;
    clearTimeout(deadline);
    clearInterval(sweep);
    await cutting;
    await Promise.all(registry.all().map((entry) => entry.provider.close?.()));
    sharedHealth?.close();
    await redis?.close();
    await closeAgents();
    flushLog();
  }

  /** Past the grace period: every request still running gets its answer (an error event, a 503), then the sockets go. */
  async function cutAfterGrace(): Promise<void> {
    const cut = app.admission.cutAll();
    if (cut > 0) logEvent({ level: 'warn', event: 'shutdown', message: `cut ${cut} request(s) still running after the grace period` });
    // Let the error events and 503s reach their clients before the sockets are closed.
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.closeAllConnections();
  }
}

function listeningPort(server: Server, fallback: number): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : fallback;
}

/** The metrics on their own port: GET /metrics there, without the gateway key (keep that port off the internet). */
async function listenForMetrics(metrics: GatewayMetrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    const path = (req.url ?? '/').split('?')[0];
    if ((req.method === 'GET' || req.method === 'HEAD') && (path === '/metrics' || path === '/metrics/')) {
      sendMetrics(res, metrics, {}).catch(() => res.destroy());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Only /metrics is served on this port.\n');
  });
  await listen(server, port, host);
  return server;
}

/** Listens, or rejects with the listen error (EADDRINUSE…) instead of emitting it. */
function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** What a request Node could not parse gets: 408 (too slow), 414/431 (too long), else 400. */
function clientErrorStatus(error: NodeJS.ErrnoException & { rawPacket?: Buffer }): [string, string, string] {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return ['408 Request Timeout', 'request_timeout', 'the request headers did not arrive in time'];
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    const packet = error.rawPacket;
    const lineEnd = packet === undefined ? -1 : packet.indexOf('\n');
    if (packet !== undefined && (lineEnd === -1 || lineEnd > 8192)) return ['414 URI Too Long', 'uri_too_long', 'the request URL is too long'];
    return ['431 Request Header Fields Too Large', 'headers_too_large', 'the request headers are too large'];
  }
  return ['400 Bad Request', 'bad_http', 'malformed HTTP request'];
}

/**
 * Turns off V8's allocation-site pretenuring for this process. From a few young collections V8
 * guesses which allocation sites make long-lived objects; under load it holds this gateway's
 * per-request sites (objects that live a few milliseconds) as "maybe tenure", and the full
 * collections it then runs to decide promote whole request graphs to the old generation. Measured
 * with `node --trace-gc-nvp`, c=50 JSON, 5 restarts each: 1.7 MB promoted per young collection and
 * a full collection every ~0.5 s with it, ~0.4 MB without (bench/README.md, "Against the floor").
 * A server's objects are either per request or made at start, so the guess has nothing to win here.
 */
function withoutPretenuring(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
