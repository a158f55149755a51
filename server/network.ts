/**
 * Network access policies (phase-rest-api.md §6): IPv4/IPv6 addresses and CIDR ranges, evaluated as the union of
 * the account's policies and the organisation's global policies.
 */
import { BlockList, isIP } from 'node:net';
import type { Request } from 'express';
import { header } from './http';

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
 * The client IP. By default the socket address only: `X-Real-IP` / `X-Forwarded-For` are trivially forged by any
 * client, so trusting them without a proxy that overwrites them would let anyone bypass network policies.
 * With `trustProxy`, Phase's order applies: X-Real-IP, then the first X-Forwarded-For entry, then the socket.
 */
export function clientIp(req: Request, trustProxy: boolean): string {
  if (trustProxy) {
    const real = normalizeIp(header(req, 'X-Real-IP'));
    if (real) return real;
    const fwd = normalizeIp(header(req, 'X-Forwarded-For')?.split(',')[0]);
    if (fwd) return fwd;
  }
  return normalizeIp(req.socket.remoteAddress) ?? req.socket.remoteAddress ?? '';
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

/** True when `ip` equals an address entry or lies inside a CIDR entry; invalid entries are skipped. */
export function ipAllowed(ip: string, entries: string[]): boolean {
  const fam = isIP(ip);
  if (!fam) return false;
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
  return list.check(ip, fam === 4 ? 'ipv4' : 'ipv6');
}
