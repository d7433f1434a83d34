import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ApiError } from '../../core/errors.js';
import type { RequestContext } from '../context.js';
import type { OpenApiOptions } from '../schemas/openapi.js';

export interface ApiDocs {
  /** GET /openapi.json: the OpenAPI 3.1 document of the gateway's own API. */
  openapi(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void>;
  /** GET /docs (the page) and GET /docs/{asset}: the document rendered, every asset served locally. */
  docs(req: IncomingMessage, res: ServerResponse, context: RequestContext, asset: string): Promise<void>;
}

/**
 * The page runs only scripts of our own origin (Swagger UI's bundle and our initializer, no inline
 * script); Swagger UI sets inline styles, and shows data: images (its icons).
 */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Interference API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docs-init.js"></script>
</body>
</html>
`;

/** Ours, served as a file because the policy forbids inline script. */
const initializer = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, tryItOutEnabled: false });
});
`;

interface Asset {
  type: string;
  /** Swagger UI's pinned files may be cached; our page and script are revalidated. */
  cache: string;
  load(): Promise<Buffer>;
}

const vendored = (file: string, type: string): Asset => ({
  type,
  cache: 'public, max-age=86400',
  load: () => readFile(path.join(swaggerDir(), file)),
});
const ours = (text: string, type: string): Asset => ({ type, cache: 'no-cache', load: async () => Buffer.from(text) });

/** Everything /docs serves, by name: no other name, so no path ever reaches the file system. */
const assets: ReadonlyMap<string, Asset> = new Map([
  ['', ours(page, 'text/html; charset=utf-8')],
  ['docs-init.js', ours(initializer, 'text/javascript; charset=utf-8')],
  ['swagger-ui-bundle.js', vendored('swagger-ui-bundle.js', 'text/javascript; charset=utf-8')],
  ['swagger-ui.css', vendored('swagger-ui.css', 'text/css; charset=utf-8')],
  ['favicon-32x32.png', vendored('favicon-32x32.png', 'image/png')],
  ['favicon-16x16.png', vendored('favicon-16x16.png', 'image/png')],
]);

/** The installed swagger-ui-dist folder (found like an import, wherever node_modules is). */
function swaggerDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

export function createApiDocs(options: OpenApiOptions): ApiDocs {
  // Built on first use, then kept: the document as JSON text after its `servers` (which follow the request).
  let documentHead = '';
  let documentTail: string | undefined;
  const loaded = new Map<string, Promise<Buffer>>();

  function load(name: string, asset: Asset): Promise<Buffer> {
    let bytes = loaded.get(name);
    if (bytes === undefined) {
      bytes = asset.load();
      loaded.set(name, bytes);
      bytes.catch(() => loaded.delete(name)); // a failed read is retried next time
    }
    return bytes;
  }

  return {
    async openapi(req, res, context) {
      if (documentTail === undefined) {
        // Loaded on first use: the JSON Schema converter and the document are not needed to serve.
        const { buildOpenApiDocument } = await import('../schemas/openapi.js');
        const { openapi, ...rest } = buildOpenApiDocument(options);
        // `{"openapi":"3.1.0","servers":[…],` is written per request; the rest once.
        documentHead = `{"openapi":${JSON.stringify(openapi)},"servers":`;
        documentTail = JSON.stringify(rest).slice(1);
      }
      const servers = JSON.stringify([{ url: baseUrlOf(req), description: 'This gateway, as the request reached it' }]);
      const body = Buffer.from(`${documentHead}${servers},${documentTail}\n`);
      send(req, res, 200, body, { ...context.headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' });
    },
    async docs(req, res, context, asset) {
      const entry = assets.get(asset);
      if (entry === undefined) {
        throw new ApiError(404, `Unknown docs asset ${JSON.stringify(asset.slice(0, 100))}; the API docs are at /docs.`, { code: 'route_not_found' });
      }
      const body = await load(asset, entry);
      send(req, res, 200, body, {
        ...context.headers,
        'content-type': entry.type,
        'cache-control': entry.cache,
        'content-security-policy': contentSecurityPolicy,
        'referrer-policy': 'no-referrer',
      });
    },
  };
}

/** Writes a whole answer; HEAD gets the same headers and no body. */
function send(req: IncomingMessage, res: ServerResponse, status: number, body: Buffer, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { ...headers, 'x-content-type-options': 'nosniff', 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The base URL the client used: a reverse proxy's `X-Forwarded-Host`/`-Proto`, else `Host`, when
 * they look like a host; otherwise a relative URL (the document's own server).
 */
function baseUrlOf(req: IncomingMessage): string {
  const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim() || undefined;
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host;
  const proto = first(req.headers['x-forwarded-proto']) === 'https' ? 'https' : 'http';
  return typeof host === 'string' && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host) ? `${proto}://${host}` : '/';
}
