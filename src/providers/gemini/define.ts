import { UpstreamError } from '../../core/errors.js';
import { chatParamsWithout, withApiVersion } from '../../core/params.js';
import { defaultTimeouts, readBounded, send, type Timeouts } from '../../core/http.js';
import { declaredInfo, type ChatCall, type DeclaredProvider, type ChatResult, type Provider } from '../../core/provider.js';
import type { ChatChunk } from '../../core/types.js';
import { errorFromGeminiResponse } from './errors.js';
import { toGeminiRequest } from './request.js';
import { completionFromResponse, StreamTranslator } from './response.js';
import { chunksFromGeminiSse } from './stream.js';

/**
 * Google's Gemini API (generativelanguage.googleapis.com) spoken natively:
 * `POST <baseUrl>/models/<model>:generateContent` and `…:streamGenerateContent?alt=sse`, the key in
 * the `x-goog-api-key` header only (never in the URL, where it would end up in logs), requests and
 * answers translated from and to OpenAI's chat shapes (./request.ts, ./response.ts).
 */
export type GeminiDeclaration = DeclaredProvider;

export interface GeminiSettings {
  timeouts?: Timeouts;
}

export interface GeminiProvider extends Provider {
  readonly baseUrl: string;
  readonly declaration: GeminiDeclaration;
}

/** OpenAI request fields this adapter translates (the others are not sent, and named in warnings). */
export const geminiChatParams = chatParamsWithout(['logit_bias', 'logprobs', 'top_logprobs', 'parallel_tool_calls', 'user', 'reasoning_effort']);

const geminiModels = [
  'gemini-2.5-flash',
  'gemini-2.5-pro',
  'gemini-2.5-flash-lite',
  'gemini-2.0-flash',
  'gemini-3-flash-preview',
  'gemini-3.1-pro-preview',
] as const;

/** The built-in Gemini provider (ids as the API names them; `models/<id>` is accepted too). */
export const geminiDeclaration: GeminiDeclaration = {
  id: 'GeminiPro',
  label: 'Google Gemini API',
  url: 'https://ai.google.dev/gemini-api/docs',
  loginUrl: 'https://aistudio.google.com/apikey',
  parent: null,
  baseUrl: 'https://generativelanguage.googleapis.com/v1beta',
  needsAuth: true,
  apiKeyEnv: ['GEMINI_API_KEY', 'GOOGLE_API_KEY'],
  defaultModel: 'gemini-2.5-flash',
  models: geminiModels,
  visionModels: geminiModels,
  aliases: {
    'gemini-flash': 'gemini-2.5-flash',
    'gemini-pro': 'gemini-2.5-pro',
    'gemini-flash-lite': 'gemini-2.5-flash-lite',
    'gemini-3-flash': 'gemini-3-flash-preview',
    'gemini-3.1-pro': 'gemini-3.1-pro-preview',
  },
};

/**
 * The base URL requests go under: trailing slashes dropped, and `/v1beta` appended when the path
 * does not end in a version segment (`v1`, `v1beta`, `v1alpha`…), so that
 * `https://generativelanguage.googleapis.com` works as well as the full base.
 */
export function geminiBaseUrl(url: string): string {
  return withApiVersion(url, 'v1beta');
}

export function createGeminiProvider(declaration: GeminiDeclaration, settings: GeminiSettings = {}): GeminiProvider {
  const base = geminiBaseUrl(declaration.baseUrl);
  const timeouts = settings.timeouts ?? defaultTimeouts;

  async function chat(call: ChatCall): Promise<ChatResult> {
    const model = modelPath(call.request.model || declaration.defaultModel);
    const stream = call.request.stream === true;
    const body = await toGeminiRequest(call.request, { model: model.id, signal: call.signal, limits: call.limits, timeouts });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
    };
    // The header, never `?key=`: URLs end up in logs and error messages.
    if (call.apiKey !== undefined) headers['x-goog-api-key'] = call.apiKey;
    const response = await send({
      method: 'POST',
      url: `${base}/${model.path}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
      headers,
      body: JSON.stringify(body),
      signal: call.signal,
      timeouts,
    });
    if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromGeminiResponse(response, call.signal);
    const context = { model: model.id };
    const contentType = String(response.headers['content-type'] ?? '').toLowerCase();
    if (stream && contentType.includes('text/event-stream')) {
      return { type: 'stream', chunks: chunksFromGeminiSse(response.body, call.signal, call.limits.maxEventBytes, new StreamTranslator(context)) };
    }
    const text = (await readBounded(response.body, call.signal, call.limits.maxBodyBytes, 'fail')).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new UpstreamError('bad_response', `the upstream answered 2xx with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    if (!stream) return { type: 'completion', completion: completionFromResponse(value, context) };
    // Asked for SSE, got JSON: the array form of streamGenerateContent (or one response).
    return { type: 'stream', chunks: chunksFromJson(value, new StreamTranslator(context)) };
  }

  return {
    ...declaredInfo(declaration),
    imageModels: [],
    imageParams: [],
    // Every Gemini model takes images: a custom entry without a vision list lists its models.
    visionModels: declaration.visionModels ?? declaration.models,
    aliases: declaration.aliases ?? {},
    supportsStream: true,
    params: geminiChatParams,
    baseUrl: base,
    declaration,
    chat,
  };
}

/**
 * `gemini-2.5-flash` and `models/gemini-2.5-flash` → `models/gemini-2.5-flash`; `tunedModels/x`
 * stays. Each segment must be a plain model id: nothing else can reach the URL path.
 */
export function modelPath(requested: string): { id: string; path: string } {
  const trimmed = requested.trim();
  const slash = trimmed.indexOf('/');
  const collection = slash === -1 ? 'models' : trimmed.slice(0, slash);
  const id = slash === -1 ? trimmed : trimmed.slice(slash + 1);
  if ((collection !== 'models' && collection !== 'tunedModels') || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) {
    throw new UpstreamError(
      'model_not_found',
      `${JSON.stringify(requested.slice(0, 100))} is not a Gemini model id (like gemini-2.5-flash or models/gemini-2.5-flash)`,
    );
  }
  return { id, path: `${collection}/${id}` };
}

/** Chunks from already-parsed responses (a JSON answer to a streaming call). */
async function* chunksFromJson(value: unknown, translator: StreamTranslator): AsyncGenerator<ChatChunk> {
  const items = Array.isArray(value) && !(value.length === 1 && typeof value[0] === 'object' && value[0] !== null && 'error' in value[0]) ? value : [value];
  const chunks: ChatChunk[] = [];
  for (const item of items) chunks.push(...translator.event(item));
  if (!translator.finished) throw new UpstreamError('connection', 'the upstream answer ended before any finishReason');
  chunks.push(...translator.end());
  yield* chunks;
}
