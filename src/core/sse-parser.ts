/** One server-sent event: its `event:` name (default `message`) and its joined `data:` lines. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Incremental SSE decoder (WHATWG event-stream rules): lines end with LF, CRLF or CR; a blank
 * line dispatches; `data:` lines are joined with `\n`; comments (`:`) are ignored. Feed it text in
 * any split; it returns the events completed by that text.
 */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  /** A chunk ended in CR: a following LF belongs to that line ending. */
  #pendingCR = false;

  push(text: string): SseEvent[] {
    if (this.#pendingCR && text.startsWith('\n')) text = text.slice(1);
    this.#pendingCR = false;
    const events: SseEvent[] = [];
    let buffer = this.#buffer + text;
    let start = 0;
    for (;;) {
      const lf = buffer.indexOf('\n', start);
      const cr = buffer.indexOf('\r', start);
      let end: number;
      let next: number;
      if (cr === -1 && lf === -1) break;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        next = lf + 1;
      } else {
        end = cr;
        if (cr + 1 === buffer.length) {
          this.#pendingCR = true;
          next = cr + 1;
        } else next = buffer.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      }
      this.#line(buffer.slice(start, end), events);
      start = next;
    }
    this.#buffer = start === 0 ? buffer : buffer.slice(start);
    buffer = '';
    return events;
  }

  /** Dispatches a last event that was not followed by a blank line (stream ended). */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.#buffer !== '') this.#line(this.#buffer, events);
    this.#buffer = '';
    if (this.#data.length > 0) this.#line('', events);
    return events;
  }

  #line(line: string, events: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) {
        events.push({ event: this.#event || 'message', data: this.#data.length === 1 ? (this.#data[0] as string) : this.#data.join('\n') });
      }
      this.#data = [];
      this.#event = '';
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
  }
}
