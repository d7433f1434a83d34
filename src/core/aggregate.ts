import type { ChatChunk, ChatCompletion, FinishReason, ToolCall, Usage } from './types.js';

/** Builds one chat.completion from a stream of chunks (for non-streaming clients). */
export async function completionFromChunks(chunks: AsyncIterable<ChatChunk>): Promise<ChatCompletion> {
  let head: ChatChunk | undefined;
  let usage: Usage | undefined;
  const choices = new Map<number, { content: string[]; toolCalls: ToolCall[]; finish: FinishReason | null; reasoning: string[] }>();
  for await (const chunk of chunks) {
    head ??= chunk;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      let state = choices.get(choice.index);
      if (state === undefined) {
        state = { content: [], toolCalls: [], finish: null, reasoning: [] };
        choices.set(choice.index, state);
      }
      const delta = choice.delta ?? {};
      if (typeof delta.content === 'string') state.content.push(delta.content);
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (typeof reasoning === 'string') state.reasoning.push(reasoning);
      for (const piece of delta.tool_calls ?? []) {
        let call = state.toolCalls[piece.index];
        if (call === undefined) {
          call = { id: piece.id ?? '', type: 'function', function: { name: '', arguments: '' } };
          state.toolCalls[piece.index] = call;
        }
        if (piece.id) call.id = piece.id;
        if (piece.function?.name) call.function.name += piece.function.name;
        if (piece.function?.arguments) call.function.arguments += piece.function.arguments;
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
