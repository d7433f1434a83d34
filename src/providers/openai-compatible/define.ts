import { UpstreamError } from '../../core/errors.js';
import { defaultTimeouts, errorFromResponse, errorFromStatus, exchange, readBounded, type Timeouts } from '../../core/http.js';
import { declaredInfo, type ChatCall, type DeclaredProvider, type ChatResult, type ImageCall, type Provider } from '../../core/provider.js';
import type { ChatChunk, ChatCompletion, ChatRequest } from '../../core/types.js';
import { rawJson } from '../../core/normalize.js';
import { copyFields } from '../../core/copy.js';
import { chatParamsWithout } from '../../core/params.js';
import { chunksFromSse } from './sse-chunks.js';
import type { ImageResult } from '../../core/types.js';

/** How a provider declared over this family makes images. */
export interface ImageDeclaration {
  /** `openai`: `POST <baseUrl>/images/generations`; `hf-inference`: HF router text-to-image; `pollinations`: its image endpoint. */
  api: 'openai' | 'hf-inference' | 'pollinations';
  models: readonly string[];
  /** Where images are made when it is not derived from `baseUrl` (dropped when the base URL is overridden). */
  baseUrl?: string;
}

/** A provider that speaks OpenAI's chat completions API: mostly data. */
export interface OpenAICompatibleDeclaration extends DeclaredProvider {
  /** Path after `baseUrl` (which ends before `/chat/completions`, as in OpenAI's SDK) for chat; default `/chat/completions` (Pollinations: `/openai`). */
  chatPath?: string;
  images?: ImageDeclaration;
  /** Fields of OpenAI's chat request (core/params.ts) this upstream rejects; dropped before sending. */
  unsupported?: readonly string[];
  /** Whether it accepts `stream_options.include_usage` (most do). */
  streamUsage?: boolean;
  /** Small functions for a vendor's quirks, kept with its declaration. */
  hooks?: OpenAICompatibleHooks;
}

export interface OpenAICompatibleHooks {
  /** Renames or adds fields of the body about to be sent (Mistral's `random_seed`). */
  mapRequest?(body: Record<string, unknown>): void;
  /** Fixes a parsed chunk in place before the core sees it (Groq's `x_groq.usage`); true when it changed it. */
  mapChunk?(chunk: ChatChunk): boolean;
}

export interface OpenAICompatibleSettings {
  timeouts?: Timeouts;
  /** The image API of `declaration.images` (chosen by the caller: this family imports no other). */
  imageBackend?: {
    readonly params: readonly string[];
    create(baseUrl: string, timeouts: Timeouts): (call: ImageCall) => Promise<ImageResult>;
  };
}

export interface OpenAICompatibleProvider extends Provider {
  readonly baseUrl: string;
  readonly declaration: OpenAICompatibleDeclaration;
}

export function createOpenAICompatible(declaration: OpenAICompatibleDeclaration, settings: OpenAICompatibleSettings = {}): OpenAICompatibleProvider {
  const params = chatParamsWithout(declaration.unsupported ?? []);
  const endpoint = `${declaration.baseUrl.replace(/\/+$/, '')}${declaration.chatPath ?? '/chat/completions'}`;
  const timeouts = settings.timeouts ?? defaultTimeouts;
  const streamUsage = declaration.streamUsage !== false;
  const images =
    declaration.images === undefined || settings.imageBackend === undefined
      ? undefined
      : settings.imageBackend.create(declaration.images.baseUrl ?? declaration.baseUrl, timeouts);

  const honoured = new Set(params);
  function body(request: ChatRequest): string {
    // The request's own few fields, each checked against the params (not every param looked up).
    const out: Record<string, unknown> = {};
    for (const field in request) {
      if (!honoured.has(field)) continue;
      const value = request[field];
      if (value !== undefined) out[field] = value;
    }
    if (request.stream === true && streamUsage) {
      const options = copyFields(request.stream_options);
      options.include_usage = true;
      out.stream_options = options;
    }
    declaration.hooks?.mapRequest?.(out);
    return JSON.stringify(out);
  }

  async function chat(call: ChatCall): Promise<ChatResult> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: call.request.stream === true ? 'text/event-stream' : 'application/json',
    };
    if (call.apiKey !== undefined) headers.authorization = `Bearer ${call.apiKey}`;
    const cancellation = call.cancellation ?? call.signal;
    const reply = await exchange({
      method: 'POST',
      url: endpoint,
      headers,
      body: body(call.request),
      signal: cancellation,
      timeouts,
      maxBodyBytes: call.limits.maxBodyBytes,
    });
    if (reply.kind === 'whole') {
      const text = reply.bytes.toString('utf8');
      if (reply.statusCode < 200 || reply.statusCode >= 300) throw errorFromStatus(reply.statusCode, reply.headers, text);
      return { type: 'completion', completion: parseCompletion(text) };
    }
    const response = reply.response;
    if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, cancellation);
    const contentType = String(response.headers['content-type'] ?? '');
    if (contentType.includes('text/event-stream')) {
      return { type: 'stream', chunks: chunksFromSse(response.body, cancellation, call.limits.maxEventBytes, declaration.hooks?.mapChunk) };
    }
    const text = (await readBounded(response.body, cancellation, call.limits.maxBodyBytes, 'fail')).toString('utf8');
    return { type: 'completion', completion: parseCompletion(text) };
  }

  return {
    ...declaredInfo(declaration),
    imageModels: declaration.images?.models ?? [],
    imageParams: images === undefined ? [] : (settings.imageBackend?.params ?? []),
    supportsStream: true,
    params,
    baseUrl: declaration.baseUrl,
    declaration,
    chat,
    ...(images === undefined ? {} : { images }),
  };
}

function parseCompletion(text: string): ChatCompletion {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UpstreamError('bad_response', `the upstream answered 2xx with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || !Array.isArray((value as Record<string, unknown>).choices)) {
    const error = (value as Record<string, unknown> | null)?.error;
    if (error !== undefined) throw new UpstreamError('server', `the upstream answered 2xx with an error: ${JSON.stringify(error).slice(0, 300)}`);
    throw new UpstreamError('bad_response', 'the upstream answered 2xx without `choices`');
  }
  (value as { [rawJson]?: string })[rawJson] = text;
  return value as ChatCompletion;
}
