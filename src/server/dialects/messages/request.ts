import { invalidRequest } from '../../../core/errors.js';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../../core/types.js';

/** An Anthropic Messages body, read into the chat operation's request plus the gateway's own fields. */
export interface MessagesInput {
  request: ChatRequest;
  provider: unknown;
  apiKey: unknown;
}

/**
 * Checks an Anthropic Messages body and translates it to an OpenAI chat request. Accepts what
 * either SDK generation sends (0.x with `anthropic-version: 2023-06-01`, 1.x with `2026-10-21`):
 * `role: "system"` messages, and `temperature`/`top_p`/`top_k` even though the newer version
 * refuses them upstream. A bad field is a 400 naming it, in Anthropic's `field: problem` style.
 */
export function messagesToChat(body: Record<string, unknown>, maxMessages = Number.MAX_SAFE_INTEGER): MessagesInput {
  const { provider, api_key: apiKey } = body;
  const model = body.model ?? '';
  if (typeof model !== 'string') throw invalidRequest('model: must be a string', 'model');
  const maxTokens = body.max_tokens;
  if (maxTokens === undefined) throw invalidRequest('max_tokens: Field required', 'max_tokens');
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw invalidRequest('max_tokens: must be an integer of at least 1', 'max_tokens');
  }
  if (!Array.isArray(body.messages)) throw invalidRequest('messages: Field required (an array of {role, content})', 'messages');
  if (body.messages.length === 0) throw invalidRequest('messages: must contain at least one message', 'messages');
  if (body.messages.length > maxMessages) throw invalidRequest(`messages: has ${body.messages.length} entries; the limit is ${maxMessages}`, 'messages');

  const messages: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== null) messages.push({ role: 'system', content: textOf(body.system, 'system') });
  body.messages.forEach((message: unknown, index) => messages.push(...translateMessage(message, `messages.${index}`)));

  const request: ChatRequest = { model: model.trim(), messages, max_tokens: maxTokens };
  if (body.stream !== undefined && body.stream !== null) {
    if (typeof body.stream !== 'boolean') throw invalidRequest('stream: must be a boolean', 'stream');
    // Usage is always asked for: message_start and message_delta carry it.
    if (body.stream) Object.assign(request, { stream: true, stream_options: { include_usage: true } });
  }
  copyNumber(body, request, 'temperature', 'temperature', 0, 2);
  copyNumber(body, request, 'top_p', 'top_p', 0, 1);
  copyNumber(body, request, 'top_k', 'top_k', 0, Number.MAX_SAFE_INTEGER);
  if (body.stop_sequences !== undefined && body.stop_sequences !== null) {
    const stop = body.stop_sequences;
    if (!Array.isArray(stop) || !stop.every((item) => typeof item === 'string') || stop.length > 16) {
      throw invalidRequest('stop_sequences: must be an array of up to 16 strings', 'stop_sequences');
    }
    if (stop.length > 0) request.stop = stop as string[];
  }
  if (isObject(body.metadata) && typeof body.metadata.user_id === 'string') request.user = body.metadata.user_id;
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw invalidRequest('tools: must be an array', 'tools');
    if (body.tools.length > 0) request.tools = body.tools.map((tool: unknown, index) => translateTool(tool, `tools.${index}`));
  }
  if (body.tool_choice !== undefined && body.tool_choice !== null) Object.assign(request, translateToolChoice(body.tool_choice));
  return { request, provider, apiKey };
}

