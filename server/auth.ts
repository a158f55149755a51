/**
 * Authentication (phase-rest-api.md §4): `Authorization: Bearer <User|Service|ServiceAccount> <token>`, tokens
 * looked up by SHA-256 hash, expiry and revocation checked on every request; then network policy (§6) and the
 * per-token rate limit (§7).
 */
import type { NextFunction, Request, Response } from 'express';
import { tokenHash } from '../core/mint';
import { parseAuthorizationHeader, type AuthType } from '../core/token';
import type { AuthedRequest, Principal, ServerContext } from './context';
import type { RoleTable } from './db/schema';
import { HttpError, header, microsToIso, nowIso, unauthorized } from './http';
import { clientIp, ipAllowed } from './network';
import { throttleMessage } from './ratelimit';

export interface TokenRecord {
  kind: 'member' | 'service_account';
  tokenId: string;
  tokenName: string;
  accountId: string;
  orgId: string;
  orgName: string;
  identityKey: string;
  wrappedKeyShare: string;
  roleId: string | null;
  lastUsedAt: string | null;
  /** The account's role, loaded in the same query as the token. */
  role: RoleTable | null;
}

const ROLE_COLUMNS = [
  'roles.id as role_id',
  'roles.org_id as role_org_id',
  'roles.name as role_name',
  'roles.description as role_description',
  'roles.color as role_color',
  'roles.permissions as role_permissions',
  'roles.is_default as role_is_default',
  'roles.created_at as role_created_at',
  'roles.updated_at as role_updated_at',
] as const;

type RoleCols = {
  role_id: string | null;
  role_org_id: string | null;
  role_name: string | null;
  role_description: string | null;
  role_color: string | null;
  role_permissions: string | null;
  role_is_default: number | null;
  role_created_at: string | null;
  role_updated_at: string | null;
};

