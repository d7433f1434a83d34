/**
 * Fake image-generation upstreams for tests: Pollinations (image and text host in one server), OpenAI
 * Images, and the Hugging Face router's hf-inference text-to-image route. Listens on 127.0.0.1 only.
 * Wire shapes: /work/shared/notes/upstream-protocols.md §1.5, §1.7, §5, §6.1 (POL = pollinations
 * image.pollinations.ai/src/index.js @ 00b8ec0e). OpenAI bodies and headers reuse ./fixtures/openai.ts.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { countPromptWords, createWire, HF_ERROR_401_MESSAGE, HF_ERROR_402_MESSAGE, isRecord, rateLimitHeaders, splitReply } from './fixtures/openai.js';
import { readBody, serveOnLoopback } from '../support/loopback.js';

// ---- Image bytes ------------------------------------------------------------------------------

/** 1x1 grey baseline JPEG: SOI, JFIF APP0, DQT (all 1s), SOF0 1x1 grey, one-code DC and AC Huffman tables,
 *  SOS, scan `00` + 1-padding (DC diff 0, EOB), EOI. */
export const FAKE_JPEG: Buffer = Buffer.from([
  0xff,
  0xd8,
  0xff,
  0xe0,
  0x00,
  0x10,
  0x4a,
  0x46,
  0x49,
  0x46,
  0x00,
  0x01,
  0x01,
  0x00,
  0x00,
  0x01,
  0x00,
  0x01,
  0x00,
  0x00,
  0xff,
  0xdb,
  0x00,
  0x43,
  0x00,
  ...new Array<number>(64).fill(1),
  0xff,
  0xc0,
  0x00,
  0x0b,
  0x08,
  0x00,
  0x01,
  0x00,
  0x01,
  0x01,
  0x01,
  0x11,
  0x00,
  0xff,
  0xc4,
  0x00,
  0x14,
  0x00,
  0x01,
  ...new Array<number>(15).fill(0),
  0x00,
  0xff,
  0xc4,
  0x00,
  0x14,
  0x10,
  0x01,
  ...new Array<number>(15).fill(0),
  0x00,
  0xff,
  0xda,
  0x00,
  0x08,
  0x01,
  0x01,
  0x00,
  0x00,
  0x3f,
  0x00,
  0x3f,
  0xff,
  0xd9,
]);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, crc]);
}
/** 1x1 RGBA PNG, one opaque red pixel. */
export const FAKE_PNG: Buffer = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  pngChunk('IHDR', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0])),
  pngChunk('IDAT', zlib.deflateSync(Buffer.from([0, 0xff, 0, 0, 0xff]))),
  pngChunk('IEND', Buffer.alloc(0)),
]);

// ---- Shared server ----------------------------------------------------------------------------

export type ImageBehaviour =
  | { kind: 'ok' }
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> } // the fake's body for that status unless `body`
  | { kind: 'rate-limit'; retryAfterSeconds: number } // 429 with retry-after (OpenAI: plus x-ratelimit-*)
  | { kind: 'hang' } // never answer; held until the client leaves or close()
  | { kind: 'placeholder' } // Pollinations: 200 image with an `x-error-type` header; elsewhere same as ok
  | { kind: 'not-image' }; // 200 text/html (a Cloudflare-style challenge page)

export interface RecordedRequest {
  method: string;
  /** Decoded path, without the query. */
  path: string;
  /** Decoded query parameters (the last value wins when repeated). */
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined when the body was empty or not JSON. */
  body: unknown;
  raw: string;
}

interface BaseFake {
  /** http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  requests: RecordedRequest[];
  /** The function form gets the 0-based index of the request in `requests` (any route). */
  setBehaviour(b: ImageBehaviour | ((index: number) => ImageBehaviour)): void;
  close(): Promise<void>;
}
export interface PollinationsFake extends BaseFake {}
export interface OpenAIImagesFake extends BaseFake {}
export interface HuggingFaceImagesFake extends BaseFake {}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}
type Outcome = Reply | 'hang';
interface Incoming extends RecordedRequest {
  /** Path as received (still percent-encoded), without the query. */
  rawPath: string;
}
type Handler = (req: Incoming, behaviour: ImageBehaviour) => Outcome;

const JSON_TYPE = 'application/json';
const NOT_IMAGE_HTML =
  '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>';
