/**
 * Provider selection (src/core/selection.ts), in process with a registry of small fake providers:
 * the forms of the `provider` field, and how a plan is made from it (ids, automatic routing,
 * only/ignore, keys from the request, attempts known to be blocked, unsupported features).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../../src/core/errors.js';
import type { Provider } from '../../src/core/provider.js';
import { Registry, type RegistryEntry, type RegistryOptions } from '../../src/core/registry.js';
import { parseProviderField, planAttempts, type PlanInput, type ProviderPreference } from '../../src/core/selection.js';

/** A provider that is never called: only what selection reads. */
function fakeProvider(id: string, fields: Partial<Provider> = {}): Provider {
  return {
    id,
    label: id,
    url: `https://${id.toLowerCase()}.example`,
    parent: null,
    needsAuth: false,
    loginUrl: null,
    defaultModel: `${id}-default`,
    models: ['shared-model'],
    imageModels: [],
    visionModels: [],
    aliases: {},
    supportsStream: true,
    params: ['tools', 'response_format'],
    imageParams: [],
    chat: async () => {
      throw new Error('not called by selection');
    },
    ...fields,
  };
}

function entry(id: string, fields: Partial<Provider> = {}, options: Partial<Omit<RegistryEntry, 'provider'>> = {}): RegistryEntry {
  return {
    provider: fakeProvider(id, fields),
    serverKey: undefined,
    autoRoute: true,
    keyVariables: [`${id.toUpperCase()}_API_KEY`],
    configuredByUser: false,
    ...options,
  };
}

/** A provider that needs a key; `null`: no server key configured. */
const keyed = (id: string, serverKey: string | null = `${id}-server-key`) =>
  entry(
    id,
    { needsAuth: true, loginUrl: `https://${id.toLowerCase()}.example/keys` },
    { serverKey: serverKey ?? undefined, configuredByUser: serverKey !== null },
  );

const none: ProviderPreference = { order: null, only: null, ignore: [], allowFallbacks: true, single: false };

function plan(registry: Registry, input: Partial<Omit<PlanInput, 'preference'>> & { provider?: unknown } = {}) {
  const { provider, ...rest } = input;
  return planAttempts(registry, { preference: parseProviderField(provider), model: 'shared-model', apiKey: undefined, ...rest });
}

const ids = (attempts: ReadonlyArray<{ entry: RegistryEntry }>) => attempts.map((attempt) => attempt.entry.provider.id);

/** An ApiError with this status, code and param (null: none). */
const apiError =
  (status: number, code: string | null, param: string | null, message?: RegExp) =>
  (error: unknown): boolean => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    assert.equal(error.param, param);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };

