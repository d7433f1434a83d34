import * as v from 'valibot';
import { apiKeyField, isRecord, optionalBoolean, optionalNumber, providerField, record } from './common.js';

/**
 * The body of POST /v1/messages (Anthropic's Messages API): its parts check requests (the
 * dialect's `messagesToChat` walks a body in its own order, checking each part with these schemas
 * between its semantic checks) and compose `messagesBodySchema`, which the OpenAPI document is
 * converted from. Every message is a predicate: the walker says `<param>: <predicate>`, Anthropic's
 * style (`messages.0.content: must be ...`).
 */

const roles = ['user', 'assistant', 'system'] as const;
const roleMessage = 'must be user, assistant or system';

export const modelField = v.pipe(
  v.nullish(v.string('must be a string')),
  v.description("A model id or alias; empty means the provider's default (answers echo the model asked for)."),
);

const maxTokensMessage = 'must be an integer of at least 1';
const maxTokensRange = v.pipe(
  v.number(maxTokensMessage),
  v.integer(maxTokensMessage),
  v.minValue(1, maxTokensMessage),
  v.description('The most tokens the answer may have.'),
);
/** Required: a missing `max_tokens` is Anthropic's "Field required". */
export const maxTokensField = v.pipe(
  v.custom((value) => value !== undefined, 'Field required'),
  maxTokensRange,
);

const messagesRequired = 'Field required (an array of {role, content})';
const atLeastOneMessage = 'must contain at least one message';
/** `messages` as a list, before its items are read (the limit and `system` come first). */
export const messageListField = v.pipe(v.array(v.unknown(), messagesRequired), v.minLength(1, atLeastOneMessage));

const textBlockMessage = 'must be a text block';
/** An item of `system` (or of a system message's content). */
export const textBlock = record({ type: v.literal('text', textBlockMessage), text: v.string(textBlockMessage) }, textBlockMessage, textBlockMessage);
const textBlocksMessage = 'must be a string or an array of text blocks';
/** `system` and a system message's content, once not a string; its items are `textBlock`s. */
export const textBlockList = v.array(v.unknown(), textBlocksMessage);
const textContent = v.union([v.string(), v.array(textBlock)], textBlocksMessage);

/** A message before its content: an object with a known role. */
const messageHeadEntries = { role: v.picklist(roles, roleMessage) };
export const messageHead = v.pipe(
  v.custom<Record<string, unknown>>(isRecord, 'must be an object with role and content'),
  v.object(messageHeadEntries, (issue) => (issue.path?.[0]?.key === 'role' ? roleMessage : 'is required')),
);
/** A user or assistant message's content, once not a string; its items are blocks. */
export const blockList = v.array(v.unknown(), 'must be a string or an array of content blocks');

const blockHeadMessage = 'must be an object with a type';
/** Any block, before its type is read. */
export const blockHead = record({ type: v.string(blockHeadMessage) }, blockHeadMessage, blockHeadMessage);

export const textContentBlock = record({ type: v.literal('text'), text: v.string('must be a string') }, 'must be an object', 'must be a string');

const sourceMessage = 'must be {type: "base64", media_type, data} or {type: "url", url}';
const imageSource = v.union(
  [
    record({ type: v.literal('base64'), media_type: v.string(), data: v.string() }, sourceMessage),
    record({ type: v.literal('url'), url: v.string() }, sourceMessage),
  ],
  sourceMessage,
);
export const imageBlock = v.pipe(
  record({ type: v.literal('image'), source: imageSource }, 'must be an object', sourceMessage),
  v.description('An image (user messages only): base64 data or a URL.'),
);

const toolUseMessage = 'tool_use needs an id and a name';
export const toolUseBlock = v.pipe(
  record(
    { type: v.literal('tool_use'), id: v.string(toolUseMessage), name: v.string(toolUseMessage), input: v.optional(v.unknown()) },
    toolUseMessage,
    toolUseMessage,
  ),
  v.description("A tool call (assistant messages only); `input` is the call's arguments."),
);

export const toolResultBlock = v.pipe(
  record(
    {
      type: v.literal('tool_result'),
      tool_use_id: v.string('must be a string'),
      content: v.nullish(
        v.pipe(v.union([v.string(), v.array(v.unknown())], textBlocksMessage), v.description('A string or text blocks (other blocks, images, are dropped).')),
      ),
      is_error: v.optional(v.unknown()),
    },
    'must be an object',
    'must be a string',
  ),
  v.description('A tool result (user messages only).'),
);

