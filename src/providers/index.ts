import { envName, ConfigError, providerSettings, type Config, type ConfigProblem, type ProviderOverride } from '../config.js';
import { isAbsoluteHttpUrl, urlExpectation } from '../config-file.js';
import type { ProviderApi } from '../config-file.js';
import type { DeclaredProvider, Provider } from '../core/provider.js';
import { isLoopbackHost } from '../core/http.js';
import { Registry, type RegistryEntry } from '../core/registry.js';
import { anthropicDeclaration, createAnthropicProvider } from './anthropic/index.js';
import { createGeminiProvider, geminiDeclaration } from './gemini/index.js';
import { openAICompatibleCatalog } from './openai-compatible/catalog.js';
import { createOpenAICompatible, type OpenAICompatibleDeclaration } from './openai-compatible/define.js';
import { imageBackends } from './image-backends.js';
import { createLocalProvider } from './local/local-provider.js';
import { createHuggingSpace, createSpaceProvider } from './gradio/huggingspace.js';
import { imageSpaces } from './gradio/spaces.js';

/**
 * Builds the registry from the built-in declarations, the config file's overrides and custom
 * entries, and the environment (`<ID>_API_KEY`, `<ID>_BASE_URL`, vendors' usual names).
 * Order matters: it is the order of /v1/providers and of automatic routing within a tier.
 */
