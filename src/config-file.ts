import * as v from 'valibot';

/**
 * The config file's schema (interference.config.json), strict: an unknown key, a wrong type, a URL
 * that is not absolute, an unknown `api` or a duplicate id is a problem reported with its path,
 * what was found and what is expected. Nothing here reads the environment. (valibot: the same
 * checks as the bigger schema libraries for 3 MB of memory instead of 14.)
 */

/** One problem in the configuration, as the user must read it. */
export interface ConfigProblem {
  /** The file, or `environment`, or `command line`. */
  where: string;
  /** `providers[0].baseUrl`, `PORT`, `--port`. */
  path: string;
  /** What was there, shown short (`nothing` when absent). */
  found: string;
  expected: string;
}

export function isAbsoluteHttpUrl(value: string): boolean {
  if (!/^https?:\/\/[^\s/?#]+/i.test(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export const urlExpectation = 'an absolute http(s) URL such as "http://127.0.0.1:11434/v1"';

const httpUrl = v.pipe(v.string(urlExpectation), v.check(isAbsoluteHttpUrl, urlExpectation));
const ms = (max: number) => {
  const expected = `a whole number of milliseconds from 1 to ${max}`;
  return v.optional(v.pipe(v.number(expected), v.integer(expected), v.minValue(1, expected), v.maxValue(max, expected)));
};
const bytesExpected = `a whole number of bytes from 1024 to ${2 ** 31}`;
const bytes = v.optional(v.pipe(v.number(bytesExpected), v.integer(bytesExpected), v.minValue(1024, bytesExpected), v.maxValue(2 ** 31, bytesExpected)));
const text = v.string('a string');
const nonEmpty = v.pipe(v.string('a non-empty string'), v.minLength(1, 'a non-empty string'));

/** Protocols a custom provider may speak. */
export const providerApis = ['openai', 'anthropic', 'gemini'] as const;
export type ProviderApi = (typeof providerApis)[number];

const idExpectation = 'a provider id: 1 to 64 ASCII letters, digits, ".", "_" or "-" (it is used in headers and variable names)';

/**
 * Rate limits, per gateway key or per provider: requests and tokens in any 60 seconds, requests in
 * flight at once. Each is optional; absent means no limit of that kind.
 */
const perMinute = (what: string) => {
  const expected = `a whole number of ${what} from 1 to 1000000000`;
  return v.optional(v.pipe(v.number(expected), v.integer(expected), v.minValue(1, expected), v.maxValue(1_000_000_000, expected)));
};
const rateLimitsSchema = v.strictObject({
  requestsPerMinute: perMinute('requests per minute'),
  tokensPerMinute: perMinute('tokens per minute'),
  concurrent: perMinute('requests in flight at once'),
});

const providerEntrySchema = v.strictObject({
  id: v.pipe(v.string(idExpectation), v.regex(/^[A-Za-z0-9._-]{1,64}$/, idExpectation)),
  api: v.optional(v.picklist(providerApis, `one of ${providerApis.map((api) => `"${api}"`).join(', ')}`)),
  baseUrl: v.optional(httpUrl),
  apiKey: v.optional(nonEmpty),
  models: v.optional(v.array(nonEmpty, 'an array of model ids')),
  label: v.optional(text),
  url: v.optional(text),
  defaultModel: v.optional(text),
  aliases: v.optional(v.record(v.string(), text, 'an object of alias: model id')),
  /** The provider's own quota: past it the provider is skipped (failover), or a 429 when it is alone. */
  limits: v.optional(rateLimitsSchema),
});

const keyNameExpectation = 'a key name: 1 to 64 ASCII letters, digits, ".", "_" or "-" (it appears in logs)';
export const keyHashExpectation = '"sha256:" and the 64 hex digits of the key\'s SHA-256 (printf %s "$KEY" | sha256sum); never the key itself';

/** A gateway key of its own: admitted by its hash, limited to some providers and rates. */
const keyEntrySchema = v.strictObject({
  name: v.pipe(v.string(keyNameExpectation), v.regex(/^[A-Za-z0-9._-]{1,64}$/, keyNameExpectation)),
  keyHash: v.pipe(v.string(keyHashExpectation), v.regex(/^sha256:[0-9a-fA-F]{64}$/, keyHashExpectation)),
  providers: v.optional(v.array(v.pipe(v.string(idExpectation), v.regex(/^[A-Za-z0-9._-]{1,64}$/, idExpectation)), 'an array of provider ids like ["Groq"]')),
  limits: v.optional(rateLimitsSchema),
});

const timeoutsSchema = v.strictObject({
  connectMs: ms(600_000),
  firstByteMs: ms(3_600_000),
  idleMs: ms(3_600_000),
  firstContentMs: ms(3_600_000),
  requestMs: ms(86_400_000),
  headersMs: ms(600_000),
  bodyMs: ms(3_600_000),
});
const limitsSchema = v.strictObject({ maxUpstreamBytes: bytes, maxEventBytes: bytes });

const fileSchema = v.strictObject({
  /** For editors; ignored. */
  $schema: v.optional(text),
  providers: v.optional(v.array(providerEntrySchema, 'an array of provider entries like [{"id": "Groq", "apiKey": "gsk_..."}]')),
  apiKey: v.optional(nonEmpty),
  timeouts: v.optional(timeoutsSchema),
  limits: v.optional(limitsSchema),
  corsOrigins: v.optional(v.array(text, 'an array of origins like ["https://app.example"]')),
  publicProviders: v.optional(v.boolean('true or false')),
  /** Gateway keys besides `apiKey` / INTERFERENCE_API_KEY, each with its providers and limits. */
  keys: v.optional(v.array(keyEntrySchema, 'an array of keys like [{"name": "team-a", "keyHash": "sha256:…"}]')),
  /** Shared state for several replicas: a redis:// or rediss:// URL (REDIS_URL wins). */
  redis: v.optional(v.pipe(text, v.regex(/^rediss?:\/\/\S+$/, 'a Redis URL like "redis://127.0.0.1:6379"'))),
});

export type ConfigFile = v.InferOutput<typeof fileSchema>;
export type ProviderEntry = v.InferOutput<typeof providerEntrySchema>;
export type KeyEntry = v.InferOutput<typeof keyEntrySchema>;
export type RateLimits = v.InferOutput<typeof rateLimitsSchema>;

/** Parses the file's JSON value; returns the file or the problems, one per issue. */
export function parseConfigFile(where: string, value: unknown): { file: ConfigFile } | { problems: ConfigProblem[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [{ where, path: '(top level)', found: show(value), expected: 'a JSON object like {"providers": [...]}' }] };
  }
  const result = v.safeParse(fileSchema, value, { abortEarly: false });
  const problems = result.success ? [] : result.issues.map((issue) => describeIssue(where, value, issue));
  const providers = (value as { providers?: unknown }).providers;
  if (Array.isArray(providers)) problems.push(...duplicateIds(where, providers));
  const keys = (value as { keys?: unknown }).keys;
  if (Array.isArray(keys)) problems.push(...duplicateKeys(where, keys));
  if (problems.length > 0 || !result.success) return { problems };
  return { file: result.output };
}

/** Two entries for one id (ids are case-insensitive). */
function duplicateIds(where: string, providers: unknown[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  providers.forEach((entry, index) => {
    const id = (entry as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') return;
    const first = seen.get(id.toLowerCase());
    if (first === undefined) seen.set(id.toLowerCase(), index);
    else
      problems.push({
        where,
        path: `providers[${index}].id`,
        found: show(id),
        expected: `an id not used before (providers[${first}] has it already; ids are case-insensitive)`,
      });
  });
  return problems;
}

/** Two keys with one name (logs would confuse them) or one hash (the second could never be admitted as itself). */
function duplicateKeys(where: string, keys: unknown[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const field of ['name', 'keyHash'] as const) {
    const seen = new Map<string, number>();
    keys.forEach((entry, index) => {
      const raw = (entry as Record<string, unknown> | null)?.[field];
      if (typeof raw !== 'string') return;
      const first = seen.get(raw.toLowerCase());
      if (first === undefined) seen.set(raw.toLowerCase(), index);
      else
        problems.push({
          where,
          path: `keys[${index}].${field}`,
          found: field === 'name' ? show(raw) : 'the same hash again',
          expected: `a ${field === 'name' ? 'name' : 'key'} not used before (keys[${first}] has it already)`,
        });
    });
  }
  return problems;
}

/**
 * Under `keys`, only names, provider ids and limits are shown in messages: a `keyHash` (or a
 * misspelt field) may hold a key in clear, which must never reach a terminal or a log.
 */
function secretAt(path: readonly PropertyKey[]): boolean {
  return path[0] === 'keys' && path.length >= 3 && !['name', 'providers', 'limits'].includes(String(path[2]));
}

function describeIssue(where: string, root: unknown, issue: v.BaseIssue<unknown>): ConfigProblem {
  const path = (issue.path ?? []).map((item) => item.key as PropertyKey);
  if (secretAt(path)) {
    const problem = describeShownIssue(where, root, issue, path);
    return { ...problem, found: valueAt(root, path) === undefined ? 'nothing' : 'a value (not shown: it may be a key)' };
  }
  return describeShownIssue(where, root, issue, path);
}

function describeShownIssue(where: string, root: unknown, issue: v.BaseIssue<unknown>, path: PropertyKey[]): ConfigProblem {
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    // An unknown key: `path` ends with it.
    const key = String(path.at(-1));
    const allowed = allowedKeys(path.slice(0, -1));
    const near = allowed.find((candidate) => similar(candidate, key));
    return {
      where,
      path: formatPath(path),
      found: `an unknown key (value ${show(valueAt(root, path))})`,
      expected: near !== undefined ? `"${near}"? Known keys here: ${allowed.join(', ')}` : `one of the known keys: ${allowed.join(', ')}`,
    };
  }
  if (issue.type === 'strict_object') {
    // A required key that is missing (a provider's `id`, a key's `name` or `keyHash`).
    const missing = path.at(-1);
    const expected =
      missing === 'id'
        ? idExpectation
        : missing === 'name'
          ? keyNameExpectation
          : missing === 'keyHash'
            ? keyHashExpectation
            : `the key ${issue.expected ?? ''}`;
    return { where, path: formatPath(path), found: 'nothing', expected };
  }
  const value = valueAt(root, path);
  return { where, path: formatPath(path) || '(top level)', found: value === undefined ? 'nothing' : show(value), expected: issue.message };
}

/** The known keys of the object at `path` in the schema (for "did you mean"). */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(fileSchema.entries).filter((key) => key !== '$schema');
  const top = path[0];
  // `providers[0].limits`, `keys[0].limits`: the rate limits.
  if ((top === 'providers' || top === 'keys') && path[2] === 'limits') return Object.keys(rateLimitsSchema.entries);
  if (top === 'keys') return Object.keys(keyEntrySchema.entries);
  if (top === 'providers') return Object.keys(providerEntrySchema.entries);
  if (top === 'timeouts') return Object.keys(timeoutsSchema.entries);
  if (top === 'limits') return Object.keys(limitsSchema.entries);
  return [];
}

/** Close enough to be a typo: one edit apart, or one begins the other (`connect`, `connectMs`). */
function similar(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y || (Math.min(x.length, y.length) >= 4 && (x.startsWith(y) || y.startsWith(x)))) return true;
  if (Math.abs(x.length - y.length) > 1) return false;
  let edits = 0;
  for (let i = 0, j = 0; i < x.length || j < y.length;) {
    if (x[i] === y[j]) {
      i++;
      j++;
      continue;
    }
    edits++;
    if (edits > 1) return false;
    if (x.length > y.length) i++;
    else if (y.length > x.length) j++;
    else {
      i++;
      j++;
    }
  }
  return true;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  return out;
}

/** A value as shown in a message: JSON, cut at 80 characters. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? `${json.slice(0, 80)}…` : json;
}
