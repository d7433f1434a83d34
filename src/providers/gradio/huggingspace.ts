import { randomInt } from 'node:crypto';
import { DownloadBudget, downloadImage, originOf } from '../../core/download.js';
import { UpstreamError } from '../../core/errors.js';
import type { Timeouts } from '../../core/http.js';
import type { ImageCall, Provider } from '../../core/provider.js';
import type { GeneratedImage, ImageResult } from '../../core/types.js';
import { runGradio } from './client.js';
import { imageSpaces, spaceRoot, type SpaceDeclaration } from './spaces.js';

export const spaceImageParams = ['prompt', 'model', 'n', 'size', 'seed', 'negative_prompt', 'response_format'] as const;

export interface HuggingSpaceOptions {
  /** Replaces `https://<owner>-<name>.hf.space`; Space `owner/name` is then at `<baseUrl>/<owner>/<name>`. */
  baseUrl: string | undefined;
  timeouts: Timeouts;
  /** Random source for the `flux` pick (tests may pass a seeded one). */
  random?: () => number;
  spaces?: readonly SpaceDeclaration[];
}

const common = {
  url: 'https://huggingface.co/spaces',
  needsAuth: false,
  loginUrl: 'https://huggingface.co/settings/tokens',
  models: [] as readonly string[],
  visionModels: [] as readonly string[],
  supportsStream: false,
  params: [] as readonly string[],
  imageParams: spaceImageParams,
};

/** Runs one Space for `n` images (one job each, one after another: Spaces are shared GPUs). */
async function generate(space: SpaceDeclaration, call: ImageCall, options: HuggingSpaceOptions): Promise<ImageResult> {
  const root = spaceRoot(space.space, options.baseUrl);
  const headers: Record<string, string> = {};
  if (call.apiKey !== undefined) headers.authorization = `Bearer ${call.apiKey}`;
  const images: GeneratedImage[] = [];
  // One output file per job; the token goes only to the Space's own origin, never to a host its output names.
  const budget = new DownloadBudget(call.limits.maxBodyBytes, call.request.n);
  const credentials = call.apiKey === undefined ? undefined : { origin: originOf(root), headers };
  for (let index = 0; index < call.request.n; index++) {
    const randomize = call.request.seed === undefined;
    const seed = randomize ? randomInt(0, 2 ** 31 - 1) : (call.request.seed as number) + index;
    const outputs = await runGradio({
      root,
      prefix: '/gradio_api',
      protocol: space.protocol,
      data: space.inputs(call.request, seed, randomize),
      headers,
      signal: call.signal,
      timeouts: options.timeouts,
      maxEventBytes: call.limits.maxEventBytes,
    });
    const file = outputs[0] as { url?: unknown; path?: unknown } | null;
    const url = typeof file?.url === 'string' ? file.url : typeof file?.path === 'string' ? `${root}/gradio_api/file=${file.path}` : undefined;
    if (url === undefined) throw new UpstreamError('bad_response', `${space.space} returned no image file`);
    const bytes = await downloadImage(url, {
      credentials,
      signal: call.signal,
      timeouts: options.timeouts,
      budget,
      trustedOrigin: originOf(root),
      allowPrivate: call.limits.privateDownloads,
    });
    const usedSeed = typeof outputs[1] === 'number' ? outputs[1] : seed;
    images.push({ bytes, seed: usedSeed });
  }
  return { images, model: space.space };
}

/** Each Space as its own provider, parent `HuggingSpace`. */
export function createSpaceProvider(space: SpaceDeclaration, options: HuggingSpaceOptions): Provider {
  const aliases: Record<string, string> = {};
  for (const alias of space.aliases) aliases[alias] = space.model;
  return {
    ...common,
    id: space.id,
    label: space.label,
    url: `https://huggingface.co/spaces/${space.space}`,
    parent: 'HuggingSpace',
    defaultModel: space.model,
    imageModels: [space.model],
    aliases,
    images: (call) => generate(space, call, options),
  };
}

/**
 * The group: picks the Spaces that serve the model (`flux`: the FLUX Spaces in random order;
 * `flux-schnell`, `flux-dev`, `sd-3.5`: their own) and moves to the next when one is busy or failing.
 */
export function createHuggingSpace(options: HuggingSpaceOptions): Provider {
  const spaces = options.spaces ?? imageSpaces;
  const random = options.random ?? Math.random;
  const imageModels = [...new Set(spaces.flatMap((space) => [space.model, ...space.aliases.filter((alias) => !alias.includes('/'))]))];
  const aliases: Record<string, string> = {};
  for (const space of spaces) for (const alias of space.aliases) if (alias.includes('/')) aliases[alias] = space.model;

  function candidates(model: string): SpaceDeclaration[] {
    const matching = spaces.filter((space) => space.model === model || space.aliases.includes(model));
    // Fisher–Yates: every order equally likely, so `flux` spreads over the FLUX Spaces.
    for (let i = matching.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [matching[i], matching[j]] = [matching[j] as SpaceDeclaration, matching[i] as SpaceDeclaration];
    }
    return matching;
  }

  return {
    ...common,
    id: 'HuggingSpace',
    label: 'Hugging Face Spaces (Gradio)',
    parent: null,
    defaultModel: 'flux',
    imageModels,
    aliases,
    async images(call) {
      const matching = candidates(call.request.model);
      if (matching.length === 0) {
        throw new UpstreamError('model_not_found', `no HuggingSpace Space serves "${call.request.model}"; try ${imageModels.join(', ')}`);
      }
      const failures: UpstreamError[] = [];
      for (const space of matching) {
        try {
          return await generate(space, call, options);
        } catch (error) {
          const failure = error instanceof UpstreamError ? error : new UpstreamError('server', String(error));
          if (failure.kind === 'aborted' || call.signal.aborted) throw failure;
          failures.push(new UpstreamError(failure.kind, `${space.space}: ${failure.message}`, failure.status === undefined ? {} : { status: failure.status }));
        }
      }
      const kinds = new Set(failures.map((failure) => failure.kind));
      const kind = kinds.size === 1 ? (failures[0] as UpstreamError).kind : 'server';
      throw new UpstreamError(kind, failures.map((failure) => failure.message).join(' | '));
    },
  };
}
