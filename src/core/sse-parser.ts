import { UpstreamError } from './errors.js';

/** One server-sent event: its `event:` name (default `message`) and its joined `data:` lines. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Default cap on one event (its line being read plus the data lines already kept): 16 MiB. */
export const defaultMaxEventBytes = 16 * 1024 * 1024;

/**
 * Incremental SSE decoder (WHATWG event-stream rules): lines end with LF, CRLF or CR; a blank
 * line dispatches; `data:` lines are joined with `\n`; comments (`:`) are ignored. Feed it text in
 * any split; it returns the events completed by that text.
 *
 * Linear time: each character is scanned once (an unfinished line is kept as pieces, never
 * rescanned), and memory is bounded: an event larger than `maxEventBytes` (counted in UTF-16
 * code units, what the pieces hold) throws an `UpstreamError('bad_response')`.
 */
export class SseParser {
  readonly #max: number;
  /** The unfinished line, as the pieces it arrived in. */
  #line: string[] = [];
  #lineLength = 0;
  #data: string[] = [];
  #dataLength = 0;
  #event = '';
  /** A chunk ended in CR: a following LF belongs to that line ending. */
  #pendingCR = false;

  constructor(maxEventBytes = defaultMaxEventBytes) {
    this.#max = maxEventBytes;
  }

  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    if (text === '') return events; // keeps a pending CR pending
    let start = 0;
    if (this.#pendingCR && text.charCodeAt(0) === 10) start = 1;
    this.#pendingCR = false;
    const length = text.length;
    // Native searches, each position found once: a search is redone only once passed.
    let lf = text.indexOf('\n', start);
    let cr = text.indexOf('\r', start);
    while (lf !== -1 || cr !== -1) {
      const isCR = cr !== -1 && (lf === -1 || cr < lf);
      const end = isCR ? cr : lf;
      this.#take(text, start, end);
      this.#endLine(events);
      let next = end + 1;
      if (isCR) {
        if (next === length) this.#pendingCR = true;
        else if (lf === next) next += 1;
      }
      start = next;
      if (lf !== -1 && lf < start) lf = text.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = text.indexOf('\r', start);
    }
    if (start < length) this.#take(text, start, length);
    return events;
  }

  /** Dispatches a last event that was not followed by a blank line (stream ended). */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.#lineLength > 0) this.#endLine(events);
    if (this.#data.length > 0) this.#dispatch(events);
    return events;
  }

  /** Adds `text[from, to)` to the unfinished line, within the event cap. */
  #take(text: string, from: number, to: number): void {
    if (to <= from) return;
    this.#lineLength += to - from;
    if (this.#lineLength + this.#dataLength > this.#max) {
      this.#line = [];
      this.#data = [];
      throw new UpstreamError('bad_response', `the upstream sent a server-sent event larger than ${this.#max} bytes`);
    }
    this.#line.push(from === 0 && to === text.length ? text : text.slice(from, to));
  }

  #endLine(events: SseEvent[]): void {
    const line = this.#line.length === 1 ? (this.#line[0] as string) : this.#line.join('');
    this.#line = [];
    this.#lineLength = 0;
    if (line === '') {
      this.#dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.#data.push(value);
      this.#dataLength += value.length + 1;
    } else if (field === 'event') this.#event = value;
  }

  #dispatch(events: SseEvent[]): void {
    if (this.#data.length > 0) {
      events.push({ event: this.#event || 'message', data: this.#data.length === 1 ? (this.#data[0] as string) : this.#data.join('\n') });
    }
    this.#data = [];
    this.#dataLength = 0;
    this.#event = '';
  }
}
