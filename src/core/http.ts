import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, constants as zlib } from 'node:zlib';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import type { AbortLike, AbortState } from './abort.js';
import { UpstreamError, kindForStatus, parseRetryAfter } from './errors.js';
import { assertPublicHost, publicLookup } from './public-address.js';

// undici's Agent and its `request` API only: the package's index also loads fetch, web streams,
// WebSocket and more, ~8 MB of memory this gateway never uses (measured: 61 → 53 MB RSS).
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
const api = require('undici/lib/api/index.js') as {
  request(this: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
};
// What `exchange` hands on when the body is a stream: undici's own body stream (destroying it
// aborts the request), fed by our handler instead of its RequestHandler.
const BodyReadable = require('undici/lib/api/readable.js').Readable as new (options: {
  resume: () => void;
  abort: () => void;
  contentType?: string;
  contentLength?: number | null;
}) => Readable;
const { parseHeaders } = require('undici/lib/core/util.js') as { parseHeaders(raw: Buffer[]): Dispatcher.ResponseData['headers'] };
type Agent = UndiciAgent;

/** Per-attempt time limits, by phase. */
export interface Timeouts {
  /** TCP (and TLS) connect. */
  connectMs: number;
  /** From sending the request to the response headers. */
  firstByteMs: number;
  /** Longest silence between two body chunks. */
  idleMs: number;
}

export const defaultTimeouts: Timeouts = { connectMs: 10_000, firstByteMs: 120_000, idleMs: 120_000 };

/** Caps on what one upstream reply may make us hold in memory. */
export interface UpstreamLimits {
  /** A non-streamed body, an aggregated completion, a downloaded file (and all of a request's downloads). */
  maxBodyBytes: number;
  /** One server-sent event (or one line of it). */
  maxEventBytes: number;
  /** Files named by upstreams or clients may be fetched from this machine and its network (INTERFERENCE_PRIVATE_DOWNLOADS). */
  privateDownloads?: boolean;
}

export const defaultLimits: UpstreamLimits = { maxBodyBytes: 32 * 1024 * 1024, maxEventBytes: 16 * 1024 * 1024 };

/** An upstream's answer once its headers arrived; `body` is already decoded (gzip, deflate, br). */
export interface UpstreamResponse {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Readable;
}

const agents = new Map<string, Agent>();

/**
 * One keep-alive agent per connect timeout (in practice: one for the process), and another whose
 * connections may only reach public addresses (downloads of files named by upstreams or clients).
 */
function agentFor(connectMs: number, publicOnly: boolean): Agent {
  const key = `${connectMs}${publicOnly ? ':public' : ''}`;
  let agent = agents.get(key);
  if (agent === undefined) {
    const connect = publicOnly ? { timeout: connectMs, lookup: publicLookup } : { timeout: connectMs };
    agent = new Agent({ connect, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
    agents.set(key, agent);
  }
  return agent;
}

export async function closeAgents(): Promise<void> {
  const all = [...agents.values()];
  agents.clear();
  await Promise.all(all.map((agent) => agent.close()));
}

export interface SendOptions {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  signal: AbortSignal;
  timeouts: Timeouts;
  /** Connect only to public addresses (see `public-address.ts`): for URLs we were handed, not configured. */
  publicOnly?: boolean;
}

/**
 * Sends one request and returns the response once headers arrived. Network failures become
 * `UpstreamError`s with the right kind; HTTP error statuses are returned as they are.
 */
export async function send(options: SendOptions): Promise<UpstreamResponse> {
  const { origin, path, agent } = target(options);
  let response: Dispatcher.ResponseData;
  try {
    response = await api.request.call(agent, {
      origin,
      path,
      method: options.method,
      headers: options.headers,
      body: options.body ?? null,
      signal: options.signal,
      headersTimeout: options.timeouts.firstByteMs,
      bodyTimeout: options.timeouts.idleMs,
    });
  } catch (error) {
    throw networkError(error, options.signal);
  }
  return { statusCode: response.statusCode, headers: response.headers, body: decoded(response.headers, response.body) };
}

/** Where a request goes: its origin and path, and the agent for it (a URL we were handed: public addresses only). */
function target(options: Pick<SendOptions, 'url' | 'publicOnly' | 'timeouts'>): { origin: string; path: string; agent: Agent } {
  const { origin, path } = splitUrl(options.url);
  const publicOnly = options.publicOnly === true;
  if (publicOnly) assertPublicHost(new URL(origin).hostname); // an IP literal is never looked up
  return { origin, path, agent: agentFor(options.timeouts.connectMs, publicOnly) };
}

/** An upstream's answer as `exchange` reads it: whole, or (a stream, a compressed body) as `send` returns it. */
export type UpstreamExchange =
  { kind: 'whole'; statusCode: number; headers: Dispatcher.ResponseData['headers']; bytes: Buffer } | { kind: 'stream'; response: UpstreamResponse };

/** How much of an error body is read (the rest is dropped): messages are short. */
export const maxErrorBodyBytes = 64 * 1024;

/**
 * `send` for a request whose answer is usually one small JSON body (every non-streamed chat
 * request): a 2xx body is read whole, up to `maxBodyBytes` (past it, a `bad_response`), an error
 * status's up to 64 KiB (the rest dropped), by a handler of our own on undici's dispatcher: no body
 * stream, no promise per chunk, no async resource. An event stream, or a body the upstream
 * compressed, comes back as `send` returns it (decoded), for the caller to stream.
 */
export function exchange(options: Omit<SendOptions, 'signal'> & { signal: AbortLike; maxBodyBytes: number }): Promise<UpstreamExchange> {
  const { origin, path, agent } = target(options);
  const { signal } = options;
  if (signal.aborted) return Promise.reject(networkError(signal.reason, signal));
  return new Promise((resolve, reject) => {
    const handler = new ExchangeHandler(signal, options.maxBodyBytes, resolve, reject);
    agent.dispatch(
      {
        origin,
        path,
        method: options.method,
        headers: options.headers,
        body: options.body ?? null,
        headersTimeout: options.timeouts.firstByteMs,
        bodyTimeout: options.timeouts.idleMs,
      },
      handler,
    );
  });
}

/** undici's handler interface (the one its HTTP/1.1 client calls directly), for one `exchange`. */
class ExchangeHandler {
  private abortRequest: ((error?: Error) => void) | undefined;
  private readonly parts: Buffer[] = [];
  private size = 0;
  private limit = 0;
  private statusCode = 0;
  private headers: Dispatcher.ResponseData['headers'] = {};
  private stream: Readable | undefined;
  private settled = false;
  private readonly onAbort = (): void => {
    const error = this.abortError();
    if (this.stream !== undefined) destroyQuietly(this.stream, error);
    else this.abortRequest?.(error);
  };

  constructor(
    private readonly signal: AbortLike,
    private readonly maxBodyBytes: number,
    private readonly resolve: (value: UpstreamExchange) => void,
    private readonly reject: (error: UpstreamError) => void,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  onConnect(abort: (error?: Error) => void): void {
    if (!this.signal.aborted) this.abortRequest = abort;
    else abort(this.abortError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: the answer is still to come
    const ok = statusCode < 300;
    const headers = parseHeaders(rawHeaders);
    const type = headers['content-type'];
    const streamed = ok && typeof type === 'string' && type.includes('text/event-stream');
    const encoding = headers['content-encoding'];
    if (streamed || (encoding !== undefined && encoding !== 'identity')) {
      const body = new BodyReadable({ resume, abort: () => this.abortRequest?.(), contentType: typeof type === 'string' ? type : '' });
      this.stream = body;
      body.once('close', this.detach);
      this.settle();
      this.resolve({ kind: 'stream', response: { statusCode, headers, body: decoded(headers, body) } });
      return true;
    }
    this.statusCode = statusCode;
    this.headers = headers;
    this.limit = ok ? this.maxBodyBytes : maxErrorBodyBytes;
    if (ok && Number(headers['content-length']) > this.limit) {
      this.fail(new UpstreamError('bad_response', `the upstream body is larger than ${this.limit} bytes`));
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.stream !== undefined) return this.stream.push(chunk);
    if (this.settled) return false;
    if (this.size + chunk.length > this.limit) {
      if (this.statusCode < 300) {
        this.fail(new UpstreamError('bad_response', `the upstream body is larger than ${this.limit} bytes`));
        return false;
      }
      // An error body: its first 64 KiB say enough.
      this.parts.push(chunk.subarray(0, this.limit - this.size));
      this.size = this.limit;
      this.finish();
      this.abortRequest?.();
      return false;
    }
    this.parts.push(chunk);
    this.size += chunk.length;
    return true;
  }

  onComplete(): void {
    if (this.stream !== undefined) this.stream.push(null);
    else this.finish();
  }

  onError(error: Error): void {
    const stream = this.stream;
    if (stream !== undefined) {
      // As undici's own handler: after the handlers already queued, so a reader sees what arrived first.
      queueMicrotask(() => destroyQuietly(stream, error));
      return;
    }
    if (this.settled) return;
    this.settle();
    this.reject(networkError(error, this.signal));
  }

  /** The signal's reason when it is an error (a deadline's), else a plain abort. */
  private abortError(): Error {
    const reason: unknown = this.signal.reason;
    return reason instanceof Error ? reason : new UpstreamError('aborted', 'request aborted');
  }

  private finish(): void {
    if (this.settled) return;
    this.settle();
    const bytes = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.size);
    this.resolve({ kind: 'whole', statusCode: this.statusCode, headers: this.headers, bytes });
  }

  private fail(error: UpstreamError): void {
    this.settle();
    this.reject(error);
    this.abortRequest?.(error);
  }

  /** No more answers from this handler; the signal stays attached while a stream is being read. */
  private settle(): void {
    this.settled = true;
    if (this.stream === undefined) this.detach();
  }

  private readonly detach = (): void => {
    this.signal.removeEventListener('abort', this.onAbort);
  };
}

function destroyQuietly(stream: Readable, error: Error): void {
  if (stream.destroyed) return;
  stream.on('error', ignore);
  stream.destroy(error);
}

/**
 * The body as sent, or decoded when the upstream compressed it although we never asked
 * (`content-encoding: gzip | x-gzip | deflate | br`). Decoded bytes go through the same caps as
 * any other, so a compression bomb stops at the cap. An encoding we cannot decode is left as is:
 * the parser then fails it as a bad response.
 */
function decoded(headers: Dispatcher.ResponseData['headers'], body: Readable): Readable {
  const raw = headers['content-encoding'];
  const encoding = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return body;
  let decoder: NodeJS.ReadWriteStream & Readable;
  // Lenient flushing, as browsers: a stream cut at a chunk boundary still yields what arrived.
  if (encoding === 'gzip' || encoding === 'x-gzip') decoder = createGunzip({ flush: zlib.Z_SYNC_FLUSH, finishFlush: zlib.Z_SYNC_FLUSH });
  else if (encoding === 'deflate') decoder = createInflate({ flush: zlib.Z_SYNC_FLUSH, finishFlush: zlib.Z_SYNC_FLUSH });
  else if (encoding === 'br') decoder = createBrotliDecompress({ flush: zlib.BROTLI_OPERATION_FLUSH, finishFlush: zlib.BROTLI_OPERATION_FLUSH });
  else return body;
  // Destroying the decoder (a consumer that stops early) destroys the upstream body too.
  return pipeline(body, decoder, ignore) as unknown as Readable;
}

/** `http://host:port/a/b?c` → origin `http://host:port`, path `/a/b?c` (no URL object per request). */
function splitUrl(url: string): { origin: string; path: string } {
  const scheme = url.indexOf('://');
  if (scheme <= 0) throw new UpstreamError('connection', `not an absolute URL: ${url.slice(0, 200)}`);
  const slash = url.indexOf('/', scheme + 3);
  return slash === -1 ? { origin: url, path: '/' } : { origin: url.slice(0, slash), path: url.slice(slash) };
}

/** Classifies an error thrown by undici (or by reading its body). */
export function networkError(error: unknown, signal?: AbortState): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof UpstreamError) return reason;
    return new UpstreamError('aborted', 'request aborted', { cause: error });
  }
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new UpstreamError('timeout', 'connect timeout', { cause: error });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamError('timeout', 'no response headers within the first-byte timeout', { cause: error });
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamError('timeout', 'the response body stalled past the idle timeout', { cause: error });
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return new UpstreamError('aborted', 'request aborted', { cause: error });
    case 'ECONNREFUSED':
      return new UpstreamError('connection', 'connection refused', { cause: error });
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
      return new UpstreamError('connection', `the upstream closed the connection (${code})`, { cause: error });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UpstreamError('connection', `host not found (${code})`, { cause: error });
    default:
      return new UpstreamError('connection', code ? `${code}: ${message}` : message, { cause: error });
  }
}

