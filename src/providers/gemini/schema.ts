import { UpstreamError } from '../../core/errors.js';

/**
 * OpenAI tool parameters and `response_format.json_schema` are JSON Schema; Gemini's `parameters`
 * and `responseSchema` take its own `Schema` object, "a select subset of an OpenAPI 3.0 schema
 * object", and refuse unknown keys with a 400. This turns one into the other:
 *
 * - kept: `type` (upper-cased: STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT), `title`,
 *   `description`, `nullable`, `enum` (strings), `properties`, `required` (only names that are in
 *   `properties`), `items`, `anyOf`, `minItems`, `maxItems`, `minLength`, `maxLength`,
 *   `minProperties`, `maxProperties`, `pattern`, `minimum`, `maximum`, `default`, `example`,
 *   `propertyOrdering`, and `format` where Gemini accepts it (string: `enum`, `date-time`;
 *   number: `float`, `double`; integer: `int32`, `int64`);
 * - rewritten: `$ref` to `#/$defs/…` or `#/definitions/…` is inlined (a recursive reference
 *   becomes a bare `{type: OBJECT}`), `allOf` is merged into its parent, `oneOf` becomes `anyOf`,
 *   `const` becomes a one-value `enum`, a `type` list and a `null` branch of `anyOf` become
 *   `nullable`, non-string `enum`s are dropped with their values noted in `description`, and a
 *   tuple `items` list becomes `anyOf`;
 * - dropped: everything else, notably `additionalProperties`, `$schema`, `$id`, `$defs`,
 *   `definitions`, `$comment`, `strict`, `examples`, `exclusiveMinimum`, `exclusiveMaximum`,
 *   `multipleOf`, `patternProperties`, `unevaluatedProperties`, `propertyNames`,
 *   `dependentRequired`, `dependentSchemas`, `not`, `if`/`then`/`else`, `prefixItems`,
 *   `contains`, `uniqueItems`, `readOnly`, `writeOnly`, `deprecated`, `contentEncoding`,
 *   `contentMediaType` and other string `format`s (`email`, `uri`, `uuid`, …).
 *
 * Inlining is bounded: a schema that grows past `maxNodes` nodes or `maxDepth` levels is refused
 * as a bad request rather than expanded without end.
 */
export function toGeminiSchema(schema: unknown, where: string): Record<string, unknown> {
  const root = isRecord(schema) ? schema : {};
  const state: State = { root, nodes: 0, expanding: new Set(), where };
  return convert(schema, state, 0);
}

const maxNodes = 10_000;
const maxDepth = 64;

interface State {
  root: Record<string, unknown>;
  nodes: number;
  /** `$ref`s being inlined on the current path: meeting one again is recursion. */
  expanding: Set<string>;
  where: string;
}

const typeNames: Record<string, string> = {
  string: 'STRING',
  number: 'NUMBER',
  integer: 'INTEGER',
  boolean: 'BOOLEAN',
  array: 'ARRAY',
  object: 'OBJECT',
};

const formatsFor: Record<string, ReadonlySet<string>> = {
  STRING: new Set(['enum', 'date-time']),
  NUMBER: new Set(['float', 'double']),
  INTEGER: new Set(['int32', 'int64']),
};

/** Keys copied as they are (after a type check). */
const numberKeys = ['minItems', 'maxItems', 'minLength', 'maxLength', 'minProperties', 'maxProperties', 'minimum', 'maximum'] as const;

