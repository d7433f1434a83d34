import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { ApiError } from '../core/errors.js';
import { sniffImage, type ImageFormat } from '../core/image-bytes.js';
import { sendError } from './respond.js';
import type { SharedImages } from './shared-images.js';

/**
 * The file-system operations the store uses when saving. Tests replace some of them to simulate
 * a full disk or a read-only folder; the server uses the real ones.
 */
export interface ImageStoreFs {
  /** Creates the folder (and its parents); fine when it exists. */
  mkdir(dir: string): Promise<unknown>;
  /** Creates `file` (never overwriting), writes `bytes` and fsyncs it before closing. */
  writeDurably(file: string, bytes: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  exists(file: string): Promise<boolean>;
  /** Fsyncs the folder so a rename survives a crash; callers ignore failures (not every platform allows it). */
  syncDir(dir: string): Promise<void>;
}

export const realImageStoreFs: ImageStoreFs = {
  mkdir: (dir) => mkdir(dir, { recursive: true }),
  async writeDurably(file, bytes) {
    const handle = await open(file, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => rename(from, to),
  unlink: (file) => unlink(file),
  readdir: (dir) => readdir(dir),
  exists: (file) =>
    stat(file).then(
      () => true,
      () => false,
    ),
  async syncDir(dir) {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/** Names this store serves: the first 32 hex digits of the content's SHA-256, then the format. */
const IMAGE_NAME = /^[0-9a-f]{32}\.(png|jpg|webp|gif)$/;
/** Temporary files of an interrupted save: `<image name>.<12 hex>.tmp`. Nothing else is ever removed. */
const TEMPORARY_NAME = /^[0-9a-f]{32}\.(png|jpg|webp|gif)\.[0-9a-f]{12}\.tmp$/;

/**
 * Generated images on disk, served at /images/<file>. Names are the content's hash, so a file
 * never changes: its ETag is its name and it may be cached for a year. Only names this store
 * makes are served (no path traversal, no other files of the folder).
 *
 * A save is durable once it returns: the bytes go to a temporary file that is fsynced, then
 * renamed into place (and the folder fsynced where the platform allows). A crash mid-save leaves
 * only a `*.tmp` file, which `init()` removes at the next start.
 *
 * With `shared` (replicas behind one address, REDIS_URL), each saved image is also copied to shared
 * storage for a while, and a name missing from this disk is looked up there: any replica serves
 * what another made. The disk stays the first place, so an outage of shared storage only affects
 * images made elsewhere.
 */
export class ImageStore {
  readonly dir: string;
  readonly #fs: ImageStoreFs;
  readonly #shared: SharedImages | undefined;
  /** Set once the folder exists; a failed creation is not remembered, so the next save tries again. */
  #ready: Promise<unknown> | undefined;
  #initialized: Promise<void> | undefined;
  /** Saves in progress by name: identical images asked for at once are written once. */
  readonly #pending = new Map<string, Promise<void>>();
  /** Temporary files being written now (never swept). */
  readonly #writing = new Set<string>();

  constructor(dir: string, options: { fs?: Partial<ImageStoreFs>; shared?: SharedImages } = {}) {
    this.dir = dir;
    this.#fs = { ...realImageStoreFs, ...options.fs };
    this.#shared = options.shared;
  }

  /**
   * Removes temporary files left in the folder by a crash during a save (only names matching
   * `<32 hex>.<ext>.<12 hex>.tmp`; never any other file). Runs once; never throws, and a missing
   * folder is fine. The server calls it at start; the first save calls it too.
   */
  init(): Promise<void> {
    this.#initialized ??= this.#sweep();
    return this.#initialized;
  }

  async #sweep(): Promise<void> {
    let names: string[];
    try {
      names = await this.#fs.readdir(this.dir);
    } catch {
      return; // no folder yet (or unreadable: saves will report it)
    }
    await Promise.all(
      names
        .filter((name) => TEMPORARY_NAME.test(name) && !this.#writing.has(name))
        .map((name) => this.#fs.unlink(path.join(this.dir, name)).catch(() => undefined)),
    );
  }

  /** Stores the bytes; returns the file name. Identical images share one file. */
  async save(bytes: Buffer): Promise<string> {
    const name = imageName(bytes);
    if (name === undefined) throw new Error('not an image');
    await this.init();
    await this.#folder();
    const file = path.join(this.dir, name);
    let pending = this.#pending.get(name);
    if (pending === undefined) {
      // The shared copy is made even when the file already exists: it may have expired there.
      pending = this.#write(file, bytes)
        .then(() => this.#shared?.publish(name, bytes))
        .finally(() => this.#pending.delete(name));
      this.#pending.set(name, pending);
    }
    await pending;
    return name;
  }

  /** Creates the folder once; only success is cached. */
  #folder(): Promise<unknown> {
    if (this.#ready === undefined) {
      const ready = this.#fs.mkdir(this.dir).catch((error: unknown) => {
        if (this.#ready === ready) this.#ready = undefined;
        throw storeError(error, 'create');
      });
      this.#ready = ready;
    }
    return this.#ready;
  }

  async #write(file: string, bytes: Buffer): Promise<void> {
    if (await this.#fs.exists(file)) return;
    // Written under a unique name, then renamed: a reader never sees half a file.
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const temporaryName = path.basename(temporary);
    this.#writing.add(temporaryName);
    try {
      await this.#fs.writeDurably(temporary, bytes);
      await this.#fs.rename(temporary, file);
    } catch (error) {
      await this.#fs.unlink(temporary).catch(() => undefined);
      throw storeError(error, 'write');
    } finally {
      this.#writing.delete(temporaryName);
    }
    await this.#fs.syncDir(this.dir).catch(() => undefined);
  }

  /** GET/HEAD /images/<name>: from this disk, else from shared storage (another replica made it). */
  async serve(req: IncomingMessage, res: ServerResponse, name: string, headers: Record<string, string>): Promise<void> {
    if (!IMAGE_NAME.test(name)) throw notFound(name);
    const file = path.join(this.dir, name);
    const local = await this.#inspect(file);
    let body: { file: string } | { bytes: Buffer };
    let found: { size: number; format: ImageFormat };
    if (local !== undefined) {
      found = local;
      body = { file };
    } else {
      const bytes = await this.#fetchShared(name);
      found = { size: bytes.length, format: sniffImage(bytes) as ImageFormat };
      body = { bytes };
    }
    const etag = `"${name.slice(0, 32)}"`;
    const common = { ...headers, etag, 'cache-control': 'public, max-age=31536000, immutable', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, common);
      res.end();
      return;
    }
    res.writeHead(200, { ...common, 'content-type': found.format.contentType, 'content-length': found.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if ('bytes' in body) {
      res.end(body.bytes);
      return;
    }
    const stream = createReadStream(body.file);
    stream.on('error', (error) => sendError(res, error));
    stream.pipe(res);
  }

  /** The size and format of an image file on this disk; undefined when it is missing or not an image. */
  async #inspect(file: string): Promise<{ size: number; format: ImageFormat } | undefined> {
    try {
      const handle = await open(file, 'r');
      try {
        const size = (await handle.stat()).size;
        const head = Buffer.alloc(16);
        await handle.read(head, 0, 16, 0);
        const format = sniffImage(head);
        return format === undefined ? undefined : { size, format };
      } finally {
        await handle.close();
      }
    } catch {
      return undefined;
    }
  }

  /**
   * An image another replica stored, checked like a file of ours: its bytes must be an image whose
   * content gives exactly this name (a stale or foreign value under the key is not served).
   */
  async #fetchShared(name: string): Promise<Buffer> {
    if (this.#shared === undefined) throw notFound(name);
    let bytes: Buffer | undefined;
    try {
      bytes = await this.#shared.fetch(name);
    } catch (error) {
      // Not a 404: the image may well exist, and clients (and caches) take a 404 as final.
      const apiError = new ApiError(
        503,
        `The image ${JSON.stringify(name)} is not on this replica and shared image storage is unreachable; try again shortly.`,
        {
          code: 'shared_storage_unavailable',
          headers: { 'retry-after': '5' },
        },
      );
      apiError.cause = error;
      throw apiError;
    }
    if (bytes === undefined || imageName(bytes) !== name) throw notFound(name);
    return bytes;
  }
}

/** The name an image is stored under: the first 32 hex digits of its SHA-256, then its format; undefined when it is not an image. */
function imageName(bytes: Buffer): string | undefined {
  const format = sniffImage(bytes);
  if (format === undefined) return undefined;
  return `${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.${format.extension}`;
}

const OUT_OF_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/** What a client is told about a failed save: the kind of folder problem, not a path or a stack. */
function storeError(error: unknown, step: 'create' | 'write'): ApiError {
  if (error instanceof ApiError) return error;
  const code = typeof (error as { code?: unknown } | null)?.code === 'string' ? (error as { code: string }).code : undefined;
  let apiError: ApiError;
  if (code !== undefined && OUT_OF_SPACE.has(code)) {
    apiError = new ApiError(
      507,
      `the image store is out of disk space (${code}); the image was generated but could not be saved: ask for response_format "b64_json" or try again later`,
      {
        code: 'insufficient_storage',
      },
    );
  } else {
    const problem =
      code === 'EACCES' || code === 'EPERM'
        ? 'the gateway has no permission to write to it'
        : code === 'EROFS'
          ? 'it is on a read-only file system'
          : code === 'ENOTDIR' || code === 'EEXIST'
            ? 'its path is not a folder'
            : 'the file system refused';
    const action = step === 'create' ? 'create the image folder' : 'write to the image folder';
    apiError = new ApiError(500, `the image store cannot ${action}: ${problem}${code === undefined ? '' : ` (${code})`}`, { code: 'image_store_error' });
  }
  apiError.cause = error;
  return apiError;
}

function notFound(name: string): ApiError {
  return new ApiError(404, `No image named ${JSON.stringify(name.slice(0, 100))}`, { code: 'image_not_found' });
}