/**
 * Reads a body, bounded by `limit` bytes: past it, `truncate` keeps the first `limit` bytes (error
 * bodies), `fail` throws (a reply too large to be what we asked for).
 */
export async function readBounded(body: Readable, signal: AbortState | undefined, limit: number, overflow: 'truncate' | 'fail'): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      if (size + buffer.length > limit) {
        discardBody(body);
        if (overflow === 'fail') throw new UpstreamError('bad_response', `the upstream body is larger than ${limit} bytes`);
        parts.push(buffer.subarray(0, limit - size));
        size = limit;
        break;
      }
      size += buffer.length;
      parts.push(buffer);
    }
  } catch (error) {
    throw networkError(error, signal);
  }
  return Buffer.concat(parts, size);
}

/** Reads at most 64 KiB of a body as text (error bodies). */
export async function readLimited(body: Readable, signal?: AbortState): Promise<string> {
  return (await readBounded(body, signal, maxErrorBodyBytes, 'truncate')).toString('utf8');
}

/**
 * Turns a non-2xx upstream response into an UpstreamError, reading the message from the
 * shapes vendors use: OpenAI `{error:{message}}`, HF/Ollama `{error:"…"}`, `{message}`, `{detail}`.
 */
export async function errorFromResponse(response: UpstreamResponse, signal?: AbortState): Promise<UpstreamError> {
  const status = response.statusCode;
  if (status >= 300 && status < 400) {
    discardBody(response.body);
    return errorFromStatus(status, response.headers, '');
  }
  const text = await readLimited(response.body, signal).catch(() => '');
  return errorFromStatus(status, response.headers, text);
}

