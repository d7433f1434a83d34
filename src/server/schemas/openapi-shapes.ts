/**
 * JSON Schemas of what the gateway answers: documentation only. The request bodies are not here:
 * they are converted from the valibot schemas that validate them (`chat.ts`, `images.ts`,
 * `messages.ts`, `responses.ts`). Kept to the fields clients read.
 */

type JsonSchema = Record<string, unknown>;

const string = { type: 'string' } as const;
const integer = { type: 'integer' } as const;
const boolean = { type: 'boolean' } as const;
const stringList = { type: 'array', items: string } as const;
const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

/** OpenAI's error object: every 4xx and 5xx of the OpenAI-shaped routes. */
export const errorSchema: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: {
        message: string,
        type: { ...string, examples: ['invalid_request_error', 'authentication_error', 'not_found_error', 'rate_limit_error', 'upstream_error'] },
        param: { ...nullable(string), description: 'The request field at fault (`messages[0].role`), or null.' },
        code: { ...nullable(string), examples: ['model_not_found', 'provider_not_found', 'unsupported_feature'] },
      },
    },
    model: { ...string, description: 'The model asked for, when known (read by gpt4free clients).' },
    provider: { ...string, description: 'The provider named, when exactly one was.' },
  },
};

/** Anthropic's error object: the errors of the Messages routes. */
export const messagesErrorSchema: JsonSchema = {
  type: 'object',
  required: ['type', 'error'],
  properties: {
    type: { const: 'error' },
    error: { type: 'object', required: ['type', 'message'], properties: { type: string, message: string } },
  },
};

const usage: JsonSchema = {
  type: 'object',
  properties: { prompt_tokens: integer, completion_tokens: integer, total_tokens: integer },
};

const toolCalls: JsonSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: { id: string, type: { const: 'function' }, function: { type: 'object', properties: { name: string, arguments: string } } },
  },
};

export const chatCompletionSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'object', 'created', 'model', 'choices'],
  properties: {
    id: string,
    object: { const: 'chat.completion' },
    created: integer,
    model: { ...string, description: "The upstream's real model." },
    provider: { ...string, description: 'The provider that answered.' },
    choices: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: integer,
          message: { type: 'object', properties: { role: { const: 'assistant' }, content: nullable(string), tool_calls: toolCalls } },
          finish_reason: nullable(string),
          native_finish_reason: { ...string, description: "The upstream's own finish reason, when OpenAI has no such value." },
        },
      },
    },
    usage,
  },
};

export const chatStreamDescription =
  'With `"stream": true`: `text/event-stream` of `data: {chat.completion.chunk}` events, then `data: [DONE]`. A failure after content ends it with `data: {"error": {...}}` before `[DONE]`.';

export const imagesResponseSchema: JsonSchema = {
  type: 'object',
  required: ['created', 'data'],
  properties: {
    created: integer,
    data: { type: 'array', items: { type: 'object', properties: { url: string, b64_json: string, revised_prompt: string } } },
    model: string,
    provider: string,
  },
};

const modelSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'object'],
  properties: {
    id: string,
    object: { const: 'model' },
    created: integer,
    owned_by: string,
    providers: stringList,
    image: boolean,
    type: { enum: ['chat', 'image'] },
    vision: boolean,
    available: boolean,
  },
};
export const modelsSchema: JsonSchema = { type: 'object', properties: { object: { const: 'list' }, data: { type: 'array', items: modelSchema } } };
export { modelSchema };

const providerProperties: Record<string, JsonSchema> = {
  id: string,
  object: { const: 'provider' },
  url: nullable(string),
  label: string,
  parent: nullable(string),
  needs_auth: boolean,
  login_url: nullable(string),
  configured: boolean,
  status_message: nullable(string),
  supports_stream: boolean,
  image: boolean,
  vision: boolean,
  capabilities: { type: 'array', items: { enum: ['stream', 'tools', 'vision', 'json', 'images'] } },
  entrances: stringList,
  auto_route: boolean,
  working: boolean,
  circuit: string,
  consecutive_failures: integer,
  success_rate: nullable({ type: 'number' }),
  median_latency_ms: nullable({ type: 'number' }),
  retry_in_s: { type: 'number', description: 'While the circuit is open.' },
};
export const providersSchema: JsonSchema = { type: 'array', items: { type: 'object', required: ['id'], properties: providerProperties } };
export const providerSchema: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: {
    ...providerProperties,
    default_model: nullable(string),
    models: stringList,
    image_models: stringList,
    vision_models: stringList,
    aliases: { type: 'object', additionalProperties: string },
    params: stringList,
    image_params: stringList,
  },
};

export const indexSchema: JsonSchema = {
  type: 'object',
  properties: { name: string, version: string, description: string, routes: { ...stringList, description: '`METHOD /path` of every route.' } },
};
export const healthSchema: JsonSchema = { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } };

export const messageSchema: JsonSchema = {
  type: 'object',
  properties: {
    id: string,
    type: { const: 'message' },
    role: { const: 'assistant' },
    model: string,
    content: { type: 'array', items: { type: 'object', properties: { type: { enum: ['text', 'tool_use'] } } } },
    stop_reason: nullable(string),
    usage: { type: 'object', properties: { input_tokens: integer, output_tokens: integer } },
  },
};

export const responseSchema: JsonSchema = {
  type: 'object',
  properties: {
    id: string,
    object: { const: 'response' },
    created_at: integer,
    status: { enum: ['completed', 'failed', 'incomplete', 'in_progress'] },
    model: string,
    output: { type: 'array', items: { type: 'object' } },
    output_text: string,
    previous_response_id: nullable(string),
    usage: { type: 'object', properties: { input_tokens: integer, output_tokens: integer, total_tokens: integer } },
  },
};
