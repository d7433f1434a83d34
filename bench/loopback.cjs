// Preload for Portkey's gateway (`node --require bench/loopback.cjs …`): @hono/node-server's
// serve() listens without a hostname, i.e. on every interface. This forces every listen() onto
// 127.0.0.1 and, with LOOPBACK_PORT_ZERO=1, onto a free port (port 0); the real address is
// printed on stderr as `loopback: listening on 127.0.0.1:<port>` for the bench to read.
'use strict';
const net = require('node:net');

const original = net.Server.prototype.listen;
const portZero = process.env.LOOPBACK_PORT_ZERO === '1';

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
    if (first.path === undefined && first.handle === undefined && first.fd === undefined) {
      args[0] = { ...first, host: '127.0.0.1', ...(portZero ? { port: 0 } : {}) };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first)) || first === undefined || typeof first === 'function') {
    if (typeof first === 'function' || first === undefined) args.unshift(0);
    if (portZero) args[0] = 0;
    if (typeof args[1] === 'string') args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  }
  this.once('listening', () => {
    const address = this.address();
    if (address !== null && typeof address === 'object') process.stderr.write(`loopback: listening on ${address.address}:${address.port}\n`);
  });
  return original.apply(this, args);
};
