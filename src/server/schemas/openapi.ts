import { toJsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { chatBodySchema } from './chat.js';
import { checkJsonSchemas } from './common.js';
import { imagesBodySchema } from './images.js';
import { countTokensBodySchema, messagesBodySchema } from './messages.js';
import * as shapes from './openapi-shapes.js';
import { responsesBodySchema } from './responses.js';

/**
 * The OpenAPI 3.1 document of the gateway's own API. The request bodies (chat completions, images,
 * Anthropic's Messages, Responses) are converted from the valibot schemas that validate those
 * requests, so the document and the validation cannot disagree; the answers' shapes are in `openapi-shapes.ts`. `servers` is
 * left out: it depends on the request (see `withServers`).
 */

type JsonObject = Record<string, unknown>;

export interface OpenApiOptions {
  version: string;
  /**
   * Whether the gateway has its own key. Unknown (undefined): the document says the key is needed
   * only when one is configured, and lets Swagger UI send requests with or without one.
   */
  authenticated?: boolean;
}

/** JSON Schema 2020-12, OpenAPI 3.1's dialect, of what a schema accepts. */
function fromValibot(schema: v.GenericSchema): JsonObject {
  // "output": a pipe's last schema is what it describes (the object after a guard against arrays).
  const converted = toJsonSchema(schema, {
    target: 'draft-2020-12',
    typeMode: 'output',
    // A `v.check` has no JSON Schema of its own: its documented twin is merged in.
    overrideAction: ({ valibotAction, jsonSchema }) => {
      const twin = checkJsonSchemas.get(valibotAction);
      return twin === undefined ? undefined : { ...jsonSchema, ...twin };
    },
  }) as JsonObject;
  delete converted.$schema;
  return converted;
}

/** The body of GET /ready, ready or not. */
const readySchema: JsonObject = {
  type: 'object',
  required: ['status', 'checks'],
  properties: {
    status: { enum: ['ready', 'not_ready'] },
    reason: { type: 'string', description: 'Why not ready.' },
    checks: {
      type: 'object',
      properties: { config: { const: 'loaded' }, redis: { enum: ['up', 'down'], description: 'Only when Redis is configured.' } },
    },
  },
};

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonObject): JsonObject => ({ 'application/json': { schema } });

const pathParam = (name: string, description: string): JsonObject => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const providerPath = pathParam('provider', 'The provider id (as in `GET /v1/providers`).');
const providerQuery: JsonObject = {
  name: 'provider',
  in: 'query',
  required: false,
  description: 'The `provider` field, for clients that cannot add body fields.',
  schema: { type: 'string' },
};

interface OperationSpec {
  tag: string;
  summary: string;
  description?: string;
  parameters?: JsonObject[];
  body?: string;
  /** The 200 answer: content by media type, or a bare description. */
  ok: { description: string; content?: JsonObject };
  /** Behind the gateway key when it has one (`/v1/*`, `/api/*`, `/images/*`). */
  protectedRoute: boolean;
  /** The error shape of the route: Anthropic's on the Messages routes, OpenAI's elsewhere. */
  errors?: 'openai' | 'anthropic';
  /** Answers of the route's own, by status (they win over the generic error ranges). */
  responses?: Record<string, JsonObject>;
}

function operation(spec: OperationSpec, security: JsonObject[]): JsonObject {
  const error = { $ref: `#/components/responses/${spec.errors === 'anthropic' ? 'MessagesError' : 'Error'}` };
  return {
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.parameters === undefined ? {} : { parameters: spec.parameters }),
    ...(spec.body === undefined ? {} : { requestBody: { required: true, content: json(ref(spec.body)) } }),
    responses: { '200': spec.ok, ...spec.responses, '4XX': error, '5XX': error },
    security: spec.protectedRoute ? security : [],
  };
}

