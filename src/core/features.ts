import type { ProviderInfo } from './provider.js';
import type { ChatRequest } from './types.js';

/**
 * What a chat request needs of a provider, and whether a provider has it. A provider's features
 * follow from what it declares: `tools` and `json` from the request fields it honours (`params`),
 * `vision` from its vision models, `stream` from `supportsStream`.
 */
export type Feature = 'stream' | 'tools' | 'vision' | 'json';

const featureNames: Record<Feature, string> = {
  stream: 'streaming',
  tools: 'tools (function calling)',
  vision: 'images in messages (vision)',
  json: 'JSON mode (response_format)',
};

export function describeFeature(feature: Feature): string {
  return featureNames[feature];
}

/** The features a chat request uses. */
export function requiredFeatures(request: ChatRequest): Feature[] {
  const needs: Feature[] = [];
  if (request.stream === true) needs.push('stream');
  if (Array.isArray(request.tools) && request.tools.length > 0) needs.push('tools');
  const format = request.response_format as { type?: unknown } | null | undefined;
  if (format !== undefined && format !== null && (format.type === 'json_object' || format.type === 'json_schema')) needs.push('json');
  if (request.messages.some((message) => Array.isArray(message.content) && message.content.some((part) => part?.type === 'image_url'))) needs.push('vision');
  return needs;
}

export function hasFeature(provider: ProviderInfo, feature: Feature): boolean {
  switch (feature) {
    case 'stream':
      return provider.supportsStream;
    case 'tools':
      return provider.params.includes('tools');
    case 'json':
      return provider.params.includes('response_format');
    case 'vision':
      return provider.visionModels.length > 0;
  }
}

/** The features of `needs` that the provider lacks. */
export function missingFeatures(provider: ProviderInfo, needs: readonly Feature[]): Feature[] {
  return needs.filter((feature) => !hasFeature(provider, feature));
}

/** Fields every provider reads, whatever its params (the gateway's own routing inputs aside). */
const alwaysRead = new Set(['model', 'messages', 'stream']);

/**
 * Request fields the provider does not honour: dropped before the call, and said back to the
 * client as warnings (`x-interference-warnings`) instead of silently.
 */
export function ignoredParams(provider: ProviderInfo, request: ChatRequest): string[] {
  const honoured = honouredBy(provider);
  const ignored: string[] = [];
  for (const field in request) {
    if (alwaysRead.has(field) || honoured.has(field)) continue;
    const value = request[field];
    if (value !== undefined && value !== null) ignored.push(field);
  }
  return ignored;
}

/** A provider's params as a set, made once per params list (asked on every request). */
const honouredSets = new WeakMap<readonly string[], ReadonlySet<string>>();
function honouredBy(provider: ProviderInfo): ReadonlySet<string> {
  let set = honouredSets.get(provider.params);
  if (set === undefined) {
    set = new Set(provider.params);
    honouredSets.set(provider.params, set);
  }
  return set;
}
