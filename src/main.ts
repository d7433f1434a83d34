#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { banner } from './banner.js';
import { ConfigError, loadConfig, type CommandLineSettings, type Config } from './config.js';
import { isLoopbackHost } from './core/http.js';
import type { Registry } from './core/registry.js';
import { buildRegistry } from './providers/index.js';
import { startServer, version, type RunningServer } from './start.js';

const usage = `Usage: interference [options]

Serves an OpenAI-compatible API at http://HOST:PORT/v1 over many model providers.

Options:
  -p, --port <n>        port to listen on (default 1337; also PORT)
      --host <address>  address to bind (default 127.0.0.1; also HOST)
  -c, --config <file>   config file (default ./interference.config.json; also INTERFERENCE_CONFIG)
      --check-config    check the configuration, print it resolved (keys masked) and exit
  -h, --help            show this help and exit
  -v, --version         show the version and exit

Every setting is in README.md, "Configuration".
`;

/** Exit codes: 0 done, 1 could not run (port in use…), 2 bad command line or configuration. */
async function main(argv: string[]): Promise<void> {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(argv);
  } catch (error) {
    fail(2, `${error instanceof Error ? error.message : String(error)}\nRun "interference --help" for the options.`);
  }
  if (flags.help) {
    process.stdout.write(usage);
    return;
  }
  if (flags.version) {
    process.stdout.write(`${version}\n`);
    return;
  }
  let config: Config;
  let registry: Registry;
  try {
    config = loadConfig(process.env, process.cwd(), flags.settings);
    registry = buildRegistry(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      const count = error.problems.length;
      fail(
        2,
        count > 1
          ? `the configuration has ${count} problems:\n${error.message
              .split('\n')
              .map((line) => `  - ${line}`)
              .join('\n')}`
          : error.message,
      );
    }
    throw error;
  }
  if (flags.checkConfig) {
    process.stdout.write(`${JSON.stringify(resolvedConfig(config, registry), null, 2)}\n`);
    return;
  }
  let running: RunningServer;
  try {
    running = await startServer(config, registry);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      fail(
        1,
        `port ${config.port} on ${config.host} is already in use (another Interference?). Stop that process, or choose another port with --port or PORT.`,
      );
    if (code === 'EACCES') fail(1, `no permission to listen on port ${config.port} (ports below 1024 need privileges); choose another with --port or PORT.`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      fail(1, `cannot listen on ${config.host}: no such address on this machine; use --host 127.0.0.1 (or 0.0.0.0 for every interface).`);
    throw error;
  }
  process.stderr.write(await banner(running.registry, config, running.url, version));
  if (config.corsOrigins.includes('*')) {
    process.stderr.write(
      'WARNING: INTERFERENCE_CORS_ORIGINS=* lets any web page you visit call this gateway and spend its provider keys. Name the origins you need instead.\n',
    );
  }
  if (!isLoopbackHost(config.host) && config.gatewayKey === undefined) {
    process.stderr.write(
      `WARNING: listening on ${config.host} without a gateway key: anyone who can reach this address can use the configured provider keys. Set INTERFERENCE_API_KEY (or "apiKey" in the config file), or bind 127.0.0.1.\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1); // a second signal: stop now
    stopping = true;
    process.stderr.write(`${signal}: finishing in-flight requests (up to ${config.shutdownMs} ms)\n`);
    running.close(config.shutdownMs).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function parseFlags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      config: { type: 'string', short: 'c' },
      'check-config': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const settings: CommandLineSettings = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) throw new Error(`--port: found ${JSON.stringify(values.port)}; expected a whole number from 0 to 65535`);
    settings.port = port;
  }
  if (values.host !== undefined) {
    if (values.host.trim() === '') throw new Error('--host: found nothing; expected an address such as 127.0.0.1');
    settings.host = values.host;
  }
  if (values.config !== undefined) settings.configPath = values.config;
  return { settings, help: values.help === true, version: values.version === true, checkConfig: values['check-config'] === true };
}

/** What --check-config prints: the settings in force, every key masked. */
function resolvedConfig(config: Config, registry: Registry): Record<string, unknown> {
  const { env: _env, providers: _providers, warnings, gatewayKey, ...settings } = config;
  return {
    ...settings,
    gatewayKey: gatewayKey === undefined ? null : mask(gatewayKey),
    providers: registry.all().map((entry) => {
      const readiness = registry.readiness(entry);
      return {
        id: entry.provider.id,
        configured: readiness.configured,
        ...(readiness.reason === null ? {} : { reason: readiness.reason }),
        key: entry.serverKey === undefined ? null : mask(entry.serverKey),
        ...(entry.provider.baseUrl === undefined ? {} : { baseUrl: entry.provider.baseUrl }),
        autoRoute: entry.autoRoute,
        ...(entry.publicHosts === undefined ? {} : { publicHosts: entry.publicHosts }),
      };
    }),
    warnings,
  };
}

/** `sk-…wxyz` for long keys, `****` for short ones: enough to tell keys apart, never enough to use one. */
function mask(key: string): string {
  return key.length >= 16 ? `${key.slice(0, 3)}…${key.slice(-4)}` : '****';
}

/** One line on stderr and the exit code; never a stack trace for a user's mistake. */
function fail(code: number, message: string): never {
  process.stderr.write(`interference: ${message}\n`);
  process.exit(code);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`interference: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
