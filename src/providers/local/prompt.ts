/**
 * Turning OpenAI `messages` into input for the embedded model.
 *
 * A GGUF without a chat template (such as the shipped TinyStories base model) cannot hold a
 * conversation, so the honest mapping is a plain completion prompt: the system prompt first, then
 * the messages' text, joined with blank lines. A GGUF with a template gets a real chat history,
 * rendered by node-llama-cpp's auto-resolved chat wrapper. The request's sampling fields map to
 * node-llama-cpp generation options here too.
 */
import type { ChatHistoryItem, ChatWrapper, LlamaModel, LLamaContextualRepeatPenalty } from 'node-llama-cpp';
import type { LlamaCpp } from './llama-module.js';
import type { ChatMessage, ChatRequest } from '../../core/types.js';

export type PromptPlan =
  { readonly kind: 'completion'; readonly prompt: string } | { readonly kind: 'chat'; readonly history: ChatHistoryItem[]; readonly wrapper: ChatWrapper };

/** The text of a message: string content, or the `text` parts of an array (other parts ignored). */
export function messageText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
  }
  return texts.join('\n');
}

function isSystem(message: ChatMessage): boolean {
  return message.role === 'system' || message.role === 'developer';
}

/** System/developer text first, then every other message's text in order, blank-line separated. */
export function flattenMessages(messages: readonly ChatMessage[]): string {
  const system = messages.filter(isSystem).map((m) => messageText(m.content));
  const rest = messages.filter((m) => !isSystem(m)).map((m) => messageText(m.content));
  return [...system, ...rest].filter((text) => text !== '').join('\n\n');
}

/**
 * The conversation as node-llama-cpp history, ending with the model response to generate.
 * A trailing assistant message is kept as the start of that response (prefill).
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    const text = messageText(message.content);
    if (isSystem(message)) history.push({ type: 'system', text });
    else if (message.role === 'assistant') history.push({ type: 'model', response: text === '' ? [] : [text] });
    else if (message.role === 'user') history.push({ type: 'user', text });
    // tool/function results have no slot without tool support: hand them over as user text.
    else if (text !== '') history.push({ type: 'user', text });
  }
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

export function hasChatTemplate(model: LlamaModel): boolean {
  const template = model.fileInfo.metadata.tokenizer?.chat_template;
  return typeof template === 'string' && template !== '';
}

/** Completion for template-less models; otherwise chat, with the wrapper node-llama-cpp picks for the model. */
export function planPrompt(lib: LlamaCpp, model: LlamaModel, messages: readonly ChatMessage[]): PromptPlan {
  return hasChatTemplate(model)
    ? { kind: 'chat', history: toChatHistory(messages), wrapper: lib.resolveChatWrapper(model) }
    : { kind: 'completion', prompt: flattenMessages(messages) };
}

/**
 * The longest a token's text ever is, in practice, in characters (UTF-16 code units). Real
 * vocabularies top out near 16-20 characters per token (runs of spaces or dashes in code
 * tokenizers); 32 leaves room for those with margin. A prompt longer than `contextSize *
 * MAX_CHARS_PER_TOKEN` characters therefore cannot fit the context whatever it says, and is
 * refused by its length alone: tokenizing is synchronous, on the event loop, and megabytes of
 * text stall every other request for seconds before the count says no.
 */
export const MAX_CHARS_PER_TOKEN = 32;

/** Characters of the messages' text (what tokenizing would read, chat template aside). */
export function promptChars(messages: readonly ChatMessage[]): number {
  let total = 0;
  for (const message of messages) {
    const content = message.content;
    if (typeof content === 'string') total += content.length;
    else if (Array.isArray(content)) {
      for (const part of content) if (part.type === 'text' && typeof part.text === 'string') total += part.text.length + 1;
    }
  }
  return total;
}

/** Tokens of the input as the model will see it (completion: +1 for BOS; chat: the rendered history). */
export function countPromptTokens(model: LlamaModel, plan: PromptPlan): number {
  if (plan.kind === 'completion') return model.tokenize(plan.prompt).length + 1;
  return plan.wrapper.generateContextState({ chatHistory: plan.history }).contextText.tokenize(model.tokenizer).length;
}

/** Output bound when the request sets no max_tokens (also bounded by what is left of the context). */
export const DEFAULT_MAX_TOKENS = 256;
/** llama-server's default when the request sets no temperature. */
export const DEFAULT_TEMPERATURE = 0.8;

/** Generation options that LlamaCompletion and LlamaChat both take. */
export interface Sampling {
  maxTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  customStopTriggers?: string[];
  repeatPenalty?: LLamaContextualRepeatPenalty;
}

const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** The request's sampling fields as node-llama-cpp options; `room` is what is left of the context. */
export function sampling(request: ChatRequest, room: number): Sampling {
  const requested = num(request.max_completion_tokens) ?? num(request.max_tokens);
  const settings: Sampling = {
    maxTokens: Math.max(1, Math.min(requested === undefined ? DEFAULT_MAX_TOKENS : Math.floor(requested), room)),
    temperature: Math.max(0, num(request.temperature) ?? DEFAULT_TEMPERATURE),
  };
  const topP = num(request.top_p);
  if (topP !== undefined) settings.topP = Math.min(1, Math.max(0, topP));
  const topK = num(request['top_k']);
  if (topK !== undefined) settings.topK = Math.max(0, Math.floor(topK));
  const seed = num(request.seed);
  if (seed !== undefined) settings.seed = Math.floor(seed);
  const stop = typeof request.stop === 'string' ? [request.stop] : Array.isArray(request.stop) ? request.stop : [];
  const triggers = stop.filter((s): s is string => typeof s === 'string' && s !== '');
  if (triggers.length > 0) settings.customStopTriggers = triggers;
  const presencePenalty = num(request['presence_penalty']) ?? 0;
  const frequencyPenalty = num(request['frequency_penalty']) ?? 0;
  if (presencePenalty !== 0 || frequencyPenalty !== 0) settings.repeatPenalty = { presencePenalty, frequencyPenalty };
  return settings;
}
