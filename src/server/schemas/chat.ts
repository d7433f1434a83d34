import * as v from 'valibot';
import { apiKeyField, documentedCheck, isRecord, optionalBoolean, optionalInteger, optionalNumber, optionalString, providerField, record } from './common.js';

/**
 * The body of POST /v1/chat/completions: OpenAI's fields that the gateway checks, gpt4free's
 * vision fields, and `provider` / `api_key`. It validates requests (`validateChatBody`) and is
 * converted into the OpenAPI document: one definition for both. The order of the entries is the
 * order of the checks (the first failing one is reported). Unknown fields are kept and passed on.
 */

export const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

const contentPart = v.pipe(
  record({ type: v.string('must be an object with a type') }, 'must be an object with a type', 'must be an object with a type'),
  v.description('A content part: `{"type": "text", "text"}`, `{"type": "image_url", "image_url": {"url"}}`, …'),
);

const content = v.union([v.string(), v.array(contentPart)], 'must be a string or an array of content parts');

const roleMessage = `must be one of ${roles.join(', ')}`;

const messageObject = v.object(
  {
    role: v.picklist(roles, roleMessage),
    content: v.nullish(content),
    name: v.optional(v.unknown()),
    tool_calls: v.optional(
      v.pipe(
        v.array(v.unknown(), 'must be an array'),
        v.description('An assistant turn\'s tool calls: `{id, type: "function", function: {name, arguments}}`.'),
      ),
    ),
    tool_call_id: v.optional(v.unknown()),
  },
  (issue) => (issue.path?.[0]?.key === 'role' ? roleMessage : 'is required'),
);

/**
 * `content` may be missing or null only in an assistant's turn (beside its `tool_calls`). A check
 * after the object rather than a variant on `role`: valibot's variant builds an issue for every
 * option a message does not match, several times the cost of the whole message's check.
 */
const contentRequired = documentedCheck(
  v.forward(
    v.check(
      (message: v.InferOutput<typeof messageObject>) => message.role === 'assistant' || (message.content !== undefined && message.content !== null),
      'is required',
    ),
    ['content'],
  ),
  {
    if: { properties: { role: { not: { const: 'assistant' } } } },
    then: { required: ['content'], properties: { content: { not: { type: 'null' } } } },
  },
);

const message = v.pipe(v.custom<Record<string, unknown>>(isRecord, 'must be an object with role and content'), messageObject, contentRequired);

const stopMessage = 'must be a string or an array of up to 16 strings';
const listOfImages = 'must be a list of images: [data_uri, name] pairs, data URIs or URLs';
/** Most images one request may attach through gpt4free's fields. */
export const maxGpt4freeImages = 16;
const gpt4freeImages = v.nullish(
  v.pipe(
    v.array(v.unknown(), listOfImages),
    v.maxLength(maxGpt4freeImages, (issue) => `has ${(issue.input as unknown[]).length} images; at most ${maxGpt4freeImages}`),
    v.description("gpt4free's vision field: `[data_uri, name]` pairs, data URIs or http(s) URLs; they become `image_url` parts of the last user message."),
  ),
);

export const chatBodySchema = v.pipe(
  v.object(
    {
      model: v.pipe(
        v.nullish(v.string('must be a string'), ''),
        v.description('A model id or alias; empty means the provider\'s default. A provider id alone (`"Groq"`) means that provider\'s default model.'),
      ),
      messages: v.pipe(
        v.array(message, 'must be an array of {role, content}'),
        v.minLength(1, 'must contain at least one message'),
        v.description('The conversation: `{role, content}` objects.'),
      ),
      stream: v.pipe(optionalBoolean, v.description('Answer as server-sent events (`text/event-stream`), ending with `data: [DONE]`.')),
      stream_options: v.nullish(record({ include_usage: optionalBoolean }, 'must be an object')),
      temperature: optionalNumber(0, 2),
      top_p: optionalNumber(0, 1),
      presence_penalty: optionalNumber(-2, 2),
      frequency_penalty: optionalNumber(-2, 2),
      max_tokens: optionalInteger(1, Number.MAX_SAFE_INTEGER),
      max_completion_tokens: optionalInteger(1, Number.MAX_SAFE_INTEGER),
      n: optionalInteger(1, 128),
      seed: optionalInteger(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
      top_logprobs: optionalInteger(0, 20),
      logprobs: optionalBoolean,
      parallel_tool_calls: optionalBoolean,
      user: optionalString,
      stop: v.nullish(v.union([v.string(), v.pipe(v.array(v.string(stopMessage)), v.maxLength(16, stopMessage))], stopMessage)),
      tools: v.nullish(
        v.pipe(
          v.array(record({}, 'must be an array of objects'), 'must be an array of objects'),
          v.description('Function tools: `{"type": "function", "function": {name, description, parameters}}`.'),
        ),
      ),
      tool_choice: v.optional(v.pipe(v.unknown(), v.description('`"auto"`, `"none"`, `"required"` or `{"type": "function", "function": {name}}`.'))),
      response_format: v.nullish(
        v.pipe(
          record({}, 'must be an object like {"type": "json_object"}'),
          v.description('`{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {...}}`.'),
        ),
      ),
      image: v.nullish(
        v.pipe(
          v.string('must be an image as a data URI (data:image/...;base64,...) or an http(s) URL'),
          v.description("gpt4free's single image: a data URI or an http(s) URL."),
        ),
      ),
      image_name: v.optional(v.unknown()),
      images: gpt4freeImages,
      media: gpt4freeImages,
      // Last: core checks these two further (named providers, key per provider) once everything else is valid.
      provider: providerField,
      api_key: apiKeyField,
    },
    (issue) => (issue.path?.[0]?.key === 'messages' ? 'is required: an array of {role, content}' : 'is required'),
  ),
  v.description("OpenAI's chat completion request, plus `provider` and `api_key`. Other fields are passed to providers that honour them."),
  v.examples([{ model: '', messages: [{ role: 'user', content: 'Say hello' }] }]),
);

export type ChatBody = v.InferOutput<typeof chatBodySchema>;

/** Issues under these fields name the field itself (`tools`, not `tools[2]`), as the gateway always has. */
export const chatReportAt: readonly RegExp[] = [/^(messages\[\d+\]\.content\[\d+\])\./, /^(tools|stop)\[/];
