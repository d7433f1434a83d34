import { DownloadBudget, downloadImage, originOf, readAll } from '../../core/download.js';
import { UpstreamError } from '../../core/errors.js';
import { errorFromResponse, send, type Timeouts } from '../../core/http.js';
import type { ImageCall } from '../../core/provider.js';
import type { GeneratedImage, ImageResult } from '../../core/types.js';

/** Fields of OpenAI's `POST /images/generations` the gateway forwards. */
export const openAIImageParams = ['prompt', 'model', 'n', 'size', 'response_format', 'quality', 'style', 'background', 'output_format', 'user'] as const;

/**
 * OpenAI's image endpoint. The gateway always asks for `b64_json` (GPT-image models only give
 * that, and DALL-E links expire), then stores or encodes the bytes itself.
 */
export function createOpenAIImages(baseUrl: string, timeouts: Timeouts) {
  const endpoint = `${baseUrl.replace(/\/+$/, '')}/images/generations`;
  return async function images(call: ImageCall): Promise<ImageResult> {
    const { request } = call;
    const body: Record<string, unknown> = { model: request.model, prompt: request.prompt, n: request.n };
    if (request.width !== undefined && request.height !== undefined) body.size = `${request.width}x${request.height}`;
    if (!request.model.startsWith('gpt-image')) body.response_format = 'b64_json';
    for (const field of ['quality', 'style', 'background', 'output_format', 'user']) {
      if (request.extra[field] !== undefined) body[field] = request.extra[field];
    }
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (call.apiKey !== undefined) headers.authorization = `Bearer ${call.apiKey}`;
    const response = await send({ method: 'POST', url: endpoint, headers, body: JSON.stringify(body), signal: call.signal, timeouts });
    if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, call.signal);
    const text = (await readAll(response.body, call.signal, call.limits.maxBodyBytes)).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UpstreamError('bad_response', `the images endpoint answered with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    const data = (parsed as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length === 0) throw new UpstreamError('bad_response', 'the images endpoint answered without `data`');
    const out: GeneratedImage[] = [];
    // At most the `n` images asked for; URLs within one byte budget, the key only to our own origin.
    const budget = new DownloadBudget(call.limits.maxBodyBytes, request.n);
    const credentials = call.apiKey === undefined ? undefined : { origin: originOf(endpoint), headers: { authorization: `Bearer ${call.apiKey}` } };
    for (const item of (data as unknown[]).slice(0, request.n)) {
      if (typeof item !== 'object' || item === null) throw new UpstreamError('bad_response', 'an image entry is not an object');
      const entry = item as Record<string, unknown>;
      let bytes: Buffer;
      if (typeof entry.b64_json === 'string') bytes = Buffer.from(entry.b64_json, 'base64');
      else if (typeof entry.url === 'string')
        bytes = await downloadImage(entry.url, {
          credentials,
          signal: call.signal,
          timeouts,
          budget,
          trustedOrigin: originOf(endpoint),
          allowPrivate: call.limits.privateDownloads,
        });
      else throw new UpstreamError('bad_response', 'an image entry has neither b64_json nor url');
      out.push(typeof entry.revised_prompt === 'string' ? { bytes, revisedPrompt: entry.revised_prompt } : { bytes });
    }
    return { images: out, model: request.model };
  };
}
