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

/** Checks an images body (OpenAI's fields plus `provider`, `api_key`, `seed`, `negative_prompt`). */
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
