/**
 * Server-side key handling (phase-rest-api.md §12): environment creation, the server's copy of environment keys,
 * and access grants by re-wrapping environment seeds for accounts' X25519 keys.
 */
import type { Kysely, Transaction } from 'kysely';
import {
  decryptAsymmetric,
  ed25519PublicToX25519,
  kxSeedKeyPair,
  newEnvironmentKey,
  wrapEnvironmentKey,
  type EnvironmentKeyMaterial,
  type KeyPairHex,
} from '../core/crypto';
import type { AccountType, DB, EnvironmentTable } from './db/schema';
import { badRequest, newId, nowIso } from './http';
import { DEFAULT_ROLES } from './rbac';
import { newRecord } from './repositories/rows';

export type Db = Kysely<DB> | Transaction<DB>;

/**
 * Environment seeds never change (environments are only created and hard-deleted), so the unwrapped server copy can
 * be cached per process without affecting correctness across processes.
 */
export class EnvKeyCache {
  private readonly cache = new Map<string, EnvironmentKeyMaterial>();
  constructor(private readonly server: KeyPairHex) {}

  async get(db: Db, environmentId: string): Promise<EnvironmentKeyMaterial | undefined> {
    const hit = this.cache.get(environmentId);
    if (hit) return hit;
    const row = await db
      .selectFrom('server_env_keys')
      .selectAll()
      .where('environment_id', '=', environmentId)
      .executeTakeFirst();
    if (!row) return undefined;
    const seed = decryptAsymmetric(row.wrapped_seed, this.server.privateKey, this.server.publicKey);
    const salt = decryptAsymmetric(row.wrapped_salt, this.server.privateKey, this.server.publicKey);
    const material = { seed, salt, ...kxSeedKeyPair(seed) };
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(environmentId, material);
    return material;
  }

  forget(environmentId: string): void {
    this.cache.delete(environmentId);
  }
}

export interface Recipient {
  type: AccountType;
  id: string;
  /** Ed25519 public key hex. */
  identityKey: string;
}

/** Gives an account an EnvironmentKey (idempotent): seed and salt wrapped to its X25519 key. */
export async function grantEnvironment(
  db: Db,
  env: { id: string; identity_key: string },
  material: { seed: string; salt: string },
  to: Recipient,
): Promise<void> {
  const existing = await db
    .selectFrom('environment_keys')
    .select('id')
    .where('environment_id', '=', env.id)
    .where('account_type', '=', to.type)
    .where('account_id', '=', to.id)
    .executeTakeFirst();
  if (existing) return;
  const wrapped = wrapEnvironmentKey(material, ed25519PublicToX25519(to.identityKey));
  const now = nowIso();
  await db
    .insertInto('environment_keys')
    .values({
      id: newId(),
      environment_id: env.id,
      account_type: to.type,
      account_id: to.id,
      identity_key: env.identity_key,
      wrapped_seed: wrapped.wrappedSeed,
      wrapped_salt: wrapped.wrappedSalt,
      created_at: now,
      updated_at: now,
    })
    // A concurrent grant of the same key (another request or process) is not an error.
    .onConflict((oc) => oc.columns(['environment_id', 'account_type', 'account_id']).doNothing())
    .execute();
}

/** Live members whose role has global access (Owner, Admin), in creation order, Owner first. */
export async function globalMembers(db: Db, orgId: string): Promise<Array<Recipient & { roleName: string }>> {
  const rows = await db
    .selectFrom('members')
    .innerJoin('roles', 'roles.id', 'members.role_id')
    .select(['members.id', 'members.identity_key', 'roles.name', 'roles.is_default', 'roles.permissions'])
    .where('members.org_id', '=', orgId)
    .where('members.deleted_at', 'is', null)
    .orderBy('members.created_at')
    .execute();
  const out: Array<Recipient & { roleName: string }> = [];
  for (const r of rows) {
    let global = false;
    if (r.is_default) global = r.name === 'Owner' || r.name === 'Admin';
    else {
      try {
        global = (JSON.parse(r.permissions) as { global_access?: unknown }).global_access === true;
      } catch {
        global = false;
      }
    }
    if (global && r.identity_key)
      out.push({ type: 'member', id: r.id, identityKey: r.identity_key, roleName: r.name });
  }
  out.sort((a, b) => (a.roleName === 'Owner' ? -1 : b.roleName === 'Owner' ? 1 : 0));
  return out;
}