/** One Anthropic message: tool results become `tool` messages (before the rest of a user turn). */
function translateMessage(message: unknown, param: string): ChatMessage[] {
  if (!isObject(message)) throw invalidRequest(`${param}: must be an object with role and content`, param);
  const { role, content } = message;
  if (role !== 'user' && role !== 'assistant' && role !== 'system') throw invalidRequest(`${param}.role: must be user, assistant or system`, `${param}.role`);
  if (role === 'system') return [{ role: 'system', content: textOf(content, `${param}.content`) }];
  if (typeof content === 'string') return [{ role, content }];
  if (!Array.isArray(content)) throw invalidRequest(`${param}.content: must be a string or an array of content blocks`, `${param}.content`);
  const parts: ContentPart[] = [];
  const toolCalls: ToolCall[] = [];
  const toolResults: ChatMessage[] = [];
  content.forEach((block: unknown, index) => {
    const where = `${param}.content.${index}`;
    if (!isObject(block) || typeof block.type !== 'string') throw invalidRequest(`${where}: must be an object with a type`, where);
    switch (block.type) {
      case 'text':
        if (typeof block.text !== 'string') throw invalidRequest(`${where}.text: must be a string`, `${where}.text`);
        parts.push({ type: 'text', text: block.text });
        return;
      case 'image':
        if (role !== 'user') throw invalidRequest(`${where}: images are only allowed in user messages`, where);
        parts.push({ type: 'image_url', image_url: { url: imageUrl(block.source, `${where}.source`) } });
        return;
      case 'tool_use':
        if (role !== 'assistant') throw invalidRequest(`${where}: tool_use blocks belong in assistant messages`, where);
        if (typeof block.id !== 'string' || typeof block.name !== 'string') throw invalidRequest(`${where}: tool_use needs an id and a name`, where);
        toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) } });
        return;
      case 'tool_result': {
        if (role !== 'user') throw invalidRequest(`${where}: tool_result blocks belong in user messages`, where);
        if (typeof block.tool_use_id !== 'string') throw invalidRequest(`${where}.tool_use_id: must be a string`, `${where}.tool_use_id`);
        const text = block.content === undefined || block.content === null ? '' : textOf(block.content, `${where}.content`, true);
        toolResults.push({ role: 'tool', tool_call_id: block.tool_use_id, content: block.is_error === true ? `Error: ${text}` : text });
        return;
      }
      // Reasoning from an earlier turn: no OpenAI equivalent to send it back as.
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        throw invalidRequest(
          `${where}.type: ${JSON.stringify(block.type).slice(0, 60)} is not supported here (text, image, tool_use, tool_result)`,
          `${where}.type`,
        );
    }
  });
  if (role === 'assistant') {
    const text = parts.map((part) => part.text ?? '').join('');
    const assistant: ChatMessage = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
    if (toolCalls.length > 0) assistant.tool_calls = toolCalls;
    return [assistant];
  }
  return parts.length === 0 ? toolResults : [...toolResults, { role: 'user', content: parts }];
}

/** `system` (or a tool result's content): a string or text blocks, joined by blank lines. Images in a tool result are dropped. */
function textOf(value: unknown, param: string, skipOthers = false): string {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) throw invalidRequest(`${param}: must be a string or an array of text blocks`, param);
  const texts: string[] = [];
  value.forEach((block: unknown, index) => {
    if (isObject(block) && block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
    else if (!skipOthers) throw invalidRequest(`${param}.${index}: must be a text block`, `${param}.${index}`);
  });
  return texts.join('\n\n');
}

function imageUrl(source: unknown, param: string): string {
  if (isObject(source) && source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
    return `data:${source.media_type};base64,${source.data}`;
  }
  if (isObject(source) && source.type === 'url' && typeof source.url === 'string') return source.url;
  throw invalidRequest(`${param}: must be {type: "base64", media_type, data} or {type: "url", url}`, param);
}

/** A client tool ({name, description, input_schema}) as an OpenAI function; server tools are refused. */
function translateTool(tool: unknown, param: string): Record<string, unknown> {
  if (!isObject(tool) || typeof tool.name !== 'string') throw invalidRequest(`${param}: must be an object with a name`, param);
  if (tool.type !== undefined && tool.type !== 'custom') {
    throw invalidRequest(
      `${param}.type: server tools (${String(tool.type).slice(0, 60)}) are not supported; define the tool with input_schema`,
      `${param}.type`,
    );
  }
  if (!isObject(tool.input_schema)) throw invalidRequest(`${param}.input_schema: Field required`, `${param}.input_schema`);
  const fn: Record<string, unknown> = { name: tool.name, parameters: tool.input_schema };
  if (typeof tool.description === 'string') fn.description = tool.description;
  return { type: 'function', function: fn };
}

function translateToolChoice(choice: unknown): Partial<ChatRequest> {
  if (!isObject(choice)) throw invalidRequest('tool_choice: must be an object with a type', 'tool_choice');
  const parallel = choice.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {};
  if (choice.type === 'auto') return { tool_choice: 'auto', ...parallel };
  if (choice.type === 'any') return { tool_choice: 'required', ...parallel };
  if (choice.type === 'none') return { tool_choice: 'none' };
  if (choice.type === 'tool' && typeof choice.name === 'string') return { tool_choice: { type: 'function', function: { name: choice.name } }, ...parallel };
  throw invalidRequest('tool_choice: must be {type: "auto" | "any" | "none"} or {type: "tool", name}', 'tool_choice');
}

function copyNumber(from: Record<string, unknown>, to: ChatRequest, key: string, target: string, min: number, max: number): void {
  const value = from[key];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw invalidRequest(`${key}: must be a number from ${min} to ${max}`, key);
  to[target] = value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
