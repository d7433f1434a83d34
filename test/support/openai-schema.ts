/**
 * Validates gateway responses against OpenAI's official OpenAPI spec
 * (`../shared/specs/openai-openapi.yaml`, relative to the repo root).
 *
 * The spec is OpenAPI 3.1 (JSON Schema 2020-12 dialect) with some OpenAPI-only
 * leftovers. Before handing `components.schemas` to Ajv 2020 we:
 *   - turn `nullable: true` into `anyOf: [<schema>, { type: "null" }]` (the chunk
 *     schema still uses it, e.g. `finish_reason`, `logprobs`, `usage`);
 *   - drop annotation-only OpenAPI keywords Ajv does not know (`nullable: false`,
 *     `discriminator`, `example`, `xml`, `externalDocs`, `x-*` extensions);
 *   - register the whole `{ components: { schemas } }` object under one `$id`, so
 *     the spec's own `#/components/schemas/X` refs resolve, and compile
 *     `{ $ref: "<id>#/components/schemas/<Name>" }` on demand;
 *   - define the spec's custom `unixtime` format (non-negative integer seconds).
 * Nothing else is changed: in particular `additionalProperties` is left exactly as
 * the spec states it.
 *
 * The YAML is parsed lazily, once per process; each schema is compiled once.
 */
import { AssertionError } from 'node:assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsModule, { type FormatsPlugin } from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

export type SchemaName =
  'CreateChatCompletionResponse' | 'CreateChatCompletionStreamResponse' | 'ErrorResponse' | 'ListModelsResponse' | 'Model' | 'ImagesResponse';

const REPO_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** Absolute path of the shared OpenAI OpenAPI spec (never copied into the repo). */
export const OPENAI_SPEC_PATH = path.resolve(REPO_ROOT, '../shared/specs/openai-openapi.yaml');

const SPEC_ID = 'https://interference.local/openai-openapi.json';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// --- OpenAPI -> JSON Schema 2020-12 normalisation -------------------------------

/** Keywords whose value is a single subschema. */
const SUBSCHEMA_KEYWORDS = new Set([
  'items',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'contentSchema',
]);
/** Keywords whose value is a map name -> subschema. */
const SUBSCHEMA_MAP_KEYWORDS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
/** Keywords whose value is an array of subschemas. */
const SUBSCHEMA_ARRAY_KEYWORDS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
/** OpenAPI-only keywords that carry no validation meaning for a response body. */
const DROPPED_KEYWORDS = new Set(['nullable', 'discriminator', 'example', 'xml', 'externalDocs']);

function mapValues(value: unknown, fn: (v: unknown) => unknown): unknown {
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) out[k] = fn(v);
  return out;
}

/** Walks schema positions only, so property *names* such as `example` are never touched. */
function normaliseSchema(node: unknown): unknown {
  if (!isObject(node)) return node; // boolean schemas
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED_KEYWORDS.has(key) || key.startsWith('x-')) continue;
    if (SUBSCHEMA_KEYWORDS.has(key)) out[key] = normaliseSchema(value);
    else if (SUBSCHEMA_MAP_KEYWORDS.has(key)) out[key] = mapValues(value, normaliseSchema);
    else if (SUBSCHEMA_ARRAY_KEYWORDS.has(key)) out[key] = Array.isArray(value) ? value.map(normaliseSchema) : value;
    else out[key] = value;
  }
  return node['nullable'] === true ? { anyOf: [out, { type: 'null' }] } : out;
}

// --- lazy singletons ----------------------------------------------------------------

let componentSchemas: Readonly<Record<string, unknown>> | undefined;

/**
 * The spec's `components.schemas`, normalised as described above (parsed once, lazily).
 * Exposed for introspection in tests (e.g. reading `required` lists).
 */
export function openAIComponentSchemas(): Readonly<Record<string, unknown>> {
  if (componentSchemas) return componentSchemas;
  const spec: unknown = parseYaml(readFileSync(OPENAI_SPEC_PATH, 'utf8'));
  const components = isObject(spec) ? spec['components'] : undefined;
  const schemas = isObject(components) ? components['schemas'] : undefined;
  if (!isObject(schemas)) throw new Error(`${OPENAI_SPEC_PATH}: no components.schemas object`);
  const normalised = mapValues(schemas, normaliseSchema);
  if (!isObject(normalised)) throw new Error('unreachable: normalised schemas is not an object');
  componentSchemas = normalised;
  return componentSchemas;
}

function resolveFormatsPlugin(mod: unknown): FormatsPlugin {
  // ajv-formats is CommonJS: `module.exports` is the plugin function, and it also has `.default`.
  if (typeof mod === 'function') return mod as FormatsPlugin;
  if (isObject(mod) && typeof mod['default'] === 'function') return mod['default'] as FormatsPlugin;
  throw new Error('ajv-formats: unexpected module shape');
}

let ajvInstance: Ajv2020 | undefined;

function ajv(): Ajv2020 {
  if (ajvInstance) return ajvInstance;
  const instance = new Ajv2020({ strict: false, allErrors: true });
  resolveFormatsPlugin(formatsModule)(instance);
  instance.addFormat('unixtime', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= 0,
  });
  instance.addSchema({ $id: SPEC_ID, components: { schemas: openAIComponentSchemas() } });
  ajvInstance = instance;
  return instance;
}

const validators = new Map<SchemaName, ValidateFunction>();

function validatorFor(schema: SchemaName): ValidateFunction {
  let validate = validators.get(schema);
  if (!validate) {
    if (!(schema in openAIComponentSchemas())) throw new Error(`OpenAI spec has no components.schemas.${schema}`);
    validate = ajv().compile({ $ref: `${SPEC_ID}#/components/schemas/${schema}` });
    validators.set(schema, validate);
  }
  return validate;
}

// --- public API -----------------------------------------------------------------------

function describe(error: ErrorObject): string {
  const where = error.instancePath === '' ? '(root)' : error.instancePath;
  let text = `${where} ${error.message ?? error.keyword}`;
  const params: unknown = error.params;
  if (isObject(params)) {
    if (error.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
      text += `: ${params['allowedValues'].map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (error.keyword === 'const' && 'allowedValue' in params) {
      text += `: ${JSON.stringify(params['allowedValue'])}`;
    } else if (error.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
      text += `: ${JSON.stringify(params['additionalProperty'])}`;
    }
  }
  return text;
}

/** Returns [] when valid, else readable error strings ("<instancePath> <message>"; the root path is shown as "(root)"). */
export function validateAgainstOpenAI(schema: SchemaName, value: unknown): string[] {
  const validate = validatorFor(schema);
  if (validate(value)) return [];
  return [...new Set((validate.errors ?? []).map(describe))];
}

/** Throws an AssertionError listing the validation errors and the offending value. */
export function assertOpenAIShape(schema: SchemaName, value: unknown): void {
  const errors = validateAgainstOpenAI(schema, value);
  if (errors.length === 0) return;
  throw new AssertionError({
    message: `value does not match OpenAI schema ${schema}:\n` + errors.map((e) => `  - ${e}`).join('\n') + `\nvalue: ${JSON.stringify(value, null, 2)}`,
    actual: value,
    expected: schema,
    operator: 'assertOpenAIShape',
  });
}
