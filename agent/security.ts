/**
 * Local security checks, run before any route: GET only (POST for `/v1/refresh`, which changes nothing but when the
 * next sync runs); no proxy headers (the agent is never meant to sit behind
 * a proxy, and a forwarded request is one a browser or a neighbour could have shaped); a loopback Host (DNS
 * rebinding); no Origin (browsers); and the client token, compared in constant time, on everything but /healthz.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constantTimeEqual } from '../core/crypto';
import type { AgentConfig } from './config';
import type { AgentMetrics } from './metrics';
import { atomicWrite } from './snapshot';
import { CLIENT_TOKEN_RULE, readTrustedFile } from './trust';

/** The header clients send the agent's client token in. */
export const CLIENT_TOKEN_HEADER = 'x-phase-agent-token';

/** The one endpoint that is not a GET: ask for a sync now. */
export const REFRESH_PATH = '/v1/refresh';

const FORWARD_HEADERS = ['x-forwarded-for', 'forwarded', 'x-forwarded-host', 'x-real-ip'];
/** Their name lengths: `readRequestHeaders` lowercases only names of a length it looks for. */
const FORWARD_LENGTHS = new Set(FORWARD_HEADERS.map((n) => n.length));

/**
 * Loads the configured client token, or the one in the client token file, or creates that file (mode 0640). The
 * file is read only when it passes the trust rules (agent/trust.ts: owned by the agent's user or root, not
 * writable by others), checked on the descriptor it is read from; otherwise an AgentPathError is thrown.
 */
export async function loadClientToken(cfg: AgentConfig): Promise<string> {
  if (cfg.clientToken) return cfg.clientToken;
  const existing = (await readTrustedFile(cfg.clientTokenFile, CLIENT_TOKEN_RULE))?.text.trim();
  if (existing && existing.length >= 16) return existing;
  const token = randomBytes(32).toString('hex');
  await atomicWrite(cfg.clientTokenFile, `${token}\n`, 0o640);
  return token;
}

/** True for `localhost`, `127.x.y.z`, `[::1]`, optionally with a port, and for configured extra names. */
export function hostAllowed(host: string | undefined, extra: ReadonlySet<string>): boolean {
  if (!host) return false;
  let name = host.toLowerCase();
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    if (end < 0) return false;
    const rest = name.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return false;
    name = name.slice(1, end);
    return name === '::1' || extra.has(name);
  }
  const colon = name.indexOf(':');
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(name.slice(colon + 1))) return false;
    name = name.slice(0, colon);
  }
  if (name === 'localhost' || extra.has(name)) return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

export type Refusal = { status: number; reason: string; message: string; allow?: string };

/** The request headers the agent looks at, read in one pass over `rawHeaders`. */
export interface RequestHeaders {
  host?: string;
  hostRepeated: boolean;
  token?: string;
  tokenRepeated: boolean;
  /** The first proxy header present (lowercase name), if any. */
  forwarded?: string;
  origin: boolean;
  ifNoneMatch?: string;
}

/**
 * Reads the headers the guard and the cache headers need in one pass over `rawHeaders` (name, value, name, value...),
 * lowercasing only names of a length it looks for. Unlike `req.headers`, which keeps the first Host and joins repeated
 * tokens, it sees repetition: a repeated Host or client token is reported, and the guard refuses both.
 */
export function readRequestHeaders(raw: readonly string[]): RequestHeaders {
  const h: RequestHeaders = { hostRepeated: false, tokenRepeated: false, origin: false };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    // Only names of a length we look for are lowercased.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          if (h.host !== undefined) h.hostRepeated = true;
          else h.host = raw[i + 1];
        }
        break;
      case 6:
        if (name.toLowerCase() === 'origin') h.origin = true;
        break;
      case 13:
        if (name.toLowerCase() === 'if-none-match') h.ifNoneMatch ??= raw[i + 1];
        break;
      case CLIENT_TOKEN_HEADER.length:
        if (name.toLowerCase() === CLIENT_TOKEN_HEADER) {
          if (h.token !== undefined) h.tokenRepeated = true;
          else h.token = raw[i + 1];
        }
        break;
      default:
        // Lengths come from the list, so a proxy header added to it is refused (unless its length is one of the
        // cases above, which would then need to check it too).
        if (FORWARD_LENGTHS.has(name.length)) {
          const lower = name.toLowerCase();
          if (FORWARD_HEADERS.includes(lower)) h.forwarded ??= lower;
        }
    }
  }
  return h;
}

export class RequestGuard {
  private readonly extraHosts: ReadonlySet<string>;
  private lastHost: string | undefined;

  constructor(
    private clientToken: string,
    cfg: Pick<AgentConfig, 'allowedHosts'>,
    private readonly metrics: AgentMetrics,
  ) {
    this.extraHosts = new Set(cfg.allowedHosts.map((h) => h.toLowerCase()));
  }

  setClientToken(token: string): void {
    this.clientToken = token;
  }

  /** Returns why a request is refused, or undefined when it may proceed. */
  check(
    req: IncomingMessage,
    path: string,
    h: RequestHeaders = readRequestHeaders(req.rawHeaders),
  ): Refusal | undefined {
    const refresh = path === REFRESH_PATH;
    if (req.method !== (refresh ? 'POST' : 'GET')) {
      return {
        status: 405,
        reason: 'method',
        message: refresh
          ? `${REFRESH_PATH} asks for a sync: use POST`
          : 'the agent is read-only: only GET is allowed',
        allow: refresh ? 'POST' : 'GET',
      };
    }
    if (h.forwarded !== undefined)
      return {
        status: 403,
        reason: 'forwarded',
        message: `requests carrying ${h.forwarded} are refused: call the agent directly, not through a proxy`,
      };
    if (h.origin)
      return {
        status: 403,
        reason: 'origin',
        message: 'requests with an Origin header (browsers) are refused',
      };
    if (h.hostRepeated || !this.hostOk(h.host))
      return {
        status: 403,
        reason: 'host',
        message: h.hostRepeated
          ? 'the Host header is repeated'
          : 'the Host header must name a loopback address (localhost, 127.0.0.1, [::1])',
      };
    if (path === '/healthz') return undefined;
    const given = h.token;
    if (given === undefined || given === '')
      return {
        status: 403,
        reason: 'no_token',
        message: `missing client token: send it in the ${CLIENT_TOKEN_HEADER} header`,
      };
    if (h.tokenRepeated || !constantTimeEqual(given, this.clientToken))
      return { status: 403, reason: 'bad_token', message: 'wrong client token' };
    return undefined;
  }

  /** `hostAllowed`, remembering the last Host it allowed (a client sends the same one on every request). */
  private hostOk(host: string | undefined): boolean {
    if (host === undefined) return false;
    if (host === this.lastHost) return true;
    if (!hostAllowed(host, this.extraHosts)) return false;
    this.lastHost = host;
    return true;
  }

  refuse(res: ServerResponse, r: Refusal): void {
    this.metrics.refused.inc({ reason: r.reason });
    const body = JSON.stringify({ error: r.message });
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    };
    if (r.allow) headers.Allow = r.allow;
    res.writeHead(r.status, headers);
    res.end(body);
  }
}
