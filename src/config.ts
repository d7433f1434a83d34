import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { defaultLimits, defaultTimeouts, type Timeouts, type UpstreamLimits } from './core/http.js';

/** One entry of `providers` in interference.config.json. */
export interface ProviderOverride {
  id: string;
  /** `"openai"` adds a custom OpenAI-compatible provider when `id` is new. */
  api?: string;
  baseUrl?: string;
  apiKey?: string;
  models?: string[];
  label?: string;
  url?: string;
  defaultModel?: string;
  aliases?: Record<string, string>;
}

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
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The default embedded model: a small real instruct model, fetched on first use. */
export const defaultLocalModel = 'hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0';

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): Config {
  const explicitPath = env.INTERFERENCE_CONFIG;
  const configPath = explicitPath ? path.resolve(cwd, explicitPath) : path.resolve(cwd, 'interference.config.json');
  let file: ConfigFile = { providers: [] };
  let found: string | null = null;
  if (existsSync(configPath)) {
    file = parseConfigFile(configPath);
    found = configPath;
  } else if (explicitPath) {
    throw new ConfigError(`INTERFERENCE_CONFIG points at ${configPath}, which does not exist`);
  }
  return {
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 1337, 0, 65535),
    configPath: found,
    providers: file.providers,
    env,
    local: {
      model: env.INTERFERENCE_LOCAL_MODEL || defaultLocalModel,
      cacheDir: env.INTERFERENCE_MODELS_DIR || path.join(homedir(), '.cache', 'interference', 'models'),
      threads: integer(env, 'INTERFERENCE_LOCAL_THREADS', 1, 1, 256),
      contextSize: integer(env, 'INTERFERENCE_LOCAL_CONTEXT', 2048, 64, 1 << 20),
      parallel: integer(env, 'INTERFERENCE_LOCAL_PARALLEL', 2, 1, 64),
      hfEndpoint: env.HF_ENDPOINT || undefined,
    },
    timeouts: {
      connectMs: integer(env, 'INTERFERENCE_CONNECT_TIMEOUT_MS', file.timeouts?.connectMs ?? defaultTimeouts.connectMs, 1, 600_000),
      firstByteMs: integer(env, 'INTERFERENCE_FIRST_BYTE_TIMEOUT_MS', file.timeouts?.firstByteMs ?? defaultTimeouts.firstByteMs, 1, 3_600_000),
      idleMs: integer(env, 'INTERFERENCE_IDLE_TIMEOUT_MS', file.timeouts?.idleMs ?? defaultTimeouts.idleMs, 1, 3_600_000),
    },
    maxBodyBytes: integer(env, 'INTERFERENCE_MAX_BODY_BYTES', 8 * 1024 * 1024, 1024, 1 << 30),
    log: env.INTERFERENCE_LOG !== '0' && env.INTERFERENCE_LOG !== 'off',
    imagesDir: path.resolve(cwd, env.INTERFERENCE_IMAGES_DIR || 'generated_images'),
    publicUrl: publicUrl(env.INTERFERENCE_PUBLIC_URL),
    gatewayKey: nonEmpty(env.INTERFERENCE_API_KEY) ?? file.apiKey,
    breaker: {
      failures: integer(env, 'INTERFERENCE_BREAKER_FAILURES', 3, 1, 1000),
      cooldownMs: integer(env, 'INTERFERENCE_BREAKER_COOLDOWN_MS', 30_000, 1, 3_600_000),
      maxCooldownMs: integer(env, 'INTERFERENCE_BREAKER_MAX_COOLDOWN_MS', 300_000, 1, 86_400_000),
    },
    retries: {
      count: integer(env, 'INTERFERENCE_RETRIES', 2, 0, 10),
      baseMs: integer(env, 'INTERFERENCE_RETRY_BASE_MS', 250, 1, 60_000),
      maxWaitMs: integer(env, 'INTERFERENCE_RETRY_MAX_WAIT_MS', 10_000, 0, 600_000),
    },
    limits: {
      maxMessages: integer(env, 'INTERFERENCE_MAX_MESSAGES', 4096, 1, 1_000_000),
      maxConcurrent: integer(env, 'INTERFERENCE_MAX_CONCURRENT', 1024, 1, 1_000_000),
    },
    shutdownMs: integer(env, 'INTERFERENCE_SHUTDOWN_MS', 10_000, 0, 600_000),
    imageTimeoutMs: integer(env, 'INTERFERENCE_IMAGE_TIMEOUT_MS', 300_000, 1, 3_600_000),
    upstreamLimits: {
      maxBodyBytes: integer(env, 'INTERFERENCE_MAX_UPSTREAM_BYTES', file.limits?.maxUpstreamBytes ?? defaultLimits.maxBodyBytes, 1024, 2 ** 31),
      maxEventBytes: integer(env, 'INTERFERENCE_MAX_EVENT_BYTES', file.limits?.maxEventBytes ?? defaultLimits.maxEventBytes, 1024, 2 ** 31),
    },
    deadlines: {
      firstContentMs: integer(env, 'INTERFERENCE_FIRST_CONTENT_TIMEOUT_MS', file.timeouts?.firstContentMs ?? 120_000, 1, 3_600_000),
      requestMs: integer(env, 'INTERFERENCE_REQUEST_TIMEOUT_MS', file.timeouts?.requestMs ?? 600_000, 1, 86_400_000),
    },
    client: {
      headersMs: integer(env, 'INTERFERENCE_HEADERS_TIMEOUT_MS', file.timeouts?.headersMs ?? 10_000, 100, 600_000),
      bodyMs: integer(env, 'INTERFERENCE_BODY_TIMEOUT_MS', file.timeouts?.bodyMs ?? 30_000, 100, 3_600_000),
    },
    corsOrigins: corsOrigins(env.INTERFERENCE_CORS_ORIGINS, file.corsOrigins),
  };
}

