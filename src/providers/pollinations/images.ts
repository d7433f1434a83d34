import { randomInt } from 'node:crypto';
import { expectImage, readAll } from '../../core/download.js';
import { UpstreamError } from '../../core/errors.js';
import { discardBody, errorFromResponse, send, type Timeouts } from '../../core/http.js';
import type { ImageCall } from '../../core/provider.js';
import { allOrCancel } from '../../core/parallel.js';
import type { ImageResult } from '../../core/types.js';

export const pollinationsImageParams = ['prompt', 'model', 'n', 'size', 'seed', 'response_format'] as const;

const maxUrlLength = 4096;

/**
 * Pollinations' public image endpoint: `GET <base>/prompt/<prompt>?model&width&height&seed&nologo&private`
 * answers with the image bytes. `n` images are fetched in parallel, each with its own seed.
 * A reply flagged `x-error-type` is a placeholder, not the image asked for: a failure.
 */
export function createPollinationsImages(imageBaseUrl: string, timeouts: Timeouts) {
  const base = imageBaseUrl.replace(/\/+$/, '');
  return async function images(call: ImageCall): Promise<ImageResult> {
    const { request } = call;
    const headers: Record<string, string> = { accept: 'image/*' };
    if (call.apiKey !== undefined) headers.authorization = `Bearer ${call.apiKey}`;
    const one = async (index: number, signal: AbortSignal) => {
      const seed = request.seed === undefined ? randomInt(0, 2 ** 31 - 1) : request.seed + index;
      const query = new URLSearchParams({ model: request.model, seed: String(seed), nologo: 'true', private: 'true', enhance: 'false', safe: 'false' });
      if (request.width !== undefined) query.set('width', String(request.width));
      if (request.height !== undefined) query.set('height', String(request.height));
      const url = urlFor(base, request.prompt, query.toString());
      const response = await send({ method: 'GET', url, headers, signal, timeouts });
      if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, signal);
      if (response.headers['x-error-type'] !== undefined) {
        discardBody(response.body);
        throw new UpstreamError('server', `Pollinations sent a placeholder image (x-error-type: ${String(response.headers['x-error-type'])})`);
      }
      const bytes = expectImage(await readAll(response.body, signal, call.limits.maxBodyBytes), 'Pollinations');
      return { bytes, seed };
    };
    const images = await allOrCancel(request.n, call.signal, one);
    return { images, model: request.model };
  };
}

/** The prompt goes in the path; it is cut (at a character boundary) to keep the URL under 4096 characters. */
function urlFor(base: string, prompt: string, query: string): string {
  const room = maxUrlLength - base.length - '/prompt/?'.length - query.length;
  let encoded = encodeURIComponent(prompt);
  if (encoded.length > room) {
    let characters = Array.from(prompt);
    while (encodeURIComponent(characters.join('')).length > room && characters.length > 0) {
      characters = characters.slice(0, Math.floor(characters.length * 0.9));
    }
    encoded = encodeURIComponent(characters.join(''));
  }
  return `${base}/prompt/${encoded}?${query}`;
}