const thinkingBlock = v.pipe(
  record({ type: v.picklist(['thinking', 'redacted_thinking']) }, 'must be an object'),
  v.description('Reasoning from an earlier turn: accepted and not sent on.'),
);

const contentBlock = v.union([textContentBlock, imageBlock, toolUseBlock, toolResultBlock, thinkingBlock]);

const message = record(
  {
    ...messageHeadEntries,
    content: v.pipe(
      v.union([v.string(), v.array(contentBlock)], 'must be a string or an array of content blocks'),
      v.description('A string or content blocks (text, image, tool_use, tool_result); a system message takes text only.'),
    ),
  },
  'must be an object with role and content',
);

export const stopSequencesField = v.nullish(
  v.pipe(
    v.array(v.string('must be an array of up to 16 strings'), 'must be an array of up to 16 strings'),
    v.maxLength(16, 'must be an array of up to 16 strings'),
  ),
);

export const toolListField = v.nullish(v.array(v.unknown(), 'must be an array'));
/** A tool before its type is read. */
export const toolHead = record({ name: v.string('must be an object with a name') }, 'must be an object with a name', 'must be an object with a name');
/** A client tool's `input_schema`. */
export const inputSchemaField = record({}, 'Field required', 'Field required');
const tool = v.pipe(
  record(
    {
      name: v.string(),
      type: v.optional(v.literal('custom')),
      description: v.optional(v.pipe(v.unknown(), v.description('A string.'))),
      input_schema: v.pipe(inputSchemaField, v.description("The JSON Schema of the tool's input.")),
    },
    'must be an object with a name',
  ),
  v.description('A client tool (server tools are not supported).'),
);

/** `tool_choice`, before its form is read. */
export const toolChoiceObject = record({}, 'must be an object with a type');
const toolChoiceMessage = 'must be {type: "auto" | "any" | "none"} or {type: "tool", name}';
const parallel = v.optional(v.pipe(v.unknown(), v.description('`true`: at most one tool call.')));
export const toolChoiceForms = v.union(
  [
    record({ type: v.picklist(['auto', 'any']), disable_parallel_tool_use: parallel }, toolChoiceMessage),
    record({ type: v.literal('none') }, toolChoiceMessage),
    record({ type: v.literal('tool'), name: v.string(), disable_parallel_tool_use: parallel }, toolChoiceMessage),
  ],
  toolChoiceMessage,
);

export const streamField = v.pipe(optionalBoolean, v.description("Answer as Anthropic's server-sent events."));
export const temperatureField = optionalNumber(0, 2);
export const topPField = optionalNumber(0, 1);
export const topKField = optionalNumber(0, Number.MAX_SAFE_INTEGER);

const entries = {
  model: modelField,
  max_tokens: maxTokensField,
  messages: v.pipe(
    v.array(message, messagesRequired),
    v.minLength(1, atLeastOneMessage),
    v.description('The conversation: `{role, content}` objects (`role: "system"` is accepted too).'),
  ),
  system: v.nullish(v.pipe(textContent, v.description('The system prompt: a string or text blocks.'))),
  stream: streamField,
  temperature: temperatureField,
  top_p: topPField,
  top_k: topKField,
  stop_sequences: stopSequencesField,
  metadata: v.optional(v.pipe(v.unknown(), v.description('`user_id` (a string) is passed on as `user`.'))),
  tools: v.nullish(v.pipe(v.array(tool, 'must be an array'), v.description('Client tools: `{name, description, input_schema}`.'))),
  tool_choice: v.nullish(toolChoiceForms),
  provider: providerField,
  api_key: apiKeyField,
};

export const messagesBodySchema = v.pipe(
  v.object(entries, 'is required'),
  v.description("Anthropic's Messages request, over any provider; plus `provider` and `api_key` as in chat completions."),
  v.examples([{ model: '', max_tokens: 256, messages: [{ role: 'user', content: 'Say hello' }] }]),
);

export const countTokensBodySchema = v.pipe(
  v.object({ ...entries, max_tokens: v.optional(maxTokensRange) }, 'is required'),
  v.description("A Messages request without `max_tokens`: the provider's count when it has one, else an estimate (said in `x-interference-warnings`)."),
);

/** Whether a value is a text block (a tool result's other blocks are skipped). */
export const isTextBlock = (value: unknown): value is { type: 'text'; text: string } => v.is(textBlock, value);
