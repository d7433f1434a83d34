import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { UpstreamError } from './errors.js';

/**
 * Addresses a file download may not reach unless the operator allows it: this machine, the local
 * network, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast and the
 * unspecified address. A URL an upstream answer or a client's message names must not make the
 * gateway fetch from inside the network it runs in (SSRF).
 */
const internal = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  internal.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  internal.addSubnet(network, prefix, 'ipv6');
}

/** Whether `address` (an IP literal) is inside the networks above; IPv4-mapped IPv6 is read as IPv4. */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return internal.check(mapped[1] as string, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true; // not an address at all: refuse rather than guess
  return internal.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Refuses a URL whose host is an internal IP literal (a name is checked when it is resolved, in `publicLookup`). */
export function assertPublicHost(hostname: string): void {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (isIP(host) !== 0 && isInternalAddress(host)) throw refused(host);
  if (host === 'localhost' || host.endsWith('.localhost')) throw refused(host);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * `lookup` for the connections of downloads: resolves as usual, then refuses when any address is
 * internal. Checked at connect time, so a name that resolved to a public address for a check and
 * to an internal one for the connection (DNS rebinding) is still refused.
 */
export function publicLookup(hostname: string, options: LookupAllOptions | number | undefined, callback: LookupCallback): void {
  const all: LookupAllOptions = { ...(typeof options === 'object' ? options : {}), all: true };
  dnsLookup(hostname, all, (error, addresses) => {
    if (error !== null) return callback(error, []);
    const bad = addresses.find((entry) => isInternalAddress(entry.address));
    if (bad !== undefined) return callback(refused(`${hostname} (${bad.address})`) as unknown as NodeJS.ErrnoException, []);
    if (typeof options === 'object' && options.all === true) return callback(null, addresses);
    const first = addresses[0];
    if (first === undefined) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

function refused(what: string): UpstreamError {
  return new UpstreamError(
    'bad_response',
    `refused to fetch a file from ${what.slice(0, 120)}: an address on this machine or its network (set INTERFERENCE_PRIVATE_DOWNLOADS=on to allow)`,
  );
}
