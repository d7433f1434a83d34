import { ApiError, invalidRequest } from '../../../core/errors.js';
import type { ChatMessage, ContentPart } from '../../../core/types.js';
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
 * that is unreachable now).
 */
export async function readResponsesBody(body: Record<string, unknown>, store: ResponseRepository): Promise<ResponsesInput> {
  if (body.background === true) throw invalidRequest('background responses are not supported; leave background out', 'background');
  if (body.conversation !== undefined && body.conversation !== null) {
    throw invalidRequest('conversation is not supported; continue a conversation with previous_response_id', 'conversation');
  }
  const model = body.model ?? '';
  if (typeof model !== 'string') throw invalidRequest('model must be a string', 'model');
  const instructions = optional(body, 'instructions', 'string');
  const previousId = optional(body, 'previous_response_id', 'string');
  const stream = optional(body, 'stream', 'boolean') ?? false;
  const keep = optional(body, 'store', 'boolean') ?? true;
  const parallel = optional(body, 'parallel_tool_calls', 'boolean');
  const maxOutput = body.max_output_tokens ?? null;
  if (maxOutput !== null && (typeof maxOutput !== 'number' || !Number.isInteger(maxOutput) || maxOutput < 1)) {
    throw invalidRequest('max_output_tokens must be a positive integer', 'max_output_tokens');
  }
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
  if (!Array.isArray(input)) throw invalidRequest('input is required: a string or an array of input items', 'input');
  const messages: ChatMessage[] = [];
  input.forEach((item, index) => {
    const param = `input[${index}]`;
    if (!isObject(item)) throw invalidRequest(`${param} must be an object`, param);
    const type = item.type ?? 'message';
    if (type === 'message') messages.push(readMessage(item, param));
    else if (type === 'function_call') {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string' || typeof item.arguments !== 'string') {
        throw invalidRequest(`${param} needs string call_id, name and arguments`, param);
      }
      const call = { id: item.call_id, type: 'function' as const, function: { name: item.name, arguments: item.arguments } };
      // Calls that follow an assistant message belong to it, as chat has them.
      const last = messages.at(-1);
      if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      if (typeof item.call_id !== 'string') throw invalidRequest(`${param}.call_id must be a string`, `${param}.call_id`);
      const output = typeof item.output === 'string' ? item.output : textOf(item.output, `${param}.output`);
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: output });
    } else throw invalidRequest(`${param}.type ${JSON.stringify(type)} is not supported; use message, function_call or function_call_output`, `${param}.type`);
  });
  if (messages.length === 0) throw invalidRequest('input must contain at least one item', 'input');
  return messages;
}

const roles = new Set(['user', 'assistant', 'system', 'developer']);

function readMessage(item: Record<string, unknown>, param: string): ChatMessage {
  const role = item.role;
  if (typeof role !== 'string' || !roles.has(role)) throw invalidRequest(`${param}.role must be one of ${[...roles].join(', ')}`, `${param}.role`);
  const content = item.content;
  if (typeof content === 'string') return { role: role as ChatMessage['role'], content };
  if (!Array.isArray(content)) throw invalidRequest(`${param}.content must be a string or an array of content parts`, `${param}.content`);
  // Assistant turns go back as plain text, as every chat upstream takes them.
  if (role === 'assistant') return { role, content: textOf(content, `${param}.content`) };
  const parts = content.map((part, index): ContentPart => {
    const where = `${param}.content[${index}]`;
    if (!isObject(part)) throw invalidRequest(`${where} must be an object with a type`, where);
    if ((part.type === 'input_text' || part.type === 'output_text') && typeof part.text === 'string') return { type: 'text', text: part.text };
    if (part.type === 'input_image') {
      if (typeof part.image_url !== 'string')
        throw invalidRequest(`${where}.image_url must be a URL or a data URL (file_id is not supported)`, `${where}.image_url`);
      const detail = typeof part.detail === 'string' && part.detail !== 'auto' ? { detail: part.detail } : {};
      return { type: 'image_url', image_url: { url: part.image_url, ...detail } };
    }
    throw invalidRequest(`${where}.type must be input_text or input_image`, `${where}.type`);
  });
  return { role: role as ChatMessage['role'], content: parts };
}

/** The text of a list of text parts (`input_text`, `output_text`, `refusal`). */
function textOf(parts: unknown, param: string): string {
  if (!Array.isArray(parts)) throw invalidRequest(`${param} must be a string or an array of text parts`, param);
  return parts
    .map((part, index) => {
      if (isObject(part) && typeof part.text === 'string') return part.text;
      if (isObject(part) && typeof part.refusal === 'string') return part.refusal;
      throw invalidRequest(`${param}[${index}] must be a text part`, `${param}[${index}]`);
    })
    .join('');
}

function readTools(tools: unknown): Array<Record<string, unknown>> {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw invalidRequest('tools must be an array of function tools', 'tools');
  return tools.map((tool, index) => {
    if (!isObject(tool) || tool.type !== 'function' || typeof tool.name !== 'string') {
      throw invalidRequest(`tools[${index}] must be {type: "function", name, parameters}; only function tools are supported`, `tools[${index}]`);
    }
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
  if (choice === undefined || choice === null || typeof choice === 'string') return choice ?? undefined;
  if (isObject(choice) && choice.type === 'function' && typeof choice.name === 'string') return { type: 'function', function: { name: choice.name } };
  throw invalidRequest('tool_choice must be none, auto, required or {type: "function", name}', 'tool_choice');
}

/** `text.format`: text (the default), json_object, or json_schema with name and schema. */
function readFormat(text: unknown): Record<string, unknown> {
  if (text === undefined || text === null) return { type: 'text' };
  if (!isObject(text)) throw invalidRequest('text must be an object like {format: {type: "json_schema", …}}', 'text');
  const format = text.format ?? { type: 'text' };
  if (!isObject(format)) throw invalidRequest('text.format must be an object', 'text.format');
  if (format.type === 'text' || format.type === 'json_object') return { type: format.type };
  if (format.type === 'json_schema') {
    if (typeof format.name !== 'string' || !isObject(format.schema)) {
      throw invalidRequest('text.format json_schema needs a name and a schema object', 'text.format');
    }
    return { ...format };
  }
  throw invalidRequest('text.format.type must be text, json_object or json_schema', 'text.format.type');
}

function chatFormat(format: Record<string, unknown>): unknown {
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type !== 'json_schema') return undefined;
  const { type: _type, ...schema } = format;
  return { type: 'json_schema', json_schema: schema };
}

function optional<T extends 'string' | 'boolean'>(body: Record<string, unknown>, key: string, type: T): (T extends 'string' ? string : boolean) | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) throw invalidRequest(`${key} must be a ${type}`, key);
  return value as T extends 'string' ? string : boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
