/**
 * The base every fake server stands on: listen on 127.0.0.1 at a free port, keep the open sockets,
 * close by destroying them (a fake must never keep a test waiting on a client's idle connection),
 * and read a request body as text.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';

/** Keeps the set of a server's open sockets (so a fake can destroy them all on close). */
export function trackSockets(server: Server, sockets = new Set<Socket>()): Set<Socket> {
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

/** Listens on 127.0.0.1 at a free port; resolves with the port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export interface LoopbackServer {
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** The sockets open now. */
  sockets: Set<Socket>;
  /** Destroys every open socket and closes the server; every call returns the same promise. */
  close(): Promise<void>;
}

/**
 * Tracks the server's sockets and listens on loopback. `onClose` runs once, before the sockets
 * are destroyed (for a fake to tell its own closing from a client's).
 */
export async function serveOnLoopback(server: Server, options: { onClose?: () => void } = {}): Promise<LoopbackServer> {
  const sockets = trackSockets(server);
  const port = await listenOnLoopback(server);
  let closed: Promise<void> | undefined;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    sockets,
    close() {
      closed ??= new Promise<void>((resolve) => {
        options.onClose?.();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

/** Reads a request's body as UTF-8 text (what comes past `maxChars` is dropped), then calls `done` with it. */
export function readBody(req: IncomingMessage, done: (raw: string) => void, maxChars = Infinity): void {
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    if (raw.length < maxChars) raw += chunk;
  });
  req.on('end', () => done(raw));
}
