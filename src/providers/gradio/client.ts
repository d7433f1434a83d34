import { randomBytes } from 'node:crypto';
import { readAll } from '../../core/download.js';
import { UpstreamError, kindForStatus } from '../../core/errors.js';
import { discardBody, errorMessageFrom, networkError, send, type Timeouts, type UpstreamResponse } from '../../core/http.js';
import { SseParser, type SseEvent } from '../../core/sse-parser.js';

/**
 * A Gradio app's HTTP API, both protocols real Spaces use (gradio ≥4; `/gradio_api` prefix from 5):
 * - call: `POST <root>/gradio_api/call/<api>` → `{event_id}`, then `GET …/call/<api>/<event_id>`
 *   streams `event: heartbeat|generating|complete|error`;
 * - queue: `POST <root>/gradio_api/queue/join` → `{event_id}`, then `GET …/queue/data?session_hash=`
 *   streams `data: {"msg": …}` messages until `process_completed` for our event.
 * Both resolve with the app's output list.
 */

export type GradioProtocol = { kind: 'call'; apiName: string } | { kind: 'queue'; fnIndex: number; triggerId: number };

export interface GradioCall {
  /** The app's root, e.g. https://black-forest-labs-flux-1-schnell.hf.space */
  root: string;
  /** `/gradio_api` (gradio ≥5) or `` (gradio 4). */
  prefix: string;
  protocol: GradioProtocol;
  data: unknown[];
  headers: Record<string, string>;
  signal: AbortSignal;
  timeouts: Timeouts;
  /** Cap on one event of the Space's stream. */
  maxEventBytes: number;
}

export async function runGradio(call: GradioCall): Promise<unknown[]> {
  return call.protocol.kind === 'call' ? runCall(call, call.protocol.apiName) : runQueue(call, call.protocol);
}

async function runCall(call: GradioCall, apiName: string): Promise<unknown[]> {
  const base = `${call.root}${call.prefix}/call/${apiName}`;
  const eventId = await join(call, base, { data: call.data });
  const response = await open(call, `${base}/${eventId}`);
  for await (const event of events(response, call)) {
    if (event.event === 'complete') return outputList(parse(event.data), 'complete');
    if (event.event === 'error') throw spaceError(parse(event.data));
  }
  throw new UpstreamError('connection', 'the Space closed its event stream before `complete`');
}

async function runQueue(call: GradioCall, protocol: { fnIndex: number; triggerId: number }): Promise<unknown[]> {
  const sessionHash = randomBytes(8).toString('hex');
  const base = `${call.root}${call.prefix}/queue`;
  const eventId = await join(call, `${base}/join?`, {
    data: call.data,
    event_data: null,
    fn_index: protocol.fnIndex,
    trigger_id: protocol.triggerId,
    session_hash: sessionHash,
  });
  const response = await open(call, `${base}/data?session_hash=${sessionHash}`);
  for await (const event of events(response, call)) {
    const message = parse(event.data) as Record<string, unknown> | null;
    if (message === null || typeof message !== 'object') continue;
    if (message.event_id !== undefined && message.event_id !== null && message.event_id !== eventId) continue;
    switch (message.msg) {
      case 'process_completed': {
        const output = (message.output ?? {}) as Record<string, unknown>;
        if (message.success === false) throw spaceError({ error: output.error ?? null });
        return outputList(output.data, 'process_completed');
      }
      case 'unexpected_error':
        throw spaceError(typeof message.message === 'string' ? message.message : null);
      case 'close_stream':
        throw new UpstreamError('connection', 'the Space closed the queue stream before completing our job');
      default:
        // estimation, process_starts, progress, log, heartbeat, process_generating: keep waiting
        break;
    }
  }
  throw new UpstreamError('connection', 'the Space closed its queue stream before `process_completed`');
}

/** POSTs the job; returns its event id. A 503 is a full queue (busy Space). */
async function join(call: GradioCall, url: string, body: unknown): Promise<string> {
  const response = await send({
    method: 'POST',
    url,
    headers: { ...call.headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: call.signal,
    timeouts: call.timeouts,
  });
  const text = (await readAll(response.body, call.signal, 1 << 20)).toString('utf8');
  if (response.statusCode < 200 || response.statusCode >= 300) {
    const { message } = errorMessageFrom(text);
    const detail = cleanMessage(message || 'no error message');
    const kind = response.statusCode === 503 ? 'server' : kindForStatus(response.statusCode);
    const busy = response.statusCode === 503 ? 'the Space is busy (queue full): ' : '';
    throw new UpstreamError(kind, `HTTP ${response.statusCode}: ${busy}${detail}`, { status: response.statusCode });
  }
  const eventId = (safeJson(text) as { event_id?: unknown } | undefined)?.event_id;
  if (typeof eventId !== 'string' || eventId === '') throw new UpstreamError('bad_response', `the Space answered without an event_id: ${text.slice(0, 200)}`);
  return eventId;
}

async function open(call: GradioCall, url: string): Promise<UpstreamResponse> {
  const response = await send({ method: 'GET', url, headers: { ...call.headers, accept: 'text/event-stream' }, signal: call.signal, timeouts: call.timeouts });
  if (response.statusCode < 200 || response.statusCode >= 300) {
    const text = (await readAll(response.body, call.signal, 1 << 16).catch(() => Buffer.alloc(0))).toString('utf8');
    throw new UpstreamError(
      kindForStatus(response.statusCode),
      `HTTP ${response.statusCode} on the event stream: ${cleanMessage(errorMessageFrom(text).message)}`,
      {
        status: response.statusCode,
      },
    );
  }
  return response;
}

async function* events(response: UpstreamResponse, call: GradioCall): AsyncGenerator<SseEvent> {
  const { signal } = call;
  const parser = new SseParser(call.maxEventBytes);
  const decoder = new TextDecoder();
  try {
    for await (const raw of response.body) {
      for (const event of parser.push(decoder.decode(raw as Buffer, { stream: true }))) yield event;
    }
    for (const event of parser.end()) yield event;
  } catch (error) {
    throw networkError(error, signal);
  } finally {
    discardBody(response.body);
  }
}

function parse(data: string): unknown {
  const value = safeJson(data);
  if (value === undefined && data !== 'undefined') throw new UpstreamError('bad_response', `the Space sent an event that is not JSON: ${data.slice(0, 200)}`);
  return value;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function outputList(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new UpstreamError('bad_response', `the Space's ${where} data is not an output list`);
  return value;
}

/** `event: error` data: null (gradio ≤5), a string, or `{error, title, …}` (gradio 6). */
function spaceError(data: unknown): UpstreamError {
  let text: string | null = null;
  if (typeof data === 'string') text = data;
  else if (data !== null && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string') text = (data as { error: string }).error;
  const message = text === null ? 'the Space reported an error without a message (often a GPU quota or a crash)' : cleanMessage(text);
  const quota = text !== null && /quota|exceeded your gpu|token limit/i.test(text);
  return new UpstreamError(quota ? 'rate_limit' : 'server', `Space error: ${message}`);
}

/** Drops the HTML tail Spaces append (`… <a href=…>Create a free account</a> …`). */
function cleanMessage(message: string): string {
  const cut = message.indexOf(' <a ');
  return (cut === -1 ? message : message.slice(0, cut)).trim();
}
