import * as v from 'valibot';
import { apiKeyField, documentedCheck, isRecord, optionalBoolean, optionalNumber, optionalString, providerField, record } from './common.js';

/**
 * The body of POST /v1/responses (OpenAI's Responses API): its parts check requests (the dialect's
 * `readResponsesBody` walks a body in its own order, checking each part with these schemas between
 * its semantic checks) and compose `responsesBodySchema`, which the OpenAPI document is converted
 * from. The fields the chat body takes as they are (`temperature`, `top_p`, `user`, `provider`,
 * `api_key`) are checked by the chat schema after the translation; they are documented here with
 * the same definitions. Every message is a predicate, said after the field: `input[0].role must be ...`.
 */

/** `record` with a message for a missing key that depends on the key. */
function recordMissing<const Entries extends v.ObjectEntries>(entries: Entries, notObject: string, missing: (key: unknown) => string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isRecord, notObject),
    v.object(entries, (issue) => missing(issue.path?.[0]?.key)),
  );
}

/** Only `background: true` is refused; anything else is said back as ignored. */
export const backgroundField = v.optional(
  v.pipe(
    v.unknown(),
    documentedCheck(
      v.check((value) => value !== true, 'responses are not supported; leave background out'),
      { not: { const: true } },
    ),
    v.description('Background responses are not supported: `true` is refused.'),
  ),
);

export const conversationField = v.nullish(
  v.pipe(v.never('is not supported; continue a conversation with previous_response_id'), v.description('Not supported: use `previous_response_id`.')),
);

export const modelField = v.pipe(v.nullish(v.string('must be a string')), v.description("A model id or alias; empty means the provider's default."));
export const instructionsField = v.pipe(optionalString, v.description('A system message before the conversation (not carried to the next turn).'));
export const previousResponseField = v.pipe(
  optionalString,
  v.description('Continue after this stored response (kept for an hour; 404 when unknown or expired).'),
);
export const streamField = v.pipe(optionalBoolean, v.description('Answer as the Responses API server-sent events.'));
export const storeField = v.pipe(optionalBoolean, v.description('Keep the response for `previous_response_id` and GET (default true).'));
export const parallelToolCallsField = optionalBoolean;
const positive = 'must be a positive integer';
export const maxOutputTokensField = v.nullish(v.pipe(v.number(positive), v.integer(positive), v.minValue(1, positive)));

/** `input` once not a string, before its items are read. */
export const inputListField = v.pipe(
  v.array(v.unknown(), 'is required: a string or an array of input items'),
  v.minLength(1, 'must contain at least one item'),
);

export const itemHead = record({}, 'must be an object');

const roles = ['user', 'assistant', 'system', 'developer'] as const;
const roleMessage = `must be one of ${roles.join(', ')}`;
const messageHeadEntries = { role: v.picklist(roles, roleMessage) };
/** A message item before its content. */
export const messageItemHead = v.object(messageHeadEntries, (issue) => (issue.path?.[0]?.key === 'role' ? roleMessage : 'is required'));
const partsMessage = 'must be a string or an array of content parts';
/** A message's content once not a string. */
export const partList = v.array(v.unknown(), partsMessage);

export const partObject = record({}, 'must be an object with a type');
export const inputTextPart = record({ type: v.picklist(['input_text', 'output_text']), text: v.string() }, 'must be an object with a type');
const imageUrlMessage = 'must be a URL or a data URL (file_id is not supported)';
export const inputImagePart = v.pipe(
  record(
    { type: v.literal('input_image'), image_url: v.string(imageUrlMessage), detail: v.optional(v.unknown()) },
    'must be an object with a type',
    imageUrlMessage,
  ),
  v.description('An image by URL or data URL; `detail` is passed on unless `auto`.'),
);

const textPartMessage = 'must be a text part';
/** A part of an assistant message or a function output: its text (or refusal) is all that is read. */
export const textPart = v.union([record({ text: v.string() }, textPartMessage), record({ refusal: v.string() }, textPartMessage)], textPartMessage);
const textPartsMessage = 'must be a string or an array of text parts';
export const textPartList = v.array(v.unknown(), textPartsMessage);

const functionCallMessage = 'needs string call_id, name and arguments';
export const functionCallItem = record(
  {
    type: v.literal('function_call'),
    call_id: v.string(functionCallMessage),
    name: v.string(functionCallMessage),
    arguments: v.string(functionCallMessage),
  },
  functionCallMessage,
  functionCallMessage,
);