describe('parseProviderField', () => {
  test('nothing, null, an empty string and an empty array mean automatic routing', () => {
    for (const value of [undefined, null, '', '  , ', []]) assert.deepEqual(parseProviderField(value), none, JSON.stringify(value));
  });

  test('"A" is one provider with no fallbacks', () => {
    assert.deepEqual(parseProviderField('Groq'), { ...none, order: ['Groq'], allowFallbacks: false, single: true });
  });

  test('"A B C" (spaces or commas) is failover in that order, with no others', () => {
    const expected = { ...none, order: ['A', 'B', 'C'], allowFallbacks: false, single: false };
    assert.deepEqual(parseProviderField('A B C'), expected);
    assert.deepEqual(parseProviderField(' A,B ,\tC '), expected);
  });

  test('an array of ids, trimmed, is failover in that order; one id in an array is not "single"', () => {
    assert.deepEqual(parseProviderField([' A', 'B ', '']), { ...none, order: ['A', 'B'], allowFallbacks: false });
    assert.equal(parseProviderField(['A']).single, false);
  });

  test("OpenRouter's object: order, only, ignore and allow_fallbacks", () => {
    assert.deepEqual(parseProviderField({ order: ['A', 'B'], only: ['A', 'C'], ignore: ['D'], allow_fallbacks: false }), {
      order: ['A', 'B'],
      only: ['A', 'C'],
      ignore: ['D'],
      allowFallbacks: false,
      single: false,
    });
    assert.deepEqual(parseProviderField({}), none);
    assert.deepEqual(parseProviderField({ order: [], only: null, ignore: null, allow_fallbacks: null }), none);
    assert.deepEqual(parseProviderField({ order: ['A'] }), { ...none, order: ['A'] }, 'fallbacks allowed unless turned off');
    assert.deepEqual(parseProviderField({ only: [] }), { ...none, only: [] });
  });

  test('malformed values are 400s that name the field', () => {
    assert.throws(() => parseProviderField(42), apiError(400, null, 'provider', /provider id, several ids separated by spaces, an array of ids, or an object/));
    assert.throws(() => parseProviderField(true), apiError(400, null, 'provider'));
    assert.throws(() => parseProviderField(['A', 3]), apiError(400, null, 'provider', /provider must be an array of provider ids/));
    assert.throws(() => parseProviderField({ order: 'A' }), apiError(400, null, 'provider.order', /provider.order must be an array/));
    assert.throws(() => parseProviderField({ only: [null] }), apiError(400, null, 'provider.only'));
    assert.throws(() => parseProviderField({ ignore: {} }), apiError(400, null, 'provider.ignore'));
    assert.throws(() => parseProviderField({ allow_fallbacks: 'no' }), apiError(400, null, 'provider.allow_fallbacks', /must be a boolean/));
    assert.throws(() => parseProviderField({ order: ['x'.repeat(65)] }), apiError(400, 'invalid_provider', 'provider.order'));
    assert.throws(() => parseProviderField({ only: Array.from({ length: 33 }, (_, i) => `P${i}`) }), apiError(400, 'too_many_providers', 'provider.only'));
  });
});

describe('planAttempts: ids', () => {
  const registry = new Registry([entry('Alpha'), entry('ALPHA'), entry('Beta'), entry('Gamma')]);

  test('an exact id wins, then a case-insensitive match (the first registered)', () => {
    assert.deepEqual(ids(plan(registry, { provider: 'ALPHA' }).attempts), ['ALPHA']);
    assert.deepEqual(ids(plan(registry, { provider: 'Alpha' }).attempts), ['Alpha']);
    assert.deepEqual(ids(plan(registry, { provider: 'alpha' }).attempts), ['Alpha']);
    assert.deepEqual(ids(plan(registry, { provider: 'gAMMA' }).attempts), ['Gamma']);
  });

  test('named providers keep their order, once each; unknown ids are recorded and skipped', () => {
    const result = plan(registry, { provider: 'Gamma nope beta GAMMA Missing' });
    assert.deepEqual(ids(result.attempts), ['Gamma', 'Beta']);
    assert.deepEqual(result.unknown, ['nope', 'Missing']);
    assert.equal(result.explicit, true);
  });

  test('no known id at all is a 404 with suggestions', () => {
    assert.throws(
      () => plan(registry, { provider: 'Betta Zzzzzz' }),
      apiError(404, 'provider_not_found', 'provider', /"Betta", "Zzzzzz" not found\. Did you mean Beta\?/),
    );
    const many = Array.from({ length: 7 }, (_, i) => `None${i}`).join(' ');
    assert.throws(() => plan(registry, { provider: many }), apiError(404, 'provider_not_found', 'provider', /"None4" and 2 more not found/));
  });

  test('the model goes through the provider aliases; an empty model is its default', () => {
    const aliased = new Registry([entry('A', { aliases: { small: 'a-small-v2' }, models: ['small'] })]);
    assert.equal(plan(aliased, { provider: 'A', model: 'small' }).attempts[0]?.model, 'a-small-v2');
    assert.equal(plan(aliased, { provider: 'A', model: 'other' }).attempts[0]?.model, 'other');
    assert.equal(plan(aliased, { provider: 'A', model: '' }).attempts[0]?.model, 'A-default');
  });
});