function roleFrom(r: RoleCols): RoleTable | null {
  if (!r.role_id) return null;
  return {
    id: r.role_id,
    org_id: r.role_org_id ?? '',
    name: r.role_name ?? '',
    description: r.role_description,
    color: r.role_color ?? '',
    permissions: r.role_permissions ?? '{}',
    is_default: Number(r.role_is_default ?? 0),
    created_at: r.role_created_at ?? '',
    updated_at: r.role_updated_at ?? '',
  };
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Where each kind of token lives: its table, its account table and the column naming the account. */
const TOKEN_TABLES = {
  User: { kind: 'member', tokens: 'user_tokens', accounts: 'members', owner: 'member_id' },
  ServiceAccount: {
    kind: 'service_account',
    tokens: 'sa_tokens',
    accounts: 'service_accounts',
    owner: 'sa_id',
  },
} as const;

/** Finds a live (not deleted, not expired) token of a live account; undefined otherwise. */
export async function lookupToken(
  ctx: ServerContext,
  type: AuthType,
  token: string,
): Promise<TokenRecord | undefined> {
  if (!HEX64.test(token)) return undefined;
  const hash = tokenHash(token);
  const now = nowIso();
  const db = ctx.store.db;
  const spec = type === 'User' || type === 'ServiceAccount' ? TOKEN_TABLES[type] : undefined;
  if (spec) {
    // Both token tables have the same columns but the one naming the account (types: the service-account pair).
    const r = await db
      .selectFrom(`${spec.tokens} as t` as 'sa_tokens as t')
      .innerJoin(`${spec.accounts} as a` as 'service_accounts as a', 'a.id', `t.${spec.owner}` as 't.sa_id')
      .innerJoin('organisations', 'organisations.id', 'a.org_id')
      .leftJoin('roles', 'roles.id', 'a.role_id')
      .select(ROLE_COLUMNS)
      .select([
        't.id as tokenId',
        't.name as tokenName',
        't.expires_at as expiresAt',
        't.deleted_at as deletedAt',
        't.wrapped_key_share as wrappedKeyShare',
        't.last_used_at as lastUsedAt',
        'a.id as accountId',
        'a.deleted_at as accountDeletedAt',
        'a.identity_key as identityKey',
        'a.role_id as roleId',
        'organisations.id as orgId',
        'organisations.name as orgName',
      ])
      .where('t.token_hash', '=', hash)
      .executeTakeFirst();
    if (!r || r.deletedAt || r.accountDeletedAt || (r.expiresAt && r.expiresAt < now)) return undefined;
    return { kind: spec.kind, ...r, role: roleFrom(r) };
  }
  // Legacy `Service` tokens are created only in Phase's console; this server never issues them.
  return undefined;
}

/** Marks an SA token used; at most once a minute, so reads do not turn into a write per request. */
async function touchToken(ctx: ServerContext, rec: TokenRecord): Promise<void> {
  if (rec.kind !== 'service_account') return;
  const threshold = microsToIso((Date.now() - 60_000) * 1000);
  if (rec.lastUsedAt && rec.lastUsedAt > threshold) return;
  await ctx.store.db
    .updateTable('sa_tokens')
    .set({ last_used_at: nowIso() })
    .where('id', '=', rec.tokenId)
    .execute();
}

/** Network policies: union of the account's policies and the org's global ones; none → allow. */
async function networkAllowed(ctx: ServerContext, p: Principal): Promise<boolean> {
  const rows = await ctx.store.db
    .selectFrom('network_policies')
    .leftJoin('network_policy_attachments as a', (j) =>
      j
        .onRef('a.policy_id', '=', 'network_policies.id')
        .on('a.account_type', '=', p.kind)
        .on('a.account_id', '=', p.accountId),
    )
    .select(['network_policies.allowed_ips', 'network_policies.is_global', 'a.account_id'])
    .where('network_policies.org_id', '=', p.orgId)
    .execute();
  const applicable = rows.filter((r) => r.is_global || r.account_id);
  if (applicable.length === 0) return true;
  const entries: string[] = [];
  for (const r of applicable) {
    try {
      entries.push(...(JSON.parse(r.allowed_ips) as string[]));
    } catch {
      // A corrupt row grants nothing.
    }
  }
  return ipAllowed(p.ip, entries);
}

/** Express middleware for `/v1` and E2E `/secrets/`: sets `req.principal` or answers 401/403/429. */
export function authenticate(ctx: ServerContext) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const raw = header(req, 'Authorization');
    if (raw === undefined) {
      ctx.metrics.authFailures.inc({ reason: 'missing' });
      throw unauthorized('Authentication credentials were not provided.');
    }
    const parsed = parseAuthorizationHeader(raw);
    if (!parsed.ok) {
      ctx.metrics.authFailures.inc({
        reason: parsed.reason === 'unknown_type' ? 'invalid_type' : 'malformed',
      });
      // The hint names the header to send instead (a whole pss token, parts after the token); never the token.
      throw unauthorized(
        parsed.hint ?? (parsed.reason === 'unknown_type' ? 'Invalid token' : 'Token expired or deleted'),
      );
    }
    const rec = await lookupToken(ctx, parsed.authType, parsed.token);
    if (!rec) {
      ctx.metrics.authFailures.inc({ reason: 'invalid_token' });
      throw unauthorized('Token expired or deleted');
    }
    const p: Principal = {
      kind: rec.kind,
      accountId: rec.accountId,
      orgId: rec.orgId,
      orgName: rec.orgName,
      role: rec.role,
      identityKey: rec.identityKey,
      tokenId: rec.tokenId,
      tokenName: rec.tokenName,
      ip: clientIp(req, ctx.trustedProxies),
      userAgent: header(req, 'User-Agent') ?? null,
    };
    if (!(await networkAllowed(ctx, p))) {
      ctx.metrics.authFailures.inc({ reason: 'network_policy' });
      throw new HttpError(
        403,
        'Access denied: a network access policy restricts access from your IP address.',
      );
    }
    rateLimit(ctx, `token:${rec.tokenId}`);
    await touchToken(ctx, rec);
    (req as AuthedRequest).principal = p;
    next();
  };
}

/** Throws 429 with `Retry-After` when the key is over its limit. */
export function rateLimit(ctx: ServerContext, key: string): void {
  if (!ctx.rateLimiter) return;
  const wait = ctx.rateLimiter.hit(key);
  if (wait > 0) {
    ctx.metrics.authFailures.inc({ reason: 'rate_limited' });
    throw new HttpError(429, throttleMessage(wait), { 'Retry-After': String(wait) });
  }
}