/** A `function_call_output` item before its output (read as `textPartList`, when not a string). */
export const functionCallOutputHead = record(
  { type: v.literal('function_call_output'), call_id: v.string('must be a string') },
  'must be an object',
  'must be a string',
);
const functionCallOutputItem = record(
  {
    type: v.literal('function_call_output'),
    call_id: v.string('must be a string'),
    output: v.union([v.string(), v.array(textPart)], textPartsMessage),
  },
  'must be an object',
);

const messageItem = recordMissing(
  {
    type: v.nullish(v.literal('message')),
    ...messageHeadEntries,
    content: v.pipe(
      v.union([v.string(), v.array(v.union([inputTextPart, inputImagePart, textPart]))], partsMessage),
      v.description('A string or parts: `input_text`, `input_image` (an assistant message: `output_text`).'),
    ),
  },
  'must be an object',
  (key) => (key === 'role' ? roleMessage : partsMessage),
);

const toolMessage = 'must be {type: "function", name, parameters}; only function tools are supported';
export const toolListField = v.nullish(v.array(v.unknown(), 'must be an array of function tools'));
export const functionTool = v.pipe(
  record(
    {
      type: v.literal('function', toolMessage),
      name: v.string(toolMessage),
      description: v.optional(v.unknown()),
      parameters: v.optional(v.pipe(v.unknown(), v.description("The JSON Schema of the function's arguments."))),
      strict: v.optional(v.unknown()),
    },
    toolMessage,
    toolMessage,
  ),
  v.description('A function tool (the only kind supported).'),
);

export const textObject = record({}, 'must be an object like {format: {type: "json_schema", …}}');
export const formatObject = record({}, 'must be an object');
export const formatType = v.picklist(['text', 'json_object', 'json_schema'], 'must be text, json_object or json_schema');
const jsonSchemaMessage = 'json_schema needs a name and a schema object';
export const jsonSchemaFormat = record(
  { type: v.literal('json_schema'), name: v.string(jsonSchemaMessage), schema: record({}, jsonSchemaMessage, jsonSchemaMessage) },
  jsonSchemaMessage,
  jsonSchemaMessage,
);

export const toolChoiceField = v.nullish(
  v.pipe(
    v.union(
      [v.pipe(v.string(), v.description('`none`, `auto` or `required`.')), record({ type: v.literal('function'), name: v.string() }, 'must be an object')],
      'must be none, auto, required or {type: "function", name}',
    ),
  ),
);

export const responsesBodySchema = v.pipe(
  v.object(
    {
      model: modelField,
      input: v.pipe(
        v.union([v.string(), v.pipe(v.array(v.union([messageItem, functionCallItem, functionCallOutputItem])), v.minLength(1))]),
        v.description('A string (one user message), or a list of input items: messages, `function_call` and `function_call_output`.'),
      ),
      instructions: instructionsField,
      previous_response_id: previousResponseField,
      stream: streamField,
      store: storeField,
      tools: v.nullish(v.array(functionTool)),
      tool_choice: toolChoiceField,
      text: v.nullish(
        v.pipe(
          record(
            { format: v.nullish(v.union([record({ type: v.picklist(['text', 'json_object']) }, 'must be an object'), jsonSchemaFormat])) },
            'must be an object',
          ),
          v.description('`{format: {type: "text" | "json_object"}}` or `{format: {type: "json_schema", name, schema, strict}}`.'),
        ),
      ),
      temperature: optionalNumber(0, 2),
      top_p: optionalNumber(0, 1),
      max_output_tokens: maxOutputTokensField,
      parallel_tool_calls: parallelToolCallsField,
      user: optionalString,
      metadata: v.optional(v.pipe(v.unknown(), v.description('Echoed in the response when an object.'))),
      background: backgroundField,
      conversation: conversationField,
      provider: providerField,
      api_key: apiKeyField,
    },
    (issue) => (issue.path?.[0]?.key === 'input' ? 'is required: a string or an array of input items' : 'is required'),
  ),
  v.description(
    "OpenAI's Responses request over any provider, with `previous_response_id` (responses are kept for an hour); plus `provider` and `api_key`. Other fields are said back as ignored in `x-interference-warnings`.",
  ),
  v.examples([{ model: '', input: 'Say hello' }]),
);
