/** Reading the gateway's event streams (`data: <json>\n\n` … `data: [DONE]\n\n`) as a client does. */
import { isRecord } from './http.js';

/** The payloads of a stream's `data: ` events, in order (`[DONE]` included), as text. */
export function sseData(raw: string): string[] {
  return raw
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice(6));
}

export interface SseParsed {
  /** The `data:` events parsed as JSON (chunks and error events). */
  events: unknown[];
  /** `[DONE]` came. */
  done: boolean;
  /** Data events after `[DONE]` (there must be none). */
  afterDone: number;
}

/** Parses the `data:` events of an SSE body read as text. */
export function parseSse(raw: string): SseParsed {
  const events: unknown[] = [];
  let done = false;
  let afterDone = 0;
  for (const data of sseData(raw)) {
    if (done) afterDone += 1;
    if (data === '[DONE]') done = true;
    else events.push(JSON.parse(data) as unknown);
  }
  return { events, done, afterDone };
}

export interface SseResult extends SseParsed {
  raw: string;
}

/** Reads an SSE response to its end and parses its events; `raw` is the body as it came. */
export async function readSse(response: Response): Promise<SseResult> {
  const raw = await response.text();
  return { ...parseSse(raw), raw };
}

/** The assistant text carried by chunk events (error events carry none). */
export function streamText(events: readonly unknown[]): string {
  let text = '';
  for (const event of events) {
    if (!isRecord(event) || !Array.isArray(event.choices)) continue;
    for (const choice of event.choices as unknown[]) {
      if (!isRecord(choice) || !isRecord(choice.delta)) continue;
      const content = choice.delta.content;
      if (typeof content === 'string') text += content;
    }
  }
  return text;
}
