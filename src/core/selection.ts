import { ApiError, invalidRequest } from './errors.js';
import { describeFeature, missingFeatures, type Feature } from './features.js';
import { closest } from './closest.js';
import { resolveModel, servesModel, type Capability } from './provider.js';
import type { Registry, RegistryEntry } from './registry.js';
import { missingKeyMessage, publicOffReason } from './registry.js';

/**
 * Turns the request's `provider` (+ `model`, `api_key`) into an ordered list of attempts.
 * Accepted `provider` forms: `"A"`, `"A B C"` (failover in that order), `["A","B"]`, and
 * OpenRouter's object `{order, only, ignore, allow_fallbacks}`.
 */

export interface ProviderPreference {
  /** Ids in the order the user gave them; null when none were given. */
  order: string[] | null;
  only: string[] | null;
  ignore: string[];
  allowFallbacks: boolean;
  /** The user wrote a plain string with a single id. */
  single: boolean;
}

export interface Attempt {
  entry: RegistryEntry;
  /** Upstream model id after the provider's aliases. */
  model: string;
  apiKey: string | undefined;
  /** Known before calling that this attempt cannot run (no key, no model file, no such capability). */
  blocked: { kind: 'auth' | 'unavailable' | 'bad_request'; message: string } | null;
}

export interface Plan {
  attempts: Attempt[];
  /** Ids in `provider` that matched no provider (skipped). */
  unknown: string[];
  /** The user chose the providers (as opposed to automatic routing). */
  explicit: boolean;
}

/** Most provider ids one request may name, and the longest id: work per request stays bounded. */
export const maxProviderIds = 32;
export const maxProviderIdLength = 64;

export function parseProviderField(value: unknown): ProviderPreference {
  const none: ProviderPreference = { order: null, only: null, ignore: [], allowFallbacks: true, single: false };
  if (value === undefined || value === null) return none;
  if (typeof value === 'string') {
    // Longer than 32 ids of 64 characters with separators cannot be valid: refused before splitting.
    if (value.length > maxProviderIds * (maxProviderIdLength + 1) + 64) throw tooManyIds('provider');
    const ids = value.split(/[\s,]+/).filter((id) => id !== '');
    if (ids.length === 0) return none;
    checkIds(ids, 'provider');
    return { order: ids, only: null, ignore: [], allowFallbacks: false, single: ids.length === 1 };
  }
  if (Array.isArray(value)) {
    const ids = idList(value, 'provider');
    return ids.length === 0 ? none : { order: ids, only: null, ignore: [], allowFallbacks: false, single: false };
  }
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const order = record.order === undefined || record.order === null ? null : idList(record.order, 'provider.order');
    const only = record.only === undefined || record.only === null ? null : idList(record.only, 'provider.only');
    const ignore = record.ignore === undefined || record.ignore === null ? [] : idList(record.ignore, 'provider.ignore');
    const fallbacks = record.allow_fallbacks;
    if (fallbacks !== undefined && fallbacks !== null && typeof fallbacks !== 'boolean') {
      throw invalidRequest('provider.allow_fallbacks must be a boolean', 'provider.allow_fallbacks');
    }
    return { order: order && order.length > 0 ? order : null, only, ignore, allowFallbacks: fallbacks !== false, single: false };
  }
  throw invalidRequest(
    'provider must be a provider id, several ids separated by spaces, an array of ids, or an object {order, only, ignore, allow_fallbacks}',
    'provider',
  );
}

function idList(value: unknown, param: string): string[] {
  if (!Array.isArray(value)) throw invalidRequest(`${param} must be an array of provider ids`, param);
  if (value.length > maxProviderIds) throw tooManyIds(param);
  if (!value.every((id) => typeof id === 'string')) throw invalidRequest(`${param} must be an array of provider ids`, param);
  const ids = (value as string[]).map((id) => id.trim()).filter((id) => id !== '');
  checkIds(ids, param);
  return ids;
}

function checkIds(ids: readonly string[], param: string): void {
  if (ids.length > maxProviderIds) throw tooManyIds(param);
  if (ids.some((id) => id.length > maxProviderIdLength)) {
    throw invalidRequest(`${param}: a provider id is at most ${maxProviderIdLength} characters long`, param, 'invalid_provider');
  }
}

function tooManyIds(param: string): ApiError {
  return invalidRequest(`${param} names more than ${maxProviderIds} providers; name at most ${maxProviderIds}`, param, 'too_many_providers');
}

export interface PlanInput {
  preference: ProviderPreference;
  model: string;
  apiKey: unknown;
  /** Chat completions or image generation; default chat. */
  capability?: Capability;
  /** Features the request uses (tools, vision, JSON mode, streaming): providers without one are skipped. */
  needs?: readonly Feature[];
  /**
   * The client's `Authorization: Bearer` token when the gateway has no key of its own (gpt4free's
   * clients send the provider key there). Used only under the rule of `bearerKey`.
   */
  bearer?: string;
}