const statusText = (status: number): string => http.STATUS_CODES[status] ?? `HTTP ${status}`;
const reply = (status: number, contentType: string, body: string | Buffer, extra?: Record<string, string>): Reply => ({
  status,
  headers: { 'content-type': contentType, ...extra },
  body,
});
const json = (status: number, value: unknown, extra?: Record<string, string>): Reply => reply(status, JSON_TYPE, JSON.stringify(value), extra);

interface ErrorStyle {
  error(status: number): Reply;
  rateLimited(seconds: number): Reply;
}
/** The behaviours every route shares; undefined for ok and placeholder (the route answers normally). */
function applyBehaviour(b: ImageBehaviour, style: ErrorStyle): Outcome | undefined {
  switch (b.kind) {
    case 'status': {
      const base = style.error(b.status);
      return { status: b.status, headers: { ...base.headers, ...b.headers }, body: b.body ?? base.body };
    }
    case 'rate-limit':
      return style.rateLimited(b.retryAfterSeconds);
    case 'hang':
      return 'hang';
    case 'not-image':
      return reply(200, 'text/html; charset=UTF-8', NOT_IMAGE_HTML);
    default:
      return undefined;
  }
}

function safeDecode(s: string, plusIsSpace = false): string {
  const t = plusIsSpace ? s.replace(/\+/g, ' ') : s;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

async function startServer(handler: Handler): Promise<BaseFake> {
  let behaviour: ImageBehaviour | ((index: number) => ImageBehaviour) = { kind: 'ok' };
  const requests: RecordedRequest[] = [];
  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string): void => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const rawPath = q === -1 ? target : target.slice(0, q);
    let body: unknown;
    try {
      body = raw.length > 0 ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      body = undefined;
    }
    const query = Object.fromEntries(new URLSearchParams(q === -1 ? '' : target.slice(q + 1)));
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: safeDecode(rawPath), query, headers: req.headers, body, raw };
    const index = requests.push(recorded) - 1;
    const b = typeof behaviour === 'function' ? behaviour(index) : behaviour;
    const out = handler({ ...recorded, rawPath }, b);
    if (out === 'hang') return;
    res.writeHead(out.status, { ...out.headers, 'content-length': String(Buffer.byteLength(out.body)) });
    res.end(out.body);
  };
  const server = http.createServer({ noDelay: true }, (req, res) => readBody(req, (raw) => handle(req, res, raw)));
  server.keepAliveTimeout = 30_000; // longer than client pools keep idle sockets
  const { origin, close } = await serveOnLoopback(server);
  return {
    url: origin,
    requests,
    setBehaviour(b) {
      behaviour = b;
    },
    close,
  };
}

// ---- Pollinations (§5) ------------------------------------------------------------------------

export const POLLINATIONS_IMAGE_MODELS = ['flux', 'kontext', 'turbo', 'gptimage'] as const;
/** §5.1 text model objects as the text host's /models serves them; `openai` is verbatim, `openai-audio` only its voices/modalities. */
export const POLLINATIONS_TEXT_MODELS = [
  {
    name: 'openai',
    description: 'OpenAI GPT-5 Mini',
    tier: 'anonymous',
    community: false,
    aliases: ['gpt-5-mini'],
    input_modalities: ['text', 'image'],
    output_modalities: ['text'],
    tools: true,
    maxInputChars: 7000,
    vision: true,
    audio: false,
  },
  {
    name: 'openai-audio',
    description: 'OpenAI GPT-4o Mini Audio Preview',
    tier: 'seed',
    community: false,
    aliases: ['gpt-4o-mini-audio-preview'],
    voices: ['alloy', 'echo', 'fable', 'onyx', 'nova', 'shimmer'],
    input_modalities: ['text', 'image', 'audio'],
    output_modalities: ['audio', 'text'],
    tools: true,
    vision: true,
    audio: true,
  },
] as const;
export const POLLINATIONS_REPLY = 'Hello from Pollinations.';
export const POLLINATIONS_IMAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'image/jpeg',
  'cache-control': 'public, max-age=31536000, immutable',
};
export const POLLINATIONS_ERROR_TYPE = 'Internal Server Error';
const CORS = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST, OPTIONS', 'access-control-allow-headers': 'Content-Type' };
const NO_STORE = { 'cache-control': 'no-store, no-cache, must-revalidate, proxy-revalidate', pragma: 'no-cache', expires: '0' };