export function buildRegistry(config: Config): Registry {
  const entries: RegistryEntry[] = [];
  const fileEntry = (id: string) => providerSettings(config, id).entry;
  for (const builtin of openAICompatibleCatalog) entries.push(openAICompatibleEntry(config, applyOverride(builtin, fileEntry(builtin.id))));
  for (const [api, builtin] of nativeBuiltins) {
    entries.push(keyedEntry(config, applyOverride(builtin, fileEntry(builtin.id)), (declaration) => families[api].create(declaration, config)));
  }
  entries.push(...huggingSpaceEntries(config));
  // Config file entries that name no built-in provider add providers of their own.
  const used = new Set(entries.map((entry) => entry.provider.id.toLowerCase()));

  const problems: ConfigProblem[] = [];
  const where = config.configPath ?? 'interference.config.json';
  for (const [index, override] of config.providers.entries()) {
    const key = override.id.toLowerCase();
    if (used.has(key) || key === 'local') continue;
    if (override.api === undefined) {
      problems.push({
        where,
        path: `providers[${index}].id`,
        found: `${JSON.stringify(override.id)}, which is not a built-in provider`,
        expected: `a built-in provider id (GET /v1/providers lists them), or "api" (${Object.keys(families)
          .map((api) => `"${api}"`)
          .join(', ')}) and a "baseUrl" for a provider of your own`,
      });
      continue;
    }
    const family = families[override.api];
    if (providerSettings(config, override.id).baseUrl === undefined) {
      problems.push({
        where,
        path: `providers[${index}].baseUrl`,
        found: 'nothing',
        expected: `the provider's base URL, ${family.baseUrlHint} (or ${envName(override.id, 'BASE_URL')})`,
      });
      continue;
    }
    const declaration: DeclaredProvider = {
      id: override.id,
      label: override.label ?? override.id,
      url: override.url ?? override.baseUrl ?? '',
      loginUrl: null,
      baseUrl: override.baseUrl ?? '',
      needsAuth: false,
      defaultModel: override.defaultModel ?? override.models?.[0] ?? '',
      models: override.models ?? [],
      aliases: override.aliases ?? {},
    };
    used.add(key);
    entries.push(
      override.api === 'openai' ? openAICompatibleEntry(config, declaration) : keyedEntry(config, declaration, (resolved) => family.create(resolved, config)),
    );
  }

  for (const entry of entries) {
    const { entry: fileEntry, baseUrl, baseUrlVariable } = providerSettings(config, entry.provider.id);
    // The file's URLs were checked by its schema; a `<ID>_BASE_URL` is checked here.
    if (fileEntry?.baseUrl === undefined && baseUrl !== undefined && !isAbsoluteHttpUrl(baseUrl))
      problems.push({ where: 'environment', path: baseUrlVariable, found: JSON.stringify(baseUrl), expected: urlExpectation });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  entries.push({
    provider: createLocalProvider({
      model: config.local.model,
      cacheDir: config.local.cacheDir,
      threads: config.local.threads,
      contextSize: config.local.contextSize,
      parallel: config.local.parallel,
      ...(config.local.hfEndpoint === undefined ? {} : { hfEndpoint: config.local.hfEndpoint }),
    }),
    serverKey: undefined,
    autoRoute: true,
    keyVariables: [],
    lastResort: true,
    configuredByUser: false,
  });
  return new Registry(entries, { publicProviders: config.publicProviders });
}

/** The host names of a URL list, for the banner and messages (`text.pollinations.ai`). */
function hostsOf(...urls: Array<string | undefined>): string[] {
  const hosts = new Set<string>();
  for (const url of urls) {
    if (url === undefined) continue;
    try {
      hosts.add(new URL(url).host);
    } catch {
      // not a URL: nothing to name
    }
  }
  return [...hosts];
}

/** On this machine: loopback addresses and `localhost`. */
function isLocalUrl(url: string): boolean {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}

/** The HuggingSpace group and each of its Spaces (selectable alone, not routed to automatically). */
function huggingSpaceEntries(config: Config): RegistryEntry[] {
  const { baseUrl, apiKey: serverKey, keyVariables } = providerSettings(config, 'HuggingSpace', ['HF_TOKEN']);
  const options = { baseUrl, timeouts: config.timeouts };
  // Keyless and pointed at huggingface's hosts: prompts go to public Spaces.
  const publicHosts = serverKey === undefined && baseUrl === undefined ? { publicHosts: ['*.hf.space'] } : {};
  const shared = { serverKey, keyVariables, configuredByUser: false, ...publicHosts };
  return [
    { provider: createHuggingSpace(options), autoRoute: true, ...shared },
    ...imageSpaces.map((space) => ({ provider: createSpaceProvider(space, options), autoRoute: false, ...shared })),
  ];
}

/** The protocol families a config entry may name with `"api"`, and how each builds a provider. */
const families: Record<ProviderApi, { create(declaration: DeclaredProvider, config: Config): Provider; baseUrlHint: string }> = {
  openai: {
    create: (declaration, config) => createOpenAICompatible(declaration, { timeouts: config.timeouts }),
    baseUrlHint: 'ending before /chat/completions',
  },
  anthropic: {
    create: (declaration, config) => createAnthropicProvider(declaration, { timeouts: config.timeouts }),
    baseUrlHint: 'ending before /messages (one without a version gets /v1)',
  },
  gemini: {
    create: (declaration, config) => createGeminiProvider(declaration, { timeouts: config.timeouts }),
    baseUrlHint: 'ending before /models (one without a version gets /v1beta)',
  },
};

/** The built-in providers of the native (not OpenAI-compatible) families. */
const nativeBuiltins: ReadonlyArray<[Exclude<ProviderApi, 'openai'>, DeclaredProvider]> = [
  ['anthropic', anthropicDeclaration],
  ['gemini', geminiDeclaration],
];

function applyOverride<D extends DeclaredProvider>(declaration: D, override: ProviderOverride | undefined): D {
  if (override === undefined) return declaration;
  return {
    ...declaration,
    ...(override.baseUrl === undefined ? {} : { baseUrl: override.baseUrl }),
    ...(override.label === undefined ? {} : { label: override.label }),
    ...(override.url === undefined ? {} : { url: override.url }),
    ...(override.models === undefined ? {} : { models: override.models }),
    ...(override.defaultModel === undefined ? {} : { defaultModel: override.defaultModel }),
    ...(override.aliases === undefined ? {} : { aliases: { ...declaration.aliases, ...override.aliases } }),
  };
}

/**
 * A provider entry of any family: base URL from the config file, then `<ID>_BASE_URL`, then the
 * declaration; key from the config file, then `<ID>_API_KEY`, then the vendor's variables.
 */
function keyedEntry<D extends DeclaredProvider>(
  config: Config,
  declaration: D,
  build: (resolved: D, baseUrlConfigured: boolean) => Provider,
  publicExtraUrls: ReadonlyArray<string | undefined> = [],
): RegistryEntry {
  const settings = providerSettings(config, declaration.id, declaration.apiKeyEnv);
  const baseUrl = settings.baseUrl ?? declaration.baseUrl;
  const serverKey = settings.apiKey;
  const keyVariables = settings.keyVariables;
  const baseUrlConfigured = settings.baseUrl !== undefined;
  const configuredByUser = serverKey !== undefined || baseUrlConfigured;
  // A keyless service the user did not point anywhere, off this machine: a public one.
  const isPublic = !declaration.needsAuth && !configuredByUser && !isLocalUrl(baseUrl);
  return {
    provider: build({ ...declaration, baseUrl }, baseUrlConfigured),
    serverKey,
    autoRoute: declaration.optIn !== true || baseUrlConfigured,
    keyVariables,
    configuredByUser,
    ...(isPublic ? { publicHosts: hostsOf(baseUrl, ...publicExtraUrls) } : {}),
  };
}

function openAICompatibleEntry(config: Config, declaration: OpenAICompatibleDeclaration): RegistryEntry {
  // A configured base URL moves images there too (a mirror or a test fake serves both).
  const imagesFor = (baseUrlConfigured: boolean) =>
    declaration.images === undefined || !baseUrlConfigured ? declaration.images : { api: declaration.images.api, models: declaration.images.models };
  return keyedEntry(
    config,
    declaration,
    (resolved, baseUrlConfigured) => {
      const images = imagesFor(baseUrlConfigured);
      return createOpenAICompatible(
        { ...resolved, ...(images === undefined ? {} : { images }) },
        { timeouts: config.timeouts, ...(images === undefined ? {} : { imageBackend: imageBackends[images.api] }) },
      );
    },
    [declaration.images?.baseUrl],
  );
}