function convert(input: unknown, state: State, depth: number): Record<string, unknown> {
  state.nodes += 1;
  if (state.nodes > maxNodes || depth > maxDepth) {
    throw new UpstreamError('bad_request', `${state.where}: the JSON schema is too large or too deep for Gemini once its $refs are inlined`);
  }
  if (!isRecord(input)) return {}; // `true`, `{}` and malformed entries: anything
  let schema = input;

  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const target = resolveRef(ref, state.root);
    if (target === undefined || state.expanding.has(ref)) {
      // Unknown or recursive: Gemini's Schema cannot say it; an object keeps the call usable.
      return withDescription({ type: 'OBJECT' }, schema.description);
    }
    state.expanding.add(ref);
    try {
      // Sibling keys (description, …) win over the target's, as in JSON Schema 2020-12 usage.
      const { $ref: _ref, ...siblings } = schema;
      return convert({ ...target, ...siblings }, state, depth + 1);
    } finally {
      state.expanding.delete(ref);
    }
  }

  if (Array.isArray(schema.allOf)) schema = mergeAllOf(schema, state, depth);

  const out: Record<string, unknown> = {};
  let nullable = schema.nullable === true;

  // type: a name or a list of names; `null` among them means nullable.
  let types: string[] = [];
  const rawType = schema.type;
  for (const name of Array.isArray(rawType) ? rawType : rawType === undefined ? [] : [rawType]) {
    if (typeof name !== 'string') continue;
    if (name === 'null') nullable = true;
    else if (typeNames[name] !== undefined || Object.values(typeNames).includes(name)) types.push(typeNames[name] ?? name);
  }
  types = [...new Set(types)];

  // const / enum
  let values: unknown[] | undefined;
  if (Object.hasOwn(schema, 'const')) values = [schema.const];
  else if (Array.isArray(schema.enum)) values = schema.enum;
  let description = typeof schema.description === 'string' ? schema.description : undefined;
  if (values !== undefined) {
    if (values.includes(null)) nullable = true;
    const present = values.filter((value) => value !== null);
    if (types.length === 0) types = [inferType(present)];
    if (types.length === 1 && types[0] === 'STRING') out.enum = present.map((value) => (typeof value === 'string' ? value : JSON.stringify(value)));
    else if (present.length > 0) description = appendNote(description, `Allowed values: ${present.map((value) => JSON.stringify(value)).join(', ')}.`);
  }

  if (types.length === 1) out.type = types[0];
  else if (types.length > 1) out.anyOf = types.map((type) => ({ type }));

  if (typeof schema.title === 'string') out.title = schema.title;
  if (description !== undefined) out.description = description;
  if (typeof schema.format === 'string' && types.length === 1 && formatsFor[types[0] as string]?.has(schema.format)) out.format = schema.format;
  if (typeof schema.pattern === 'string') out.pattern = schema.pattern;
  for (const key of numberKeys) {
    const value = schema[key];
    if (typeof value === 'number' && Number.isFinite(value)) out[key] = value;
  }
  if (schema.default !== undefined) out.default = schema.default;
  if (schema.example !== undefined) out.example = schema.example;

  if (isRecord(schema.properties)) {
    const properties: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(schema.properties)) properties[name] = convert(value, state, depth + 1);
    out.properties = properties;
    if (Array.isArray(schema.required)) {
      const required = schema.required.filter((name): name is string => typeof name === 'string' && Object.hasOwn(properties, name));
      if (required.length > 0) out.required = [...new Set(required)];
    }
    if (Array.isArray(schema.propertyOrdering)) {
      const ordering = schema.propertyOrdering.filter((name): name is string => typeof name === 'string' && Object.hasOwn(properties, name));
      if (ordering.length > 0) out.propertyOrdering = ordering;
    }
    if (out.type === undefined && out.anyOf === undefined) out.type = 'OBJECT';
  }

  if (Array.isArray(schema.items)) {
    const branches = schema.items.map((item) => convert(item, state, depth + 1));
    if (branches.length === 1) out.items = branches[0];
    else if (branches.length > 1) out.items = { anyOf: branches };
  } else if (schema.items !== undefined && schema.items !== false) {
    out.items = convert(schema.items, state, depth + 1);
  }
  if (out.items !== undefined && out.type === undefined && out.anyOf === undefined) out.type = 'ARRAY';

  const alternatives = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (alternatives !== undefined) {
    const branches: Record<string, unknown>[] = [];
    for (const branch of alternatives) {
      if (isRecord(branch) && (branch.type === 'null' || (Array.isArray(branch.type) && branch.type.length === 1 && branch.type[0] === 'null'))) {
        nullable = true;
        continue;
      }
      branches.push(convert(branch, state, depth + 1));
    }
    if (branches.length === 1 && out.type === undefined && out.anyOf === undefined) {
      // `anyOf: [X, null]`: X itself, nullable (what Gemini's own SDKs send).
      const only = branches[0] as Record<string, unknown>;
      for (const [key, value] of Object.entries(only)) if (!Object.hasOwn(out, key)) out[key] = value;
    } else if (branches.length > 0) {
      out.anyOf = out.anyOf === undefined ? branches : [...(out.anyOf as unknown[]), ...branches];
    }
  }

  if (nullable) out.nullable = true;
  return out;
}

/** `#/$defs/Name`, `#/definitions/Name` or any JSON pointer into the root schema. */
function resolveRef(ref: string, root: Record<string, unknown>): Record<string, unknown> | undefined {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (!isRecord(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return isRecord(node) ? node : undefined;
}

/** Folds `allOf` members into their parent: properties and required are united, the rest first-wins. */
function mergeAllOf(schema: Record<string, unknown>, state: State, depth: number): Record<string, unknown> {
  const { allOf, ...rest } = schema;
  const merged: Record<string, unknown> = { ...rest };
  const properties: Record<string, unknown> = isRecord(rest.properties) ? { ...rest.properties } : {};
  const required = new Set<unknown>(Array.isArray(rest.required) ? rest.required : []);
  for (const member of allOf as unknown[]) {
    state.nodes += 1;
    if (state.nodes > maxNodes || depth > maxDepth)
      throw new UpstreamError('bad_request', `${state.where}: the JSON schema is too large or too deep for Gemini`);
    let part = isRecord(member) ? member : {};
    // A referenced member is inlined first so that its properties can be merged.
    if (typeof part.$ref === 'string' && !state.expanding.has(part.$ref)) part = resolveRef(part.$ref, state.root) ?? {};
    if (Array.isArray(part.allOf)) part = mergeAllOf(part, state, depth + 1);
    if (isRecord(part.properties)) for (const [name, value] of Object.entries(part.properties)) if (!Object.hasOwn(properties, name)) properties[name] = value;
    if (Array.isArray(part.required)) for (const name of part.required) required.add(name);
    for (const [key, value] of Object.entries(part)) {
      if (key === 'properties' || key === 'required' || key === 'allOf') continue;
      if (!Object.hasOwn(merged, key)) merged[key] = value;
    }
  }
  if (Object.keys(properties).length > 0) merged.properties = properties;
  if (required.size > 0) merged.required = [...required];
  return merged;
}

function inferType(values: unknown[]): string {
  if (values.length > 0 && values.every((value) => typeof value === 'number')) return values.every(Number.isInteger) ? 'INTEGER' : 'NUMBER';
  if (values.length > 0 && values.every((value) => typeof value === 'boolean')) return 'BOOLEAN';
  return 'STRING';
}

function appendNote(description: string | undefined, note: string): string {
  return description === undefined || description === '' ? note : `${description} ${note}`;
}

function withDescription(out: Record<string, unknown>, description: unknown): Record<string, unknown> {
  if (typeof description === 'string') out.description = description;
  return out;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
