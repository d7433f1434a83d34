import { rawJson } from '../../core/normalize.js';
import type { ChatChunk } from '../../core/types.js';

/**
 * Most events of an OpenAI-style stream are the event before with other text: the same id,
 * created, model and fingerprint, one choice, and only the string of `choices[0].delta.content`
 * changed. Once an event of that form has been parsed, a later one is recognised by its bytes:
 * the same text before that string and after it, and between them a valid JSON string. Replacing
 * one string token of valid JSON by another keeps it valid and of the same structure, so such an
 * event is the parsed one's fields with the new text, and is built from them without JSON.parse
 * (side by side in the bench's SSE run: 96 against 89 µs of CPU per streamed request).
 *
 * A template is made only from an event whose every other value is a string, number, boolean or
 * null (nothing nested is shared between chunks), with exactly one `"content":` key in its text
 * and no backslash outside the content string (so no key is escaped and none can hide a second
 * `content`), and whose content string, parsed alone, is the parsed event's content (the token
 * found is the one JSON.parse read). Any other event, or one that differs anywhere but inside that
 * string, is parsed in full as before.
 */
export class ChunkTemplate {
  private constructor(
    private readonly prefix: string,
    private readonly suffix: string,
    private readonly top: Record<string, unknown>,
    private readonly choice: Record<string, unknown>,
    private readonly delta: Record<string, unknown>,
  ) {}

  /** A template from an event's text and what JSON.parse made of it, or undefined when it does not qualify. */
  static from(data: string, chunk: ChatChunk): ChunkTemplate | undefined {
    if (!flatBesides(chunk, 'choices') || chunk.choices.length !== 1) return undefined;
    const choice = chunk.choices[0] as unknown;
    if (typeof choice !== 'object' || choice === null || !flatBesides(choice, 'delta')) return undefined;
    const delta = (choice as { delta?: unknown }).delta;
    if (typeof delta !== 'object' || delta === null || !flatBesides(delta, 'content')) return undefined;
    const content = (delta as { content?: unknown }).content;
    // An empty content is the role-only opening event's: the events after it have no `role`.
    if (typeof content !== 'string' || content === '') return undefined;

    const key = data.indexOf('"content":');
    if (key === -1 || data.lastIndexOf('"content":') !== key) return undefined;
    let open = key + 10;
    while (data[open] === ' ' || data[open] === '\t' || data[open] === '\r') open++;
    if (data[open] !== '"') return undefined;
    let close = open + 1;
    while (close < data.length && data[close] !== '"') close += data[close] === '\\' ? 2 : 1;
    if (close >= data.length) return undefined;
    const prefix = data.slice(0, open + 1);
    const suffix = data.slice(close);
    if (prefix.includes('\\') || suffix.includes('\\') || data.includes('\n')) return undefined;
    try {
      if (JSON.parse(data.slice(open, close + 1)) !== content) return undefined;
    } catch {
      return undefined;
    }
    // Copies, taken now: the parsed chunk itself is normalised in place later.
    return new ChunkTemplate(
      prefix,
      suffix,
      Object.assign({}, chunk),
      Object.assign({}, choice as Record<string, unknown>),
      Object.assign({}, delta as Record<string, unknown>),
    );
  }

  /** The chunk this event's text stands for, or undefined when it does not match the template. */
  read(data: string): ChatChunk | undefined {
    const { prefix, suffix } = this;
    const end = data.length - suffix.length;
    // Compared as slices: `startsWith` walks a long prefix character by character (0.41 against
    // 0.04 µs for the bench's 180-character prefix on Node 20).
    if (end < prefix.length || data.slice(0, prefix.length) !== prefix || data.slice(end) !== suffix) return undefined;
    const middle = data.slice(prefix.length, end);
    let content: string = middle;
    if (needsDecoding.test(middle)) {
      // A quote, a backslash or a control character: valid only as a JSON string's escapes. An
      // unescaped quote would end the string early and leave text after it, which JSON.parse rejects.
      try {
        content = JSON.parse(`"${middle}"`) as string;
      } catch {
        return undefined;
      }
    }
    // Copies of the pristine parsed objects by Object.assign. A loop of keyed stores measured as
    // slow as JSON.parse itself; spreads (`{ ...this.top }`) were fast alone but, in the server,
    // took the bytes promoted per young GC from ~20 to ~380 KB (the same effect as bench/README.md's
    // "GC, second finding"), and the CPU per streamed request from 101 to 119 µs.
    const delta: Record<string, unknown> = Object.assign({}, this.delta);
    delta.content = content;
    const choice: Record<string, unknown> = Object.assign({}, this.choice);
    choice.delta = delta;
    const top: Record<string | symbol, unknown> = Object.assign({}, this.top);
    top.choices = [choice];
    // The event's own text, to be sent with `provider` spliced in (the template's, copied above, replaced).
    top[rawJson] = data;
    return top as unknown as ChatChunk;
  }
}

const needsDecoding = /["\\\u0000-\u001f]/;

/** Whether every field of `value` but `nested` is a primitive, `nested` is among them, and none is `__proto__`. */
function flatBesides(value: object, nested: string): boolean {
  let found = false;
  for (const key in value) {
    if (!Object.hasOwn(value, key) || key === '__proto__') return false;
    const field = (value as Record<string, unknown>)[key];
    if (key === nested) found = true;
    else if (field !== null && typeof field !== 'string' && typeof field !== 'number' && typeof field !== 'boolean') return false;
  }
  return found;
}
