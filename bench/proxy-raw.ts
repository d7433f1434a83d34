/**
 * Reference floor for `npm run bench`: the least a Node proxy can do. A node:http server that
 * forwards each request's bytes to the fake upstream over a keep-alive undici Pool and streams
 * the response bytes back, parsing nothing. Interference's distance to this row is the cost of
 * everything it does beyond moving bytes (routing, validation, normalisation, failover…).
 *
 *   node proxy-raw.js <upstream origin>     # listens on 127.0.0.1:0, prints the port on stdout
 *
 * The bench runs it as plain JavaScript (transpiled at start), so neither tsx nor esbuild sits in
 * the process whose memory and CPU are measured.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const upstream = new Pool(process.argv[2] ?? 'http://127.0.0.1:8080', { keepAliveTimeout: 60_000 });

/** Hop-by-hop headers belong to one connection; node:http sets its own framing. */
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host']);
const endToEnd = (headers: IncomingHttpHeaders): Record<string, string | string[]> => {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !hopByHop.has(name)) kept[name] = value;
  return kept;
};

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  // dispatcher.stream() writes the upstream body straight into `res` (no intermediate Readable):
  // the cheapest way undici offers to pipe a response. The request body is piped from `req`.
  upstream
    .stream({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: endToEnd(req.headers), body: req }, ({ statusCode, headers }) => {
      res.writeHead(statusCode, endToEnd(headers));
      return res;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
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
