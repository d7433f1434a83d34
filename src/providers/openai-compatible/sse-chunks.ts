import { UpstreamError } from '../../core/errors.js';
import { discardBody, networkError, type UpstreamResponse } from '../../core/http.js';
import { SseParser } from '../../core/sse-parser.js';
import type { ChatChunk } from '../../core/types.js';
import { errorMessageFrom } from '../../core/http.js';

/**
 * Reads an OpenAI-style SSE body (`data: <chunk>` … `data: [DONE]`) as chunk objects, as the
 * bytes arrive. A `data: {"error": …}` event or a body that ends before `[DONE]` and before any
 * finish_reason throws. `return()` (a consumer breaking out) destroys the upstream body.
 */
export async function* chunksFromSse(body: UpstreamResponse['body'], signal: AbortSignal): AsyncGenerator<ChatChunk> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  let finished = false;
  let done = false;
  try {
    for await (const raw of body) {
      const events = parser.push(decoder.decode(raw as Buffer, { stream: true }));
      for (const event of events) {
        const chunk = parseEvent(event.event, event.data);
        if (chunk === 'done') {
          done = true;
          break;
        }
        if (chunk === null) continue;
        if (chunk.choices.some((choice) => choice.finish_reason != null)) finished = true;
        yield chunk;
      }
      if (done) break;
    }
    if (!done) {
      for (const event of parser.end()) {
        const chunk = parseEvent(event.event, event.data);
        if (chunk === 'done') done = true;
        else if (chunk !== null) {
          if (chunk.choices.some((choice) => choice.finish_reason != null)) finished = true;
          yield chunk;
        }
      }
    }
  } catch (error) {
    throw networkError(error, signal);
  } finally {
    discardBody(body);
  }
  if (!done && !finished) throw new UpstreamError('connection', 'the upstream stream ended before [DONE]');
}

function parseEvent(name: string, data: string): ChatChunk | 'done' | null {
  if (data === '[DONE]') return 'done';
  if (data === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new UpstreamError('bad_response', `the upstream sent an SSE event that is not JSON: ${data.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null) {
    throw new UpstreamError('bad_response', 'the upstream sent an SSE event that is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  if (name === 'error' || record.error !== undefined) {
    const { message, code } = errorMessageFrom(data);
    throw new UpstreamError('server', `error event in the stream: ${message}`, { code });
  }
  if (!Array.isArray(record.choices)) {
    if (name === 'ping' || record.type === 'ping') return null;
    throw new UpstreamError('bad_response', 'the upstream sent a chunk without choices');
  }
  return value as ChatChunk;
}
