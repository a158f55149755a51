/** Apps, their environments and who may reach them (app memberships, environment keys). */
import type { AccountType, AppTable, EnvironmentTable } from '../db/schema';
import type { Principal } from '../context';
import { isUuid } from '../http';
import type { Db } from '../keys';

/** The environment with this id whose app is in the organisation, or undefined; any id is safe. */
export async function findEnvironmentInOrg(
  db: Db,
  orgId: string,
  envId: string | undefined,
): Promise<EnvironmentTable | undefined> {
  if (!isUuid(envId)) return undefined;
  return db
    .selectFrom('environments')
    .innerJoin('apps', 'apps.id', 'environments.app_id')
    .selectAll('environments')
    .where('environments.id', '=', envId)
    .where('apps.org_id', '=', orgId)
    .executeTakeFirst();
}

/** An account's app membership row (its `paths`), or undefined. */
export async function membershipRow(db: Db, appId: string, type: AccountType, accountId: string) {
  const key = { app_id: appId, account_type: type, account_id: accountId };
  return db
    .selectFrom('app_memberships')
    .select(['app_id', 'paths'])
    .where((eb) => eb.and(key))
    .executeTakeFirst();
}

/** Does the account hold a key of this environment? */
export async function holdsEnvironmentKey(
  db: Db,
  envId: string,
  type: AccountType,
  accountId: string,
): Promise<boolean> {
  const key = { environment_id: envId, account_type: type, account_id: accountId };
  const row = await db
    .selectFrom('environment_keys')
    .select('id')
    .where((eb) => eb.and(key))
    .executeTakeFirst();
  return row !== undefined;
}

/** An account of an organisation, as a principal names it. */
type Account = Pick<Principal, 'orgId' | 'kind' | 'accountId'>;

/** The apps of its organisation the account is a direct member of, newest first. */
export async function appsOf(db: Db, a: Account): Promise<AppTable[]> {
  return db
    .selectFrom('apps')
    .innerJoin('app_memberships as m', 'm.app_id', 'apps.id')
    .selectAll('apps')
    .where((eb) => eb.and({ 'apps.org_id': a.orgId, 'm.account_type': a.kind, 'm.account_id': a.accountId }))
    .orderBy('apps.created_at', 'desc')
    .execute();
}

/** The environments of an app the account holds a key of, in their order. */
export async function environmentsOf(db: Db, appId: string, a: Account): Promise<EnvironmentTable[]> {
  return db
    .selectFrom('environments')
    .innerJoin('environment_keys as k', 'k.environment_id', 'environments.id')
    .selectAll('environments')
    .where('environments.app_id', '=', appId)
    .where((eb) => eb.and({ 'k.account_type': a.kind, 'k.account_id': a.accountId }))
    .orderBy('environments.sort_index')
    .execute();
}

/** An account's environment keys in its organisation, joined to their environment and app. */
function keysInOrg(db: Db, account: Account) {
  return db
    .selectFrom('environment_keys as k')
    .innerJoin('environments as e', 'e.id', 'k.environment_id')
    .innerJoin('apps as a', 'a.id', 'e.app_id')
    .where('k.account_type', '=', account.kind)
    .where('k.account_id', '=', account.accountId)
    .where('a.org_id', '=', account.orgId);
}

/**
 * The account's environment keys with their environment, app and the account's membership `paths` (the E2E token
 * bootstrap): apps oldest first, environments in their order.
 */
