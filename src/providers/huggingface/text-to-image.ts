import { expectImage, readAll } from '../../core/download.js';
import { errorFromResponse, send, type Timeouts } from '../../core/http.js';
import type { ImageCall } from '../../core/provider.js';
import { allOrCancel } from '../../core/parallel.js';
import type { ImageResult } from '../../core/types.js';

export const huggingFaceImageParams = ['prompt', 'model', 'n', 'size', 'seed', 'negative_prompt', 'response_format'] as const;

/**
 * Hugging Face text-to-image through the router's hf-inference provider:
 * `POST <origin>/hf-inference/models/<repo>` with `{inputs, parameters}`; the reply is the raw
 * image bytes. One request per image (`n`), each with its own seed when one was given.
 */
export function createHuggingFaceTextToImage(origin: string, timeouts: Timeouts) {
  const base = origin.replace(/\/+$/, '');
  return async function images(call: ImageCall): Promise<ImageResult> {
    const { request } = call;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'image/png, image/jpeg, image/webp' };
    if (call.apiKey !== undefined) headers.authorization = `Bearer ${call.apiKey}`;
    const url = `${base}/hf-inference/models/${request.model.split('/').map(encodeURIComponent).join('/')}`;
    const one = async (index: number, signal: AbortSignal) => {
      const parameters: Record<string, unknown> = {};
      if (request.negativePrompt !== undefined) parameters.negative_prompt = request.negativePrompt;
      if (request.width !== undefined) parameters.width = request.width;
      if (request.height !== undefined) parameters.height = request.height;
      const seed = request.seed === undefined ? undefined : request.seed + index;
      if (seed !== undefined) parameters.seed = seed;
      const response = await send({ method: 'POST', url, headers, body: JSON.stringify({ inputs: request.prompt, parameters }), signal, timeouts });
      if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, signal);
      const bytes = expectImage(await readAll(response.body, signal, call.limits.maxBodyBytes), `Hugging Face ${request.model}`);
      return seed === undefined ? { bytes } : { bytes, seed };
    };
    const images = await allOrCancel(request.n, call.signal, one);
    return { images, model: request.model };
  };
}
