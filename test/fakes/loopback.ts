import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

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