/**
 * gpt4free's clients send the provider key as `Authorization: Bearer`. It is that provider's key only
 * when exactly one provider was named, the body has no `api_key`, and the server has no key of its
 * own for it (the server's key always wins over a client's dummy); it is never sent anywhere else.
 */
function bearerKey(input: PlanInput, entries: readonly RegistryEntry[], entry: RegistryEntry): string | undefined {
  const noBodyKey = input.apiKey === undefined || input.apiKey === null || input.apiKey === '';
  return input.bearer !== undefined && input.preference.single && entries.length === 1 && noBodyKey && entry.serverKey === undefined ? input.bearer : undefined;
}

export function planAttempts(registry: Registry, input: PlanInput): Plan {
  const { preference, model } = input;
  const capability = input.capability ?? 'chat';
  const unknown: string[] = [];
  let entries: RegistryEntry[] = [];
  if (preference.order !== null) {
    for (const id of preference.order) {
      const entry = registry.find(id);
      if (entry === undefined) unknown.push(id);
      else if (!entries.includes(entry)) entries.push(entry);
    }
    if (entries.length === 0) throw providerNotFound(registry, unknown);
  }
  const explicit = entries.length > 0;
  if (preference.order === null || preference.allowFallbacks) {
    const candidates = automaticCandidates(registry, model, capability);
    // The embedded model answers any model name only while the operator has configured nothing:
    // once they have, a model that none of their providers declares is a 404 with the closest ids.
    if (!explicit && model !== '' && candidates.every((entry) => entry.lastResort === true) && operatorConfigured(registry)) {
      throw noProviderForModel(registry, model, capability);
    }
    for (const entry of candidates) if (!entries.includes(entry)) entries.push(entry);
  }
  if (preference.only !== null) {
    const only = new Set(preference.only.map((id) => registry.find(id)).filter((entry) => entry !== undefined));
    entries = entries.filter((entry) => only.has(entry));
  }
  if (preference.ignore.length > 0) {
    const ignore = new Set(preference.ignore.map((id) => registry.find(id)).filter((entry) => entry !== undefined));
    entries = entries.filter((entry) => !ignore.has(entry));
  }
  if (entries.length === 0) {
    if (explicit) throw new ApiError(404, 'no provider is left after provider.only / provider.ignore', { param: 'provider', code: 'provider_not_found' });
    throw noProviderForModel(registry, model, capability);
  }
  const needs = input.needs ?? [];
  if (needs.length > 0 && explicit && preference.single) {
    // One provider named, and it cannot do what the request asks: say so, never drop it silently.
    const entry = entries[0] as RegistryEntry;
    const missing = missingFeatures(entry.provider, needs);
    if (missing.length > 0) {
      throw invalidRequest(
        `${entry.provider.id} does not support ${missing.map(describeFeature).join(' or ')}, which this request uses; name a provider that does, or leave "provider" out to let the gateway choose`,
        'provider',
        'unsupported_feature',
      );
    }
  }
  const keys = requestKeys(registry, input.apiKey, explicit && entries.length === 1);
  const attempts = entries.map((entry): Attempt => {
    const requestKey = typeof keys === 'string' ? keys : keys.get(entry);
    const apiKey = requestKey ?? entry.serverKey ?? (explicit ? bearerKey(input, entries, entry) : undefined);
    const availability = entry.provider.availability?.();
    let blocked: Attempt['blocked'] = null;
    const missing = capability === 'chat' ? missingFeatures(entry.provider, needs) : [];
    if (!can(entry, capability)) {
      blocked = { kind: 'bad_request', message: `${entry.provider.id} does not ${capability === 'chat' ? 'do chat completions' : 'generate images'}` };
    } else if (missing.length > 0) {
      blocked = { kind: 'bad_request', message: `skipped: ${entry.provider.id} does not support ${missing.map(describeFeature).join(' or ')}` };
    } else if (registry.refusesPublic(entry, requestKey)) {
      blocked = { kind: 'unavailable', message: publicOffReason(entry) };
    } else if (availability !== undefined && !availability.ok) {
      blocked = { kind: 'unavailable', message: availability.reason ?? `${entry.provider.id} is not available` };
    } else if (entry.provider.needsAuth && apiKey === undefined) {
      blocked = { kind: 'auth', message: missingKeyMessage(entry) };
    }
    return { entry, model: resolveModel(entry.provider, model, capability), apiKey, blocked };
  });
  return { attempts, unknown, explicit };
}

function can(entry: RegistryEntry, capability: Capability): boolean {
  return capability === 'chat' ? entry.provider.chat !== undefined : entry.provider.images !== undefined;
}

/**
 * Configured providers that serve the model: keyless first, then keyed, the embedded model last.
 * An empty model goes only to providers the user configured (a key or a base URL), never to a
 * public keyless service by surprise.
 */
