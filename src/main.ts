#!/usr/bin/env node
import { createServer, type Server } from 'node:http';
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from './config.js';
import { closeAgents } from './core/http.js';
import type { Registry } from './core/registry.js';
import { buildRegistry } from './providers/index.js';
import { createApp } from './server/app.js';

export interface RunningServer {
  server: Server;
  registry: Registry;
  url: string;
  close(): Promise<void>;
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
  const app = createApp({
    registry,
    maxBodyBytes: config.maxBodyBytes,
    log: config.log,
    version,
    imagesDir: config.imagesDir,
    publicUrl: config.publicUrl,
  });
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, app);
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":{"message":"malformed HTTP request","type":"invalid_request_error","param":null,"code":"bad_http"}}');
    else socket.destroy();
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
  return {
    server,
    registry,
    url: `http://${host}:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all(registry.all().map((entry) => entry.provider.close?.()));
      await closeAgents();
    },
  };
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
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    running.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`interference: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  });
}
