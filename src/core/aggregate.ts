import { UpstreamError } from './errors.js';
import type { ChatChunk, ChatCompletion, FinishReason, ToolCall, Usage } from './types.js';

/** What one more choice or tool call costs in the byte count, besides its text. */
const entryCost = 256;

/**
 * Builds one chat.completion from a stream of chunks (for non-streaming clients). What it keeps
 * (text, reasoning, tool calls, choices) is counted in UTF-16 code units plus a fixed cost per
 * choice and tool call: past `maxBytes`, the attempt fails as a bad response, whatever the
 * upstream keeps sending.
 */
export async function completionFromChunks(chunks: AsyncIterable<ChatChunk>, maxBytes = Number.POSITIVE_INFINITY): Promise<ChatCompletion> {
  let kept = 0;
  const keep = (size: number): void => {
    kept += size;
    if (kept > maxBytes) throw new UpstreamError('bad_response', `the upstream's answer is larger than ${maxBytes} bytes`);
  };
  let head: ChatChunk | undefined;
  let usage: Usage | undefined;
  const choices = new Map<number, { content: string[]; toolCalls: ToolCall[]; finish: FinishReason | null; reasoning: string[] }>();
  for await (const chunk of chunks) {
    head ??= chunk;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (typeof choice !== 'object' || choice === null) throw new UpstreamError('bad_response', 'the upstream sent a choice that is not an object');
      if (!Number.isInteger(choice.index) || choice.index < 0 || choice.index > 1023) {
        throw new UpstreamError('bad_response', 'the upstream sent a choice without a valid index');
      }
      let state = choices.get(choice.index);
      if (state === undefined) {
        keep(entryCost);
        state = { content: [], toolCalls: [], finish: null, reasoning: [] };
        choices.set(choice.index, state);
      }
      const delta = choice.delta ?? {};
      if (typeof delta.content === 'string') {
        keep(delta.content.length);
        state.content.push(delta.content);
      }
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (typeof reasoning === 'string') {
        keep(reasoning.length);
        state.reasoning.push(reasoning);
      }
      for (const piece of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
        if (typeof piece !== 'object' || piece === null || !Number.isInteger(piece.index) || piece.index < 0 || piece.index > 1023) {
          throw new UpstreamError('bad_response', 'the upstream sent a tool call fragment without a valid index');
        }
        let call = state.toolCalls[piece.index];
        if (call === undefined) {
          keep(entryCost);
          call = { id: piece.id ?? '', type: 'function', function: { name: '', arguments: '' } };
          state.toolCalls[piece.index] = call;
        }
        if (typeof piece.id === 'string' && piece.id !== '') call.id = piece.id;
        if (typeof piece.function?.name === 'string') {
          keep(piece.function.name.length);
          call.function.name += piece.function.name;
        }
        if (typeof piece.function?.arguments === 'string') {
          keep(piece.function.arguments.length);
          call.function.arguments += piece.function.arguments;
        }
      }
      if (choice.finish_reason != null) state.finish = choice.finish_reason;
    }
  }
  if (head === undefined) throw new Error('empty stream');
  const completion: ChatCompletion = {
    id: head.id,
    object: 'chat.completion',
    created: head.created,
    model: head.model,
    choices: [...choices.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, state]) => {
        const toolCalls = state.toolCalls.filter((call) => call !== undefined);
        const message: ChatCompletion['choices'][number]['message'] = {
          role: 'assistant',
          content: state.content.length > 0 || toolCalls.length === 0 ? state.content.join('') : null,
          refusal: null,
        };
        if (toolCalls.length > 0) message.tool_calls = toolCalls;
        if (state.reasoning.length > 0) message.reasoning_content = state.reasoning.join('');
        return { index, message, logprobs: null, finish_reason: state.finish ?? 'stop' };
      }),
  };
  if (usage !== undefined) completion.usage = usage;
  if (typeof head.system_fingerprint === 'string') completion.system_fingerprint = head.system_fingerprint;
  return completion;
}

/** Splits a completion into the chunks a streaming client expects (upstream ignored `stream`). */
export function chunksFromCompletion(completion: ChatCompletion): ChatChunk[] {
  const base = { id: completion.id, object: 'chat.completion.chunk' as const, created: completion.created, model: completion.model };
  const chunks: ChatChunk[] = [];
  for (const choice of completion.choices) {
    const delta: ChatChunk['choices'][number]['delta'] = { role: 'assistant', content: choice.message.content ?? '' };
    if (choice.message.tool_calls) delta.tool_calls = choice.message.tool_calls.map((call, index) => ({ index, ...call }));
    chunks.push({ ...base, choices: [{ index: choice.index, delta, finish_reason: null, logprobs: null }] });
    chunks.push({ ...base, choices: [{ index: choice.index, delta: {}, finish_reason: choice.finish_reason, logprobs: null }] });
  }
  if (completion.usage) chunks.push({ ...base, choices: [], usage: completion.usage });
  return chunks;
}