export async function startPollinationsFake(): Promise<PollinationsFake> {
  const wire = createWire('openai', splitReply(POLLINATIONS_REPLY));
  const pieces = splitReply(POLLINATIONS_REPLY).length;
  return startServer((req, b) => {
    const requestId = randomBytes(4).toString('hex').slice(0, 7);
    /** The index.js catch-all shape (500 there; 400 here for bad numbers, the behaviours' other statuses too). */
    const failure = (status: number, message: string, parameters: Record<string, unknown> = { ...req.query }): Reply =>
      json(status, { error: statusText(status), message, details: {}, timingInfo: [], requestId, requestParameters: parameters }, CORS);
    const notFound = (): Reply => json(404, { error: 'Not Found', message: 'The requested endpoint was not found', path: req.rawPath }, CORS);
    const style = (parameters?: Record<string, unknown>): ErrorStyle => ({
      error: (status) =>
        status === 404 ? notFound() : failure(status, status >= 500 ? 'An error occurred while processing your request' : statusText(status), parameters),
      rateLimited: (seconds) => ({
        ...failure(429, `Rate limit exceeded. Please retry in ${seconds} seconds.`, parameters),
        headers: { ...CORS, 'content-type': JSON_TYPE, 'retry-after': String(seconds) },
      }),
    });
    const generic = (parameters?: Record<string, unknown>): Outcome | undefined => applyBehaviour(b, style(parameters));

    if (req.rawPath === '/models' && req.method === 'GET') return generic() ?? json(200, POLLINATIONS_IMAGE_MODELS, { ...CORS, ...NO_STORE });
    if (req.rawPath === '/text/models' && req.method === 'GET') return generic() ?? json(200, POLLINATIONS_TEXT_MODELS, CORS);
    if (req.rawPath === '/openai' && req.method === 'POST') {
      const chat = req.body;
      if (!isRecord(chat) || !Array.isArray(chat.messages) || chat.messages.length === 0) {
        return failure(400, 'Invalid request: "messages" must be a non-empty array', {});
      }
      const early = generic({});
      if (early !== undefined) return early;
      const model = typeof chat.model === 'string' ? chat.model : 'openai';
      const ctx = {
        id: wire.newId(),
        created: Math.floor(Date.now() / 1000),
        model,
        count: pieces,
        finishReason: 'stop' as const,
        promptTokens: countPromptWords(chat.messages),
      };
      if (chat.stream !== true) return reply(200, 'application/json; charset=utf-8', wire.chatJson(ctx), CORS);
      const includeUsage = isRecord(chat.stream_options) && chat.stream_options.include_usage === true;
      const s = wire.stream(ctx, includeUsage);
      const events = [...s.prelude, ...s.contents, s.finish, ...(s.usage === null ? [] : [s.usage]), s.done];
      return { status: 200, headers: { ...CORS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }, body: events.join('') };
    }
    if (!req.rawPath.startsWith('/prompt')) return generic() ?? notFound();

    // index.js: urldecode(pathname.split("/prompt/")[1] || "random_prompt"); requestParameters {prompt, ...safeParams, referrer}
    const prompt = safeDecode(req.rawPath.split('/prompt/')[1] || 'random_prompt', true);
    const parameters: Record<string, unknown> = { prompt, ...req.query, model: req.query.model ?? 'flux' };
    for (const key of ['width', 'height', 'seed'] as const) {
      const value = req.query[key];
      if (value === undefined) continue;
      if (!/^-?\d+$/.test(value)) return failure(400, `Invalid ${key}: "${value}" is not an integer`, parameters);
      parameters[key] = Number(value);
    }
    const model = String(parameters.model);
    if (!(POLLINATIONS_IMAGE_MODELS as readonly string[]).includes(model)) {
      return failure(500, `Model not found: ${model}. Available models: ${POLLINATIONS_IMAGE_MODELS.join(', ')}`, parameters);
    }
    const early = generic(parameters);
    if (early !== undefined) return early;
    const extra: Record<string, string> = b.kind === 'placeholder' ? { 'x-error-type': POLLINATIONS_ERROR_TYPE } : {};
    return { status: 200, headers: { ...CORS, ...POLLINATIONS_IMAGE_HEADERS, ...extra }, body: FAKE_JPEG };
  });
}

// ---- OpenAI Images (§1.7, errors §1.5) --------------------------------------------------------

