/**
 * HTTP as the tests' clients speak it: JSON POSTs to the gateway, one-shot undici calls read
 * whole (for the fakes' own tests), raw bytes over a socket (for what no HTTP client would send),
 * and OpenAI's error body.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'undici';

export interface ErrorFields {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** OpenAI's error body, the only error shape the gateway answers with. */
export interface ErrorBody {
  error: ErrorFields;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `{error:{message,type,param,code}}`: four keys, the right types, a non-empty message; beside it
 * only the `model` and `provider` strings gpt4free's clients read.
 */
export function assertErrorBody(value: unknown, where = 'error body'): asserts value is ErrorBody {
  assert.ok(isRecord(value), `${where}: not an object: ${JSON.stringify(value)}`);
  const extra = Object.keys(value).filter((key) => key !== 'error');
  assert.ok(
    'error' in value && extra.every((key) => (key === 'model' || key === 'provider') && typeof value[key] === 'string'),
    `${where}: keys ${JSON.stringify(Object.keys(value))}`,
  );
  const error = value.error;
  assert.ok(isRecord(error), `${where}: error is not an object`);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], `${where}: error keys`);
  assert.equal(typeof error.message, 'string');
  assert.ok((error.message as string).length > 0, `${where}: empty message`);
  assert.equal(typeof error.type, 'string');
  assert.ok(error.param === null || typeof error.param === 'string');
  assert.ok(error.code === null || typeof error.code === 'string');
}

export interface PostInit {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** POSTs `body` (a string as it is, anything else as JSON) with content-type JSON. */
export function postJson(url: string, body: unknown, init: PostInit = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
}

/** A client of a gateway at `url` (`http://127.0.0.1:PORT`), routes starting with `/`. */
export interface GatewayClient {
  post(route: string, body: unknown, init?: PostInit): Promise<Response>;
  get(route: string, signal?: AbortSignal): Promise<Response>;
}

export function gatewayClient(url: string): GatewayClient {
  return {
    post: (route, body, init) => postJson(`${url}${route}`, body, init),
    get: (route, signal) => fetch(`${url}${route}`, signal === undefined ? {} : { signal }),
  };
}

/** A response read whole. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
  text: string;
  json(): unknown;
}

/**
 * One request with undici, its body read whole. A `body` (a string as it is, anything else as
 * JSON) makes it a POST with content-type JSON unless `method` says otherwise.
 */
export async function call(
  url: string,
  init: { method?: 'GET' | 'POST' | 'HEAD'; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Answer> {
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  const res = await request(url, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers: body === undefined ? init.headers : { 'content-type': 'application/json', ...init.headers },
    body,
    signal: init.signal,
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: res.statusCode, headers: res.headers, bytes, text, json: () => JSON.parse(text) as unknown };
}

export interface RawResult {
  data: Buffer;
  /** `data` as latin1: one character a byte, as HTTP heads are read. */
  text: string;
  /** ms from the connection to the server closing it; null when the client gave up first. */
  closedMs: number | null;
  /** The socket's error, if it had one (a reset after the server hung up, say). */
  error: string | undefined;
}

export interface RawExchangeOptions {
  /** After `bytes`, one character of `drip` every `dripMs` (300), for as long as the connection lasts. */
  drip?: string;
  dripMs?: number;
  /** Gives up (and hangs up) after this long: 6000 ms. */
  waitMs?: number;
  /** Gives up this long after the last bytes came (for a keep-alive server that never closes). */
  quietMs?: number;
}

/**
 * A raw TCP client of 127.0.0.1:`port`: writes `bytes` (and then the drip, if any), and records
 * what comes back until the server closes the connection or the client gives up.
 */
export function rawExchange(port: number, bytes: string | Uint8Array, options: RawExchangeOptions = {}): Promise<RawResult> {
  const socket = net.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  let error: string | undefined;
  return new Promise<RawResult>((resolve) => {
    let started = 0;
    let settled = false;
    let dripper: NodeJS.Timeout | undefined;
    let timer = setTimeout(() => finish(null), options.waitMs ?? 6000);
    const finish = (closedMs: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(dripper);
      socket.destroy();
      const data = Buffer.concat(parts);
      resolve({ data, text: data.toString('latin1'), closedMs, error });
    };
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      if (options.quietMs === undefined) return;
      clearTimeout(timer);
      timer = setTimeout(() => finish(null), options.quietMs);
    });
    socket.on('error', (caught: Error) => {
      error = caught.message; // EPIPE/ECONNRESET after the server hung up: the close says the rest
    });
    socket.once('close', () => finish(performance.now() - started));
    socket.once('connect', () => {
      started = performance.now();
      socket.write(bytes);
      const drip = options.drip;
      if (drip === undefined) return;
      let at = 0;
      dripper = setInterval(() => {
        if (!socket.writable) return;
        socket.write(drip[at % drip.length] as string);
        at += 1;
      }, options.dripMs ?? 300);
    });
  });
}
