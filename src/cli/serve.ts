/**
 * `interference serve` (also what runs with no command): loads the configuration, starts the
 * gateway and prints the banner. Behaviour, messages and exit codes are those the README and
 * test/config-errors.test.ts describe: 2 for a bad command line or configuration, 1 when it
 * cannot listen.
 */
import type { Command } from 'commander';
import { banner } from '../banner.js';
import { ConfigError, loadConfig, withoutPassword, type CommandLineSettings, type Config } from '../config.js';
import { isLoopbackHost } from '../core/http.js';
import type { Registry } from '../core/registry.js';
import { buildRegistry } from '../providers/index.js';
import { startServer, version, type RunningServer } from '../start.js';
import { CliError, usageError } from './errors.js';

/** The serve options as shown in both `interference --help` and `interference serve --help`. */
export const serveOptionsHelp = `Options:
  -p, --port <n>        port to listen on (default 1337; also PORT)
      --host <address>  address to bind (default 127.0.0.1; also HOST)
  -c, --config <file>   config file (default ./interference.config.json; also INTERFERENCE_CONFIG)
      --check-config    check the configuration, print it resolved (keys masked) and exit
  -h, --help            show this help and exit
  -v, --version         show the version and exit
`;

export const serveSummary = 'Serves an OpenAI-compatible API at http://HOST:PORT/v1 over many model providers.';

interface ServeFlags {
  port?: string;
  host?: string;
  config?: string;
  checkConfig?: boolean;
  version?: boolean;
}

export function registerServe(program: Command): Command {
  return program
    .command('serve', { isDefault: true })
    .summary('serve the API (the default command)')
    .option('-p, --port <n>')
    .option('--host <address>')
    .option('-c, --config <file>')
    .option('--check-config')
    .option('-v, --version')
    .configureHelp({
      formatHelp: () => `Usage: interference serve [options]\n\n${serveSummary}\n\n${serveOptionsHelp}\nEvery setting is in README.md, "Configuration".\n`,
    })
    .action((flags: ServeFlags) => serve(flags));
}

async function serve(flags: ServeFlags): Promise<void> {
  if (flags.version === true) {
    process.stdout.write(`${version}\n`);
    return;
  }
  const settings = commandLineSettings(flags);
  let config: Config;
  let registry: Registry;
  try {
    config = loadConfig(process.env, process.cwd(), settings);
    registry = buildRegistry(config);
  } catch (error) {
    if (error instanceof ConfigError) throw configurationError(error);
    throw error;
  }
  if (flags.checkConfig === true) {
    process.stdout.write(`${JSON.stringify(resolvedConfig(config, registry), null, 2)}\n`);
    return;
  }
  let running: RunningServer;
  try {
    running = await startServer(config, registry);
  } catch (error) {
    throw listenError(error, config) ?? error;
  }
  process.stderr.write(await banner(running.registry, config, running.url, version));
  if (running.metricsUrl !== undefined) process.stderr.write(`  metrics:              ${running.metricsUrl} (Prometheus; no gateway key on this port)\n`);
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

/** The flags as settings that win over the environment and the config file. */
function commandLineSettings(flags: ServeFlags): CommandLineSettings {
  const settings: CommandLineSettings = {};
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!/^\d+$/.test(flags.port) || port > 65535)
      throw usageError(`--port: found ${JSON.stringify(flags.port)}; expected a whole number from 0 to 65535\nRun "interference --help" for the options.`);
    settings.port = port;
  }
  if (flags.host !== undefined) {
    if (flags.host.trim() === '') throw usageError('--host: found nothing; expected an address such as 127.0.0.1\nRun "interference --help" for the options.');
    settings.host = flags.host;
  }
  if (flags.config !== undefined) settings.configPath = flags.config;
  return settings;
}

/** Every problem at once, one line each. */
function configurationError(error: ConfigError): CliError {
  const count = error.problems.length;
  if (count <= 1) return usageError(error.message);
  const lines = error.message
    .split('\n')
    .map((line) => `  - ${line}`)
    .join('\n');
  return usageError(`the configuration has ${count} problems:\n${lines}`);
}

/** Why it cannot listen, with the fix; undefined for errors that are not the user's to fix. */
function listenError(error: unknown, config: Config): CliError | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  const port = (error as { port?: unknown }).port;
  if (code === 'EADDRINUSE' && config.metrics.port !== undefined && port === config.metrics.port && port !== config.port)
    return new CliError(1, `the metrics port ${port} on ${config.host} is already in use; choose another with INTERFERENCE_METRICS_PORT.`);
  if (code === 'EADDRINUSE')
    return new CliError(
      1,
      `port ${config.port} on ${config.host} is already in use (another Interference?). Stop that process, or choose another port with --port or PORT.`,
    );
  if (code === 'EACCES')
    return new CliError(1, `no permission to listen on port ${config.port} (ports below 1024 need privileges); choose another with --port or PORT.`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return new CliError(1, `cannot listen on ${config.host}: no such address on this machine; use --host 127.0.0.1 (or 0.0.0.0 for every interface).`);
  return undefined;
}

/** What --check-config prints: the settings in force, every key masked. */
function resolvedConfig(config: Config, registry: Registry): Record<string, unknown> {
  const { env: _env, providers: _providers, warnings, gatewayKey, ...settings } = config;
  return {
    ...settings,
    gatewayKey: gatewayKey === undefined ? null : mask(gatewayKey),
    redisUrl: config.redisUrl === undefined ? null : withoutPassword(config.redisUrl),
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