/** `INTERFERENCE_CORS_ORIGINS` (a comma list) or the file's `corsOrigins`: origins like `https://app.example`, or `*`. */
function corsOrigins(raw: string | undefined, fromFile: string[] | undefined): string[] {
  const list = raw !== undefined && raw.trim() !== '' ? raw.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '') : (fromFile ?? []);
  return list.map((origin) => {
    if (origin === '*') return origin;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError(`INTERFERENCE_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin like https://app.example or http://localhost:3000`);
    }
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== origin.replace(/\/$/, '')) {
      throw new ConfigError(`INTERFERENCE_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path) like https://app.example`);
    }
    return parsed.origin;
  });
}

function publicUrl(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(raw)) throw new ConfigError(`INTERFERENCE_PUBLIC_URL must be an absolute http(s) URL, got ${JSON.stringify(raw)}`);
  return raw.replace(/\/+$/, '');
}

function integer(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

const stringFields = ['api', 'baseUrl', 'apiKey', 'label', 'url', 'defaultModel'] as const;

interface FileTimeouts extends Timeouts {
  firstContentMs: number;
  requestMs: number;
  headersMs: number;
  bodyMs: number;
}

interface ConfigFile {
  providers: ProviderOverride[];
  apiKey?: string;
  timeouts?: Partial<FileTimeouts>;
  limits?: { maxUpstreamBytes?: number; maxEventBytes?: number };
  corsOrigins?: string[];
}

function parseConfigFile(file: string): ConfigFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${file}: the top level must be an object like {"providers": [...]}`);
  }
  const root = parsed as Record<string, unknown>;
  const result: ConfigFile = { providers: parseProviders(file, root.providers) };
  if (root.apiKey !== undefined) {
    if (typeof root.apiKey !== 'string' || root.apiKey === '') throw new ConfigError(`${file}: "apiKey" (the gateway's own key) must be a non-empty string`);
    result.apiKey = root.apiKey;
  }
  if (root.timeouts !== undefined) {
    const timeouts = root.timeouts;
    if (typeof timeouts !== 'object' || timeouts === null) throw new ConfigError(`${file}: "timeouts" must be an object like {"connectMs": 10000}`);
    result.timeouts = {};
    for (const key of ['connectMs', 'firstByteMs', 'idleMs', 'firstContentMs', 'requestMs', 'headersMs', 'bodyMs'] as const) {
      const value = (timeouts as Record<string, unknown>)[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new ConfigError(`${file}: timeouts.${key} must be a positive integer (milliseconds)`);
      result.timeouts[key] = value;
    }
  }
  if (root.limits !== undefined) {
    const limits = root.limits;
    if (typeof limits !== 'object' || limits === null) throw new ConfigError(`${file}: "limits" must be an object like {"maxUpstreamBytes": 33554432}`);
    result.limits = {};
    for (const key of ['maxUpstreamBytes', 'maxEventBytes'] as const) {
      const value = (limits as Record<string, unknown>)[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1024) throw new ConfigError(`${file}: limits.${key} must be an integer of at least 1024 (bytes)`);
      result.limits[key] = value;
    }
  }
  if (root.corsOrigins !== undefined) {
    if (!Array.isArray(root.corsOrigins) || !root.corsOrigins.every((origin) => typeof origin === 'string')) {
      throw new ConfigError(`${file}: "corsOrigins" must be an array of origins like ["https://app.example"]`);
    }
    result.corsOrigins = root.corsOrigins as string[];
  }
  return result;
}

function parseProviders(file: string, list: unknown): ProviderOverride[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new ConfigError(`${file}: "providers" must be an array`);
  return list.map((entry, index) => {
    const where = `${file}: providers[${index}]`;
    if (typeof entry !== 'object' || entry === null) throw new ConfigError(`${where} must be an object`);
    const record = entry as Record<string, unknown>;
    if (typeof record.id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(record.id)) {
      throw new ConfigError(`${where}.id must be 1 to 64 ASCII letters, digits, ".", "_" or "-" (it is used in headers and env names)`);
    }
    const override: ProviderOverride = { id: record.id };
    for (const field of stringFields) {
      const value = record[field];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw new ConfigError(`${where}.${field} must be a string`);
      override[field] = value;
    }
    if (record.models !== undefined) {
      if (!Array.isArray(record.models) || !record.models.every((m) => typeof m === 'string')) {
        throw new ConfigError(`${where}.models must be an array of strings`);
      }
      override.models = record.models as string[];
    }
    if (record.aliases !== undefined) {
      const aliases = record.aliases;
      if (typeof aliases !== 'object' || aliases === null || !Object.values(aliases).every((v) => typeof v === 'string')) {
        throw new ConfigError(`${where}.aliases must be an object of strings`);
      }
      override.aliases = aliases as Record<string, string>;
    }
    return override;
  });
}

/** `<ID>_API_KEY` / `<ID>_BASE_URL` naming: id upper-cased, other characters as `_`. */
export function envName(id: string, suffix: 'API_KEY' | 'BASE_URL'): string {
  return `${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${suffix}`;
}
