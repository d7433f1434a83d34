import * as v from 'valibot';

/**
 * Conventions shared by the request schemas (they validate requests and are converted to the
 * OpenAPI document, so they are written once):
 * - every message is a predicate ("must be a boolean"); the issue mapper puts the field's path in
 *   front of it, which gives the gateway's error messages (`temperature must be a number from 0 to 2`);
 * - an object schema's own message is what a missing required key says ("is required").
 */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A JSON object with these known entries, others kept. Valibot's object schemas take any
 * `typeof "object"`, arrays too, so a guard that refuses arrays comes first; the JSON Schema
 * conversion (typeMode "output") starts at the object schema, which says `"type": "object"` already.
 * `notObject` is said for anything but an object, `missing` for a missing required key.
 */
export function record<const Entries extends v.ObjectEntries>(entries: Entries, notObject: string, missing = 'is required') {
  return v.pipe(v.custom<Record<string, unknown>>(isRecord, notObject), v.object(entries, missing));
}

/**
 * The JSON Schema twins of the checks a schema cannot state itself (`v.check`): the OpenAPI
 * conversion looks each action up here, so a rule and its documentation are declared together.
 */
export const checkJsonSchemas = new WeakMap<object, Record<string, unknown>>();

export function documentedCheck<Action extends object>(action: Action, jsonSchema: Record<string, unknown>): Action {
  checkJsonSchemas.set(action, jsonSchema);
  return action;
}

/** A finite number in [min, max]; `null` and absence allowed. */
export function optionalNumber(min: number, max: number) {
  const message = `must be a number from ${min} to ${max}`;
  return v.nullish(v.pipe(v.number(message), v.minValue(min, message), v.maxValue(max, message)));
}

/** An integer in [min, max]; `null` and absence allowed. */
export function optionalInteger(min: number, max: number) {
  const message = `must be an integer from ${min} to ${max}`;
  return v.nullish(v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message)));
}

export const optionalBoolean = v.nullish(v.boolean('must be a boolean'));
export const optionalString = v.nullish(v.string('must be a string'));

/** Most provider ids and the longest id are core's rules (`parseProviderField`); the shape is documented here. */
const providerIds = v.array(v.string('must be an array of provider ids'), 'must be an array of provider ids');

/**
 * `provider`: one id, ids separated by spaces or commas, an array of ids (tried in order), or
 * OpenRouter's preference object. Core's `parseProviderField` owns its semantics and exact errors;
 * this schema is its shape, for the document and the structural check.
 */
export const providerField = v.pipe(
  v.nullish(
    v.union(
      [
        v.pipe(v.string(), v.description('A provider id, or several separated by spaces or commas (tried in that order, no automatic fallback).')),
        v.pipe(providerIds, v.description('Provider ids, tried in that order.')),
        v.pipe(
          record(
            {
              order: v.nullish(v.pipe(providerIds, v.description('Tried first, in this order.'))),
              only: v.nullish(v.pipe(providerIds, v.description('Only these providers may answer.'))),
              ignore: v.nullish(v.pipe(providerIds, v.description('These providers never answer.'))),
              allow_fallbacks: v.nullish(v.pipe(v.boolean('must be a boolean'), v.description('After `order`, the automatic candidates (default true).'))),
            },
            'must be an object',
          ),
          v.description("OpenRouter's provider preferences."),
        ),
      ],
      'must be a provider id, several ids separated by spaces, an array of ids, or an object {order, only, ignore, allow_fallbacks}',
    ),
  ),
  v.description(
    'Which providers answer (an Interference extension). Unknown ids in a list are skipped and named in `x-interference-unknown-providers`. Without it, the configured providers serving `model` answer in turn. `?provider=` in the query string works too.',
  ),
);

/** `api_key`: a provider key for this request only, never sent to another provider. */
export const apiKeyField = v.pipe(
  v.nullish(
    v.union(
      [
        v.pipe(v.string(), v.description('The key of the one provider named in `provider`.')),
        v.pipe(v.custom<Record<string, unknown>>(isRecord), v.record(v.string(), v.string('must be a string')), v.description('Keys by provider id.')),
      ],
      'must be a string or an object keyed by provider id',
    ),
  ),
  v.description('Provider keys for this request (an Interference extension): a string with exactly one provider, or an object keyed by provider id.'),
);
