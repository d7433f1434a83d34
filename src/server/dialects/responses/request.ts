import * as v from 'valibot';
import { ApiError, invalidRequest } from '../../../core/errors.js';
import type { ChatMessage, ContentPart } from '../../../core/types.js';
import { checkPart } from '../../schemas/issues.js';
import {
  backgroundField,
  conversationField,
  formatObject,
  formatType,
  functionCallItem,
  functionCallOutputHead,
  functionTool,
  inputImagePart,
  inputListField,
  inputTextPart,
  instructionsField,
  itemHead,
  jsonSchemaFormat,
  maxOutputTokensField,
  messageItemHead,
  modelField,
  parallelToolCallsField,
  partList,
  partObject,
  previousResponseField,
  storeField,
  streamField,
  textObject,
  textPart,
  textPartList,
  toolChoiceField,
  toolListField,
} from '../../schemas/responses.js';
import type { ResponseRepository } from './store.js';

/** A Responses request read into what the chat operation takes, plus what the response echoes. */
export interface ResponsesInput {
  /** A chat body (with `provider` and `api_key`), for `validateChatBody`. */
  chatBody: Record<string, unknown>;
  /** The conversation without the instructions: stored with the answer for the next turn. */
  history: ChatMessage[];
  stream: boolean;
  store: boolean;
  echo: ResponseEcho;
  /** Request fields this entrance does not translate: said back as warnings, never silently dropped. */
  ignored: string[];
}

/** The request fields a response object repeats. */
export interface ResponseEcho {
  model: string;
  instructions: string | null;
  previous_response_id: string | null;
  tools: unknown[];
  tool_choice: unknown;
  text: { format: Record<string, unknown> };
  temperature: number | null;
  top_p: number | null;
  max_output_tokens: number | null;
  parallel_tool_calls: boolean;
  metadata: Record<string, unknown>;
}

/**
 * Reads a Responses body (`input`, `instructions`, function `tools`, `text.format`,
 * `max_output_tokens`, `previous_response_id`, …) into a chat body. The previous response's
 * history comes first; an unknown or expired id is a 404 (a 503 when it may be in shared storage
 * that is unreachable now). The structure of each part is checked with the schemas of
 * `schemas/responses.ts` (the ones the OpenAPI document shows), in the order of the walk below;
 * the fields the chat body takes as they are (`temperature`, …) are checked by `validateChatBody`.
 */
export async function readResponsesBody(body: Record<string, unknown>, store: ResponseRepository): Promise<ResponsesInput> {
  checkPart(backgroundField, body.background, 'background', 'openai');
  checkPart(conversationField, body.conversation, 'conversation', 'openai');
  const model = checkPart(modelField, body.model, 'model', 'openai') ?? '';
  const instructions = checkPart(instructionsField, body.instructions, 'instructions', 'openai') ?? undefined;
  const previousId = checkPart(previousResponseField, body.previous_response_id, 'previous_response_id', 'openai') ?? undefined;
  const stream = checkPart(streamField, body.stream, 'stream', 'openai') ?? false;
  const keep = checkPart(storeField, body.store, 'store', 'openai') ?? true;
  const parallel = checkPart(parallelToolCallsField, body.parallel_tool_calls, 'parallel_tool_calls', 'openai') ?? undefined;
  const maxOutput = checkPart(maxOutputTokensField, body.max_output_tokens, 'max_output_tokens', 'openai') ?? null;
  let history: ChatMessage[] = [];
  if (previousId !== undefined) {
    const previous = await store.get(previousId);
    if (previous === undefined) {
      throw new ApiError(404, `Previous response with id '${previousId}' not found; stored responses are kept for one hour.`, {
        type: 'invalid_request_error',
        param: 'previous_response_id',
        code: 'previous_response_not_found',
      });
    }
    history = [...previous.history];
  }
  history.push(...readInput(body.input));
  const tools = readTools(body.tools);
  const format = readFormat(body.text);
  const messages: ChatMessage[] = instructions === undefined ? history : [{ role: 'system', content: instructions }, ...history];
  const chatBody: Record<string, unknown> = {
    model,
    messages,
    stream,
    provider: body.provider,
    api_key: body.api_key,
    temperature: body.temperature,
    top_p: body.top_p,
    max_tokens: maxOutput ?? undefined,
    parallel_tool_calls: parallel,
    user: body.user,
    tools: tools.length === 0 ? undefined : tools.map(chatTool),
    tool_choice: chatToolChoice(body.tool_choice),
    response_format: chatFormat(format),
    // Upstreams are always asked for usage; the stream's usage-only chunk carries it to us.
    stream_options: stream ? { include_usage: true } : undefined,
  };
  for (const key of Object.keys(chatBody)) if (chatBody[key] === undefined) delete chatBody[key];
  return {
    chatBody,
    history,
    stream,
    store: keep,
    ignored: Object.keys(body).filter((key) => !readFields.has(key) && body[key] !== undefined && body[key] !== null),
    echo: {
      model: model.trim(),
      instructions: instructions ?? null,
      previous_response_id: previousId ?? null,
      tools,
      tool_choice: body.tool_choice ?? 'auto',
      text: { format },
      temperature: typeof body.temperature === 'number' ? body.temperature : null,
      top_p: typeof body.top_p === 'number' ? body.top_p : null,
      max_output_tokens: maxOutput,
      parallel_tool_calls: parallel ?? true,
      metadata: isObject(body.metadata) ? body.metadata : {},
    },
  };
}

