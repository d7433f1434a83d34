import type { ImageRequest } from '../../core/types.js';
import type { GradioProtocol } from './client.js';

/** One Gradio Space that makes images: where it is, how it is called, how a request maps to its inputs. */
export interface SpaceDeclaration {
  /** Provider id, selectable on its own (`parent: "HuggingSpace"`). */
  id: string;
  /** `owner/name` on Hugging Face. */
  space: string;
  label: string;
  /** The model name it answers to, and aliases (`flux` is shared by the FLUX Spaces). */
  model: string;
  aliases: readonly string[];
  protocol: GradioProtocol;
  /** Positional inputs of the Space's endpoint, in the order its UI wires them. */
  inputs(request: ImageRequest, seed: number, randomize: boolean): unknown[];
}

/** Sliders of these Spaces: 256–2048 in steps of 32. */
export function snap(size: number | undefined, fallback: number): number {
  const value = size ?? fallback;
  return Math.min(2048, Math.max(256, Math.round(value / 32) * 32));
}

export const imageSpaces: readonly SpaceDeclaration[] = [
  {
    id: 'BlackForestLabs_Flux1Schnell',
    space: 'black-forest-labs/FLUX.1-schnell',
    label: 'FLUX.1 [schnell] (Black Forest Labs Space)',
    model: 'flux-schnell',
    aliases: ['flux', 'flux.1-schnell', 'black-forest-labs/FLUX.1-schnell'],
    // infer(prompt, seed, randomize_seed, width, height, num_inference_steps) → (image, seed)
    protocol: { kind: 'call', apiName: 'infer' },
    inputs: (request, seed, randomize) => [request.prompt, seed, randomize, snap(request.width, 1024), snap(request.height, 1024), 4],
  },
  {
    id: 'BlackForestLabs_Flux1Dev',
    space: 'black-forest-labs/FLUX.1-dev',
    label: 'FLUX.1 [dev] (Black Forest Labs Space)',
    model: 'flux-dev',
    aliases: ['flux', 'flux.1-dev', 'black-forest-labs/FLUX.1-dev'],
    // The UI's queue: fn_index 2, trigger 4; inputs (prompt, seed, randomize_seed, width, height, guidance_scale, steps)
    protocol: { kind: 'queue', fnIndex: 2, triggerId: 4 },
    inputs: (request, seed, randomize) => [request.prompt, seed, randomize, snap(request.width, 1024), snap(request.height, 1024), 3.5, 28],
  },
  {
    id: 'StabilityAI_SD35Large',
    space: 'stabilityai/stable-diffusion-3.5-large',
    label: 'Stable Diffusion 3.5 Large (Stability AI Space)',
    model: 'sd-3.5-large',
    aliases: ['sd-3.5', 'sd3.5', 'stabilityai/stable-diffusion-3.5-large'],
    // infer(prompt, negative_prompt, seed, randomize_seed, width, height, guidance_scale, num_inference_steps)
    protocol: { kind: 'call', apiName: 'infer' },
    inputs: (request, seed, randomize) => [
      request.prompt,
      request.negativePrompt ?? '',
      seed,
      randomize,
      snap(request.width, 1024),
      snap(request.height, 1024),
      4.5,
      40,
    ],
  },
];

/** `https://<owner>-<name>.hf.space`, or `<baseUrl>/<owner>/<name>` when a base URL is configured. */
export function spaceRoot(space: string, baseUrl: string | undefined): string {
  if (baseUrl !== undefined) return `${baseUrl.replace(/\/+$/, '')}/${space}`;
  return `https://${space.toLowerCase().replace(/[._/]/g, '-')}.hf.space`;
}
