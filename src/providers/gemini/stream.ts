import type { Readable } from 'node:stream';
import { UpstreamError } from '../../core/errors.js';
import { readEventStream, type StreamDecoder } from '../../core/event-stream.js';
import { SseParser } from '../../core/sse-parser.js';
import type { ChatChunk } from '../../core/types.js';
import type { StreamTranslator } from './response.js';

/**
 * Reads a Gemini `streamGenerateContent?alt=sse` body as chat chunks, as the bytes arrive.
 *
 * Each `data:` event is one GenerateContentResponse (Gemini frames them `\r\n\r\n`; LF and CR work
 * too) and EOF ends the stream: there is no `[DONE]`. An error after the stream started comes as a
 * `data: {"error": …}` event or as plain JSON written outside any `data:` line (google-genai's
 * parser balances braces for it); both throw an UpstreamError of the Status's kind. A stream that
 * ends before any finishReason throws too. Bounded: one event, and one stray JSON document, may
 * hold at most `maxEventBytes`.
 *
 * On the shared event-stream reader (backpressure, no promise per network read); `return()` (a
 * consumer that stops early) drops the upstream response, which cancels the generation.
 */
export function chunksFromGeminiSse(
  body: Readable,
  signal: AbortSignal,
  maxEventBytes: number,
  translator: StreamTranslator,
): AsyncIterableIterator<ChatChunk> {
  return readEventStream(body, signal, new GeminiDecoder(maxEventBytes, translator));
}

/** Gemini's stream as decoded by the shared reader: SSE events and stray JSON documents, translated to chunks. */
class GeminiDecoder implements StreamDecoder<ChatChunk> {
  readonly #parser: SseParser;
  readonly #stray: StrayJson;
  readonly #translator: StreamTranslator;

  constructor(maxEventBytes: number, translator: StreamTranslator) {
    this.#parser = new SseParser(maxEventBytes);
    this.#stray = new StrayJson(maxEventBytes);
    this.#translator = translator;
  }