export function buildOpenApiDocument(options: OpenApiOptions): JsonObject {
  const schemes = [{ gatewayBearer: [] }, { gatewayApiKey: [] }, { g4fApiKey: [] }];
  // `{}` first: without a gateway key of its own, the gateway needs none (a Bearer token is then a provider key).
  const security = options.authenticated === true ? schemes : [{}, ...schemes];

  const chatOk = {
    description: `A chat completion (JSON), or a stream. ${shapes.chatStreamDescription}`,
    content: { ...json(ref('ChatCompletion')), 'text/event-stream': { schema: { type: 'string' } } },
  };
  const chat = (summary: string, parameters: JsonObject[], description?: string): OperationSpec => ({
    tag: 'Chat',
    summary,
    description,
    parameters,
    body: 'ChatCompletionRequest',
    ok: chatOk,
    protectedRoute: true,
  });
  const images = (summary: string, parameters: JsonObject[]): OperationSpec => ({
    tag: 'Images',
    summary,
    parameters,
    body: 'ImageGenerationRequest',
    ok: { description: "OpenAI's ImagesResponse plus `model` and `provider`.", content: json(ref('ImagesResponse')) },
    protectedRoute: true,
  });
  const messages = (summary: string, parameters: JsonObject[] = []): OperationSpec => ({
    tag: 'Anthropic Messages',
    summary,
    parameters,
    body: 'MessagesRequest',
    ok: {
      description: "A message, or with `stream: true` Anthropic's server-sent events.",
      content: { ...json(ref('Message')), 'text/event-stream': { schema: { type: 'string' } } },
    },
    protectedRoute: true,
    errors: 'anthropic',
  });
  const responses = (summary: string, parameters: JsonObject[] = []): OperationSpec => ({
    tag: 'Responses',
    summary,
    parameters,
    body: 'ResponsesRequest',
    ok: {
      description: 'A response object, or with `stream: true` the Responses API server-sent events.',
      content: { ...json(ref('Response')), 'text/event-stream': { schema: { type: 'string' } } },
    },
    protectedRoute: true,
  });
  const index: OperationSpec = {
    tag: 'Gateway',
    summary: 'The API index: name, version and every route',
    ok: { description: 'The index.', content: json(ref('Index')) },
    protectedRoute: false,
  };

  const paths: Record<string, Record<string, OperationSpec>> = {
    '/v1/chat/completions': { post: chat('Create a chat completion', [providerQuery]) },
    '/api/{provider}/chat/completions': {
      post: chat('Create a chat completion with one provider', [providerPath], "gpt4free's per-provider base URL; also under `/api/{provider}/v1/`."),
    },
    '/api/{provider}/{conversation_id}/chat/completions': {
      post: chat('Create a chat completion with one provider (gpt4free conversation path)', [
        providerPath,
        pathParam('conversation_id', 'Accepted and ignored (said in `x-interference-warnings`): send the whole conversation.'),
      ]),
    },
    '/api/{provider}/models': {
      get: {
        tag: 'Catalog',
        summary: "One provider's models",
        parameters: [providerPath],
        ok: { description: 'The models, each with its type.', content: json(ref('ModelList')) },
        protectedRoute: true,
      },
    },
    '/api/{provider}/images/generations': { post: images('Generate images with one provider (also `/generate`)', [providerPath]) },
    '/v1/messages': { post: messages('Create a message (Anthropic Messages API over any provider)') },
    '/v1/messages/count_tokens': {
      post: {
        tag: 'Anthropic Messages',
        summary: 'Count the tokens of a Messages request',
        body: 'CountTokensRequest',
        ok: {
          description: 'The count.',
          content: json({ type: 'object', required: ['input_tokens'], properties: { input_tokens: { type: 'integer' } } }),
        },
        protectedRoute: true,
        errors: 'anthropic',
      },
    },
    '/api/{provider}/messages': { post: messages('Create a message with one provider', [providerPath]) },
    '/v1/responses': { post: responses('Create a response (OpenAI Responses API over any provider)') },
    '/v1/responses/{id}': {
      get: {
        tag: 'Responses',
        summary: 'Get a stored response',
        parameters: [pathParam('id', 'The response id.')],
        ok: { description: 'The response.', content: json(ref('Response')) },
        protectedRoute: true,
      },
    },
    '/api/{provider}/responses': { post: responses('Create a response with one provider', [providerPath]) },
    '/v1/images/generate': { post: images('Generate images', [providerQuery]) },
    '/v1/images/generations': { post: images('Generate images (OpenAI path)', [providerQuery]) },
    '/images/{file}': {
      get: {
        tag: 'Images',
        summary: 'An image the gateway stored',
        description: 'Content type sniffed from the bytes; `ETag`, `Cache-Control: immutable`, 304 on `If-None-Match`. Only names the store made are served.',
        parameters: [pathParam('file', 'The stored name (its content hash and extension).')],
        ok: { description: 'The image.', content: { 'image/*': { schema: { type: 'string', contentMediaType: 'image/*' } } } },
        protectedRoute: true,
      },
    },
    '/v1/models': {
      get: { tag: 'Catalog', summary: 'Every model and alias', ok: { description: 'The models.', content: json(ref('ModelList')) }, protectedRoute: true },
    },
    '/v1/models/{id}': {
      get: {
        tag: 'Catalog',
        summary: 'One model',
        parameters: [pathParam('id', 'A model id or alias.')],
        ok: { description: 'The model.', content: json(ref('Model')) },
        protectedRoute: true,
      },
    },
    '/v1/providers': {
      get: {
        tag: 'Catalog',
        summary: 'Every provider, with its capabilities and health',
        ok: { description: 'A bare JSON array.', content: json(ref('ProviderList')) },
        protectedRoute: true,
      },
    },
    '/v1/providers/{id}': {
      get: {
        tag: 'Catalog',
        summary: 'One provider, with its models and the fields it honours',
        parameters: [pathParam('id', 'A provider id.')],
        ok: { description: 'The provider.', content: json(ref('Provider')) },
        protectedRoute: true,
      },
    },
    '/health': {
      get: {
        tag: 'Gateway',
        summary: 'Liveness (open even with a gateway key)',
        ok: { description: 'Up.', content: json(ref('Health')) },
        protectedRoute: false,
      },
    },
    '/ready': {
      get: {
        tag: 'Gateway',
        summary: 'Readiness, for load balancers (open even with a gateway key)',
        description: 'Ready once the configuration is loaded and, when Redis is configured (REDIS_URL), while Redis is reachable.',
        ok: { description: 'Ready.', content: json(readySchema) },
        responses: { '503': { description: 'Not ready: `reason` says why (Redis unreachable).', content: json(readySchema) } },
        protectedRoute: false,
      },
    },
    '/': { get: index },
    '/v1': { get: { ...index, protectedRoute: true } },
    '/chat': {
      get: {
        tag: 'Gateway',
        summary: 'The web chat page',
        ok: { description: 'HTML.', content: { 'text/html': { schema: { type: 'string' } } } },
        protectedRoute: false,
      },
    },
    '/docs': {
      get: {
        tag: 'Gateway',
        summary: 'This document, rendered (Swagger UI, served locally)',
        ok: { description: 'HTML.', content: { 'text/html': { schema: { type: 'string' } } } },
        protectedRoute: false,
      },
    },
    '/openapi.json': {
      get: {
        tag: 'Gateway',
        summary: 'This document (OpenAPI 3.1)',
        ok: { description: 'The document.', content: json({ type: 'object' }) },
        protectedRoute: false,
      },
    },
    '/metrics': {
      get: {
        tag: 'Gateway',
        summary: 'Prometheus metrics (when enabled; on its own port with INTERFERENCE_METRICS_PORT)',
        ok: { description: 'The Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } },
        protectedRoute: false,
      },
    },
  };

  const errorResponse = (description: string, schema: string): JsonObject => ({ description, content: json(ref(schema)) });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Interference',
      version: options.version,
      summary: 'OpenAI-compatible API over many providers, with failover',
      description:
        "One OpenAI-compatible endpoint (plus Anthropic Messages and OpenAI Responses) in front of many model providers. Choose providers with the `provider` field: one id, several in order, or OpenRouter's preference object. Every answer says who answered in `x-interference-provider` and what each provider did in `x-interference-attempts`.",
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: ['Chat', 'Anthropic Messages', 'Responses', 'Images', 'Catalog', 'Gateway'].map((name) => ({ name })),
    paths: Object.fromEntries(
      Object.entries(paths).map(([path, methods]) => [
        path,
        Object.fromEntries(Object.entries(methods).map(([method, spec]) => [method, operation(spec, security)])),
      ]),
    ),
    components: {
      schemas: {
        ChatCompletionRequest: fromValibot(chatBodySchema),
        ImageGenerationRequest: fromValibot(imagesBodySchema),
        MessagesRequest: fromValibot(messagesBodySchema),
        CountTokensRequest: fromValibot(countTokensBodySchema),
        ResponsesRequest: fromValibot(responsesBodySchema),
        ChatCompletion: shapes.chatCompletionSchema,
        ImagesResponse: shapes.imagesResponseSchema,
        Message: shapes.messageSchema,
        Response: shapes.responseSchema,
        Model: shapes.modelSchema,
        ModelList: shapes.modelsSchema,
        Provider: shapes.providerSchema,
        ProviderList: shapes.providersSchema,
        Index: shapes.indexSchema,
        Health: shapes.healthSchema,
        Error: shapes.errorSchema,
        MessagesError: shapes.messagesErrorSchema,
      },
      responses: {
        Error: errorResponse('An OpenAI-shaped error: 400 bad field (`param` names it), 401, 404, 405, 408, 413, 429, 5xx.', 'Error'),
        MessagesError: errorResponse("An error in Anthropic's shape (529 when overloaded).", 'MessagesError'),
      },
      securitySchemes: {
        gatewayBearer: {
          type: 'http',
          scheme: 'bearer',
          description: "The gateway's key (INTERFERENCE_API_KEY), when it has one. Without one, a Bearer token is the one named provider's key.",
        },
        gatewayApiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: "The gateway's key, as Anthropic's SDKs send it." },
        g4fApiKey: { type: 'apiKey', in: 'header', name: 'g4f-api-key', description: "The gateway's key, as gpt4free's clients send it." },
      },
    },
  };
}
