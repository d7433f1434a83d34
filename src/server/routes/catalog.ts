import type { ServerResponse } from 'node:http';
import { ApiError } from '../../core/errors.js';
import type { HealthBook } from '../../core/health.js';
import type { Registry, RegistryEntry } from '../../core/registry.js';
import { sendJson } from '../respond.js';

/** GET /v1/providers, /v1/providers/{id}, /v1/models, /v1/models/{id}: read-only views of the registry. */

function providerSummary(registry: Registry, health: HealthBook, entry: RegistryEntry): Record<string, unknown> {
  const provider = entry.provider;
  const readiness = registry.readiness(entry);
  const state = health.snapshot(provider.id);
  return {
    id: provider.id,
    object: 'provider',
    created: 0,
    url: provider.url,
    label: provider.label,
    parent: provider.parent,
    needs_auth: provider.needsAuth,
    login_url: provider.loginUrl,
    configured: readiness.configured,
    status_message: readiness.reason,
    supports_stream: provider.supportsStream,
    image: provider.imageModels.length > 0,
    vision: provider.visionModels.length > 0,
    auto_route: entry.autoRoute,
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
  sendJson(res, 200, registry.all().map((entry) => providerSummary(registry, health, entry)), headers);
}

export function getProvider(res: ServerResponse, registry: Registry, health: HealthBook, id: string, headers: Record<string, string>): void {
  const entry = registry.find(id);
  if (entry === undefined) {
    const suggestions = registry.suggest(id);
    const hint = suggestions.length > 0 ? ` Did you mean ${suggestions.join(', ')}?` : '';
    throw new ApiError(404, `Provider "${id}" not found.${hint}`, { param: 'provider', code: 'provider_not_found' });
  }
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
  available: boolean;
}

/** Every model and alias any provider declares, with the providers that serve it. */
function modelIndex(registry: Registry): Map<string, ModelView> {
  const index = new Map<string, ModelView>();
  for (const entry of registry.all()) {
    const provider = entry.provider;
    const configured = registry.readiness(entry).configured;
    const add = (id: string, image: boolean): void => {
      let view = index.get(id);
      if (view === undefined) {
        view = { id, object: 'model', created: 0, owned_by: provider.id, providers: [], image, available: false };
        index.set(id, view);
      }
      if (!view.providers.includes(provider.id)) view.providers.push(provider.id);
      view.available ||= configured;
    };
    for (const model of provider.models) add(model, false);
    for (const model of provider.imageModels) add(model, true);
    for (const alias of Object.keys(provider.aliases)) add(alias, provider.imageModels.includes(provider.aliases[alias] ?? ''));
  }
  return index;
}

export function listModels(res: ServerResponse, registry: Registry, headers: Record<string, string>): void {
  sendJson(res, 200, { object: 'list', data: [...modelIndex(registry).values()] }, headers);
}

export function getModel(res: ServerResponse, registry: Registry, id: string, headers: Record<string, string>): void {
  const view = modelIndex(registry).get(id);
  if (view === undefined) {
    throw new ApiError(404, `The model "${id}" does not exist in any provider's catalog. A provider named explicitly still passes unknown ids through.`, {
      param: 'model',
      code: 'model_not_found',
    });
  }
  sendJson(res, 200, view, headers);
}
