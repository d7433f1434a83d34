import { z } from 'zod';

/**
 * The config file's schema (interference.config.json), strict: an unknown key, a wrong type, a URL
 * that is not absolute, an unknown `api` or a duplicate id is a problem reported with its path,
 * what was found and what is expected. Nothing here reads the environment.
 */

/** One problem in the configuration, as the user must read it. */
export interface ConfigProblem {
  /** The file, or `environment`, or `command line`. */
  where: string;
  /** `providers[0].baseUrl`, `PORT`, `--port`. */
  path: string;
  /** What was there, shown short (`missing` when absent). */
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

const httpUrl = z.string().refine(isAbsoluteHttpUrl, { error: urlExpectation });
const ms = (max: number) => z.int({ error: `a whole number of milliseconds from 1 to ${max}` }).min(1, { error: `at least 1 (milliseconds)` }).max(max, { error: `at most ${max} (milliseconds)` });
const bytes = z.int({ error: 'a whole number of bytes, at least 1024' }).min(1024, { error: 'at least 1024 (bytes)' }).max(2 ** 31, { error: `at most ${2 ** 31} (bytes)` });
const text = z.string({ error: 'a string' });
const nonEmpty = z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' });

/** Protocols a custom provider may speak. */
export const providerApis = ['openai'] as const;

export const providerEntrySchema = z.strictObject({
  id: z
    .string({ error: 'a provider id (a string)' })
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: '1 to 64 ASCII letters, digits, ".", "_" or "-" (it is used in headers and variable names)' }),
  api: z.enum(providerApis, { error: `one of ${providerApis.map((api) => `"${api}"`).join(', ')}` }).optional(),
  baseUrl: httpUrl.optional(),
  apiKey: nonEmpty.optional(),
  models: z.array(nonEmpty, { error: 'an array of model ids' }).optional(),
  label: text.optional(),
  url: text.optional(),
  defaultModel: text.optional(),
  aliases: z.record(z.string(), text, { error: 'an object of alias: model id' }).optional(),
});

const timeoutsSchema = z.strictObject({
  connectMs: ms(600_000),
  firstByteMs: ms(3_600_000),
  idleMs: ms(3_600_000),
  firstContentMs: ms(3_600_000),
  requestMs: ms(86_400_000),
  headersMs: ms(600_000),
  bodyMs: ms(3_600_000),
});
const limitsSchema = z.strictObject({ maxUpstreamBytes: bytes, maxEventBytes: bytes });

const fileShape = z.strictObject({
    /** For editors; ignored. */
    $schema: text.optional(),
    providers: z.array(providerEntrySchema, { error: 'an array of provider entries like [{"id": "Groq", "apiKey": "gsk_..."}]' }).optional(),
    apiKey: nonEmpty.optional(),
    timeouts: timeoutsSchema.partial().optional(),
    limits: limitsSchema.partial().optional(),
    corsOrigins: z.array(text, { error: 'an array of origins like ["https://app.example"]' }).optional(),
    publicProviders: z.boolean({ error: 'true or false' }).optional(),
});

export const configFileSchema = fileShape.superRefine((file, context) => {
    const seen = new Map<string, number>();
    (file.providers ?? []).forEach((entry, index) => {
      const key = entry.id.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined) {
        context.addIssue({ code: 'custom', path: ['providers', index, 'id'], message: `an id not used before (providers[${first}] is "${entry.id}" already; ids are case-insensitive)` });
      } else seen.set(key, index);
    });
  });

export type ConfigFile = z.infer<typeof configFileSchema>;
export type ProviderEntry = z.infer<typeof providerEntrySchema>;

/** Parses the file's JSON value; returns the file or the problems, one per issue. */
export function parseConfigFile(where: string, value: unknown): { file: ConfigFile } | { problems: ConfigProblem[] } {
  const result = configFileSchema.safeParse(value);
  if (result.success) return { file: result.data };
  return { problems: result.error.issues.flatMap((issue) => describeIssue(where, value, issue)) };
}

function describeIssue(where: string, root: unknown, issue: z.core.$ZodIssue): ConfigProblem[] {
  const path = issue.path as PropertyKey[];
  if (issue.code === 'unrecognized_keys') {
    const parent = valueAt(root, path);
    const allowed = allowedKeys(path);
    return issue.keys.map((key) => {
      const near = allowed.find((candidate) => similar(candidate, key));
      return {
        where,
        path: formatPath([...path, key]),
        found: `an unknown key (value ${show((parent as Record<string, unknown>)[key])})`,
        expected: near !== undefined ? `"${near}"? Known keys here: ${allowed.join(', ')}` : `one of the known keys: ${allowed.join(', ')}`,
      };
    });
  }
  const value = valueAt(root, path);
  return [{ where, path: formatPath(path) || '(top level)', found: value === undefined ? 'nothing' : show(value), expected: expectation(issue) }];
}

function expectation(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.expected === 'object' && issue.path.length === 0) return 'a JSON object like {"providers": [...]}';
  if (issue.code === 'invalid_type' && issue.expected === 'object') return 'an object';
  return issue.message;
}

/** The known keys of the object at `path` in the schema (for "did you mean"). */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(fileShape.shape).filter((key) => key !== '$schema');
  const top = path[0];
  if (top === 'providers') return Object.keys(providerEntrySchema.shape);
  if (top === 'timeouts') return Object.keys(timeoutsSchema.shape);
  if (top === 'limits') return Object.keys(limitsSchema.shape);
  return [];
}

/** Close enough to be a typo: one edit apart, or one begins the other (`connect`, `connectMs`). */
function similar(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y || (Math.min(x.length, y.length) >= 4 && (x.startsWith(y) || y.startsWith(x)))) return true;
  if (Math.abs(x.length - y.length) > 1) return false;
  let edits = 0;
  for (let i = 0, j = 0; i < x.length || j < y.length; ) {
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
