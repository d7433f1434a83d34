/**
 * Hostile upstreams for test/adversarial.test.ts ("trust no upstream"). Each mode does exactly
 * what it says on the wire, with byte-accurate OpenAI SSE framing (`data: <json>\n\n`):
 *
 * - `startEvilUpstream`: an OpenAI-compatible chat (POST /v1/chat/completions) and images
 *   (POST /v1/images/generations) server whose behaviour is chosen per request; endless bodies
 *   are written as fast as the socket drains (backpressure honoured, never buffered ahead), and
 *   every response's byte count and fate (finished, or closed by the peer) is recorded.
 * - `startEvilGradio`: the minimal Gradio "call" protocol for one Space, whose output file URL
 *   points wherever the test wants (another origin).
 * - `startCanarySink`: a tiny server on its own port (another origin) that records every
 *   request's headers and answers with a PNG.
 *
 * All listen on 127.0.0.1:0 and destroy their sockets on stop().
 */
import http from 'node:http';
import zlib from 'node:zlib';
import { TINY_PNG } from './gradio-fake.js';
import { readBody, serveOnLoopback } from '../support/loopback.js';

export type EvilMode =
  | 'endless-sse' // 200 SSE: a role chunk, then content chunks with real text forever, never [DONE]
  | 'endless-line' // 200 SSE: `data: {"id":…` and then junk forever, never a newline
  | 'huge-json' // 200 application/json: one valid completion whose content makes the body 100 MB
  | 'trickle' // 200 SSE (whatever `stream` says): a role chunk, then keep-alives and empty chunks every ~200 ms, never content
  | 'null-choices' // 200 `choices: [null]` (JSON, or one SSE chunk then [DONE] when streaming)
  | 'ok' // a normal short answer, JSON or SSE per request.stream
  | 'fail-500' // 500 with an OpenAI error body
  | 'redirect' // 302 with `Location: <redirectTo>` and a body
  | 'gzip' // a normal answer (JSON or SSE per request.stream), `content-encoding: gzip`
  | 'images-30-urls'; // images: 30 `{url}` entries pointing at GET /img/<i>.png on this server

export interface EvilRequest {
  method: string;
  /** The request target as received (path and query). */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or undefined when the body was empty or not JSON. */
  body: unknown;
}

/** What became of one response. */
export interface EvilResponse {
  mode: EvilMode;
  path: string;
  /** Body bytes handed to the socket (what was actually written, not what was planned). */
  bytes: number;
  /** The whole body was written and ended. */
  finished: boolean;
  /** The connection closed before the body ended (the gateway hung up on us). */
  closedEarly: boolean;
}

export interface EvilOptions {
  /** Starting mode, or a function of the request (default 'ok'). */
  mode?: EvilMode | ((req: EvilRequest) => EvilMode);
  /** Where `redirect` points (default: this server's own /elsewhere, which answers a normal completion). */
  redirectTo?: string;
  /** The `ok` / `gzip` answer (default REPLY_TEXT). */
  reply?: string;
}

export interface EvilUpstream {
  /** http://127.0.0.1:PORT/v1 */
  url: string;
  origin: string;
  requests: EvilRequest[];
  responses: EvilResponse[];
  /** GETs of /img/* served (the image URLs of `images-30-urls`). */
  readonly imageHits: number;
  /** Body bytes written over all responses. */
  bytesSent(): number;
  /** Responses whose body is still being written (or held open). */
  openResponses(): number;
  setMode(mode: EvilOptions['mode']): void;
  /** Destroys every response still open (a safety valve for a runaway test). */
  cut(): void;
  stop(): Promise<void>;
}

export const REPLY_TEXT = 'Evil upstream answers plainly.';
/** The words endless streams repeat (real text, so a gateway cannot skip them as empty). */
const ENDLESS_TEXT = 'All work and no play makes Jack a dull boy. ';
/** The size of `huge-json`'s body. */
export const HUGE_JSON_BYTES = 100 * 1024 * 1024;
/** Block size for endless writers: many events per write, so the pump is not the bottleneck. */
const BLOCK_BYTES = 64 * 1024;
/**
 * Safety cap for "endless" bodies: a gateway that reads without bound stops receiving here
 * (256 MiB is "forever" next to every limit under test, and it keeps a broken build from eating the machine).
 */
