import type { AbortLike } from './abort.js';
import type { UpstreamLimits } from './http.js';
import type { ChatChunk, ChatCompletion, ChatRequest, ImageRequest, ImageResult } from './types.js';

/**
 * What the gateway knows about a provider before calling it. Serialised by /v1/providers
 * (snake_case there); never contains a key.
 */
export interface ProviderInfo {
  /** Unique id, as users write it in `provider` (for example `Groq`). */
  readonly id: string;
  readonly label: string;
  /** Where a human reads about it / signs up. */
  readonly url: string;
  /** Grouping family (for example `HuggingFace` for `HuggingChat`), or null. */
  readonly parent: string | null;
  /** True when the upstream refuses calls without a key. */
  readonly needsAuth: boolean;
  /** Where to get a key. */
  readonly loginUrl: string | null;
  /** Model used when the request's `model` is empty. */
  readonly defaultModel: string;
  readonly models: readonly string[];
  readonly imageModels: readonly string[];
  readonly visionModels: readonly string[];
  /** Public name → the upstream's model id. */
  readonly aliases: Readonly<Record<string, string>>;
  readonly supportsStream: boolean;
  /** Request fields this provider honours (others are dropped before the call). */
  readonly params: readonly string[];
  /** Image request fields it honours; empty when it makes no images. */
  readonly imageParams: readonly string[];
  /** Where its requests go, for HTTP providers (absent for the embedded model). */
  readonly baseUrl?: string;
}

/** What a provider's declaration says about it, whatever its protocol family. */
export interface DeclaredProvider {
  id: string;
  label: string;
  url: string;
  loginUrl: string | null;
  parent?: string | null;
  /** Where its API lives, ending before the family's endpoint paths. */
  baseUrl: string;
  needsAuth: boolean;
  /** Vendor's usual key variables, besides `<ID>_API_KEY`. */
  apiKeyEnv?: readonly string[];
  defaultModel: string;
  models: readonly string[];
  visionModels?: readonly string[];
  aliases?: Readonly<Record<string, string>>;
  /**
   * Local servers guessed at a default address (Ollama, llama.cpp): used by automatic routing
   * only once their base URL is configured, since nothing may be listening there.
   */
  optIn?: boolean;
}

/** The ProviderInfo fields every family takes from its declaration as they are. */
export function declaredInfo(declaration: DeclaredProvider) {
  return {
    id: declaration.id,
    label: declaration.label,
    url: declaration.url,
    parent: declaration.parent ?? null,
    needsAuth: declaration.needsAuth,
    loginUrl: declaration.loginUrl,
    defaultModel: declaration.defaultModel,
    models: declaration.models,
    visionModels: declaration.visionModels ?? [],
    aliases: declaration.aliases ?? {},
  } satisfies Partial<ProviderInfo>;
}

export interface ChatCall {
  /** The OpenAI body, `model` already resolved through the provider's aliases. */
  readonly request: ChatRequest;
  /** The key meant for this provider, if any. */
  readonly apiKey: string | undefined;
  /** Aborted when the client goes away or the attempt times out. */
  readonly signal: AbortSignal;
  /** The same abort, cheaper to listen to (`exchange` takes it): reading `signal` makes an AbortSignal, this does not. */
  readonly cancellation?: AbortLike;
  /** What the provider may hold of the upstream's answer (body, one event). */
  readonly limits: UpstreamLimits;
}

/**
 * The promise settles once the upstream accepted the call (2xx headers): failures before that
 * are thrown as `UpstreamError`; later failures are thrown from the iterator. Calling `return()`
 * on the iterator cancels the upstream work.
 */
export interface ImageCall {
  readonly request: ImageRequest;
  readonly apiKey: string | undefined;
  readonly signal: AbortSignal;
  /** The body cap is also the budget for all the files the upstream names (at most `n`). */
  readonly limits: UpstreamLimits;
}

export type ChatResult = (
  { readonly type: 'completion'; readonly completion: ChatCompletion } | { readonly type: 'stream'; readonly chunks: AsyncIterable<ChatChunk> }
) & {
  /** What the translation changed or could not carry (a clamped value, a dropped field): said back to the client. */
  readonly warnings?: readonly string[];
};

/** Whether a provider can run now, and if not, what the user should do. */
export interface Availability {
  readonly ok: boolean;
  readonly reason?: string;
}

export interface Provider extends ProviderInfo {
  /**
   * Readiness apart from keys (keys are the router's business): for example whether the
   * embedded model file can be had. Absent means always ready.
   */
  availability?(): Availability;
  /** Absent for image-only providers. */
  chat?(call: ChatCall): Promise<ChatResult>;
  /** The exact number of prompt tokens the request would use, where the provider can count (the embedded model). */
  countTokens?(request: ChatRequest, signal: AbortSignal): Promise<number>;
  /** Absent for providers that make no images. */
  images?(call: ImageCall): Promise<ImageResult>;
  /** Release sockets, models, timers. */
  close?(): Promise<void>;
  /** Work in the provider itself, where it has a queue (the embedded model): for metrics. */
  load?(): { running: number; waiting: number };
}

/** Resolves a requested model name through a provider's aliases; empty means its default. */
export function resolveModel(provider: ProviderInfo, requested: string, capability: Capability = 'chat'): string {
  if (requested === '') return capability === 'chat' ? provider.defaultModel : (provider.imageModels[0] ?? provider.defaultModel);
  return Object.hasOwn(provider.aliases, requested) ? (provider.aliases[requested] as string) : requested;
}

export type Capability = 'chat' | 'images';

/** True when the provider lists the model (by id or alias) for that capability. */
export function servesModel(provider: ProviderInfo, model: string, capability: Capability = 'chat'): boolean {
  const list = capability === 'chat' ? provider.models : provider.imageModels;
  if (list.includes(model)) return true;
  if (!Object.hasOwn(provider.aliases, model)) return false;
  const target = provider.aliases[model] as string;
  // An alias belongs to the list its target is in; targets in neither are chat aliases.
  return capability === 'images' ? provider.imageModels.includes(target) : !provider.imageModels.includes(target);
}
