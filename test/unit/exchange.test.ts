/**
 * `exchange` (src/core/http.ts): the dispatch handler that reads a non-streamed upstream answer
 * without a body stream. Against a real node:http server on 127.0.0.1 (port 0), each way an
 * upstream can answer: a body within and past the cap, a declared length past it, an error body
 * past 64 KiB, 103 Early Hints first, a body cut short, a client abort mid-body and before the
 * answer, a compressed body and an event stream (both handed back as a stream).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { closeAgents, defaultTimeouts, errorFromStatus, exchange, maxErrorBodyBytes, readBounded, type UpstreamExchange } from '../../src/core/http.js';
import { UpstreamError } from '../../src/core/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const routes = new Map<string, Handler>();
let server: Server;
let origin: string;
/** Bytes the server managed to write before the client went away, per route. */
const written = new Map<string, number>();

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    const handler = routes.get(req.url ?? '');
    if (handler === undefined) res.writeHead(404).end();
    else handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await closeAgents();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function call(path: string, options: { maxBodyBytes?: number; signal?: AbortSignal } = {}): Promise<UpstreamExchange> {
  return exchange({
    method: 'POST',
    url: `${origin}${path}`,
    headers: { 'content-type': 'application/json' },
    body: '{"model":"m","messages":[]}',
    signal: options.signal ?? new AbortController().signal,
    timeouts: { ...defaultTimeouts, firstByteMs: 2000, idleMs: 2000 },
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
  });
}

/** Writes `total` bytes of `x` in 16 KiB pieces, honouring backpressure, counting what went out. */
function pour(path: string, res: ServerResponse, total: number, end = true): void {
  let sent = 0;
  const piece = Buffer.alloc(16 * 1024, 'x');
  const more = (): void => {
    while (sent < total) {
      if (res.destroyed) return;
      const chunk = piece.subarray(0, Math.min(piece.length, total - sent));
      sent += chunk.length;
      written.set(path, sent);
      if (!res.write(chunk)) {
        res.once('drain', more);
        return;
      }
    }
    if (end) res.end();
  };
  res.on('error', () => undefined);
  more();
}

describe('exchange', () => {
  test('reads a 2xx JSON body whole, with its status and headers', async () => {
    routes.set('/ok', (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'x-extra': 'yes' }).end('{"choices":[]}'));
    const reply = await call('/ok');
    assert.equal(reply.kind, 'whole');
    if (reply.kind !== 'whole') return;
    assert.equal(reply.statusCode, 200);
    assert.equal(reply.headers['x-extra'], 'yes');
    assert.equal(reply.bytes.toString(), '{"choices":[]}');
  });

  test('a 2xx body past the cap fails as bad_response, and the rest is not read', async () => {
    routes.set('/big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      pour('/big', res, 64 * 1024 * 1024);
    });
    await assert.rejects(call('/big', { maxBodyBytes: 100 * 1024 }), (error: unknown) => {
      assert.ok(error instanceof UpstreamError);
      assert.equal(error.kind, 'bad_response');
      assert.match(error.message, /larger than 102400 bytes/);
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok((written.get('/big') ?? 0) < 16 * 1024 * 1024, `the upstream wrote ${written.get('/big')} bytes: the connection was not dropped`);
  });

  test('a declared content-length past the cap fails before the body is read', async () => {
    routes.set('/declared', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) });
      pour('/declared', res, 10 * 1024 * 1024);
    });
    await assert.rejects(call('/declared', { maxBodyBytes: 1024 }), (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response');
  });

  test('an error body is read up to 64 KiB, the rest dropped, and its message still found', async () => {
    routes.set('/huge-error', (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.write('{"error":{"message":"upstream exploded","code":"boom"},"padding":"');
      pour('/huge-error', res, 8 * 1024 * 1024);
    });
    const reply = await call('/huge-error');
    assert.equal(reply.kind, 'whole');
    if (reply.kind !== 'whole') return;
    assert.equal(reply.statusCode, 500);
    assert.equal(reply.bytes.length, maxErrorBodyBytes);
    const error = errorFromStatus(reply.statusCode, reply.headers, reply.bytes.toString());
    assert.equal(error.kind, 'server');
    assert.match(error.message, /^HTTP 500: /);
  });

  test('103 Early Hints before the answer are skipped', async () => {
    routes.set('/hints', (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[1]}');
    });
    const reply = await call('/hints');
    assert.equal(reply.kind === 'whole' && reply.statusCode, 200);
    assert.equal(reply.kind === 'whole' && reply.bytes.toString(), '{"choices":[1]}');
  });

  test('a body cut short is a connection failure', async () => {
    routes.set('/cut', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"choices":[');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await assert.rejects(call('/cut'), (error: unknown) => error instanceof UpstreamError && error.kind === 'connection');
  });

  test('an abort mid-body rejects with the abort reason, and one before the answer too', async () => {
    routes.set('/slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"choices":[');
    });
    const mid = new AbortController();
    const pending = call('/slow', { signal: mid.signal });
    setTimeout(() => mid.abort(new UpstreamError('timeout', 'cut by a deadline')), 50);
    await assert.rejects(pending, (error: unknown) => error instanceof UpstreamError && error.kind === 'timeout' && error.message === 'cut by a deadline');

    routes.set('/never', () => undefined);
    const early = new AbortController();
    const waiting = call('/never', { signal: early.signal });
    setTimeout(() => early.abort(), 50);
    await assert.rejects(waiting, (error: unknown) => error instanceof UpstreamError && error.kind === 'aborted');

    const already = new AbortController();
    already.abort();
    await assert.rejects(call('/ok', { signal: already.signal }), (error: unknown) => error instanceof UpstreamError && error.kind === 'aborted');
  });

  test('a compressed body comes back as a stream, decoded', async () => {
    routes.set('/gzip', (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync('{"choices":["zipped"]}')),
    );
    const reply = await call('/gzip');
    assert.equal(reply.kind, 'stream');
    if (reply.kind !== 'stream') return;
    const text = (await readBounded(reply.response.body, undefined, 1024, 'fail')).toString();
    assert.equal(text, '{"choices":["zipped"]}');
  });

  test('an event stream comes back as a stream, read as it arrives', async () => {
    routes.set('/sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n');
      setTimeout(() => res.end('data: [DONE]\n\n'), 30);
    });
    const reply = await call('/sse');
    assert.equal(reply.kind, 'stream');
    if (reply.kind !== 'stream') return;
    assert.equal(reply.response.statusCode, 200);
    const text = (await readBounded(reply.response.body, undefined, 1024, 'fail')).toString();
    assert.equal(text, 'data: {"n":1}\n\ndata: [DONE]\n\n');
  });
});