/** The fields read above; `metadata` is only echoed. */
const readFields = new Set([
  'model',
  'input',
  'instructions',
  'previous_response_id',
  'stream',
  'store',
  'parallel_tool_calls',
  'max_output_tokens',
  'temperature',
  'top_p',
  'user',
  'tools',
  'tool_choice',
  'text',
  'metadata',
  'provider',
  'api_key',
  'background',
  'conversation',
]);

/** `input`: a string (one user message) or a list of message, function_call and function_call_output items. */
function readInput(input: unknown): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  // An empty list is refused here: every item gives at least one message.
  const items = checkPart(inputListField, input, 'input', 'openai');
  const messages: ChatMessage[] = [];
  items.forEach((value, index) => {
    const param = `input[${index}]`;
    checkPart(itemHead, value, param, 'openai', true);
    const item = value as Record<string, unknown>;
    const type = item.type ?? 'message';
    if (type === 'message') messages.push(readMessage(item, param));
    else if (type === 'function_call') {
      const { call_id: id, name, arguments: args } = checkPart(functionCallItem, item, param, 'openai', true);
      const call = { id, type: 'function' as const, function: { name, arguments: args } };
      // Calls that follow an assistant message belong to it, as chat has them.
      const last = messages.at(-1);
      if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      const { call_id: callId } = checkPart(functionCallOutputHead, item, param, 'openai');
      const output = typeof item.output === 'string' ? item.output : textOf(item.output, `${param}.output`);
      messages.push({ role: 'tool', tool_call_id: callId, content: output });
    } else throw invalidRequest(`${param}.type ${JSON.stringify(type)} is not supported; use message, function_call or function_call_output`, `${param}.type`);
  });
  return messages;
}

function readMessage(item: Record<string, unknown>, param: string): ChatMessage {
  const { role } = checkPart(messageItemHead, item, param, 'openai');
  const content = item.content;
  if (typeof content === 'string') return { role, content };
  const list = checkPart(partList, content, `${param}.content`, 'openai');
  // Assistant turns go back as plain text, as every chat upstream takes them.
  if (role === 'assistant') return { role, content: textOf(list, `${param}.content`) };
  const parts = list.map((value, index): ContentPart => {
    const where = `${param}.content[${index}]`;
    checkPart(partObject, value, where, 'openai', true);
    const text = v.safeParse(inputTextPart, value);
    if (text.success) return { type: 'text', text: text.output.text };
    if ((value as Record<string, unknown>).type === 'input_image') {
      const image = checkPart(inputImagePart, value, where, 'openai');
      const wanted = image.detail;
      const detail = typeof wanted === 'string' && wanted !== 'auto' ? { detail: wanted } : {};
      return { type: 'image_url', image_url: { url: image.image_url, ...detail } };
    }
    // Not an input part (or one without its text): the type is what is wrong.
    throw invalidRequest(`${where}.type must be input_text or input_image`, `${where}.type`);
  });
  return { role, content: parts };
}

/** The text of a list of text parts (`input_text`, `output_text`, `refusal`). */
function textOf(parts: unknown, param: string): string {
  return checkPart(textPartList, parts, param, 'openai')
    .map((part, index) => {
      const text = checkPart(textPart, part, `${param}[${index}]`, 'openai', true);
      return 'text' in text ? text.text : text.refusal;
    })
    .join('');
}

function readTools(tools: unknown): Array<Record<string, unknown>> {
  const list = checkPart(toolListField, tools, 'tools', 'openai');
  if (list === undefined || list === null) return [];
  return list.map((value, index) => {
    checkPart(functionTool, value, `tools[${index}]`, 'openai', true);
    const tool = value as Record<string, unknown>;
    return {
      type: 'function',
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? null,
    };
  });
}

function chatTool(tool: Record<string, unknown>): Record<string, unknown> {
  const fn: Record<string, unknown> = { name: tool.name };
  if (tool.description !== null) fn.description = tool.description;
  if (tool.parameters !== null) fn.parameters = tool.parameters;
  if (tool.strict !== null) fn.strict = tool.strict;
  return { type: 'function', function: fn };
}

function chatToolChoice(choice: unknown): unknown {
  const checked = checkPart(toolChoiceField, choice, 'tool_choice', 'openai', true);
  if (checked === undefined || checked === null || typeof checked === 'string') return checked ?? undefined;
  return { type: 'function', function: { name: checked.name } };
}

/** `text.format`: text (the default), json_object, or json_schema with name and schema. */
function readFormat(text: unknown): Record<string, unknown> {
  if (text === undefined || text === null) return { type: 'text' };
  checkPart(textObject, text, 'text', 'openai');
  const format = (text as Record<string, unknown>).format ?? { type: 'text' };
  checkPart(formatObject, format, 'text.format', 'openai');
  const type = checkPart(formatType, (format as Record<string, unknown>).type, 'text.format.type', 'openai');
  if (type !== 'json_schema') return { type };
  checkPart(jsonSchemaFormat, format, 'text.format', 'openai', true);
  return { ...(format as Record<string, unknown>) };
}

function chatFormat(format: Record<string, unknown>): unknown {
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type !== 'json_schema') return undefined;
  const { type: _type, ...schema } = format;
  return { type: 'json_schema', json_schema: schema };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
