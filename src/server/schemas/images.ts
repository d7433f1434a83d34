import * as v from 'valibot';
import { apiKeyField, optionalString, providerField } from './common.js';

/**
 * The body of POST /v1/images/generations (and /generate): OpenAI's fields, gpt4free's `width`,
 * `height` and `aspect_ratio`, and `provider` / `api_key`. It validates requests
 * (`validateImagesBody`) and is converted into the OpenAPI document. Entries are checked in order.
 */

const sizeMessage = 'must be "WIDTHxHEIGHT" with each side from 64 to 4096, like "1024x1024" (or "auto")';
const sideMessage = 'must be an integer from 64 to 4096 (a number, or its digits as a string)';
const aspectMessage = 'must be "W:H" like "16:9", at most 8:1';
const seedMessage = 'must be an integer from 0 to 2147483647';
const nMessage = 'must be an integer from 1 to 10';

/** gpt4free's client sends `width` and `height` as strings ("512"); its server takes both. */
const side = v.nullish(
  v.union(
    [
      v.pipe(v.number(), v.integer(sideMessage), v.minValue(64, sideMessage), v.maxValue(4096, sideMessage)),
      v.pipe(v.string(), v.regex(/^\d{1,5}$/, sideMessage), v.description('Its digits, from 64 to 4096.')),
    ],
    sideMessage,
  ),
);

export const imagesBodySchema = v.pipe(
  v.object(
    {
      prompt: v.pipe(
        v.string('must be a non-empty string'),
        v.regex(/\S/, 'must be a non-empty string'),
        v.maxLength(32_000, 'must be at most 32000 characters'),
        v.description('What to draw.'),
      ),
      model: v.pipe(v.nullish(v.string('must be a string'), ''), v.description("An image model id or alias; empty means the provider's default.")),
      n: v.nullish(v.pipe(v.number(nMessage), v.integer(nMessage), v.minValue(1, nMessage), v.maxValue(10, nMessage)), 1),
      response_format: v.pipe(
        v.nullish(v.picklist(['url', 'b64_json'], 'must be "url" or "b64_json"'), 'url'),
        v.description('`url`: the gateway stores the image and links to it (links that do not expire); `b64_json`: the bytes inline.'),
      ),
      size: v.nullish(
        v.union(
          [v.literal('auto'), v.pipe(v.string(), v.regex(/^\d{2,5}x\d{2,5}$/, sizeMessage), v.description('WIDTHxHEIGHT, each side from 64 to 4096.'))],
          sizeMessage,
        ),
      ),
      width: v.pipe(side, v.description("gpt4free's width (with `height`; one alone makes a square).")),
      height: v.pipe(side, v.description("gpt4free's height.")),
      aspect_ratio: v.nullish(
        v.pipe(
          v.string(aspectMessage),
          v.regex(/^\d{1,2}:\d{1,2}$/, aspectMessage),
          v.description("gpt4free's aspect ratio (`16:9`): 1024 on the long side. Used when neither `size` nor `width`/`height` is given."),
        ),
      ),
      seed: v.nullish(v.pipe(v.number(seedMessage), v.integer(seedMessage), v.minValue(0, seedMessage), v.maxValue(2 ** 31 - 1, seedMessage))),
      negative_prompt: optionalString,
      quality: v.optional(v.pipe(v.unknown(), v.description('Passed to providers that honour it.'))),
      style: v.optional(v.pipe(v.unknown(), v.description('Passed to providers that honour it.'))),
      background: v.optional(v.pipe(v.unknown(), v.description('Passed to providers that honour it.'))),
      output_format: v.optional(v.pipe(v.unknown(), v.description('Passed to providers that honour it.'))),
      user: v.optional(v.pipe(v.unknown(), v.description('Passed to providers that honour it.'))),
      provider: providerField,
      api_key: apiKeyField,
    },
    'is required',
  ),
  v.description(
    "An image generation request: OpenAI's fields plus `provider`, `api_key`, `seed`, `negative_prompt` and gpt4free's `width`, `height`, `aspect_ratio`.",
  ),
  v.examples([{ prompt: 'a lighthouse at dusk', model: '', n: 1, size: '1024x1024', response_format: 'url' }]),
);

export type ImagesBody = v.InferOutput<typeof imagesBodySchema>;
