import { invalidRequest } from '../core/errors.js';
import type { ImageRequest } from '../core/types.js';

export interface ImagesInput {
  /** `model` still as the client wrote it (resolved per provider later). */
  request: ImageRequest;
  responseFormat: 'url' | 'b64_json';
  provider: unknown;
  apiKey: unknown;
}

const passThrough = ['quality', 'style', 'background', 'output_format', 'user'] as const;

/** Checks an images body (OpenAI's fields plus `provider`, `api_key`, `seed`, `negative_prompt`, and gpt4free's `width`, `height`, `aspect_ratio`). */
export function validateImagesBody(body: Record<string, unknown>): ImagesInput {
  const prompt = body.prompt;
  if (prompt === undefined) throw invalidRequest('prompt is required', 'prompt');
  if (typeof prompt !== 'string' || prompt.trim() === '') throw invalidRequest('prompt must be a non-empty string', 'prompt');
  if (prompt.length > 32_000) throw invalidRequest('prompt must be at most 32000 characters', 'prompt');
  const model = body.model ?? '';
  if (typeof model !== 'string') throw invalidRequest('model must be a string', 'model');
  const n = body.n ?? 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10) throw invalidRequest('n must be an integer from 1 to 10', 'n');
  const format = body.response_format ?? 'url';
  if (format !== 'url' && format !== 'b64_json') throw invalidRequest('response_format must be "url" or "b64_json"', 'response_format');
  const request: ImageRequest = { prompt: prompt.toWellFormed(), model: model.trim(), n, extra: {} };
  const size = body.size;
  if (size !== undefined && size !== null && size !== 'auto') {
    const match = typeof size === 'string' ? /^(\d{2,5})x(\d{2,5})$/.exec(size) : null;
    const width = Number(match?.[1]);
    const height = Number(match?.[2]);
    if (match === null || width < 64 || height < 64 || width > 4096 || height > 4096) {
      throw invalidRequest('size must be "WIDTHxHEIGHT" with each side from 64 to 4096, like "1024x1024" (or "auto")', 'size');
    }
    request.width = width;
    request.height = height;
  }
  // gpt4free's own image client sends `width` and `height`; `aspect_ratio` ("16:9") sizes the long side at 1024.
  const side = (field: 'width' | 'height'): number | undefined => {
    const raw = body[field];
    if (raw === undefined || raw === null) return undefined;
    // Its client's types say string ("512"), and gpt4free's server takes both.
    const value = typeof raw === 'string' && /^\d{1,5}$/.test(raw) ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 64 || value > 4096)
      throw invalidRequest(`${field} must be an integer from 64 to 4096 (a number, or its digits as a string)`, field);
    return value;
  };
  const width = side('width');
  const height = side('height');
  if (width !== undefined || height !== undefined) {
    request.width = width ?? height;
    request.height = height ?? width;
  } else if (request.width === undefined && body.aspect_ratio !== undefined && body.aspect_ratio !== null) {
    const ratio = typeof body.aspect_ratio === 'string' ? /^(\d{1,2}):(\d{1,2})$/.exec(body.aspect_ratio) : null;
    const w = Number(ratio?.[1]);
    const h = Number(ratio?.[2]);
    if (ratio === null || w < 1 || h < 1 || Math.max(w, h) / Math.min(w, h) > 8) {
      throw invalidRequest('aspect_ratio must be "W:H" like "16:9", at most 8:1', 'aspect_ratio');
    }
    const short = (long: number, a: number, b: number): number => Math.max(64, Math.round((long * Math.min(a, b)) / Math.max(a, b) / 8) * 8);
    request.width = w >= h ? 1024 : short(1024, w, h);
    request.height = h >= w ? 1024 : short(1024, w, h);
  }
  const seed = body.seed;
  if (seed !== undefined && seed !== null) {
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 2 ** 31 - 1)
      throw invalidRequest('seed must be an integer from 0 to 2147483647', 'seed');
    request.seed = seed;
  }
  const negative = body.negative_prompt;
  if (negative !== undefined && negative !== null) {
    if (typeof negative !== 'string') throw invalidRequest('negative_prompt must be a string', 'negative_prompt');
    request.negativePrompt = negative.toWellFormed();
  }
  for (const field of passThrough) if (body[field] !== undefined && body[field] !== null) request.extra[field] = body[field];
  return { request, responseFormat: format, provider: body.provider, apiKey: body.api_key };
}
