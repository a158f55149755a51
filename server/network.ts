/**
 * Network access policies (phase-rest-api.md §6): IPv4/IPv6 addresses and CIDR ranges, evaluated as the union of
 * the account's policies and the organisation's global policies.
 */
import { BlockList, isIP } from 'node:net';
import type { Request } from 'express';

/** `::ffff:1.2.3.4` → `1.2.3.4`, so IPv4 policies match IPv4 clients on dual-stack sockets. */
export function normalizeIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  if (mapped) s = mapped[1];
  return isIP(s) ? s : undefined;
}

/**
 * An address as a proxy forwards it: `1.2.3.4`, `2001:db8::1`, or with the port the proxy saw, `1.2.3.4:5678` and
 * `[2001:db8::1]:443` (Azure Application Gateway, some ingress controllers). The port is dropped; anything else that
 * is not an address is undefined.
 */
export function forwardedAddress(entry: string): string | undefined {
  const s = entry.trim();
  const withPort = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[^\]]+\]):(\d{1,5})$/.exec(s);
  if (!withPort) return normalizeIp(s);
  return Number(withPort[2]) <= 65535 ? normalizeIp(withPort[1]) : undefined;
}

/** The reverse proxies whose forwarding headers are believed (`--trusted-proxy`, addresses or CIDR ranges). */
export interface TrustedProxies {
  readonly entries: readonly string[];
  /** True when `ip` (normalised) is one of the listed proxies. */
  trusts(ip: string): boolean;
}

/** Builds the lookup once; entries must already be valid (see `validIpEntry`). */
export function trustedProxies(entries: readonly string[] = []): TrustedProxies {
  const list = blockList(entries);
  return {
    entries: [...entries],
    trusts: (ip) => {
      const fam = isIP(ip);
      return entries.length > 0 && fam !== 0 && list.check(ip, fam === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/** The raw value of a header by its exact (case-insensitive) name, repeated lines joined with `, ` by Node. */
function forwardedHeader(req: Request, name: 'x-forwarded-for' | 'x-real-ip'): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * The client IP. `X-Forwarded-For` / `X-Real-IP` are trivially forged by any client, so they are read only when the
 * socket peer is a trusted proxy; otherwise the peer is the client.
 *
 * Behind trusted proxies this is Express's `trust proxy` with a list (the `proxy-addr` walk): the
 * `X-Forwarded-For` entries are taken from the right (each proxy appends the peer it saw), skipping trusted
 * proxies, and the first address that is not a trusted proxy is the client; when every entry is trusted, the
 * leftmost one. `X-Real-IP` is believed only from a trusted peer and only when `X-Forwarded-For` is absent (a proxy
 * that sets just `X-Real-IP` must overwrite it, as nginx's `proxy_set_header X-Real-IP $remote_addr` does).
 * An entry may carry the port the proxy saw (`forwardedAddress`). An entry on the walk, or an `X-Real-IP`, that is
 * not an IP address yields `''`, which no network policy matches.
 *
 * This deliberately departs from Phase's order (X-Real-IP, then the leftmost X-Forwarded-For entry, from any
 * peer): the leftmost entry is whatever the client sent.
 */
export function clientIp(req: Request, proxies?: TrustedProxies): string {
  const raw = req.socket.remoteAddress;
  const peer = normalizeIp(raw);
  if (!peer) return raw ?? '';
  if (!proxies?.trusts(peer)) return peer;
  const hops = (forwardedHeader(req, 'x-forwarded-for') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const ip = forwardedAddress(hops[i]);
    if (!ip) return '';
    if (i === 0 || !proxies.trusts(ip)) return ip;
  }
  const real = forwardedHeader(req, 'x-real-ip');
  if (real !== undefined) return forwardedAddress(real) ?? '';
  return peer;
}

/** Validates one entry: an address or a CIDR with a prefix in range for its family. */
export function validIpEntry(entry: string): boolean {
  const s = entry.trim();
  const slash = s.indexOf('/');
  if (slash < 0) return isIP(s) !== 0;
  const addr = s.slice(0, slash);
  const prefix = s.slice(slash + 1);
  const fam = isIP(addr);
  if (!fam || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (fam === 4 ? 32 : 128);
}

/** A BlockList of the valid entries (addresses and CIDR ranges); invalid entries are skipped. */
function blockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const raw of entries) {
    const e = raw.trim();
    if (!validIpEntry(e)) continue;
    const slash = e.indexOf('/');
    const addr = slash < 0 ? e : e.slice(0, slash);
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    try {
      if (slash < 0) list.addAddress(addr, type);
      else list.addSubnet(addr, Number(e.slice(slash + 1)), type);
    } catch {
      continue;
    }
  }
  return list;
}

/** True when `ip` equals an address entry or lies inside a CIDR entry; invalid entries are skipped. */
export function ipAllowed(ip: string, entries: string[]): boolean {
  const fam = isIP(ip);
  if (!fam) return false;
  return blockList(entries).check(ip, fam === 4 ? 'ipv4' : 'ipv6');
}
