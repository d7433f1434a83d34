/**
 * A deliberately fast fake OpenAI upstream for the benchmark (not a protocol reference: the
 * faithful fake lives in test/fakes/). Every response body is precomputed:
 *
 *   POST …/chat/completions            → one fixed chat.completion (~320 bytes, content-length)
 *   POST …/chat/completions "stream"   → 13 chat.completion.chunk events + `data: [DONE]`,
 *                                         each event its own res.write(), no delays
 *   GET  …/models                      → one model
 *
 *   node --import tsx bench/upstream.ts     # listens on 127.0.0.1:0, prints the port on stdout
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const MODEL = 'gpt-4o-mini';
export const REPLY = 'Hello! How can I help you today?';
/** The pieces of the streamed reply, one per content event. */
export const STREAM_PIECES = ['Hello', '!', ' How', ' can', ' I', ' help', ' you', ' today', '?', ' Ask', ' away.'] as const;
export const STREAM_TEXT = STREAM_PIECES.join('');
/** role event + one per piece + finish event. */
export const STREAM_EVENTS = STREAM_PIECES.length + 2;

const created = 1732406400;
const id = 'chatcmpl-bench00000000000000000001';

export const JSON_BODY = Buffer.from(
  JSON.stringify({
    id,
    object: 'chat.completion',
    created,
    model: MODEL,
    choices: [{ index: 0, message: { role: 'assistant', content: REPLY }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 },
  }),
);

function chunkEvent(delta: Record<string, string>, finish: string | null): Buffer {
  const chunk = {
    id,
    object: 'chat.completion.chunk',
    created,
    model: MODEL,
    system_fingerprint: 'fp_bench',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
  return Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`);
}

export const SSE_EVENTS: readonly Buffer[] = [
  chunkEvent({ role: 'assistant', content: '' }, null),
  ...STREAM_PIECES.map((piece) => chunkEvent({ content: piece }, null)),
  chunkEvent({}, 'stop'),
  Buffer.from('data: [DONE]\n\n'),
];

const MODELS_BODY = Buffer.from(JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model', created, owned_by: 'bench' }] }));
const NOT_FOUND_BODY = Buffer.from(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', param: null, code: null } }));

const jsonHeaders = { 'content-type': 'application/json', 'content-length': String(JSON_BODY.length) };
const sseHeaders = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const wantsStream = /"stream"\s*:\s*true/;

function handle(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (piece: string) => {
    body += piece;
  });
  req.on('end', () => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url.endsWith('/chat/completions')) {
      if (wantsStream.test(body)) {
        res.writeHead(200, sseHeaders);
        for (const event of SSE_EVENTS) res.write(event);
        res.end();
      } else {
        res.writeHead(200, jsonHeaders);
        res.end(JSON_BODY);
      }
      return;
    }
    if (req.method === 'GET' && url.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(MODELS_BODY.length) });
      res.end(MODELS_BODY);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': String(NOT_FOUND_BODY.length) });
    res.end(NOT_FOUND_BODY);
  });
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, handle);
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    process.stdout.write(`${address.port}\n`);
  });
  const stop = (): void => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
