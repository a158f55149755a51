/**
 * Server configuration and the server key. The key (`SERVER_SECRET`, 32 bytes hex) comes from the environment
 * variable `PHASE_BRIDGE_SERVER_SECRET` or a key file with mode 0600; it is never stored in the database, so a
 * database copy alone cannot decrypt anything.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { PhaseBridgeError } from '../core/errors';
import { validIpEntry } from './network';

export const SERVER_SECRET_ENV = 'PHASE_BRIDGE_SERVER_SECRET';
export const DEFAULT_DATABASE = 'sqlite:./.phase-bridge/phase.db';
export const DEFAULT_KEY_FILE = './.phase-bridge/server.key';

export class ServerKeyError extends PhaseBridgeError {
  constructor(message: string) {
    super('server_key', message);
  }
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Reads the server secret: env var first, then the key file (refusing group/other-readable files). */
export function loadServerSecret(
  keyFile: string = DEFAULT_KEY_FILE,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const fromEnv = env[SERVER_SECRET_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const s = fromEnv.trim();
    if (!HEX64.test(s)) throw new ServerKeyError(`${SERVER_SECRET_ENV} must be 64 hex characters (32 bytes)`);
    return s.toLowerCase();
  }
  if (!existsSync(keyFile)) {
    throw new ServerKeyError(
      `no server key: set ${SERVER_SECRET_ENV} or create ${keyFile} (phase-bridge server init does this)`,
    );
  }
  const mode = statSync(keyFile).mode & 0o777;
  if (mode & 0o077) {
    throw new ServerKeyError(
      `key file ${keyFile} has mode ${mode.toString(8).padStart(4, '0')}; it must not be readable by group or others (chmod 600 ${keyFile})`,
    );
  }
  const s = readFileSync(keyFile, 'utf8').trim();
  if (!HEX64.test(s)) throw new ServerKeyError(`key file ${keyFile} must hold 64 hex characters`);
  return s.toLowerCase();
}

/** Creates a key file with a fresh secret (mode 0600) unless one exists; returns the secret. */
export function ensureKeyFile(keyFile: string = DEFAULT_KEY_FILE): string {
  if (existsSync(keyFile)) return loadServerSecret(keyFile, {});
  mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(keyFile, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600);
  return secret;
}

/** `N/period` where only the first letter of the period counts (s, m, h, d), as Phase/DRF parse it. */
export function parseRateLimit(spec: string): { limit: number; windowMs: number } {
  const m = /^\s*(\d+)\s*\/\s*([smhd])[a-z]*\s*$/i.exec(spec);
  if (!m || Number(m[1]) < 1) {
    throw new PhaseBridgeError('config', `rate limit '${spec}' must look like 600/m (N per s, m, h or d)`);
  }
  const unit = m[2].toLowerCase();
  const windowMs = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit] as number;
  return { limit: Number(m[1]), windowMs };
}

const trustedProxyEntry = z
  .string({ invalid_type_error: 'must be a string' })
  .trim()
  .refine(validIpEntry, 'must be an IP address or a CIDR range like 10.0.0.0/8 or fd00::/8');
const trustedProxyList = z.array(trustedProxyEntry, { invalid_type_error: 'must be a list of strings' });

/**
 * Validates `--trusted-proxy` values: each an IPv4/IPv6 address or CIDR range (e.g. `127.0.0.1`, `10.0.0.0/8`,
 * `fd00::/8`). Returns the trimmed entries; throws a config error naming the first bad entry.
 */
export function parseTrustedProxies(entries: unknown = []): string[] {
  const r = trustedProxyList.safeParse(entries);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const at = issue.path[0];
  const what =
    typeof at === 'number' && Array.isArray(entries)
      ? `--trusted-proxy '${String(entries[at])}'`
      : '--trusted-proxy';
  throw new PhaseBridgeError('config', `${what} ${issue.message}`);
}

/** Parses a size like `1mb`, `512kb` or a number of bytes. */
export function parseSize(spec: string | number): number {
  if (typeof spec === 'number') return spec;
  const m = /^\s*(\d+)\s*(b|kb|mb|gb)?\s*$/i.exec(spec);
  if (!m) throw new PhaseBridgeError('config', `size '${spec}' must look like 1mb, 512kb or 1048576`);
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase()] as number;
  return Number(m[1]) * mult;
}

export interface ServerConfig {
  /** `sqlite:PATH` or `postgres://…`. */
  database: string;
  /** 64 hex characters; see loadServerSecret. */
  serverSecret: string;
  /** `N/m` per token; undefined = no rate limit (Phase's self-hosted default). */
  rateLimit?: string;
  /**
   * Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` / `X-Real-IP` headers are believed for
   * the client IP; empty = the socket address only. See `parseTrustedProxies` and network.ts `clientIp`.
   */
  trustedProxies?: string[];
  /** Maximum request body, default 1mb. */
  bodyLimit?: string | number;
  /** Per-request time limit in ms (503 after it; 0 = none); default 30 s. See deadline.ts. */
  requestTimeout?: number;
  /**
   * Let identity logins call OIDC issuers and AWS STS on loopback over plain http. For tests and local stand-ins
   * only: in production the server refuses loopback, private and non-https endpoints.
   */
  allowLoopbackIdentityEndpoints?: boolean;
  /** Heartbeat of the change stream (`/secrets/events/`), which also re-checks the token and access; default 15 s. */
  changeStreamHeartbeatMs?: number;
  /** pino level; default info. Use 'silent' in tests. */
  logLevel?: string;
}
