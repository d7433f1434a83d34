import { defaultTimeouts, readBounded, send, type Timeouts } from '../../core/http.js';
import { withApiVersion } from '../../core/params.js';
import { declaredInfo, type ChatCall, type DeclaredProvider, type ChatResult, type Provider } from '../../core/provider.js';
import { anthropicErrorFromResponse } from './errors.js';
import { anthropicChatParams, anthropicVersion, toAnthropicRequest } from './request.js';
import { completionFromMessage } from './response.js';
import { readEventStream, sseDecoder } from '../../core/event-stream.js';
import { chunksFromAnthropicEvents } from './stream.js';

/** A provider that speaks Anthropic's Messages API (`POST <baseUrl>/messages`). */
/** `baseUrl` ends before `/messages` (`https://api.anthropic.com/v1`); one without a version segment gets `/v1` (`anthropicBaseUrl`). */
export type AnthropicDeclaration = DeclaredProvider;

export interface AnthropicSettings {
  timeouts?: Timeouts;
}

export interface AnthropicProvider extends Provider {
  readonly baseUrl: string;
  readonly declaration: AnthropicDeclaration;
}

/** Model ids of `@anthropic-ai/sdk` 1.14.0's `Model` type (upstream-protocols §2.1); every one takes images. */
const claudeModels = ['claude-sonnet-5', 'claude-opus-5', 'claude-haiku-4-5', 'claude-opus-4-8', 'claude-sonnet-4-6'] as const;

export const anthropicDeclaration: AnthropicDeclaration = {
  id: 'Anthropic',
  label: 'Anthropic (Claude)',
  url: 'https://docs.anthropic.com/en/api/messages',
  loginUrl: 'https://console.anthropic.com/settings/keys',
  baseUrl: 'https://api.anthropic.com/v1',
  needsAuth: true,
  apiKeyEnv: ['ANTHROPIC_API_KEY'],
  defaultModel: 'claude-sonnet-5',
  models: claudeModels,
  visionModels: claudeModels,
  aliases: {
    'claude-sonnet': 'claude-sonnet-5',
    'claude-opus': 'claude-opus-5',
    'claude-haiku': 'claude-haiku-4-5',
  },
};

/**
 * The base URL requests go under: trailing slashes dropped, and `/v1` appended when the path does
 * not end in a version segment (`v1`, `v2beta`…), as the Anthropic SDKs treat `ANTHROPIC_BASE_URL`
 * (`https://api.anthropic.com` → `https://api.anthropic.com/v1`).
 */
export function anthropicBaseUrl(url: string): string {
  return withApiVersion(url, 'v1');
}

export function createAnthropicProvider(declaration: AnthropicDeclaration, settings: AnthropicSettings = {}): AnthropicProvider {
  const baseUrl = anthropicBaseUrl(declaration.baseUrl);
  const endpoint = `${baseUrl}/messages`;
  const timeouts = settings.timeouts ?? defaultTimeouts;

  async function chat(call: ChatCall): Promise<ChatResult> {
    const translated = await toAnthropicRequest(call.request, { signal: call.signal, timeouts, limits: call.limits });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: call.request.stream === true ? 'text/event-stream' : 'application/json',
      'anthropic-version': anthropicVersion,
    };
    // The key goes in this one header, to this one origin, and nowhere else.
    if (call.apiKey !== undefined) headers['x-api-key'] = call.apiKey;
    const response = await send({ method: 'POST', url: endpoint, headers, body: JSON.stringify(translated.body), signal: call.signal, timeouts });
    if (response.statusCode < 200 || response.statusCode >= 300) throw await anthropicErrorFromResponse(response, call.signal);
    const options = { jsonTool: translated.jsonTool, fallbackModel: call.request.model };
    if (String(response.headers['content-type'] ?? '').includes('text/event-stream')) {
      // The protocol's last event is message_stop: after it the body is read out politely, not parsed.
      const events = readEventStream(
        response.body,
        call.signal,
        sseDecoder(call.limits.maxEventBytes, (event) => event.event === 'message_stop'),
      );
      return { type: 'stream', chunks: chunksFromAnthropicEvents(events, options), warnings: translated.warnings };
    }
    const text = (await readBounded(response.body, call.signal, call.limits.maxBodyBytes, 'fail')).toString('utf8');
    return { type: 'completion', completion: completionFromMessage(text, options.jsonTool, options.fallbackModel), warnings: translated.warnings };
  }

  return {
    ...declaredInfo(declaration),
    imageModels: [],
    imageParams: [],
    supportsStream: true,
    params: anthropicChatParams,
    baseUrl,
    declaration,
    chat,
  };
}
