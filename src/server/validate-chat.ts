import { invalidRequest } from '../core/errors.js';
import type { ChatMessage, ChatRequest } from '../core/types.js';

export interface ChatInput {
  request: ChatRequest;
  provider: unknown;
  apiKey: unknown;
}

const roles = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/** Checks an OpenAI chat body (plus `provider`, `api_key`); a bad field is a 400 naming it in `param`. */
export function validateChatBody(body: Record<string, unknown>, maxMessages = Number.MAX_SAFE_INTEGER): ChatInput {
  const { provider, api_key: apiKey, ...rest } = body;
  const model = rest.model ?? '';
  if (typeof model !== 'string') throw invalidRequest('model must be a string', 'model');
  rest.model = model.trim();
  validateMessages(rest.messages);
  if (rest.messages.length > maxMessages) throw invalidRequest(`messages has ${rest.messages.length} entries; the limit is ${maxMessages}`, 'messages');
  optionalType(rest, 'stream', 'boolean');
  if (rest.stream_options !== undefined && rest.stream_options !== null) {
    if (!isObject(rest.stream_options)) throw invalidRequest('stream_options must be an object', 'stream_options');
    optionalType(rest.stream_options, 'include_usage', 'boolean', 'stream_options.');
  }
  numberIn(rest, 'temperature', 0, 2);
  numberIn(rest, 'top_p', 0, 1);
  numberIn(rest, 'presence_penalty', -2, 2);
  numberIn(rest, 'frequency_penalty', -2, 2);
  integerIn(rest, 'max_tokens', 1, Number.MAX_SAFE_INTEGER);
  integerIn(rest, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER);
  integerIn(rest, 'n', 1, 128);
  integerIn(rest, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  integerIn(rest, 'top_logprobs', 0, 20);
  optionalType(rest, 'logprobs', 'boolean');
  optionalType(rest, 'parallel_tool_calls', 'boolean');
  optionalType(rest, 'user', 'string');
  const stop = rest.stop;
  if (stop !== undefined && stop !== null && typeof stop !== 'string') {
    if (!Array.isArray(stop) || !stop.every((item) => typeof item === 'string') || stop.length > 16) {
      throw invalidRequest('stop must be a string or an array of up to 16 strings', 'stop');
    }
  }
  if (rest.tools !== undefined && rest.tools !== null) {
    if (!Array.isArray(rest.tools) || !rest.tools.every(isObject)) throw invalidRequest('tools must be an array of objects', 'tools');
  }
  if (rest.response_format !== undefined && rest.response_format !== null && !isObject(rest.response_format)) {
    throw invalidRequest('response_format must be an object like {"type": "json_object"}', 'response_format');
  }
  attachGpt4freeImages(rest as ChatRequest & Record<string, unknown>);
  return { request: rest as ChatRequest, provider, apiKey };
}

function validateMessages(value: unknown): asserts value is ChatMessage[] {
  if (value === undefined) throw invalidRequest('messages is required: an array of {role, content}', 'messages');
  if (!Array.isArray(value)) throw invalidRequest('messages must be an array of {role, content}', 'messages');
  if (value.length === 0) throw invalidRequest('messages must contain at least one message', 'messages');
  value.forEach((message, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) throw invalidRequest(`${param} must be an object with role and content`, param);
    if (typeof message.role !== 'string' || !roles.has(message.role)) {
      throw invalidRequest(`${param}.role must be one of ${[...roles].join(', ')}`, `${param}.role`);
    }
    const content = message.content;
    const mayBeEmpty = message.role === 'assistant';
    if (content === undefined || content === null) {
      if (!mayBeEmpty) throw invalidRequest(`${param}.content is required`, `${param}.content`);
    } else if (Array.isArray(content)) {
      content.forEach((part, partIndex) => {
        if (!isObject(part) || typeof part.type !== 'string') {
          throw invalidRequest(`${param}.content[${partIndex}] must be an object with a type`, `${param}.content[${partIndex}]`);
        }
      });
    } else if (typeof content !== 'string') {
      throw invalidRequest(`${param}.content must be a string or an array of content parts`, `${param}.content`);
    }
    if (message.tool_calls !== undefined && !Array.isArray(message.tool_calls)) {
      throw invalidRequest(`${param}.tool_calls must be an array`, `${param}.tool_calls`);
    }
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalType(record: Record<string, unknown>, key: string, type: 'boolean' | 'string', prefix = ''): void {
  const value = record[key];
  if (value !== undefined && value !== null && typeof value !== type) throw invalidRequest(`${prefix}${key} must be a ${type}`, `${prefix}${key}`);
}

function numberIn(record: Record<string, unknown>, key: string, min: number, max: number): void {
  const value = record[key];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidRequest(`${key} must be a number from ${min} to ${max}`, key);
  }
}

function integerIn(record: Record<string, unknown>, key: string, min: number, max: number): void {
  const value = record[key];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidRequest(`${key} must be an integer from ${min} to ${max}`, key);
  }
}

/** Most images one request may attach through gpt4free's fields. */
const maxGpt4freeImages = 16;

/**
 * gpt4free's vision fields, `image` (one data URI, named by `image_name`), `images` and `media` (lists
 * of `[data_uri, name]` pairs, data URIs or URLs), become OpenAI `image_url` parts on the last user
 * message, as gpt4free does: never dropped silently. Each must be an image data URI or an http(s)
 * URL (400 naming the field otherwise); their size is bounded by the request body's own cap.
 */
function attachGpt4freeImages(request: ChatRequest & Record<string, unknown>): void {
  const urls: string[] = [];
  const take = (value: unknown, param: string): void => {
    if (typeof value !== 'string' || !/^(data:image\/[\w.+-]+;base64,|https?:\/\/)/i.test(value)) {
      throw invalidRequest(`${param} must be an image as a data URI (data:image/...;base64,...) or an http(s) URL`, param);
    }
    urls.push(value);
  };
  if (request.image !== undefined && request.image !== null) take(request.image, 'image');
  for (const field of ['images', 'media'] as const) {
    const list = request[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw invalidRequest(`${field} must be a list of images: [data_uri, name] pairs, data URIs or URLs`, field);
    if (list.length > maxGpt4freeImages) throw invalidRequest(`${field} has ${list.length} images; at most ${maxGpt4freeImages}`, field);
    list.forEach((item: unknown, index) => take(Array.isArray(item) ? item[0] : item, `${field}[${index}]`));
  }
  for (const field of ['image', 'image_name', 'images', 'media']) delete request[field];
  if (urls.length === 0) return;
  const last = [...request.messages].reverse().find((message) => message.role === 'user');
  if (last === undefined) throw invalidRequest('images need a user message to go with', 'messages');
  const parts = typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : Array.isArray(last.content) ? last.content : [];
  last.content = [...parts, ...urls.map((url) => ({ type: 'image_url', image_url: { url } }))];
}