  push(text: string): ChatChunk[] {
    const chunks: ChatChunk[] = [];
    for (const event of this.#parser.push(text)) this.#event(event.data, chunks);
    for (const document of this.#stray.push(text)) this.#document(document, chunks);
    return chunks;
  }

  end(): ChatChunk[] {
    const chunks: ChatChunk[] = [];
    for (const event of this.#parser.end()) this.#event(event.data, chunks);
    const rest = this.#stray.end();
    if (rest !== undefined) this.#document(rest, chunks);
    if (!this.#translator.finished) throw new UpstreamError('connection', 'the upstream stream ended before any finishReason');
    chunks.push(...this.#translator.end());
    return chunks;
  }

  #event(data: string, out: ChatChunk[]): void {
    if (data === '' || data === '[DONE]') return;
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      throw new UpstreamError('bad_response', `the upstream sent an SSE event that is not JSON: ${data.slice(0, 200)}`);
    }
    out.push(...this.#translator.event(value));
  }

  /** JSON written outside `data:` lines: an error Status, or (from a proxy) responses as they are. */
  #document(text: string, out: ChatChunk[]): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new UpstreamError('bad_response', `the upstream sent text that is neither a server-sent event nor JSON: ${text.slice(0, 200)}`);
    }
    for (const item of Array.isArray(value) && !isErrorArray(value) ? value : [value]) out.push(...this.#translator.event(item));
  }
}

/** `[{"error": …}]`: one Status in an array, not a list of responses. */
function isErrorArray(value: unknown[]): boolean {
  const first: unknown = value[0];
  return value.length === 1 && typeof first === 'object' && first !== null && 'error' in first;
}

/**
 * Finds JSON documents written outside SSE lines. A line is SSE when it starts with a letter
 * (`data:`, `event:`, any field) or `:` (a comment); any other line (`{`, `  "error": {`, `[`, `,`)
 * is stray, as is every line while a stray document is still open. Stray text is scanned for
 * balanced braces and brackets (strings and escapes respected), character by character, once:
 * linear time. A document larger than `max` code units is a bad response.
 */
export class StrayJson {
  readonly #max: number;
  #atLineStart = true;
  #strayLine = false;
  #pendingCR = false;
  /** A document has started (its first non-blank character was seen). */
  #open = false;
  /** It opened with a bracket (else it is a scalar or junk, closed by its line's end). */
  #bracketed = false;
  #depth = 0;
  #inString = false;
  #escape = false;
  #pieces: string[] = [];
  #length = 0;

  constructor(max: number) {
    this.#max = max;
  }

  push(text: string): string[] {
    const documents: string[] = [];
    const length = text.length;
    let start = 0;
    if (this.#pendingCR && length > 0 && text.charCodeAt(0) === 10) start = 1;
    if (length > 0) this.#pendingCR = false;
    let lf = text.indexOf('\n', start);
    let cr = text.indexOf('\r', start);
    while (start < length) {
      if (this.#atLineStart) {
        const first = text.charCodeAt(start);
        if (first !== 10 && first !== 13) {
          this.#atLineStart = false;
          this.#strayLine = this.#open || !(isLetter(first) || first === 58 /* : */);
        }
      }
      if (lf !== -1 && lf < start) lf = text.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = text.indexOf('\r', start);
      const end = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf;
      const stop = end === -1 ? length : end;
      if (this.#strayLine && stop > start) this.#scan(text, start, stop, documents);
      if (end === -1) break;
      if (this.#strayLine) this.#endLine(documents);
      this.#atLineStart = true;
      this.#strayLine = false;
      start = end + 1;
      if (text.charCodeAt(end) === 13) {
        if (start === length) this.#pendingCR = true;
        else if (text.charCodeAt(start) === 10) start += 1;
      }
    }
    return documents;
  }

  /** What is left when the body ended: an unfinished document, or nothing. */
  end(): string | undefined {
    if (!this.#open) return undefined;
    const rest = this.#pieces.join('');
    this.#reset();
    return rest;
  }

  #scan(text: string, from: number, to: number, documents: string[]): void {
    let segment = this.#open ? from : -1;
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      if (!this.#open) {
        if (c === 32 || c === 9 || c === 44 /* , */) continue;
        this.#open = true;
        segment = i;
      }
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (c === 92 /* \ */) this.#escape = true;
        else if (c === 34 /* " */) this.#inString = false;
        continue;
      }
      if (c === 34) this.#inString = true;
      else if (c === 123 /* { */ || c === 91 /* [ */) {
        this.#depth += 1;
        this.#bracketed = true;
      } else if (c === 125 /* } */ || c === 93 /* ] */) {
        this.#depth -= 1;
        if (this.#depth <= 0 && this.#bracketed) {
          this.#keep(text, segment, i + 1);
          documents.push(this.#pieces.join(''));
          this.#reset();
          segment = -1;
        }
      }
    }
    if (this.#open && segment !== -1) this.#keep(text, segment, to);
  }

  #endLine(documents: string[]): void {
    if (this.#open && !this.#bracketed) {
      // A line of text that is no JSON container: reported as it is (parsing it fails loudly).
      documents.push(this.#pieces.join(''));
      this.#reset();
    } else if (this.#open) this.#keep('\n', 0, 1);
  }

  #keep(text: string, from: number, to: number): void {
    if (to <= from) return;
    this.#length += to - from;
    if (this.#length > this.#max) {
      this.#reset();
      throw new UpstreamError('bad_response', `the upstream sent a JSON document larger than ${this.#max} bytes outside its events`);
    }
    this.#pieces.push(from === 0 && to === text.length ? text : text.slice(from, to));
  }

  #reset(): void {
    this.#open = false;
    this.#bracketed = false;
    this.#depth = 0;
    this.#inString = false;
    this.#escape = false;
    this.#pieces = [];
    this.#length = 0;
  }
}

function isLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}
