#!/usr/bin/env node
import { createServer, type Server } from 'node:http';
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from './config.js';
import { closeAgents } from './core/http.js';
import type { Registry } from './core/registry.js';
import { HealthBook } from './core/health.js';
import type { RoutingPolicy } from './core/failover.js';
import { buildRegistry } from './providers/index.js';
import { createApp } from './server/app.js';
import { logEvent } from './server/log.js';

export interface RunningServer {
  server: Server;
  registry: Registry;
  policy: RoutingPolicy;
  url: string;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts what is left. */
  close(graceMs?: number): Promise<void>;
}

const version = readVersion();

function readVersion(): string {
  // src/main.ts under tsx, dist/src/main.js once built.
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
export async function startServer(config: Config): Promise<RunningServer> {
  const registry = buildRegistry(config);
  const policy: RoutingPolicy = {
    health: new HealthBook({ threshold: config.breaker.failures, cooldownMs: config.breaker.cooldownMs, maxCooldownMs: config.breaker.maxCooldownMs, window: 50 }),
    retries: config.retries.count,
    retryBaseMs: config.retries.baseMs,
    retryMaxWaitMs: config.retries.maxWaitMs,
    limits: config.upstreamLimits,
    firstContentMs: config.deadlines.firstContentMs,
    requestMs: config.deadlines.requestMs,
    onInternalError: (provider, error) =>
      logEvent({ level: 'error', event: 'internal_error_in_attempt', provider, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  };
  const app = createApp({
    policy,
    gatewayKey: config.gatewayKey,
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    server,
    registry,
    policy,
    url: `http://${host}:${port}`,
    close(graceMs = 0) {
      closing ??= shutdown(graceMs);
      return closing;
    },
  };

  async function shutdown(graceMs: number): Promise<void> {
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
    await closeAgents();
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

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`interference: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const running = await startServer(config);
  const ready = running.registry.all().filter((entry) => running.registry.readiness(entry).configured).map((entry) => entry.provider.id);
  process.stderr.write(`Interference ${version} listening on ${running.url}/v1\n`);
  process.stderr.write(`Ready providers: ${ready.join(', ') || 'none'} (GET ${running.url}/v1/providers for all)\n`);
  if (config.configPath) process.stderr.write(`Config file: ${config.configPath}\n`);
  if (config.corsOrigins.includes('*')) {
    process.stderr.write(
      'WARNING: INTERFERENCE_CORS_ORIGINS=* lets any web page you visit call this gateway and spend its provider keys. Name the origins you need instead.\n',
    );
  }
  if (!isLoopback(config.host) && config.gatewayKey === undefined) {
    process.stderr.write(
      `WARNING: listening on ${config.host} without a gateway key: anyone who can reach this address can use the configured provider keys. Set INTERFERENCE_API_KEY (or "apiKey" in the config file), or bind 127.0.0.1.\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1); // a second signal: stop now
    stopping = true;
    process.stderr.write(`${signal}: finishing in-flight requests (up to ${config.shutdownMs} ms)\n`);
    running.close(config.shutdownMs).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`interference: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  });
}