const ENDLESS_SAFETY_BYTES = 256 * 1024 * 1024;
const TRICKLE_MS = 200;

const created = 1_700_000_000;

function completionJson(id: string, model: string, content: string): string {
  return JSON.stringify({
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
  });
}

/** One SSE event carrying a chat.completion.chunk. */
function chunkEvent(id: string, model: string, delta: Record<string, unknown>, finish: string | null = null): string {
  const chunk = { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/** A complete normal stream: role, one event per word piece, finish, [DONE]. */
function streamEvents(id: string, model: string, text: string): string[] {
  const pieces = text.match(/\S+\s*/g) ?? [text];
  return [
    chunkEvent(id, model, { role: 'assistant', content: '' }),
    ...pieces.map((piece) => chunkEvent(id, model, { content: piece })),
    chunkEvent(id, model, {}, 'stop'),
    'data: [DONE]\n\n',
  ];
}

const openAIError500 = JSON.stringify({
  error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
});

/**
 * Writes `next()` blocks until it returns null (then ends) or the peer goes away, waiting for
 * 'drain' whenever the socket buffer is full: never more than one block is queued ahead.
 */
function pump(res: http.ServerResponse, record: EvilResponse, next: () => Buffer | null): void {
  const write = (): void => {
    while (!res.destroyed) {
      const block = next();
      if (block === null) {
        res.end(() => (record.finished = true));
        return;
      }
      record.bytes += block.length;
      if (!res.write(block)) {
        res.once('drain', write);
        return;
      }
    }
  };
  write();
}

/** An endless source: `head` once, then `block` forever (until the safety cap). */
function endless(head: Buffer, block: Buffer): () => Buffer | null {
  let sent = 0;
  let first = true;
  return () => {
    if (sent >= ENDLESS_SAFETY_BYTES) return null;
    const out = first ? head : block;
    first = false;
    sent += out.length;
    return out;
  };
}

/** Repeats `unit` into one block of about BLOCK_BYTES. */
function repeatBlock(unit: string): Buffer {
  return Buffer.from(unit.repeat(Math.max(1, Math.floor(BLOCK_BYTES / Buffer.byteLength(unit)))));
}

export async function startEvilUpstream(options: EvilOptions = {}): Promise<EvilUpstream> {
  let mode = options.mode ?? 'ok';
  const reply = options.reply ?? REPLY_TEXT;
  const requests: EvilRequest[] = [];
  const responses: EvilResponse[] = [];
  const open = new Set<http.ServerResponse>();
  let imageHits = 0;
  let origin = '';
  let counter = 0;

  const begin = (res: http.ServerResponse, m: EvilMode, path: string): EvilResponse => {
    const record: EvilResponse = { mode: m, path, bytes: 0, finished: false, closedEarly: false };
    responses.push(record);
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (!record.finished && !res.writableFinished) record.closedEarly = true;
    });
    return record;
  };

  /** A whole body in one write (counted). */
  const sendWhole = (res: http.ServerResponse, record: EvilResponse, status: number, headers: http.OutgoingHttpHeaders, body: string | Buffer): void => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...headers, 'content-length': String(bytes.length) });
    record.bytes += bytes.length;
    res.end(bytes, () => (record.finished = true));
  };

  /** Events one write each, then end. */
  const sendEvents = (res: http.ServerResponse, record: EvilResponse, headers: http.OutgoingHttpHeaders, events: readonly string[]): void => {
    res.writeHead(200, headers);
    for (const event of events) {
      record.bytes += Buffer.byteLength(event);
      res.write(event);
    }
    res.end(() => (record.finished = true));
  };

  const sse = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
  const json = { 'content-type': 'application/json' };

  const answerChat = (req: EvilRequest, res: http.ServerResponse, m: EvilMode): void => {
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
    const streaming = body.stream === true;
    const model = typeof body.model === 'string' && body.model !== '' ? body.model : 'evil-model';
    const id = `chatcmpl-evil-${++counter}`;
    const record = begin(res, m, req.path);
    switch (m) {
      case 'endless-sse': {
        res.writeHead(200, sse);
        const head = Buffer.from(chunkEvent(id, model, { role: 'assistant', content: '' }));
        return pump(res, record, endless(head, repeatBlock(chunkEvent(id, model, { content: ENDLESS_TEXT }))));
      }
      case 'endless-line': {
        res.writeHead(200, sse);
        // The start of a perfectly normal event, whose line never ends.
        const head = Buffer.from(
          `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"${model}","choices":[{"index":0,"delta":{"content":"`,
        );
        return pump(res, record, endless(head, repeatBlock('junk ')));
      }
      case 'huge-json': {
        // A valid completion: prefix + HUGE_JSON_BYTES-worth of content + suffix, streamed in blocks.
        const [prefix, suffix] = completionJson(id, model, '\u0000').split('\\u0000') as [string, string];
        const contentBytes = HUGE_JSON_BYTES - Buffer.byteLength(prefix) - Buffer.byteLength(suffix);
        res.writeHead(200, { ...json, 'content-length': String(HUGE_JSON_BYTES) });
        const block = repeatBlock(ENDLESS_TEXT);
        let left = contentBytes;
        let stage = 0;
        return pump(res, record, () => {
          if (stage === 0) {
            stage = 1;
            return Buffer.from(prefix);
          }
          if (left > 0) {
            const out = left >= block.length ? block : block.subarray(0, left);
            left -= out.length;
            return out;
          }
          if (stage === 1) {
            stage = 2;
            return Buffer.from(suffix);
          }
          return null;
        });
      }
      case 'trickle': {
        // SSE even for a non-streaming request: the gateway aggregates it, and "content" is well defined.
        res.writeHead(200, sse);
        const role = chunkEvent(id, model, { role: 'assistant', content: '' });
        record.bytes += Buffer.byteLength(role);
        res.write(role);
        let beat = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return;
          // Alternate an SSE comment and a chunk with an empty delta: bytes flow, content never does.
          const piece = beat++ % 2 === 0 ? ': keep-alive\n\n' : chunkEvent(id, model, {});
          record.bytes += Buffer.byteLength(piece);
          res.write(piece);
        }, TRICKLE_MS);
        res.once('close', () => clearInterval(timer));
        return;
      }
      case 'null-choices':
        if (streaming) {
          return sendEvents(res, record, sse, [
            `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: 'm', choices: [null] })}\n\n`,
            'data: [DONE]\n\n',
          ]);
        }
        return sendWhole(res, record, 200, json, JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [null] }));
      case 'fail-500':
        return sendWhole(res, record, 500, json, openAIError500);
      case 'redirect': {
        const location = options.redirectTo ?? `${origin}/elsewhere`;
        return sendWhole(res, record, 302, { 'content-type': 'text/html', location }, `<a href="${location}">Found</a>. Redirecting to ${location}\n`);
      }
      case 'gzip': {
        const text = streaming ? streamEvents(id, model, reply).join('') : completionJson(id, model, reply);
        return sendWhole(res, record, 200, { ...(streaming ? sse : json), 'content-encoding': 'gzip' }, zlib.gzipSync(text));
      }
      case 'images-30-urls':
      case 'ok':
        if (streaming) return sendEvents(res, record, sse, streamEvents(id, model, reply));
        return sendWhole(res, record, 200, json, completionJson(id, model, reply));
    }
  };

  const answerImages = (req: EvilRequest, res: http.ServerResponse, m: EvilMode): void => {
    const record = begin(res, m, req.path);
    if (m === 'fail-500') return sendWhole(res, record, 500, json, openAIError500);
    if (m === 'images-30-urls') {
      const data = Array.from({ length: 30 }, (_, i) => ({ url: `${origin}/img/${i}.png` }));
      return sendWhole(res, record, 200, json, JSON.stringify({ created, data }));
    }
    return sendWhole(res, record, 200, json, JSON.stringify({ created, data: [{ b64_json: TINY_PNG.toString('base64') }] }));
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string): void => {
    const target = req.url ?? '/';
    const path = target.split('?')[0] ?? target;
    let body: unknown;
    try {
      body = raw.length > 0 ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      body = undefined;
    }
    const request: EvilRequest = { method: req.method ?? 'GET', path: target, headers: req.headers, body };
    requests.push(request);
    const m = typeof mode === 'function' ? mode(request) : mode;
    if (request.method === 'POST' && path === '/v1/chat/completions') return answerChat(request, res, m);
    if (request.method === 'POST' && path === '/v1/images/generations') return answerImages(request, res, m);
    if (request.method === 'GET' && path.startsWith('/img/')) {
      imageHits += 1;
      return sendWhole(res, begin(res, m, target), 200, { 'content-type': 'image/png' }, TINY_PNG);
    }
    if (path === '/elsewhere') {
      return sendWhole(res, begin(res, m, target), 200, json, completionJson('chatcmpl-elsewhere', 'elsewhere', 'You followed a redirect.'));
    }
    return sendWhole(
      res,
      begin(res, m, target),
      404,
      json,
      JSON.stringify({ error: { message: `no route ${path}`, type: 'invalid_request_error', param: null, code: null } }),
    );
  };

  const server = http.createServer({ noDelay: true }, (req, res) => readBody(req, (raw) => handle(req, res, raw), 1 << 20));
  server.keepAliveTimeout = 30_000;
  const served = await serveOnLoopback(server);
  origin = served.origin;

  return {
    url: `${origin}/v1`,
    origin,
    requests,
    responses,
    get imageHits() {
      return imageHits;
    },
    bytesSent: () => responses.reduce((sum, r) => sum + r.bytes, 0),
    openResponses: () => open.size,
    setMode(next) {
      mode = next ?? 'ok';
    },
    cut() {
      for (const res of open) res.destroy();
    },
    stop: served.close,
  };
}

