/**
 * What every request handler sees: the server context (store, server key, config) and the authenticated principal.
 */
import type { Request } from 'express';
import type { Logger } from 'pino';
import type { KeyPairHex } from '../core/crypto';
import type { Store } from './db/store';
import type { RoleTable } from './db/schema';
import type { EnvKeyCache } from './keys';
import type { Metrics } from './metrics';
import type { TrustedProxies } from './network';
import type { RateLimiter } from './ratelimit';

export interface ServerContext {
  store: Store;
  server: KeyPairHex;
  serverSecret: string;
  envKeys: EnvKeyCache;
  log: Logger;
  metrics: Metrics;
  rateLimiter?: RateLimiter;
  /** `--trusted-proxy`: the peers whose X-Forwarded-For / X-Real-IP are believed (see network.ts clientIp). */
  trustedProxies: TrustedProxies;
  /** Test setting: identity logins may call issuers and STS on loopback over http (docs/identity.md). */
  allowLoopbackIdentityEndpoints?: boolean;
}

export interface Principal {
  kind: 'member' | 'service_account';
  accountId: string;
  orgId: string;
  orgName: string;
  role: RoleTable | null;
  /** Ed25519 public key hex. */
  identityKey: string;
  tokenId: string;
  tokenName: string;
  ip: string;
  userAgent: string | null;
}

export interface AuthedRequest extends Request {
  principal?: Principal;
  jsonBody?: unknown;
}

/** The principal of an authenticated request (the auth middleware guarantees it on protected routers). */
export function principal(req: Request): Principal {
  const p = (req as AuthedRequest).principal;
  if (!p) throw new Error('route mounted without authentication');
  return p;
}