function automaticCandidates(registry: Registry, model: string, capability: Capability): RegistryEntry[] {
  const keyless: RegistryEntry[] = [];
  const keyed: RegistryEntry[] = [];
  const last: RegistryEntry[] = [];
  for (const entry of registry.all()) {
    if (!entry.autoRoute || !can(entry, capability) || !registry.readiness(entry).configured) continue;
    if (entry.lastResort) last.push(entry);
    else if (model === '' ? entry.configuredByUser : servesModel(entry.provider, model, capability)) {
      (entry.provider.needsAuth ? keyed : keyless).push(entry);
    }
  }
  return [...keyless, ...keyed, ...last];
}

/**
 * Keys sent in the request: a string (for the one provider named) or an object keyed by
 * provider id. A key is only ever paired with the provider it names.
 */
function requestKeys(registry: Registry, apiKey: unknown, singleProvider: boolean): string | Map<RegistryEntry, string> {
  const keys = new Map<RegistryEntry, string>();
  if (apiKey === undefined || apiKey === null || apiKey === '') return keys;
  if (typeof apiKey === 'string') {
    if (!singleProvider) {
      throw invalidRequest(
        'api_key as a string needs exactly one provider in "provider"; for several, send an object keyed by provider id, like {"Groq": "gsk_..."}',
        'api_key',
      );
    }
    return apiKey;
  }
  if (typeof apiKey !== 'object' || Array.isArray(apiKey)) {
    throw invalidRequest('api_key must be a string or an object keyed by provider id', 'api_key');
  }
  for (const [id, key] of Object.entries(apiKey as Record<string, unknown>)) {
    if (typeof key !== 'string') throw invalidRequest(`api_key.${id} must be a string`, `api_key.${id}`);
    const entry = registry.find(id);
    if (entry !== undefined && key !== '') keys.set(entry, key);
  }
  return keys;
}

function providerNotFound(registry: Registry, ids: string[]): ApiError {
  // Suggestions for the first few ids only, and the message names a few: bounded work and size.
  const suggestions = [...new Set(ids.slice(0, 3).flatMap((id) => registry.suggest(id)))];
  const shown = ids.slice(0, 5).map((id) => JSON.stringify(id));
  const names = ids.length > 5 ? `${shown.join(', ')} and ${ids.length - 5} more` : shown.join(', ');
  const hint = suggestions.length > 0 ? ` Did you mean ${suggestions.join(', ')}?` : '';
  return new ApiError(404, `Provider ${names} not found.${hint} GET /v1/providers lists them all.`, {
    param: 'provider',
    code: 'provider_not_found',
  });
}

/** The operator gave some provider a key or a base URL (the zero-configuration case is when none has one). */
function operatorConfigured(registry: Registry): boolean {
  return registry.all().some((entry) => entry.configuredByUser);
}

/**
 * Nothing can answer: says what each provider that would have been tried lacks (no key, file
 * missing, download failed and why, public providers off), the closest model ids that would
 * answer, and what to do. It never suggests a provider that cannot answer.
 */
function noProviderForModel(registry: Registry, model: string, capability: Capability): ApiError {
  const what = capability === 'chat' ? 'chat' : 'image';
  // The embedded model stands in for any chat model only in the zero-configuration case.
  const substitutes = capability === 'chat' && (model === '' || !operatorConfigured(registry));
  const lacking: string[] = [];
  const available: string[] = [];
  for (const entry of registry.all()) {
    if (!entry.autoRoute || !can(entry, capability)) continue;
    const readiness = registry.readiness(entry);
    if (readiness.configured && entry.lastResort !== true) available.push(...(capability === 'chat' ? entry.provider.models : entry.provider.imageModels));
    const wanted = (entry.lastResort === true && substitutes) || (model === '' ? entry.configuredByUser : servesModel(entry.provider, model, capability));
    if (wanted && !readiness.configured) lacking.push(`${entry.provider.id}: ${readiness.reason ?? 'not available'}`);
  }
  const shown = model.length > 100 ? `${model.slice(0, 100)}…` : model;
  const which =
    model === ''
      ? `No ${what} provider is set up for a request without a model (a key, a base URL or the embedded model)`
      : lacking.length > 0
        ? `No ${what} provider can answer model "${shown}" now`
        : `No configured ${what} provider serves model "${shown}"`;
  const why = lacking.length > 0 ? ` ${lacking.join(' | ')}.` : '';
  const near = model === '' ? [] : closest(model, available);
  const hint = near.length > 0 ? ` Did you mean ${near.map((id) => `"${id}"`).join(', ')}?` : '';
  const fix =
    capability === 'chat'
      ? ' To fix: use a model GET /v1/models lists, set a provider key (GET /v1/providers says which, with each status_message), point INTERFERENCE_LOCAL_MODEL at a GGUF file, or name a provider that serves the model in "provider".'
      : ' To fix: use an image model GET /v1/models lists (type "image"), set a key for an image provider (GET /v1/providers says which can generate images, with each status_message), or name an image provider in "provider".';
  return new ApiError(404, `${which}.${why}${hint}${fix}`, { param: 'model', code: 'model_not_found' });
}
