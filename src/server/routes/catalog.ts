import { hasFeature } from '../../core/features.js';
import type { ServerResponse } from 'node:http';
import { ApiError } from '../../core/errors.js';
import type { HealthBook } from '../../core/health.js';
import { Registry, type RegistryEntry } from '../../core/registry.js';
import { sendJson } from '../respond.js';

/** GET /v1/providers, /v1/providers/{id}, /v1/models, /v1/models/{id}: read-only views of the registry. */

/**
 * A URL as it may be shown to anyone who can list providers: no user-info (`https://user:pass@host`
 * → `https://host`), no query and no fragment (`?key=…`), which is where configured URLs carry
 * secrets. Only those parts are removed; everything else is returned as written (no
 * normalisation). A string that is not an absolute URL is returned unchanged unless it has one of
 * those parts too. Never throws.
 */
export function publicUrl(url: string): string {
  if (typeof url !== 'string') return url;
  const absolute = /^([A-Za-z][A-Za-z0-9+.-]*:)?\/\/([^/?#\\]*)(.*)$/s.exec(url);
  let scheme: string;
  let authority: string;
  let rest: string;
  if (absolute !== null) {
    scheme = `${absolute[1] ?? ''}//`;
    authority = absolute[2] ?? '';
    rest = absolute[3] ?? '';
  } else {
    // `user:pass@host/path?query` without a scheme: the authority ends at the first / ? or #.
    const bare = /^([^/?#\s]*@[^/?#\s]*)(.*)$/s.exec(url);
    scheme = '';
    authority = bare?.[1] ?? '';
    rest = bare === null ? url : (bare[2] ?? '');
  }
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  const cut = rest.search(/[?#]/);
  if (cut >= 0) rest = rest.slice(0, cut);
  return `${scheme}${authority}${rest}`;
}

/** Free text (a status message) with every absolute URL in it passed through `publicUrl`. */
export function publicText(text: string): string {
  return text.replace(/\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>]+/g, (match) => {
    // Closing punctuation after a URL belongs to the sentence.
    const tail = /[)\].,;:!]+$/.exec(match)?.[0] ?? '';
    return `${publicUrl(match.slice(0, match.length - tail.length))}${tail}`;
  });
}

const publicOrNull = (url: string | null): string | null => (url === null ? null : publicUrl(url));

function providerSummary(registry: Registry, health: HealthBook, entry: RegistryEntry): Record<string, unknown> {
  const provider = entry.provider;
  const readiness = registry.readiness(entry);
  const state = health.snapshot(provider.id);
  return {
    id: provider.id,
    object: 'provider',
    created: 0,
    url: publicUrl(provider.url),
    label: provider.label,
    parent: provider.parent,
    needs_auth: provider.needsAuth,
    login_url: publicOrNull(provider.loginUrl),
    configured: readiness.configured,
    status_message: readiness.reason === null ? null : publicText(readiness.reason),
    supports_stream: provider.supportsStream,
    image: provider.imageModels.length > 0,
    vision: provider.visionModels.length > 0,
    // What a chat request may ask of it: requests needing a feature it lacks skip it (or get a 400 when it is named alone).
    capabilities: [
      ...(['stream', 'tools', 'vision', 'json'] as const).filter((feature) => provider.chat !== undefined && hasFeature(provider, feature)),
      ...(provider.images === undefined ? [] : ['images']),
    ],
    // The routes that can reach it: every chat provider answers each chat dialect.
    entrances: [
      ...(provider.chat === undefined ? [] : ['/v1/chat/completions', '/v1/messages', '/v1/responses']),
      ...(provider.images === undefined ? [] : ['/v1/images/generations']),
    ],
    auto_route: entry.autoRoute,
    // A keyless public service: the hosts that receive the prompts routed to it ("Where does my prompt go?").
    public_service: entry.publicHosts !== undefined,
    public_hosts: entry.publicHosts ?? [],
    // From recent real traffic: `working` is false while the breaker is open or most calls fail.
    working: readiness.configured && state.working,
    circuit: state.circuit,
    consecutive_failures: state.consecutive_failures,
    success_rate: state.success_rate,
    median_latency_ms: state.median_latency_ms,
    ...(state.retry_in_s === undefined ? {} : { retry_in_s: state.retry_in_s }),
  };
}

export function listProviders(res: ServerResponse, registry: Registry, health: HealthBook, headers: Record<string, string>): void {
  sendJson(
    res,
    200,
    registry.all().map((entry) => providerSummary(registry, health, entry)),
    headers,
  );
}

export function getProvider(res: ServerResponse, registry: Registry, health: HealthBook, id: string, headers: Record<string, string>): void {
  const entry = registry.find(id);
  if (entry === undefined) throw providerNotFound(registry, id);
  const provider = entry.provider;
  sendJson(
    res,
    200,
    {
      ...providerSummary(registry, health, entry),
      default_model: provider.defaultModel,
      models: provider.models,
      image_models: provider.imageModels,
      vision_models: provider.visionModels,
      aliases: provider.aliases,
      params: provider.params,
      image_params: provider.imageParams,
    },
    headers,
  );
}

interface ModelView {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  providers: string[];
  image: boolean;
  /** gpt4free's clients read these two: `chat` or `image`, and whether it takes images in messages. */
  type: 'chat' | 'image';
  vision: boolean;
  available: boolean;
}

/** Every model and alias any provider declares, with the providers that serve it. */
function modelIndex(registry: Registry): Map<string, ModelView> {
  const index = new Map<string, ModelView>();
  for (const entry of registry.all()) {
    const provider = entry.provider;
    const configured = registry.readiness(entry).configured;
    const add = (id: string, image: boolean, target = id): void => {
      let view = index.get(id);
      if (view === undefined) {
        view = {
          id,
          object: 'model',
          created: 0,
          owned_by: provider.id,
          providers: [],
          image,
          type: image ? 'image' : 'chat',
          vision: false,
          available: false,
        };
        index.set(id, view);
      }
      if (!view.providers.includes(provider.id)) view.providers.push(provider.id);
      view.available ||= configured;
      view.vision ||= !image && provider.visionModels.includes(target);
    };
    for (const model of provider.models) add(model, false);
    for (const model of provider.imageModels) add(model, true);
    for (const [alias, target] of Object.entries(provider.aliases)) add(alias, provider.imageModels.includes(target), target);
  }
  return index;
}

export function listModels(res: ServerResponse, registry: Registry, headers: Record<string, string>): void {
  sendJson(res, 200, { object: 'list', data: [...modelIndex(registry).values()] }, headers);
}

/** A 404 naming the unknown provider, with close ids. */
function providerNotFound(registry: Registry, id: string): ApiError {
  const suggestions = registry.suggest(id);
  const hint = suggestions.length > 0 ? ` Did you mean ${suggestions.join(', ')}?` : '';
  const shown = id.length > 64 ? `${id.slice(0, 64)}…` : id;
  return new ApiError(404, `Provider ${JSON.stringify(shown)} not found.${hint}`, { param: 'provider', code: 'provider_not_found' });
}

/** GET /api/{provider}/models: one provider's models and aliases (gpt4free's per-provider base URL), or a 404 naming it. */
export function listProviderModels(res: ServerResponse, registry: Registry, id: string, headers: Record<string, string>): void {
  const entry = registry.find(id);
  if (entry === undefined) throw providerNotFound(registry, id);
  const one = new Registry([entry], registry.options);
  sendJson(res, 200, { object: 'list', data: [...modelIndex(one).values()] }, headers);
}

export function getModel(res: ServerResponse, registry: Registry, id: string, headers: Record<string, string>): void {
  const view = modelIndex(registry).get(id);
  if (view === undefined) {
    throw new ApiError(
      404,
      `The model ${JSON.stringify(id.length > 200 ? `${id.slice(0, 200)}…` : id)} does not exist in any provider's catalog. A provider named explicitly still passes unknown ids through.`,
      {
        param: 'model',
        code: 'model_not_found',
      },
    );
  }
  sendJson(res, 200, view, headers);
}
