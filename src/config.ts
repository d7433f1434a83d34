import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import {
  isAbsoluteHttpUrl,
  parseConfigFile,
  show,
  urlExpectation,
  type ConfigFile,
  type ConfigProblem,
  type KeyEntry,
  type ProviderEntry,
} from './config-file.js';
import { defaultLimits, defaultTimeouts, type Timeouts, type UpstreamLimits } from './core/http.js';

export type { ConfigProblem } from './config-file.js';

/** One entry of `providers` in interference.config.json. */
export type ProviderOverride = ProviderEntry;

/** One entry of `keys` in interference.config.json: a gateway key known by its SHA-256 only. */
export type GatewayKeyEntry = KeyEntry;

export interface LocalModelSettings {
  /** GGUF path, `hf:` URI or https URL. */
  model: string;
  cacheDir: string;
  threads: number;
  contextSize: number;
  parallel: number;
  hfEndpoint: string | undefined;
}

export interface Config {
  host: string;
  port: number;
  configPath: string | null;
  providers: ProviderOverride[];
  env: Readonly<Record<string, string | undefined>>;
  local: LocalModelSettings;
  timeouts: Timeouts;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
  /** One JSON line per request on stderr. */
  log: boolean;
  /** Where generated images are stored (served at /images/<file>). */
  imagesDir: string;
  /** Absolute base for image URLs (`https://gw.example`); default: from the request's Host. */
  publicUrl: string | undefined;
  /** The gateway's own key: when set, /v1/*, /api/* and /images/* need it. Never a provider key. */
  gatewayKey: string | undefined;
  /** More gateway keys (the file's `keys`), each with its own providers and limits; empty: none. */
  keys: GatewayKeyEntry[];
  breaker: { failures: number; cooldownMs: number; maxCooldownMs: number };
  retries: { count: number; baseMs: number; maxWaitMs: number };
  limits: { maxMessages: number; maxConcurrent: number };
  /** How long in-flight requests may run after SIGTERM/SIGINT before connections are cut. */
  shutdownMs: number;
  /** Longest one provider may take for an images request. */
  imageTimeoutMs: number;
  /** What one upstream answer may make us hold in memory. */
  upstreamLimits: UpstreamLimits;
  /** An attempt's first content; a whole non-streamed request. */
  deadlines: { firstContentMs: number; requestMs: number };
  /** A client's complete headers, then its complete body (408 past either). */
  client: { headersMs: number; bodyMs: number };
  /**
   * Browser origins allowed besides the server's own and loopback pages (`http://localhost:*`,
   * `http://127.0.0.1:*`, `http://[::1]:*`); `*` allows any.
   */
  corsOrigins: string[];
  /**
   * Keyless public services (PollinationsAI, Hugging Face Spaces) may receive prompts. Off: every
   * prompt stays on this machine or goes to providers with keys.
   */
  publicProviders: boolean;
  /** Prometheus metrics at /metrics (behind the gateway key), or on their own port when `port` is set. */
  metrics: { enabled: boolean; port: number | undefined };
  /**
   * Redis for state shared by replicas (health, limits, images, stored responses); undefined: one
   * process, everything in memory and on local disk.
   */
  redisUrl: string | undefined;
  /** Things to say at start that do not stop it (a model file that is missing, say). */
  warnings: string[];
}

/** The configuration could not be used: each problem says where, what was found and what is expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[] | string) {
    const list = typeof problems === 'string' ? [] : problems;
    super(typeof problems === 'string' ? problems : problems.map(formatProblem).join('\n'));
    this.problems = list;
  }
}

export function formatProblem(problem: ConfigProblem): string {
  return `${problem.where}: ${problem.path}: found ${problem.found}; expected ${problem.expected}`;
}

/** The default embedded model: a small real instruct model, fetched on first use. */
export const defaultLocalModel = 'hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0';

