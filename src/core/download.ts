import { UpstreamError } from './errors.js';
import { errorFromResponse, readBounded, send, type Timeouts, type UpstreamResponse } from './http.js';
import { sniffImage } from './image-bytes.js';

const maxImageBytes = 64 * 1024 * 1024;

/** Reads a whole response body (an image: at most 64 MiB). */
export function readAll(body: UpstreamResponse['body'], signal: AbortSignal, limit = maxImageBytes): Promise<Buffer> {
  return readBounded(body, signal, limit, 'fail');
}

/** Downloads an image and checks that the bytes are one (PNG, JPEG, WebP, GIF). */
export async function downloadImage(url: string, headers: Record<string, string>, signal: AbortSignal, timeouts: Timeouts): Promise<Buffer> {
  const response = await send({ method: 'GET', url, headers, signal, timeouts });
  if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, signal);
  const bytes = await readAll(response.body, signal);
  return expectImage(bytes, url);
}

export function expectImage(bytes: Buffer, from: string): Buffer {
  if (sniffImage(bytes) === undefined) {
    throw new UpstreamError('bad_response', `${from} did not return an image (${bytes.length} bytes starting ${JSON.stringify(bytes.subarray(0, 16).toString('latin1'))})`);
  }
  return bytes;
}
