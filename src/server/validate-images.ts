import * as v from 'valibot';
import { invalidRequest } from '../core/errors.js';
import { parseProviderField } from '../core/selection.js';
import type { ImageRequest } from '../core/types.js';
import { imagesBodySchema, type ImagesBody } from './schemas/images.js';
import { firstIssueOnly, issueError } from './schemas/issues.js';

export interface ImagesInput {
  /** `model` still as the client wrote it (resolved per provider later). */
  request: ImageRequest;
  responseFormat: 'url' | 'b64_json';
  provider: unknown;
  apiKey: unknown;
}

const passThrough = ['quality', 'style', 'background', 'output_format', 'user'] as const;

/**
 * Checks an images body (OpenAI's fields plus `provider`, `api_key`, `seed`, `negative_prompt`, and
 * gpt4free's `width`, `height`, `aspect_ratio`). The structure is `imagesBodySchema`'s (the schema
 * the OpenAPI document shows); the sizes' numeric bounds inside strings and the aspect ratio's
 * limit are checked here, then the request is built.
 */
export function validateImagesBody(body: Record<string, unknown>): ImagesInput {
  const result = v.safeParse(imagesBodySchema, body, firstIssueOnly);
  if (!result.success) {
    const issue = result.issues[0];
    // As for chat: core's parser owns `provider` (and planning `api_key`), with its exact reasons.
    const field = issue.path?.[0]?.key;
    if (field === 'provider') parseProviderField(body.provider);
    if (field !== 'api_key' && field !== 'provider') throw issueError(issue);
  }
  const input = body as ImagesBody;
  const request: ImageRequest = { prompt: input.prompt.toWellFormed(), model: (input.model ?? '').trim(), n: input.n ?? 1, extra: {} };
  const size = input.size;
  if (size !== undefined && size !== null && size !== 'auto') {
    const [width, height] = size.split('x').map(Number) as [number, number];
    if (width < 64 || height < 64 || width > 4096 || height > 4096) {
      throw invalidRequest('size must be "WIDTHxHEIGHT" with each side from 64 to 4096, like "1024x1024" (or "auto")', 'size');
    }
    request.width = width;
    request.height = height;
  }
  const side = (field: 'width' | 'height'): number | undefined => {
    const raw = input[field];
    if (raw === undefined || raw === null) return undefined;
    const value = Number(raw); // a number, or its digits (the schema)
    if (value < 64 || value > 4096) throw invalidRequest(`${field} must be an integer from 64 to 4096 (a number, or its digits as a string)`, field);
    return value;
  };
  const width = side('width');
  const height = side('height');
  if (width !== undefined || height !== undefined) {
    request.width = width ?? height;
    request.height = height ?? width;
  } else if (request.width === undefined && input.aspect_ratio !== undefined && input.aspect_ratio !== null) {
    // "16:9" sizes the long side at 1024; the schema checked the form, the ratio's limit is here.
    const [w, h] = input.aspect_ratio.split(':').map(Number) as [number, number];
    if (w < 1 || h < 1 || Math.max(w, h) / Math.min(w, h) > 8) throw invalidRequest('aspect_ratio must be "W:H" like "16:9", at most 8:1', 'aspect_ratio');
    const short = (long: number, a: number, b: number): number => Math.max(64, Math.round((long * Math.min(a, b)) / Math.max(a, b) / 8) * 8);
    request.width = w >= h ? 1024 : short(1024, w, h);
    request.height = h >= w ? 1024 : short(1024, w, h);
  }
  if (input.seed !== undefined && input.seed !== null) request.seed = input.seed;
  if (input.negative_prompt !== undefined && input.negative_prompt !== null) request.negativePrompt = input.negative_prompt.toWellFormed();
  for (const field of passThrough) if (body[field] !== undefined && body[field] !== null) request.extra[field] = body[field];
  return { request, responseFormat: input.response_format ?? 'url', provider: body.provider, apiKey: body.api_key };
}
