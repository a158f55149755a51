/**
 * The login envelope shared by every method (phase-external-identities.md §2 steps 1, 3, 4, 10, 11): which account,
 * which of its identities, the TTL, and the short-lived token minted for it. Every outcome is audited.
 */
import type { Principal, ServerContext } from '../context';
import type { ExternalIdentityTable, ServiceAccountTable } from '../db/schema';
import { audit } from '../audit';
import { isUuid, nowIso, toStoredIso } from '../http';
import { mintSaToken } from '../sa-tokens';
import { LoginError } from './login-error';
import type { IdentityProvider } from './config';

export interface LoginAccount {
  sa: ServiceAccountTable;
  identities: ExternalIdentityTable[];
}

/** Step 1: `{account: {type: "service", id}}`. */
export function accountIdOf(body: unknown): string {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new LoginError(400, 'Invalid JSON');
  const account = (body as { account?: { type?: unknown; id?: unknown } }).account;
  if (!account || account.type !== 'service' || typeof account.id !== 'string' || account.id === '') {
    throw new LoginError(400, 'Only service account authentication is supported.');
  }
  return account.id;
}

/** Steps 3 and 4: the account, with server-managed keys, and its live identities of `provider`. */
export async function loadAccount(
  ctx: ServerContext,
  accountId: string,
  provider: IdentityProvider,
  label: string,
): Promise<LoginAccount> {
  const db = ctx.store.db;
  const sa = isUuid(accountId)
    ? await db
        .selectFrom('service_accounts')
        .selectAll()
        .where('id', '=', accountId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst()
    : undefined;
  if (!sa) throw new LoginError(404, 'Service account not found');
  if (!sa.server_wrapped_keyring) throw new LoginError(403, 'Server-side key management must be enabled');
  const identities = await db
    .selectFrom('external_identities as i')
    .innerJoin('external_identity_attachments as a', 'a.identity_id', 'i.id')
    .selectAll('i')
    .where((eb) =>
      eb.and({
        'a.service_account_id': sa.id,
        'i.provider': provider,
        'i.org_id': sa.org_id,
        'i.deleted_at': null,
      }),
    )
    .orderBy('i.created_at')
    .execute();
  if (identities.length === 0) throw new LoginError(404, `No ${label} identity attached to this account`);
  return { sa, identities };
}

/** Step 10: the requested TTL within the identity's bounds. */
export function ttlOf(body: unknown, identity: ExternalIdentityTable): number {
  const req = (body as { tokenRequest?: { ttl?: unknown } }).tokenRequest;
  const raw = req?.ttl ?? identity.default_ttl_seconds;
  const ttl = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl)) throw new LoginError(400, 'Invalid TTL value');
  if (ttl <= 0) throw new LoginError(400, 'TTL must be a positive integer');
  if (ttl > identity.max_ttl_seconds) {
    throw new LoginError(
      400,
      `Requested TTL (${ttl}s) exceeds maximum allowed TTL (${identity.max_ttl_seconds}s)`,
    );
  }
  return ttl;
}

/** The account acting on its own behalf, for the audit log. */
function actor(sa: ServiceAccountTable, ip: string, userAgent: string | null, tokenId: string): Principal {
  return {
    kind: 'service_account',
    accountId: sa.id,
    orgId: sa.org_id,
    orgName: '',
    role: null,
    identityKey: sa.identity_key,
    tokenId,
    tokenName: '',
    ip,
    userAgent,
  };
}

/** Step 11: a token that expires after `ttl`, created by the account itself, audited; the wire answer. */
export async function mintLoginToken(
  ctx: ServerContext,
  account: LoginAccount,
  identity: ExternalIdentityTable,
  ttl: number,
  who: { ip: string; userAgent: string | null; subject: string },
) {
  const { sa } = account;
  const expiresAt = toStoredIso(new Date(Date.now() + ttl * 1000));
  const name = identity.token_name_pattern ?? (identity.provider === 'aws_iam' ? 'aws-iam' : 'oidc');
  const minted = await ctx.store.db.transaction().execute(async (trx) => {
    const t = await mintSaToken(trx, ctx, { kind: 'service_account', accountId: sa.id }, sa, name, expiresAt);
    await audit(trx, actor(sa, who.ip, who.userAgent, t.id), {
      eventType: 'C',
      resourceType: 'sa_token',
      resourceId: t.id,
      detail: {
        service_account: sa.id,
        via: identity.provider,
        identity: identity.id,
        subject: who.subject,
        ttl,
      },
    });
    return t;
  });
  return {
    authentication: {
      tokenType: 'ServiceAccount',
      token: minted.token,
      bearerToken: minted.bearer_token,
      TTL: ttl,
      maxTTL: identity.max_ttl_seconds,
    },
  };
}

/** A refused login against a known account, audited (the reason, never the credential). */
export async function auditRefusal(
  ctx: ServerContext,
  sa: ServiceAccountTable,
  provider: IdentityProvider,
  who: { ip: string; userAgent: string | null },
  err: LoginError,
): Promise<void> {
  try {
    await audit(ctx.store.db, actor(sa, who.ip, who.userAgent, ''), {
      eventType: 'A',
      resourceType: 'identity_login',
      resourceId: sa.id,
      detail: { outcome: 'refused', via: provider, status: err.status, reason: err.message, at: nowIso() },
    });
  } catch (e) {
    ctx.log.warn({ err: e }, 'could not audit a refused identity login');
  }
}
