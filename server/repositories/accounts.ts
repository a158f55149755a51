/** Members and service accounts with their tokens: the organisation's accounts and their removal. */
import type { AccountType } from '../db/schema';
import { isUuid, nowIso } from '../http';
import type { Db } from '../keys';
import { softDelete } from './rows';

/** Each account type's table, and its token table with the column naming the account. */
const TABLES = {
  member: { accounts: 'members', tokens: 'user_tokens', owner: 'member_id' },
  service_account: { accounts: 'service_accounts', tokens: 'sa_tokens', owner: 'sa_id' },
} as const;

/** The ids of an organisation's live accounts of one type. */
export async function liveAccountIds(db: Db, orgId: string, type: AccountType): Promise<string[]> {
  const rows = await db
    .selectFrom(TABLES[type].accounts)
    .select('id')
    .where('org_id', '=', orgId)
    .where('deleted_at', 'is', null)
    .execute();
  return rows.map((r) => r.id);
}

/** The live member of the organisation with this email (stored lowercased), or undefined. */
export async function liveMemberByEmail(
  db: Db,
  orgId: string,
  email: string,
): Promise<{ id: string } | undefined> {
  return db
    .selectFrom('members')
    .select('id')
    .where('org_id', '=', orgId)
    .where('email', '=', email)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

/** Soft-deletes an account and revokes its live tokens (grants are removed separately, grants.ts). */
export async function softDeleteAccount(db: Db, type: AccountType, id: string): Promise<void> {
  const t = TABLES[type];
  await softDelete(db, t.accounts, id);
  // The two token tables differ only in the owner column's name.
  const tokens = t.tokens as 'sa_tokens';
  await db
    .updateTable(tokens)
    .set({ deleted_at: nowIso() })
    .where(t.owner as 'sa_id', '=', id)
    .where('deleted_at', 'is', null)
    .execute();
}

/** The organisation's live service accounts with their role's name, newest first. */
export async function serviceAccountsWithRoles(db: Db, orgId: string) {
  return db
    .selectFrom('service_accounts')
    .leftJoin('roles', 'roles.id', 'service_accounts.role_id')
    .selectAll('service_accounts')
    .select(['roles.name as role_name'])
    .where((eb) => eb.and({ 'service_accounts.org_id': orgId, 'service_accounts.deleted_at': null }))
    .orderBy('service_accounts.created_at', 'desc')
    .execute();
}

/** A service account's live tokens, newest first (the `tokens` of its detail). */
export async function liveTokens(db: Db, saId: string) {
  return db
    .selectFrom('sa_tokens')
    .select(['id', 'name', 'created_at', 'expires_at'])
    .where((eb) => eb.and({ sa_id: saId, deleted_at: null }))
    .orderBy('created_at', 'desc')
    .execute();
}

/** A live token of the service account by id, or undefined; any id is safe. */
export async function findLiveToken(
  db: Db,
  saId: string,
  tokenId: string,
): Promise<{ id: string } | undefined> {
  if (!isUuid(tokenId)) return undefined;
  return db
    .selectFrom('sa_tokens')
    .select('id')
    .where((eb) => eb.and({ id: tokenId, sa_id: saId, deleted_at: null }))
    .executeTakeFirst();
}

/**
 * Revokes a service-account token: at once, or (rotation without an outage, extension) at `until`, unless it
 * expires sooner anyway.
 */
export async function revokeSaToken(db: Db, tokenId: string, until?: string): Promise<void> {
  if (until === undefined) {
    await db.updateTable('sa_tokens').set({ deleted_at: nowIso() }).where('id', '=', tokenId).execute();
    return;
  }
  await db
    .updateTable('sa_tokens')
    .set({ expires_at: until })
    .where('id', '=', tokenId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', until)]))
    .execute();
}
