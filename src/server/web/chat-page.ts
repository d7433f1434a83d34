import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError } from '../../core/errors.js';
import type { RequestContext } from '../context.js';

/**
 * The page's security policy: every script, style and connection from this server only (the page
 * works offline), no inline script and no eval, so even Markdown that slipped past the sanitiser
 * could not run code. Generated images are same-origin URLs; attachments are data: and blob: URLs.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const javascript = 'text/javascript; charset=utf-8';

/** Where each servable asset lives, relative to the project root. Nothing outside this list is ever read. */
const assets: Readonly<Record<string, { file: string; type: string }>> = {
  '': { file: 'web/chat/index.html', type: 'text/html; charset=utf-8' },
  'chat.js': { file: 'web/chat/chat.js', type: javascript },
  'chat.css': { file: 'web/chat/chat.css', type: 'text/css; charset=utf-8' },
  // Vendored from node_modules, served as they are published: Markdown to HTML, then sanitised.
  'marked.esm.js': { file: 'node_modules/marked/lib/marked.esm.js', type: javascript },
  'purify.es.mjs': { file: 'node_modules/dompurify/dist/purify.es.mjs', type: javascript },
};

interface Loaded {
  bytes: Buffer;
  etag: string;
}

/**
 * The project root: the nearest folder above this module holding package.json. Walking up works
 * the same from src/server/web/ (tsx) and dist/src/server/web/ (built).
 */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('the chat page cannot find the project root (no package.json above its module)');
    dir = parent;
  }
}

/** GET /chat (the page) and GET /chat/{asset} (its scripts, styles and vendored libraries). */
export function createChatPage(): (req: IncomingMessage, res: ServerResponse, context: RequestContext, asset: string) => Promise<void> {
  const root = projectRoot();
  // Files are read once and kept: a handful of small files, and a restart picks up new versions.
  const cache = new Map<string, Promise<Loaded>>();

  function load(name: string, file: string): Promise<Loaded> {
    let loaded = cache.get(name);
    if (loaded === undefined) {
      loaded = readFile(path.join(root, file)).then((bytes) => ({ bytes, etag: `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"` }));
      // A failed read is not remembered: the file may appear (an install finishing).
      loaded.catch(() => cache.delete(name));
      cache.set(name, loaded);
    }
    return loaded;
  }

  return async (req, res, context, asset) => {
    const entry = Object.hasOwn(assets, asset) ? assets[asset] : undefined;
    if (entry === undefined) throw new ApiError(404, `The chat page has no asset named ${JSON.stringify(asset.slice(0, 100))}`, { code: 'route_not_found' });
    let loaded: Loaded;
    try {
      loaded = await load(asset, entry.file);
    } catch {
      throw new ApiError(500, `the chat page's file ${entry.file} is missing from the installation (run npm ci)`, { code: 'asset_missing' });
    }
    const headers: Record<string, string | number> = {
      ...context.headers,
      etag: loaded.etag,
      // Revalidated on every load (a cheap 304): an upgraded server never runs a stale script.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-security-policy': contentSecurityPolicy,
      'referrer-policy': 'no-referrer',
    };
    if (req.headers['if-none-match'] === loaded.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': entry.type, 'content-length': loaded.bytes.length });
    res.end(req.method === 'HEAD' ? undefined : loaded.bytes);
  };
}
