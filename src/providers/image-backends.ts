import { createHuggingFaceTextToImage, huggingFaceImageParams } from './huggingface/text-to-image.js';
import type { ImageDeclaration, OpenAICompatibleSettings } from './openai-compatible/define.js';
import { createOpenAIImages, openAIImageParams } from './openai-compatible/images.js';
import { createPollinationsImages, pollinationsImageParams } from './pollinations/images.js';

/** How a chat provider also makes images: the request fields it honours and a factory for its endpoint. */
export type ImageBackend = NonNullable<OpenAICompatibleSettings['imageBackend']>;

/**
 * The image APIs a declaration may name, chosen here (the composition root) so that no protocol
 * folder imports another: `openai` is `POST <baseUrl>/images/generations`, `hf-inference` the HF
 * router's text-to-image (on the origin, without `/v1`), `pollinations` its image endpoint.
 */
export const imageBackends: Readonly<Record<ImageDeclaration['api'], ImageBackend>> = {
  openai: { params: openAIImageParams, create: (baseUrl, timeouts) => createOpenAIImages(baseUrl, timeouts) },
  'hf-inference': { params: huggingFaceImageParams, create: (baseUrl, timeouts) => createHuggingFaceTextToImage(baseUrl.replace(/\/v1\/?$/, ''), timeouts) },
  pollinations: { params: pollinationsImageParams, create: (baseUrl, timeouts) => createPollinationsImages(baseUrl, timeouts) },
};
