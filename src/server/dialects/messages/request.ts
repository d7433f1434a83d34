import { invalidRequest } from '../../../core/errors.js';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../../core/types.js';
import { checkPart } from '../../schemas/issues.js';
import {
  blockHead,
  blockList,
  imageBlock,
  inputSchemaField,
  isTextBlock,
  maxTokensField,
  messageHead,
  messageListField,
  modelField,
  stopSequencesField,
  streamField,
  temperatureField,
  textBlock,
  textBlockList,
  textContentBlock,
  toolChoiceForms,
  toolChoiceObject,
  toolHead,
  toolListField,
  toolResultBlock,
  topKField,
  topPField,
  toolUseBlock,
} from '../../schemas/messages.js';

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
 * The structure of each part is checked with the schemas of `schemas/messages.ts` (the ones the
 * OpenAPI document shows), in the order of the walk below: the semantic checks between them (the
 * message limit, which role may carry which block, server tools) keep their place in that order.
 */
export function messagesToChat(body: Record<string, unknown>, maxMessages = Number.MAX_SAFE_INTEGER): MessagesInput {
  const { provider, api_key: apiKey } = body;
  const model = checkPart(modelField, body.model, 'model', 'anthropic') ?? '';
  const maxTokens = checkPart(maxTokensField, body.max_tokens, 'max_tokens', 'anthropic');
  const list = checkPart(messageListField, body.messages, 'messages', 'anthropic');
  if (list.length > maxMessages) throw invalidRequest(`messages: has ${list.length} entries; the limit is ${maxMessages}`, 'messages');

  const messages: ChatMessage[] = [];
  if (body.system !== undefined && body.system !== null) messages.push({ role: 'system', content: textOf(body.system, 'system') });
  list.forEach((message: unknown, index) => messages.push(...translateMessage(message, `messages.${index}`)));

  const request: ChatRequest = { model: model.trim(), messages, max_tokens: maxTokens };
  // Usage is always asked for: message_start and message_delta carry it.
  if (checkPart(streamField, body.stream, 'stream', 'anthropic') === true) Object.assign(request, { stream: true, stream_options: { include_usage: true } });
  copyNumber(body, request, 'temperature', temperatureField);
  copyNumber(body, request, 'top_p', topPField);
  copyNumber(body, request, 'top_k', topKField);
  const stop = checkPart(stopSequencesField, body.stop_sequences, 'stop_sequences', 'anthropic', true);
  if (stop !== undefined && stop !== null && stop.length > 0) request.stop = stop;
  if (isObject(body.metadata) && typeof body.metadata.user_id === 'string') request.user = body.metadata.user_id;
  const tools = checkPart(toolListField, body.tools, 'tools', 'anthropic');
  if (tools !== undefined && tools !== null && tools.length > 0) request.tools = tools.map((tool: unknown, index) => translateTool(tool, `tools.${index}`));
  if (body.tool_choice !== undefined && body.tool_choice !== null) Object.assign(request, translateToolChoice(body.tool_choice));
  return { request, provider, apiKey };
}

/** One Anthropic message: tool results become `tool` messages (before the rest of a user turn). */
function translateMessage(message: unknown, param: string): ChatMessage[] {
  const { role } = checkPart(messageHead, message, param, 'anthropic');
  const content = (message as Record<string, unknown>).content;
  if (role === 'system') return [{ role: 'system', content: textOf(content, `${param}.content`) }];
  if (typeof content === 'string') return [{ role, content }];
  const blocks = checkPart(blockList, content, `${param}.content`, 'anthropic');
  const parts: ContentPart[] = [];
  const toolCalls: ToolCall[] = [];
  const toolResults: ChatMessage[] = [];
  blocks.forEach((block: unknown, index) => {
    const where = `${param}.content.${index}`;
    switch (checkPart(blockHead, block, where, 'anthropic', true).type) {
      case 'text':
        parts.push({ type: 'text', text: checkPart(textContentBlock, block, where, 'anthropic').text });
        return;
      case 'image': {
        if (role !== 'user') throw invalidRequest(`${where}: images are only allowed in user messages`, where);
        const { source } = checkPart(imageBlock, block, where, 'anthropic');
        parts.push({ type: 'image_url', image_url: { url: source.type === 'base64' ? `data:${source.media_type};base64,${source.data}` : source.url } });
        return;
      }
      case 'tool_use': {
        if (role !== 'assistant') throw invalidRequest(`${where}: tool_use blocks belong in assistant messages`, where);
        const { id, name, input } = checkPart(toolUseBlock, block, where, 'anthropic', true);
        toolCalls.push({ id, type: 'function', function: { name, arguments: JSON.stringify(input ?? {}) } });
        return;
      }
      case 'tool_result': {
        if (role !== 'user') throw invalidRequest(`${where}: tool_result blocks belong in user messages`, where);
        const result = checkPart(toolResultBlock, block, where, 'anthropic');
        const text = result.content === undefined || result.content === null ? '' : textOf(result.content, `${where}.content`, true);
        toolResults.push({ role: 'tool', tool_call_id: result.tool_use_id, content: result.is_error === true ? `Error: ${text}` : text });
        return;
      }
      // Reasoning from an earlier turn: no OpenAI equivalent to send it back as.
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        throw invalidRequest(
          `${where}.type: ${JSON.stringify((block as { type: string }).type).slice(0, 60)} is not supported here (text, image, tool_use, tool_result)`,
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
  const texts: string[] = [];
  checkPart(textBlockList, value, param, 'anthropic').forEach((block: unknown, index) => {
    if (isTextBlock(block)) texts.push(block.text);
    else if (!skipOthers) checkPart(textBlock, block, `${param}.${index}`, 'anthropic', true);
  });
  return texts.join('\n\n');
}

/** A client tool ({name, description, input_schema}) as an OpenAI function; server tools are refused. */
function translateTool(value: unknown, param: string): Record<string, unknown> {
  checkPart(toolHead, value, param, 'anthropic', true);
  const tool = value as Record<string, unknown> & { name: string };
  if (tool.type !== undefined && tool.type !== 'custom') {
    throw invalidRequest(
      `${param}.type: server tools (${String(tool.type).slice(0, 60)}) are not supported; define the tool with input_schema`,
      `${param}.type`,
    );
  }
  checkPart(inputSchemaField, tool.input_schema, `${param}.input_schema`, 'anthropic', true);
  const fn: Record<string, unknown> = { name: tool.name, parameters: tool.input_schema };
  if (typeof tool.description === 'string') fn.description = tool.description;
  return { type: 'function', function: fn };
}

function translateToolChoice(choice: unknown): Partial<ChatRequest> {
  checkPart(toolChoiceObject, choice, 'tool_choice', 'anthropic', true);
  const form = checkPart(toolChoiceForms, choice, 'tool_choice', 'anthropic', true);
  const parallel = (choice as Record<string, unknown>).disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {};
  if (form.type === 'none') return { tool_choice: 'none' };
  if (form.type === 'tool') return { tool_choice: { type: 'function', function: { name: form.name } }, ...parallel };
  return { tool_choice: form.type === 'auto' ? 'auto' : 'required', ...parallel };
}

function copyNumber(from: Record<string, unknown>, to: ChatRequest, key: string, schema: typeof temperatureField): void {
  const value = checkPart(schema, from[key], key, 'anthropic');
  if (value !== undefined && value !== null) to[key] = value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