export const ENV_NAME_RE = /^[a-zA-Z0-9\-_]{1,64}$/;

/**
 * Creates an environment per §12.1: fresh seed and salt; copies for the server, every global-access member, every
 * service account that is a member of the app, and the requester.
 */
export async function createEnvironment(
  db: Db,
  server: KeyPairHex,
  opts: { orgId: string; appId: string; name: string; envType: string; index: number; requester?: Recipient },
): Promise<EnvironmentTable> {
  if (!ENV_NAME_RE.test(opts.name)) {
    throw badRequest(
      'Environment name is invalid. Only letters, numbers, hyphens and underscores are allowed (max 64 characters).',
    );
  }
  const material = newEnvironmentKey();
  const globals = await globalMembers(db, opts.orgId);
  if (globals.length === 0) {
    throw badRequest(
      'Cannot create environment: no global-access members with identity keys found in the organisation.',
    );
  }
  const recipients: Recipient[] = [...globals];
  const saMembers = await db
    .selectFrom('app_memberships')
    .innerJoin('service_accounts', 'service_accounts.id', 'app_memberships.account_id')
    .select(['service_accounts.id', 'service_accounts.identity_key'])
    .where('app_memberships.app_id', '=', opts.appId)
    .where('app_memberships.account_type', '=', 'service_account')
    .where('service_accounts.deleted_at', 'is', null)
    .where('service_accounts.server_wrapped_keyring', 'is not', null)
    .execute();
  for (const sa of saMembers)
    recipients.push({ type: 'service_account', id: sa.id, identityKey: sa.identity_key });
  if (opts.requester) recipients.push(opts.requester);

  const owner = wrapEnvironmentKey(material, ed25519PublicToX25519(globals[0].identityKey));
  const env: EnvironmentTable = {
    ...newRecord(),
    app_id: opts.appId,
    name: opts.name,
    env_type: opts.envType,
    sort_index: opts.index,
    identity_key: material.publicKey,
    wrapped_seed: owner.wrappedSeed,
    wrapped_salt: owner.wrappedSalt,
  };
  await db.insertInto('environments').values(env).execute();
  const serverCopy = wrapEnvironmentKey(material, server.publicKey);
  await db
    .insertInto('server_env_keys')
    .values({
      environment_id: env.id,
      identity_key: material.publicKey,
      wrapped_seed: serverCopy.wrappedSeed,
      wrapped_salt: serverCopy.wrappedSalt,
      created_at: env.created_at,
    })
    .execute();
  const seen = new Set<string>();
  for (const r of recipients) {
    const k = `${r.type}:${r.id}`;
    if (seen.has(k)) continue;
    seen.add(k);
    await grantEnvironment(db, env, material, r);
  }
  return env;
}

/** Adds direct app membership (idempotent). */
export async function addAppMember(
  db: Db,
  appId: string,
  type: AccountType,
  accountId: string,
  paths: string[] | null = null,
): Promise<void> {
  // An existing membership keeps its created_at and takes the new paths.
  await db
    .insertInto('app_memberships')
    .values({
      app_id: appId,
      account_type: type,
      account_id: accountId,
      paths: paths ? JSON.stringify(paths) : null,
      created_at: nowIso(),
    })
    .onConflict((oc) =>
      oc
        .columns(['app_id', 'account_type', 'account_id'])
        .doUpdateSet({ paths: paths ? JSON.stringify(paths) : null }),
    )
    .execute();
}

/** Names of the global default roles (used when checking whether a role row is global). */
export const GLOBAL_DEFAULT_ROLES = Object.entries(DEFAULT_ROLES)
  .filter(([, m]) => m.global_access)
  .map(([n]) => n);
