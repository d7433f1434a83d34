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
  /** Shared state for several replicas: a redis:// or rediss:// URL (REDIS_URL wins). */
  redis: v.optional(v.pipe(text, v.regex(/^rediss?:\/\/\S+$/, 'a Redis URL like "redis://127.0.0.1:6379"'))),
});

export type ConfigFile = v.InferOutput<typeof fileSchema>;
export type ProviderEntry = v.InferOutput<typeof providerEntrySchema>;

/** Parses the file's JSON value; returns the file or the problems, one per issue. */
export function parseConfigFile(where: string, value: unknown): { file: ConfigFile } | { problems: ConfigProblem[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [{ where, path: '(top level)', found: show(value), expected: 'a JSON object like {"providers": [...]}' }] };
  }
  const result = v.safeParse(fileSchema, value, { abortEarly: false });
  const problems = result.success ? [] : result.issues.map((issue) => describeIssue(where, value, issue));
  const providers = (value as { providers?: unknown }).providers;
  if (Array.isArray(providers)) problems.push(...duplicateIds(where, providers));
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

function describeIssue(where: string, root: unknown, issue: v.BaseIssue<unknown>): ConfigProblem {
  const path = (issue.path ?? []).map((item) => item.key as PropertyKey);
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
    // A required key that is missing (only a provider's `id`).
    return { where, path: formatPath(path), found: 'nothing', expected: path.at(-1) === 'id' ? idExpectation : `the key ${issue.expected ?? ''}` };
  }
  const value = valueAt(root, path);
  return { where, path: formatPath(path) || '(top level)', found: value === undefined ? 'nothing' : show(value), expected: issue.message };
}

/** The known keys of the object at `path` in the schema (for "did you mean"). */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(fileSchema.entries).filter((key) => key !== '$schema');
  const top = path[0];
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
