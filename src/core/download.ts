import type { Readable } from 'node:stream';
import { UpstreamError } from './errors.js';
import { errorFromResponse, readBounded, send, type Timeouts } from './http.js';
import { sniffImage } from './image-bytes.js';

/** Reads a whole response body, failing past `limit` bytes. */
export function readAll(body: Readable, signal: AbortSignal, limit: number): Promise<Buffer> {
  return readBounded(body, signal, limit, 'fail');
}

/**
 * What one request may still download: a byte budget shared by all of its files (so `n` images of
 * the cap each cannot add up to `n` caps) and a count of files.
 */
export class DownloadBudget {
  #bytes: number;
  #files: number;

  constructor(bytes: number, files: number) {
    this.#bytes = bytes;
    this.#files = files;
  }

  /** Takes one file; returns how many bytes it may have. */
  take(): number {
    if (this.#files <= 0) throw new UpstreamError('bad_response', 'the upstream named more files than were asked for');
    if (this.#bytes <= 0) throw new UpstreamError('bad_response', 'the upstream files are larger than the download cap');
    this.#files -= 1;
    return this.#bytes;
  }

  spend(bytes: number): void {
    this.#bytes -= bytes;
  }
}

export interface DownloadOptions {
  /**
   * Headers with credentials (the provider's key) and the one origin they may go to. A file on any
   * other origin is fetched without them: an upstream's answer never decides where our key goes.
   */
  credentials: { origin: string; headers: Record<string, string> } | undefined;
  signal: AbortSignal;
  timeouts: Timeouts;
  budget: DownloadBudget;
  /**
   * Files at this origin (the provider's own, as configured) are fetched wherever it is; any other
   * URL only from a public address unless `allowPrivate` (INTERFERENCE_PRIVATE_DOWNLOADS=on).
   */
  trustedOrigin?: string | undefined;
  allowPrivate?: boolean | undefined;
}

/**
 * Downloads a file an upstream or a client named (a Space's output, an image URL): http(s) only,
 * credentials only to their own origin, public addresses only (but the provider's own origin), no
 * redirect followed, within the request's byte budget, and checks that the bytes are an image
 * (PNG, JPEG, WebP, GIF).
 */
export async function downloadImage(url: string, options: DownloadOptions): Promise<Buffer> {
  const origin = originOf(url);
  const headers = options.credentials !== undefined && options.credentials.origin === origin ? options.credentials.headers : {};
  const limit = options.budget.take();
  const trusted = options.allowPrivate === true || origin === options.trustedOrigin || origin === options.credentials?.origin;
  const response = await send({ method: 'GET', url, headers, signal: options.signal, timeouts: options.timeouts, publicOnly: !trusted });
  if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, options.signal);
  const bytes = await readAll(response.body, options.signal, limit);
  options.budget.spend(bytes.length);
  return expectImage(bytes, `${origin} (a file the upstream named)`);
}

/** The origin (`scheme://host:port`) of an absolute http(s) URL; anything else is a bad response. */
export function originOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UpstreamError('bad_response', `the upstream named a file at an invalid URL (${JSON.stringify(url.slice(0, 100))})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UpstreamError('bad_response', `the upstream named a file over ${parsed.protocol.slice(0, 20)} (only http and https are fetched)`);
  }
  if (parsed.username !== '' || parsed.password !== '') throw new UpstreamError('bad_response', 'the upstream named a file at a URL with credentials in it');
  return parsed.origin;
}

export function expectImage(bytes: Buffer, from: string): Buffer {
  if (sniffImage(bytes) === undefined) {
    throw new UpstreamError(
      'bad_response',
      `${from} did not return an image (${bytes.length} bytes starting ${JSON.stringify(bytes.subarray(0, 16).toString('latin1'))})`,
    );
  }
  return bytes;
}
