import * as v from 'valibot';
import { invalidRequest } from '../core/errors.js';
import { parseProviderField } from '../core/selection.js';
import type { ChatRequest } from '../core/types.js';
import { chatBodySchema, chatReportAt, type ChatBody } from './schemas/chat.js';
import { firstIssueOnly, issueError } from './schemas/issues.js';

export interface ChatInput {
  request: ChatRequest;
  provider: unknown;
  apiKey: unknown;
}

/**
 * Checks an OpenAI chat body (plus `provider`, `api_key`); a bad field is a 400 naming it in `param`.
 * The structure (types, ranges, enums, required fields) is `chatBodySchema`'s, the same schema the
 * OpenAPI document shows; what a schema cannot say (the message limit, gpt4free's image fields
 * becoming parts of the last user message) is checked here. The body itself is passed on, not
 * valibot's copy of it: unknown fields reach the providers that honour them.
 */
export function validateChatBody(body: Record<string, unknown>, maxMessages = Number.MAX_SAFE_INTEGER): ChatInput {
  const result = v.safeParse(chatBodySchema, body, firstIssueOnly);
  if (!result.success) {
    const issue = result.issues[0];
    // Core owns `provider` and `api_key` (and checks them once the rest is valid, the schema's last
    // entries): its parser gives the exact reason, and planning rejects a bad key the same way.
    const field = issue.path?.[0]?.key;
    if (field === 'provider') parseProviderField(body.provider);
    if (field !== 'api_key' && field !== 'provider') throw issueError(issue, chatReportAt);
  }
  const { provider, api_key: apiKey, ...rest } = body as ChatBody;
  rest.model = (rest.model ?? '').trim();
  if (rest.messages.length > maxMessages) throw invalidRequest(`messages has ${rest.messages.length} entries; the limit is ${maxMessages}`, 'messages');
  attachGpt4freeImages(rest as ChatRequest & Record<string, unknown>);
  return { request: rest as ChatRequest, provider, apiKey };
}

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
    // A list of at most 16 (the schema); each item's form is checked here (a case-insensitive prefix).
    const list = request[field] as unknown[] | null | undefined;
    if (list === undefined || list === null) continue;
    list.forEach((item: unknown, index) => take(Array.isArray(item) ? item[0] : item, `${field}[${index}]`));
  }
  for (const field of ['image', 'image_name', 'images', 'media']) delete request[field];
  if (urls.length === 0) return;
  const last = [...request.messages].reverse().find((message) => message.role === 'user');
  if (last === undefined) throw invalidRequest('images need a user message to go with', 'messages');
  const parts = typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : Array.isArray(last.content) ? last.content : [];
  last.content = [...parts, ...urls.map((url) => ({ type: 'image_url', image_url: { url } }))];
}