describe('planAttempts: automatic routing', () => {
  test('keyless first, then keyed, the last resort last, whatever the registry order', () => {
    const registry = new Registry([keyed('K1'), entry('Local', { models: [] }, { lastResort: true }), entry('Free1'), keyed('K2'), entry('Free2')]);
    const result = plan(registry);
    assert.deepEqual(ids(result.attempts), ['Free1', 'Free2', 'K1', 'K2', 'Local']);
    assert.equal(result.explicit, false);
    assert.deepEqual(result.unknown, []);
    assert.ok(result.attempts.every((attempt) => attempt.blocked === null));
  });

  test('only providers that serve the model, route automatically and are ready', () => {
    const registry = new Registry([
      entry('Serves'),
      entry('ByAlias', { models: [], aliases: { 'shared-model': 'upstream-id' } }),
      entry('Other', { models: ['other-model'] }),
      entry('Manual', {}, { autoRoute: false }),
      keyed('NoKey', null),
      entry('Down', { availability: () => ({ ok: false, reason: 'file missing' }) }),
      entry('Painter', { chat: undefined, images: async () => ({ images: [], model: 'p' }) }),
    ]);
    const result = plan(registry);
    assert.deepEqual(ids(result.attempts), ['Serves', 'ByAlias']);
    assert.equal(result.attempts[1]?.model, 'upstream-id');
  });

  test('an empty model goes only to providers the user configured, and the last resort', () => {
    const registry = new Registry([
      entry('Public'),
      entry('BaseUrl', {}, { configuredByUser: true }),
      keyed('Keyed'),
      entry('Local', {}, { lastResort: true }),
    ]);
    const result = plan(registry, { model: '' });
    assert.deepEqual(ids(result.attempts), ['BaseUrl', 'Keyed', 'Local']);
    assert.deepEqual(
      result.attempts.map((attempt) => attempt.model),
      ['BaseUrl-default', 'Keyed-default', 'Local-default'],
    );
  });

  test('with no candidate: a 404 on the model that says what each provider lacks', () => {
    const registry = new Registry([keyed('NoKey', null), entry('Down', { availability: () => ({ ok: false, reason: 'the file is missing' }) })]);
    assert.throws(
      () => plan(registry),
      apiError(
        404,
        'model_not_found',
        'model',
        /No chat provider can answer model "shared-model" now\. NoKey: NoKey needs an API key.* \| Down: the file is missing\. To fix/,
      ),
    );
    assert.throws(() => plan(registry, { model: '' }), apiError(404, 'model_not_found', 'model', /No chat provider is set up for a request without a model/));
  });

  test('a named provider with allow_fallbacks goes first, then the automatic ones', () => {
    const registry = new Registry([entry('A'), entry('B'), keyed('C')]);
    assert.deepEqual(ids(plan(registry, { provider: { order: ['C'] } }).attempts), ['C', 'A', 'B']);
    assert.deepEqual(ids(plan(registry, { provider: { order: ['C'], allow_fallbacks: false } }).attempts), ['C']);
    assert.deepEqual(ids(plan(registry, { provider: 'C' }).attempts), ['C'], 'a string never falls back');
  });
});

describe('planAttempts: only and ignore', () => {
  const registry = new Registry([entry('A'), entry('B'), entry('C')]);

  test('only keeps the providers it names, ignore drops them, ids matched like order', () => {
    assert.deepEqual(ids(plan(registry, { provider: { only: ['c', 'a', 'unknown'] } }).attempts), ['A', 'C']);
    assert.deepEqual(ids(plan(registry, { provider: { ignore: ['b'] } }).attempts), ['A', 'C']);
    assert.deepEqual(ids(plan(registry, { provider: { order: ['C', 'B'], ignore: ['B'] } }).attempts), ['C', 'A']);
    assert.deepEqual(ids(plan(registry, { provider: { order: ['B'], only: ['A', 'B'], ignore: ['A'] } }).attempts), ['B']);
  });

  test('nothing left: a 404 on provider when the user named them, on the model otherwise', () => {
    assert.throws(
      () => plan(registry, { provider: { order: ['A'], ignore: ['A', 'B', 'C'] } }),
      apiError(404, 'provider_not_found', 'provider', /no provider is left after provider.only \/ provider.ignore/),
    );
    assert.throws(() => plan(registry, { provider: { only: ['nobody'] } }), apiError(404, 'model_not_found', 'model'));
  });
});