/** The same from an error body already read (`exchange`). */
export function errorFromStatus(status: number, headers: Dispatcher.ResponseData['headers'], text: string): UpstreamError {
  if (status >= 300 && status < 400) {
    // Never followed (it could take a key elsewhere) and never passed on as our own status.
    return new UpstreamError('bad_response', `HTTP ${status}: the upstream answered with a redirect, which the gateway does not follow; check its base URL`, {
      status,
    });
  }
  const { message, code } = errorMessageFrom(text);
  const retryAfter = parseRetryAfter(headers);
  return new UpstreamError(kindForStatus(status), `HTTP ${status}: ${message || 'no error message'}`, {
    status,
    code,
    ...(retryAfter === undefined ? {} : { retryAfter }),
  });
}

export function errorMessageFrom(text: string): { message: string; code: string | null } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { message: text.trim().slice(0, 500), code: null };
  }
  const root = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof root !== 'object' || root === null) return { message: String(root).slice(0, 500), code: null };
  const record = root as Record<string, unknown>;
  const error = record.error;
  if (typeof error === 'string') return { message: error, code: null };
  if (Array.isArray(error)) return { message: error.map(String).join('; '), code: null };
  if (typeof error === 'object' && error !== null) {
    const inner = error as Record<string, unknown>;
    const message = typeof inner.message === 'string' ? inner.message : JSON.stringify(inner).slice(0, 500);
    const code = typeof inner.code === 'string' ? inner.code : typeof inner.status === 'string' ? inner.status : null;
    return { message, code };
  }
  if (typeof record.message === 'string') return { message: record.message, code: null };
  if (record.detail !== undefined) return { message: typeof record.detail === 'string' ? record.detail : JSON.stringify(record.detail), code: null };
  return { message: text.slice(0, 500), code: null };
}

/**
 * Drops a response body we will not read to its end. undici turns such a destroy into an
 * `error` event (RequestAbortedError); without a listener that would be an uncaught exception.
 */
export function discardBody(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', ignore);
  body.destroy();
}

function ignore(): void {
  // the body was abandoned on purpose
}

/** A host name (or `[::1]`) on this machine: `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}
