/**
 * Reference row for `npm run bench`: a minimal Node proxy that does the work every gateway must
 * do at the least, without any of Interference's features. A node:http server reads the JSON
 * request body, JSON.parse, drops the gateway-only `provider` field, re-serialises it and sends it
 * to the fake upstream's /v1/chat/completions over a keep-alive undici Pool. A JSON response is
 * parsed and re-serialised; for SSE, each event's `data:` line goes through JSON.parse and
 * JSON.stringify, with one write per upstream read (as Interference does).
 *
 *   node proxy-parse.js <upstream origin>   # listens on 127.0.0.1:0, prints the port on stdout
 *
 * The bench runs it as plain JavaScript (transpiled at start), like proxy-raw.ts.
 */
import { createServer, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

const upstream = new Pool(process.argv[2] ?? 'http://127.0.0.1:8080', { keepAliveTimeout: 60_000 });

/** Re-serialises every `data:` line of complete SSE events; returns them and the unfinished rest. */
function reserialise(text: string): { out: string; rest: string } {
  const events = text.split('\n\n');
  const rest = events.pop() ?? '';
  let out = '';
  for (const event of events) {
    const data = event.startsWith('data: ') ? event.slice(6) : undefined;
    out += data === undefined || data === '[DONE]' ? `${event}\n\n` : `data: ${JSON.stringify(JSON.parse(data))}\n\n`;
  }
  return { out, rest };
}

async function forward(raw: string, res: ServerResponse): Promise<void> {
  const { provider: _provider, ...request } = JSON.parse(raw) as Record<string, unknown>;
  const answer = await upstream.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const type = String(answer.headers['content-type'] ?? '');
  if (!type.startsWith('text/event-stream')) {
    const body = JSON.stringify(await answer.body.json());
    res.writeHead(answer.statusCode, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(answer.statusCode, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  let pending = '';
  answer.body.setEncoding('utf8');
  // 'data' events rather than for await: an async iterator costs a promise per chunk.
  answer.body.on('data', (chunk: string) => {
    const { out, rest } = reserialise(pending + chunk);
    pending = rest;
    if (out !== '') res.write(out);
  });
  await new Promise<void>((resolve, reject) => answer.body.once('end', resolve).once('error', reject));
  res.end();
}

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    forward(Buffer.concat(chunks).toString('utf8'), res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