describe('planAttempts: keys from the request', () => {
  const registry = new Registry([keyed('Groq'), keyed('Mistral', null), entry('Free')]);

  test('a string key goes to the one provider named, ahead of the server key', () => {
    const [attempt] = plan(registry, { provider: 'Groq', apiKey: 'gsk_request' }).attempts;
    assert.equal(attempt?.apiKey, 'gsk_request');
    assert.equal(attempt?.blocked, null);
    assert.equal(plan(registry, { provider: 'Groq' }).attempts[0]?.apiKey, 'Groq-server-key');
    assert.equal(plan(registry, { provider: 'Groq', apiKey: '' }).attempts[0]?.apiKey, 'Groq-server-key', 'an empty key is no key');
    assert.equal(plan(registry, { provider: ['Mistral'], apiKey: 'm_key' }).attempts[0]?.apiKey, 'm_key', 'one id in an array is one provider');
  });

  test('a string key with several providers, or with automatic routing, is a 400', () => {
    const stringNeedsOne = apiError(400, null, 'api_key', /api_key as a string needs exactly one provider/);
    assert.throws(() => plan(registry, { provider: 'Groq Mistral', apiKey: 'k' }), stringNeedsOne);
    assert.throws(() => plan(registry, { apiKey: 'k' }), stringNeedsOne);
    assert.throws(() => plan(registry, { provider: { order: ['Groq'] }, apiKey: 'k' }), stringNeedsOne, 'fallbacks make it several');
  });

  test('an object pairs each key with the provider it names, and only that one', () => {
    const result = plan(registry, { provider: 'Groq Mistral Free', apiKey: { mistral: 'm_key', Unknown: 'u', Groq: '' } });
    assert.deepEqual(
      result.attempts.map((attempt) => [attempt.entry.provider.id, attempt.apiKey, attempt.blocked]),
      [
        ['Groq', 'Groq-server-key', null],
        ['Mistral', 'm_key', null],
        ['Free', undefined, null],
      ],
    );
  });

  test('other shapes are 400s', () => {
    assert.throws(() => plan(registry, { provider: 'Groq', apiKey: ['k'] }), apiError(400, null, 'api_key', /a string or an object/));
    assert.throws(() => plan(registry, { provider: 'Groq', apiKey: 42 }), apiError(400, null, 'api_key'));
    assert.throws(() => plan(registry, { provider: 'Groq', apiKey: { Groq: 1 } }), apiError(400, null, 'api_key.Groq', /api_key.Groq must be a string/));
  });
});