const DALLE_SIZES: Readonly<Record<string, readonly string[]>> = {
  'dall-e-2': ['256x256', '512x512', '1024x1024'],
  'dall-e-3': ['1024x1024', '1792x1024', '1024x1792'],
};
const GPT_IMAGE_SIZES = ['auto', '1024x1024', '1536x1024', '1024x1536'] as const;
export const OPENAI_IMAGE_MODELS = ['dall-e-2', 'dall-e-3', 'gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2'] as const;
export const OPENAI_CONTENT_POLICY_MESSAGE =
  'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.';
const BLOB_NOT_FOUND = '<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>';

type OpenAIErrorBody = { message: string; type: string; param: string | null; code: string | null };
const supported = (values: readonly string[]): string => {
  const quoted = values.map((v) => `'${v}'`);
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted[quoted.length - 1] ?? ''}`;
};

export async function startOpenAIImagesFake(options: { apiKey?: string } = {}): Promise<OpenAIImagesFake> {
  const wire = createWire('openai', []);
  const expectedAuth = options.apiKey === undefined ? undefined : `Bearer ${options.apiKey}`;
  const issued = new Set<string>();
  let origin = '';
  const withHeaders = (r: { status: number; contentType: string; body: string }, extra?: Record<string, string>): Reply => ({
    status: r.status,
    headers: { ...wire.headers(r.contentType), ...extra },
    body: r.body,
  });
  const invalid = (e: OpenAIErrorBody): Reply => withHeaders({ status: 400, contentType: JSON_TYPE, body: JSON.stringify({ error: e }) });
  const bad = (message: string, param: string, code: string | null): Reply => invalid({ message, type: 'invalid_request_error', param, code });

  const fake = await startServer((req, b) => {
    let model = '';
    const style: ErrorStyle = {
      error: (status) =>
        status === 400
          ? invalid({ message: OPENAI_CONTENT_POLICY_MESSAGE, type: 'invalid_request_error', param: null, code: 'content_policy_violation' })
          : withHeaders(wire.error(status, model || 'dall-e-2')),
      rateLimited: (seconds) => withHeaders(wire.rateLimited(model || 'dall-e-2', seconds), rateLimitHeaders(seconds)),
    };
    const fileId = req.method === 'GET' ? /^\/files\/([A-Za-z0-9_-]+)\.png$/.exec(req.path)?.[1] : undefined;
    if (fileId !== undefined) {
      return applyBehaviour(b, style) ?? (issued.has(fileId) ? reply(200, 'image/png', FAKE_PNG) : reply(404, 'application/xml', BLOB_NOT_FOUND));
    }
    if (req.path !== '/v1/images/generations' || req.method !== 'POST') return withHeaders(wire.routeNotFound(req.method, req.rawPath));
    const auth = req.headers.authorization;
    if (expectedAuth !== undefined && auth !== expectedAuth) return withHeaders(wire.unauthorized(typeof auth === 'string' ? auth : undefined));

    const body = req.body;
    if (!isRecord(body)) return withHeaders(wire.invalidRequest('json'));
    if (typeof body.prompt !== 'string' || body.prompt.length === 0) return bad("Missing required parameter: 'prompt'.", 'prompt', null);
    const requested = body.model ?? 'dall-e-2';
    if (typeof requested !== 'string' || !(OPENAI_IMAGE_MODELS as readonly string[]).includes(requested)) {
      return withHeaders(wire.modelNotFound(String(requested)));
    }
    model = requested;
    const gptImage = model.startsWith('gpt-image');
    const n = body.n ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      return bad(`Invalid type for 'n': expected an integer, but got ${typeof n === 'number' ? 'a decimal number' : 'a string'} instead.`, 'n', 'invalid_type');
    }
    if (n < 1) return bad(`Invalid 'n': integer below minimum value. Expected a value >= 1, but got ${n} instead.`, 'n', 'integer_below_min_value');
    if (n > 10) return bad(`Invalid 'n': integer above maximum value. Expected a value <= 10, but got ${n} instead.`, 'n', 'integer_above_max_value');
    // Recorded real bodies carry param null here; param 'n' as the brief asked.
    if (model === 'dall-e-3' && n !== 1) return bad('You must provide n=1 for this model.', 'n', null);
    const sizes = gptImage ? GPT_IMAGE_SIZES : (DALLE_SIZES[model] ?? []);
    const size = body.size ?? (gptImage ? 'auto' : '1024x1024');
    if (typeof size !== 'string' || !sizes.includes(size)) {
      return bad(`Invalid value: '${String(size)}'. Supported values are: ${supported(sizes)}.`, 'size', 'invalid_value');
    }
    const format = body.response_format;
    if (gptImage && format !== undefined) return bad("Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter');
    if (format !== undefined && format !== 'url' && format !== 'b64_json') {
      return bad(`Invalid value: '${String(format)}'. Supported values are: 'url' and 'b64_json'.`, 'response_format', 'invalid_value');
    }

    const early = applyBehaviour(b, style);
    if (early !== undefined) return early;
    const data = Array.from({ length: n }, () => {
      const item: Record<string, string> = {};
      if (gptImage || format === 'b64_json') item.b64_json = FAKE_PNG.toString('base64');
      else {
        const id = `img-${randomBytes(12).toString('base64url')}`;
        issued.add(id);
        item.url = `${origin}/files/${id}.png`;
      }
      if (model === 'dall-e-3') item.revised_prompt = `A detailed illustration of ${body.prompt as string}`;
      return item;
    });
    const created = Math.floor(Date.now() / 1000);
    const extra = gptImage
      ? {
          // §1.7 OAS example fields
          background: 'opaque',
          output_format: typeof body.output_format === 'string' ? body.output_format : 'png',
          size: size === 'auto' ? '1024x1024' : size,
          quality: typeof body.quality === 'string' && body.quality !== 'auto' ? body.quality : 'high',
          usage: { total_tokens: 100, input_tokens: 50, output_tokens: 50, input_tokens_details: { text_tokens: 10, image_tokens: 40 } },
        }
      : {};
    return withHeaders({ status: 200, contentType: JSON_TYPE, body: `${JSON.stringify({ created, data, ...extra }, null, 2)}\n` });
  });
  origin = fake.url;
  return fake;
}

// ---- Hugging Face router, hf-inference text-to-image (§6.1) -----------------------------------

export const HF_DEFAULT_IMAGE_MODELS = ['black-forest-labs/FLUX.1-schnell', 'stabilityai/stable-diffusion-3.5-large'] as const;
const HF_PREFIX = '/hf-inference/models/';
const HF_NUMERIC_PARAMETERS = ['height', 'width', 'num_inference_steps', 'guidance_scale', 'seed'] as const;

export async function startHuggingFaceImagesFake(options: { apiKey?: string; models?: string[] } = {}): Promise<HuggingFaceImagesFake> {
  const models = new Set<string>(options.models ?? HF_DEFAULT_IMAGE_MODELS);
  const expectedAuth = options.apiKey === undefined ? undefined : `Bearer ${options.apiKey}`;
  const hfError = (status: number, message: string, extra?: Record<string, string>): Reply => json(status, { error: message }, extra);
  return startServer((req, b) => {
    const modelId = req.path.startsWith(HF_PREFIX) ? req.path.slice(HF_PREFIX.length).replace(/\/+$/, '') : '';
    const style: ErrorStyle = {
      error: (status) => {
        if (status === 401) return hfError(401, HF_ERROR_401_MESSAGE);
        if (status === 402) return hfError(402, HF_ERROR_402_MESSAGE);
        if (status === 404) return hfError(404, `Model ${modelId} does not exist`);
        // Legacy loading body, written by hand to keep `20.0` (JSON.stringify would print 20).
        if (status === 503) return reply(503, JSON_TYPE, `{"error":"Model ${modelId} is currently loading","estimated_time":20.0}`);
        return hfError(status, statusText(status));
      },
      rateLimited: (seconds) => hfError(429, 'Too Many Requests: you have reached your rate limit. Please retry later.', { 'retry-after': String(seconds) }),
    };
    if (req.method !== 'POST' || modelId === '') return applyBehaviour(b, style) ?? hfError(404, 'Not Found');
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) return hfError(401, HF_ERROR_401_MESSAGE);
    if (!models.has(modelId)) return hfError(404, `Model ${modelId} does not exist`);
    const body = req.body;
    if (!isRecord(body)) return hfError(400, 'Invalid JSON body');
    if (typeof body.inputs !== 'string' || body.inputs.length === 0) return hfError(400, '`inputs` must be a non-empty string');
    const parameters = body.parameters;
    if (parameters !== undefined && !isRecord(parameters)) return hfError(400, '`parameters` must be an object');
    for (const key of HF_NUMERIC_PARAMETERS) {
      const value = parameters?.[key];
      if (value !== undefined && typeof value !== 'number') return hfError(400, `\`parameters.${key}\` must be a number`);
    }
    return applyBehaviour(b, style) ?? reply(200, 'image/png', FAKE_PNG);
  });
}
