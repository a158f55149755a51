/**
 * Outbound calls made on behalf of an unauthenticated login (an issuer's keys, AWS STS) must not reach the server's
 * own network: https only, and no loopback, private or link-local address, unless the operator allowed loopback for
 * tests (`--allow-loopback-identity-endpoints`), which then allows plain http to loopback and nothing else.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export class UnsafeUrlError extends Error {}

function family(ip: string): 'ipv4' | 'ipv6' {
  return isIP(ip) === 6 ? 'ipv6' : 'ipv4';
}

/** Resolves `raw` and throws UnsafeUrlError when the server should not call it. */
export async function assertSafeUrl(raw: string, allowLoopback: boolean): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError(`'${raw.slice(0, 200)}' is not a URL.`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  const loopback = addresses.length > 0 && addresses.every((a) => LOOPBACK.check(a, family(a)));
  if (allowLoopback && loopback && (url.protocol === 'http:' || url.protocol === 'https:')) return url;
  if (url.protocol !== 'https:') throw new UnsafeUrlError(`'${url.origin}' must use https.`);
  if (addresses.some((a) => PRIVATE.check(a, family(a)))) {
    throw new UnsafeUrlError(`'${url.host}' resolves to a private or loopback address.`);
  }
  return url;
}