export async function bootstrapKeys(db: Db, account: Account) {
  return keysInOrg(db, account)
    .leftJoin('app_memberships as m', (j) =>
      j
        .onRef('m.app_id', '=', 'a.id')
        .onRef('m.account_type', '=', 'k.account_type')
        .onRef('m.account_id', '=', 'k.account_id'),
    )
    .select([
      'k.id as key_id',
      'k.identity_key',
      'k.wrapped_seed',
      'k.wrapped_salt',
      'k.created_at as key_created_at',
      'k.updated_at as key_updated_at',
      'e.id as env_id',
      'e.name as env_name',
      'e.env_type',
      'e.sort_index',
      'e.created_at as env_created_at',
      'e.updated_at as env_updated_at',
      'a.id as app_id',
      'a.name as app_name',
      'a.sse_enabled',
      'a.created_at as app_created_at',
      'm.paths',
    ])
    .orderBy('a.created_at')
    .orderBy('e.sort_index')
    .execute();
}

/** The environments the account holds a key of, with when each last changed (what a change stream reports). */
export async function readableEnvironments(
  db: Db,
  account: Account,
): Promise<Array<Pick<EnvironmentTable, 'id' | 'updated_at'>>> {
  return keysInOrg(db, account).select(['e.id', 'e.updated_at']).execute();
}

/** When the environment last changed, or undefined when it is gone. */
export async function environmentUpdatedAt(db: Db, envId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('environments')
    .select('updated_at')
    .where('id', '=', envId)
    .executeTakeFirst();
  return row?.updated_at;
}

/** The ids of the organisation's environments with this name, in any case (of one app, when given). */
export async function environmentIdsNamed(
  db: Db,
  orgId: string,
  name: string,
  appId?: string,
): Promise<string[]> {
  let q = db
    .selectFrom('environments')
    .innerJoin('apps', 'apps.id', 'environments.app_id')
    .select('environments.id')
    .where('apps.org_id', '=', orgId);
  if (appId) q = q.where('environments.app_id', '=', appId);
  const rows = await q
    .where((eb) => eb(eb.fn('lower', ['environments.name']), '=', name.toLowerCase()))
    .execute();
  return rows.map((r) => r.id);
}

/** Renames an environment. */
export async function renameEnvironment(
  db: Db,
  envId: string,
  patch: Pick<EnvironmentTable, 'name' | 'updated_at'>,
): Promise<void> {
  await db.updateTable('environments').set(patch).where('id', '=', envId).execute();
}

/** The app of an environment (it always has one). */
export async function appOf(db: Db, env: Pick<EnvironmentTable, 'app_id'>): Promise<AppTable> {
  return db.selectFrom('apps').selectAll().where('id', '=', env.app_id).executeTakeFirstOrThrow();
}

/** Names, order and ids of an app's environments (name uniqueness, the next index). */
export async function environmentNames(db: Db, appId: string) {
  return db
    .selectFrom('environments')
    .select(['id', 'name', 'sort_index'])
    .where('app_id', '=', appId)
    .execute();
}

/** Hard-deletes an environment and everything under it. */
export async function deleteEnvironmentCascade(db: Db, envId: string): Promise<void> {
  const secretIds = db.selectFrom('secrets').select('id').where('environment_id', '=', envId);
  await db.deleteFrom('secret_tags').where('secret_id', 'in', secretIds).execute();
  await db.deleteFrom('personal_secrets').where('secret_id', 'in', secretIds).execute();
  await db.deleteFrom('secrets').where('environment_id', '=', envId).execute();
  await db.deleteFrom('folders').where('environment_id', '=', envId).execute();
  await db.deleteFrom('environment_keys').where('environment_id', '=', envId).execute();
  await db.deleteFrom('server_env_keys').where('environment_id', '=', envId).execute();
  await db.deleteFrom('environments').where('id', '=', envId).execute();
}

/** Hard-deletes an app, its environments (and everything under them) and its memberships; returns the environment ids. */
export async function deleteApp(db: Db, appId: string): Promise<string[]> {
  const envs = await environmentNames(db, appId);
  for (const e of envs) await deleteEnvironmentCascade(db, e.id);
  await db.deleteFrom('app_memberships').where('app_id', '=', appId).execute();
  await db.deleteFrom('apps').where('id', '=', appId).execute();
  return envs.map((e) => e.id);
}