// ---- A Gradio Space whose output lives on another origin ---------------------------------------

export interface EvilGradioOptions {
  /** 'owner/name'; served at <url>/owner/name/gradio_api/... */
  space: string;
  /** The call-protocol endpoint name (default 'infer'). */
  apiName?: string;
  /** The output file's `url` (the point of this fake: another origin). */
  fileUrl: string;
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface EvilGradio {
  /** http://127.0.0.1:PORT: the HuggingSpace base URL. */
  url: string;
  requests: SeenRequest[];
  stop(): Promise<void>;
}

/**
 * Gradio's two-step call protocol, just enough for one job: `POST <root>/gradio_api/call/<api>`
 * → `{"event_id":"abc"}`, then `GET <root>/gradio_api/call/<api>/abc` streams
 * `event: complete` with `[FileData, 42]`, the FileData's url being `fileUrl`.
 */
export async function startEvilGradio(options: EvilGradioOptions): Promise<EvilGradio> {
  const base = `/${options.space}/gradio_api/call/${options.apiName ?? 'infer'}`;
  const requests: SeenRequest[] = [];
  const server = http.createServer({ noDelay: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? 'GET', path, headers: req.headers });
      if (req.method === 'POST' && path === base) {
        const body = '{"event_id":"abc"}';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
        return void res.end(body);
      }
      if (req.method === 'GET' && path === `${base}/abc`) {
        const file = {
          path: '/tmp/gradio/0123456789abcdef/image.png',
          url: options.fileUrl,
          size: null,
          orig_name: 'image.png',
          mime_type: null,
          is_stream: false,
          meta: { _type: 'gradio.FileData' },
        };
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
        return void res.end(`event: complete\ndata: ${JSON.stringify([file, 42])}\n\n`);
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"detail":"Not Found"}');
    });
  });
  const { origin, close } = await serveOnLoopback(server);
  return { url: origin, requests, stop: close };
}

// ---- Canary sink --------------------------------------------------------------------------------

export interface CanarySink {
  /** http://127.0.0.1:PORT (its own origin). */
  url: string;
  requests: SeenRequest[];
  stop(): Promise<void>;
}

/** Records every request (method, path, headers) and answers each with a tiny PNG. */
export async function startCanarySink(): Promise<CanarySink> {
  const requests: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(TINY_PNG.length) });
    res.end(TINY_PNG);
  });
  const { origin, close } = await serveOnLoopback(server);
  return { url: origin, requests, stop: close };
}
