/**
 * The client commands' one way to the gateway: Node's fetch, the options every client command
 * takes (--url, --api-key), and errors turned into one line each (unreachable server, the
 * server's own error message with its status) instead of fetch's "TypeError: fetch failed".
 */
import { Option, type Command } from 'commander';
import { SseParser } from '../core/sse-parser.js';
import { CliError, usageError } from './errors.js';

export const defaultUrl = 'http://127.0.0.1:1337';

/** What --url and --api-key gave, as commander parsed them. */
export interface ClientFlags {
  url: string;
  apiKey?: string;
}

/** A running gateway: its origin (no trailing slash, no /v1) and the key it wants, if any. */
export interface Gateway {
  url: string;
  apiKey: string | undefined;
}

/** Adds --url and --api-key (each with its environment variable) to a client command. */
export function withClientOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the running gateway').env('INTERFERENCE_URL').default(defaultUrl))
    .addOption(new Option('--api-key <key>', "the gateway's key, sent as Authorization: Bearer").env('INTERFERENCE_API_KEY'))
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 the gateway could not be reached or answered with an error,\n2 a bad command line, 130 interrupted (Ctrl-C).',
    );
}

export function gatewayFrom(flags: ClientFlags): Gateway {
  let url: URL;
  try {
    url = new URL(flags.url);
  } catch {
    throw usageError(`--url: found ${JSON.stringify(flags.url)}; expected an http(s) URL such as ${defaultUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--url: found ${JSON.stringify(flags.url)}; expected an http(s) URL`);
  // People paste the OpenAI base URL (…/v1) as often as the server's origin: both work.
  const base = url.href.replace(/\/+$/, '').replace(/\/v1$/, '');
  return { url: base, apiKey: flags.apiKey === '' ? undefined : flags.apiKey };
}

interface RequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  signal?: AbortSignal;
}

/** Sends a request; resolves with a 2xx response, or throws a CliError saying what went wrong. */
export async function request(gateway: Gateway, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (gateway.apiKey !== undefined) headers.authorization = `Bearer ${gateway.apiKey}`;
  let response: Response;
  try {
    response = await fetch(`${gateway.url}${path}`, {
      method: options.method ?? 'GET',
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    if (options.signal?.aborted === true) throw interrupted();
    throw new CliError(1, `cannot reach ${gateway.url}: ${networkReason(error)}; start it with \`interference serve\``);
  }
  if (!response.ok) throw await httpError(response);
  return response;
}

export async function getJson<T>(gateway: Gateway, path: string): Promise<T> {
  return readJson<T>(gateway, path, await request(gateway, path));
}

/** The JSON body of a response from `path`. */
export async function readJson<T>(gateway: Gateway, path: string, response: Response): Promise<T> {
  try {
    return (await response.json()) as T;
  } catch {
    throw new CliError(1, `${gateway.url}${path} answered with something that is not JSON: is this an Interference gateway?`);
  }
}

/** The `data` of each server-sent event of a response, as it arrives. */
export async function* sseData(response: Response): AsyncGenerator<string> {
  if (response.body === null) return;
  const parser = new SseParser();
  const decoder = new TextDecoder();
  for await (const bytes of response.body) {
    for (const event of parser.push(decoder.decode(bytes, { stream: true }))) yield event.data;
  }
}

export function interrupted(): CliError {
  return new CliError(130, 'interrupted');
}

/** The server's `error.message` and status, with a hint where the fix is on our side. */
async function httpError(response: Response): Promise<CliError> {
  const text = await response.text().catch(() => '');
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not JSON: the status alone says it
  }
  const hint = response.status === 401 ? '; pass --api-key or set INTERFERENCE_API_KEY' : '';
  return new CliError(1, `${message ?? (response.statusText || 'request failed')} (HTTP ${response.status}${hint})`);
}

/** Why fetch could not get an answer, in words: undici hides the system error in `cause`. */
function networkReason(error: unknown): string {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'no such host';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was closed';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timed out';
    default:
      return cause instanceof Error ? cause.message : String(cause);
  }
}