/** Settings given on the command line; they win over the environment and the file. */
export interface CommandLineSettings {
  port?: number;
  host?: string;
  configPath?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the configuration once, at start: the config file (strict, see config-file.ts), then the
 * environment, then the command line. Every problem found is collected and thrown together as
 * one ConfigError, so a user fixes them in one go.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd(), cli: CommandLineSettings = {}): Config {
  const problems: ConfigProblem[] = [];
  const explicitPath = cli.configPath ?? nonEmpty(env.INTERFERENCE_CONFIG);
  const configPath = explicitPath ? path.resolve(cwd, explicitPath) : path.resolve(cwd, 'interference.config.json');
  let file: ConfigFile = {};
  let found: string | null = null;
  if (existsSync(configPath)) {
    const read = readConfigFile(configPath);
    if ('problems' in read) problems.push(...read.problems);
    else file = read.file;
    found = configPath;
  } else if (explicitPath) {
    const source = cli.configPath !== undefined ? '--config' : 'INTERFERENCE_CONFIG';
    throw new ConfigError(`${source} points at ${configPath}, which does not exist; create it or point ${source} at another file`);
  }
  const read = new EnvReader(env, problems);
  const localModel = env.INTERFERENCE_LOCAL_MODEL || defaultLocalModel;
  const warnings: string[] = [];
  if (
    env.INTERFERENCE_LOCAL_MODEL &&
    !/^(hf:|huggingface:|hf\.co\/|huggingface\.co\/|https?:\/\/)/i.test(localModel) &&
    !existsSync(path.resolve(cwd, localModel))
  ) {
    warnings.push(
      `INTERFERENCE_LOCAL_MODEL points at ${path.resolve(cwd, localModel)}, which does not exist: the embedded model (Local) cannot answer until it does`,
    );
  }
  const config: Config = {
    host: cli.host ?? (env.HOST || '127.0.0.1'),
    port: cli.port ?? read.integer('PORT', 1337, 0, 65535),
    configPath: found,
    providers: file.providers ?? [],
    env,
    local: {
      model: localModel,
      cacheDir: env.INTERFERENCE_MODELS_DIR || path.join(homedir(), '.cache', 'interference', 'models'),
      threads: read.integer('INTERFERENCE_LOCAL_THREADS', 1, 1, 256),
      contextSize: read.integer('INTERFERENCE_LOCAL_CONTEXT', 2048, 64, 1 << 20),
      parallel: read.integer('INTERFERENCE_LOCAL_PARALLEL', 2, 1, 64),
      hfEndpoint: read.url('HF_ENDPOINT'),
    },
    timeouts: {
      connectMs: read.integer('INTERFERENCE_CONNECT_TIMEOUT_MS', file.timeouts?.connectMs ?? defaultTimeouts.connectMs, 1, 600_000),
      firstByteMs: read.integer('INTERFERENCE_FIRST_BYTE_TIMEOUT_MS', file.timeouts?.firstByteMs ?? defaultTimeouts.firstByteMs, 1, 3_600_000),
      idleMs: read.integer('INTERFERENCE_IDLE_TIMEOUT_MS', file.timeouts?.idleMs ?? defaultTimeouts.idleMs, 1, 3_600_000),
    },
    maxBodyBytes: read.integer('INTERFERENCE_MAX_BODY_BYTES', 8 * 1024 * 1024, 1024, 1 << 30),
    log: read.flag('INTERFERENCE_LOG', true),
    imagesDir: path.resolve(cwd, env.INTERFERENCE_IMAGES_DIR || 'generated_images'),
    publicUrl: read.url('INTERFERENCE_PUBLIC_URL')?.replace(/\/+$/, ''),
    gatewayKey: nonEmpty(env.INTERFERENCE_API_KEY) ?? file.apiKey,
    keys: file.keys ?? [],
    breaker: {
      failures: read.integer('INTERFERENCE_BREAKER_FAILURES', 3, 1, 1000),
      cooldownMs: read.integer('INTERFERENCE_BREAKER_COOLDOWN_MS', 30_000, 1, 3_600_000),
      maxCooldownMs: read.integer('INTERFERENCE_BREAKER_MAX_COOLDOWN_MS', 300_000, 1, 86_400_000),
    },
    retries: {
      count: read.integer('INTERFERENCE_RETRIES', 2, 0, 10),
      baseMs: read.integer('INTERFERENCE_RETRY_BASE_MS', 250, 1, 60_000),
      maxWaitMs: read.integer('INTERFERENCE_RETRY_MAX_WAIT_MS', 10_000, 0, 600_000),
    },
    limits: {
      maxMessages: read.integer('INTERFERENCE_MAX_MESSAGES', 4096, 1, 1_000_000),
      maxConcurrent: read.integer('INTERFERENCE_MAX_CONCURRENT', 1024, 1, 1_000_000),
    },
    shutdownMs: read.integer('INTERFERENCE_SHUTDOWN_MS', 10_000, 0, 600_000),
    imageTimeoutMs: read.integer('INTERFERENCE_IMAGE_TIMEOUT_MS', 300_000, 1, 3_600_000),
    upstreamLimits: {
      maxBodyBytes: read.integer('INTERFERENCE_MAX_UPSTREAM_BYTES', file.limits?.maxUpstreamBytes ?? defaultLimits.maxBodyBytes, 1024, 2 ** 31),
      maxEventBytes: read.integer('INTERFERENCE_MAX_EVENT_BYTES', file.limits?.maxEventBytes ?? defaultLimits.maxEventBytes, 1024, 2 ** 31),
      privateDownloads: read.flag('INTERFERENCE_PRIVATE_DOWNLOADS', false),
    },
    deadlines: {
      firstContentMs: read.integer('INTERFERENCE_FIRST_CONTENT_TIMEOUT_MS', file.timeouts?.firstContentMs ?? 120_000, 1, 3_600_000),
      requestMs: read.integer('INTERFERENCE_REQUEST_TIMEOUT_MS', file.timeouts?.requestMs ?? 600_000, 1, 86_400_000),
    },
    client: {
      headersMs: read.integer('INTERFERENCE_HEADERS_TIMEOUT_MS', file.timeouts?.headersMs ?? 10_000, 100, 600_000),
      bodyMs: read.integer('INTERFERENCE_BODY_TIMEOUT_MS', file.timeouts?.bodyMs ?? 30_000, 100, 3_600_000),
    },
    corsOrigins: corsOrigins(env.INTERFERENCE_CORS_ORIGINS, file.corsOrigins, found ?? 'config file', problems),
    publicProviders: read.flag('INTERFERENCE_PUBLIC_PROVIDERS', file.publicProviders ?? true),
    redisUrl: redisUrl(env.REDIS_URL, file.redis, problems),
    metrics: {
      enabled: read.flag('INTERFERENCE_METRICS', true),
      port: nonEmpty(env.INTERFERENCE_METRICS_PORT) === undefined ? undefined : read.integer('INTERFERENCE_METRICS_PORT', 0, 0, 65535),
    },
    warnings,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Reads and parses the file: JSON first, then the schema. */
function readConfigFile(file: string): { file: ConfigFile } | { problems: ConfigProblem[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const fix = code === 'EACCES' ? 'make it readable by this user' : code === 'EISDIR' ? 'point at a file, not a folder' : 'check the path';
    throw new ConfigError(`cannot read the config file ${file} (${code}): ${fix}, or point INTERFERENCE_CONFIG / --config at another file`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : 'parse error';
    return {
      problems: [{ where: file, path: '(the whole file)', found: `text that is not JSON (${detail})`, expected: 'a JSON object like {"providers": [...]}' }],
    };
  }
  return parseConfigFile(file, value);
}

/** Environment variables, each checked; a bad one becomes a problem and its default is used meanwhile. */
class EnvReader {
  readonly #env: Env;
  readonly #problems: ConfigProblem[];

  constructor(env: Env, problems: ConfigProblem[]) {
    this.#env = env;
    this.#problems = problems;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.#env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!/^\s*-?\d+\s*$/.test(raw) || !Number.isInteger(value) || value < min || value > max) {
      this.#problems.push({ where: 'environment', path: name, found: show(raw), expected: `a whole number from ${min} to ${max}` });
      return fallback;
    }
    return value;
  }

  flag(name: string, fallback: boolean): boolean {
    const raw = this.#env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = raw.trim().toLowerCase();
    if (['1', 'on', 'true', 'yes'].includes(value)) return true;
    if (['0', 'off', 'false', 'no'].includes(value)) return false;
    this.#problems.push({ where: 'environment', path: name, found: show(raw), expected: 'on or off (also 1/0, true/false, yes/no)' });
    return fallback;
  }

  url(name: string): string | undefined {
    const raw = nonEmpty(this.#env[name]);
    if (raw === undefined) return undefined;
    if (!isAbsoluteHttpUrl(raw)) {
      this.#problems.push({ where: 'environment', path: name, found: show(raw), expected: urlExpectation });
      return undefined;
    }
    return raw;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** `INTERFERENCE_CORS_ORIGINS` (a comma list) or the file's `corsOrigins`: origins like `https://app.example`, or `*`. */
function corsOrigins(raw: string | undefined, fromFile: string[] | undefined, file: string, problems: ConfigProblem[]): string[] {
  const fromEnv = raw !== undefined && raw.trim() !== '';
  const list = fromEnv
    ? raw
        .split(',')
        .map((origin) => origin.trim())
        .filter((origin) => origin !== '')
    : (fromFile ?? []);
  const out: string[] = [];
  list.forEach((origin, index) => {
    if (origin === '*') {
      out.push(origin);
      return;
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== origin.replace(/\/$/, '')) {
      problems.push({
        where: fromEnv ? 'environment' : file,
        path: fromEnv ? 'INTERFERENCE_CORS_ORIGINS' : `corsOrigins[${index}]`,
        found: show(origin),
        expected: 'an origin (scheme://host[:port], no path) such as "https://app.example", or *',
      });
      return;
    }
    out.push(parsed.origin);
  });
  return out;
}

/** `REDIS_URL` (wins) or the file's `redis`: redis:// or rediss:// only. */
function redisUrl(raw: string | undefined, fromFile: string | undefined, problems: ConfigProblem[]): string | undefined {
  const value = nonEmpty(raw);
  if (value === undefined) return fromFile;
  if (!/^rediss?:\/\/\S+$/.test(value)) {
    problems.push({ where: 'environment', path: 'REDIS_URL', found: show(withoutPassword(value)), expected: 'a Redis URL like "redis://127.0.0.1:6379"' });
    return undefined;
  }
  return value;
}

/** A Redis URL fit for messages and listings: its user-info (a password) masked. */
export function withoutPassword(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@');
}

/** One provider's settings, resolved from the config file and the environment (the only place both are read). */
export interface ProviderSettings {
  /** The config file's entry for it (ids are case-insensitive). */
  readonly entry: ProviderOverride | undefined;
  /** From the file, else `<ID>_BASE_URL`; undefined when neither sets it. */
  readonly baseUrl: string | undefined;
  /** Where `baseUrl` came from, for messages. */
  readonly baseUrlVariable: string;
  /** From the file, else `<ID>_API_KEY`, else the vendor's variables, in that order. */
  readonly apiKey: string | undefined;
  readonly keyVariables: readonly string[];
}

/**
 * Resolves a provider's settings once: the file wins over `<ID>_BASE_URL` and `<ID>_API_KEY`,
 * which win over the vendor's variables (`OPENAI_API_KEY`, `HF_TOKEN`, …). Frozen.
 */
export function providerSettings(config: Config, id: string, vendorKeyVariables: readonly string[] = []): ProviderSettings {
  const entry = config.providers.find((candidate) => candidate.id.toLowerCase() === id.toLowerCase());
  const baseUrlVariable = envName(id, 'BASE_URL');
  const keyVariables = [...new Set([envName(id, 'API_KEY'), ...vendorKeyVariables])];
  let apiKey = nonEmpty(entry?.apiKey);
  for (const variable of keyVariables) apiKey ??= nonEmpty(config.env[variable]);
  return Object.freeze({ entry, baseUrl: entry?.baseUrl ?? nonEmpty(config.env[baseUrlVariable]), baseUrlVariable, apiKey, keyVariables });
}

/** `<ID>_API_KEY` / `<ID>_BASE_URL` naming: id upper-cased, other characters as `_`. */
export function envName(id: string, suffix: 'API_KEY' | 'BASE_URL'): string {
  return `${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${suffix}`;
}
