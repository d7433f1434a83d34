import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { ApiError } from '../core/errors.js';
import { sniffImage } from '../core/image-bytes.js';
import { sendError } from './respond.js';

/**
 * Generated images on disk, served at /images/<file>. Names are the content's hash, so a file
 * never changes: its ETag is its name and it may be cached for a year. Only names this store
 * makes are served (no path traversal, no other files of the folder).
 */
export class ImageStore {
  readonly dir: string;
  #ready: Promise<unknown> | undefined;
  /** Saves in progress by name: identical images asked for at once are written once. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Stores the bytes; returns the file name. Identical images share one file. */
  async save(bytes: Buffer): Promise<string> {
    const format = sniffImage(bytes);
    if (format === undefined) throw new Error('not an image');
    const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.${format.extension}`;
    this.#ready ??= mkdir(this.dir, { recursive: true });
    await this.#ready;
    const file = path.join(this.dir, name);
    let pending = this.#pending.get(name);
    if (pending === undefined) {
      pending = this.#write(file, bytes).finally(() => this.#pending.delete(name));
      this.#pending.set(name, pending);
    }
    await pending;
    return name;
  }

  async #write(file: string, bytes: Buffer): Promise<void> {
    if (await stat(file).then(() => true, () => false)) return;
    // Written under a unique name, then renamed: a reader never sees half a file.
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, bytes);
    await rename(temporary, file);
  }

  /** GET/HEAD /images/<name>. */
  async serve(req: IncomingMessage, res: ServerResponse, name: string, headers: Record<string, string>): Promise<void> {
    if (!/^[0-9a-f]{32}\.(png|jpg|webp|gif)$/.test(name)) throw notFound(name);
    const file = path.join(this.dir, name);
    let size: number;
    let format;
    try {
      const handle = await open(file, 'r');
      try {
        size = (await handle.stat()).size;
        const head = Buffer.alloc(16);
        await handle.read(head, 0, 16, 0);
        format = sniffImage(head);
      } finally {
        await handle.close();
      }
    } catch {
      throw notFound(name);
    }
    if (format === undefined) throw notFound(name);
    const etag = `"${name.slice(0, 32)}"`;
    const common = { ...headers, etag, 'cache-control': 'public, max-age=31536000, immutable', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, common);
      res.end();
      return;
    }
    res.writeHead(200, { ...common, 'content-type': format.contentType, 'content-length': size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', (error) => sendError(res, error));
    stream.pipe(res);
  }
}

function notFound(name: string): ApiError {
  return new ApiError(404, `No image named ${JSON.stringify(name.slice(0, 100))}`, { code: 'image_not_found' });
}