describe('planAttempts: blocked attempts', () => {
  test('a keyed provider with no key is blocked as auth, with where to get one', () => {
    const registry = new Registry([keyed('Mistral', null), entry('Free')]);
    const [mistral, free] = plan(registry, { provider: 'Mistral Free' }).attempts;
    assert.equal(mistral?.blocked?.kind, 'auth');
    assert.match(mistral?.blocked?.message ?? '', /^Mistral needs an API key \(get one at https:\/\/mistral\.example\/keys\): set MISTRAL_API_KEY/);
    assert.equal(free?.blocked, null);
  });

  test('an unavailable provider is blocked with its reason, or a default one', () => {
    const registry = new Registry([
      entry('Local', { availability: () => ({ ok: false, reason: 'no model file' }) }),
      entry('Quiet', { availability: () => ({ ok: false }) }),
    ]);
    const [local, quiet] = plan(registry, { provider: 'Local Quiet' }).attempts;
    assert.deepEqual(local?.blocked, { kind: 'unavailable', message: 'no model file' });
    assert.deepEqual(quiet?.blocked, { kind: 'unavailable', message: 'Quiet is not available' });
  });

  test('a provider without a feature the request needs is blocked as bad_request when others are named', () => {
    const registry = new Registry([entry('Plain', { supportsStream: false, params: [] }), entry('Full', { visionModels: ['v'] })]);
    const result = plan(registry, { provider: 'Plain Full', needs: ['stream', 'tools', 'vision'] });
    assert.deepEqual(result.attempts[0]?.blocked, {
      kind: 'bad_request',
      message: 'skipped: Plain does not support streaming or tools (function calling) or images in messages (vision)',
    });
    assert.equal(result.attempts[1]?.blocked, null);
  });

  test('one provider named that lacks a feature is a 400 unsupported_feature', () => {
    const registry = new Registry([entry('Plain', { params: [] }), entry('Other', { params: [] })]);
    assert.throws(
      () => plan(registry, { provider: 'Plain', needs: ['json'] }),
      apiError(400, 'unsupported_feature', 'provider', /^Plain does not support JSON mode \(response_format\), which this request uses/),
    );
    // Automatic routing and several names block the attempt instead.
    assert.equal(plan(registry, { needs: ['json'] }).attempts[0]?.blocked?.kind, 'bad_request');
    assert.equal(plan(registry, { provider: ['Plain'], needs: ['json'] }).attempts[0]?.blocked?.kind, 'bad_request');
    assert.equal(plan(registry, { provider: 'Plain', needs: [] }).attempts[0]?.blocked, null);
  });

  test('a provider without the capability is blocked as bad_request', () => {
    const painter = entry('Painter', { chat: undefined, images: async () => ({ images: [], model: 'p' }), imageModels: ['pic'] });
    const registry = new Registry([painter, entry('Talker')]);
    assert.deepEqual(plan(registry, { provider: 'Painter' }).attempts[0]?.blocked, { kind: 'bad_request', message: 'Painter does not do chat completions' });
    const images = plan(registry, { provider: 'Talker Painter', capability: 'images', model: '' });
    assert.deepEqual(images.attempts[0]?.blocked, { kind: 'bad_request', message: 'Talker does not generate images' });
    assert.equal(images.attempts[1]?.blocked, null);
    assert.equal(images.attempts[1]?.model, 'pic', 'an empty image model is the first image model');
  });

  test('public providers turned off: refused unless a key comes with the request, and left out of automatic routing', () => {
    const publicEntry = entry('Pollen', {}, { publicHosts: ['pollen.example'] });
    const options: RegistryOptions = { publicProviders: false };
    const registry = new Registry([publicEntry, entry('Mine', {}, { configuredByUser: true })], options);
    const [refused] = plan(registry, { provider: 'Pollen' }).attempts;
    assert.equal(refused?.blocked?.kind, 'unavailable');
    assert.match(refused?.blocked?.message ?? '', /^Pollen is a keyless public service \(pollen\.example\) and public providers are turned off/);
    assert.equal(plan(registry, { provider: 'Pollen', apiKey: 'k' }).attempts[0]?.blocked, null);
    assert.deepEqual(ids(plan(registry).attempts), ['Mine']);
    // Turned on (the default), the same provider is an ordinary candidate.
    const open = new Registry([publicEntry, entry('Mine', {}, { configuredByUser: true })]);
    assert.deepEqual(ids(plan(open).attempts), ['Pollen', 'Mine']);
    assert.equal(plan(open, { provider: 'Pollen' }).attempts[0]?.blocked, null);
  });

  test('blocked reasons are checked in order: capability, features, public, availability, key', () => {
    const everything = entry(
      'Worst',
      { needsAuth: true, params: [], availability: () => ({ ok: false, reason: 'down' }) },
      { publicHosts: ['w.example'], serverKey: undefined },
    );
    const registry = new Registry([everything, entry('Other')], { publicProviders: false });
    const reason = (needs: PlanInput['needs'], apiKey?: unknown) => plan(registry, { provider: 'Worst Other', needs, apiKey }).attempts[0]?.blocked?.message;
    assert.match(reason(['tools']) ?? '', /^skipped: Worst does not support tools/);
    assert.match(reason([]) ?? '', /keyless public service/);
    assert.equal(reason([], { Worst: 'k' }), 'down');
    const available = new Registry([entry('Keyed', { needsAuth: true }), entry('Other')]);
    assert.equal(plan(available, { provider: 'Keyed Other' }).attempts[0]?.blocked?.kind, 'auth');
  });
});
