/**
 * Organisation bootstrap and members (extensions: Phase creates members through its console and invites; here the
 * CLI and tests create them directly, each with a server-managed Ed25519 keyring and a personal access token).
 */
import { initCrypto, type KeyPairHex } from '../core/crypto';
import { PhaseBridgeError } from '../core/errors';
import {
  mintAccountToken,
  newServerManagedIdentity,
  serverKeyPair,
  tokenHash,
  unwrapServerKeyring,
} from '../core/mint';
import type { Store } from './db/store';
import { addAppMember, grantEnvironment, type Db } from './keys';
import { newId, nowIso, toStoredIso } from './http';
import { DEFAULT_ROLE_NAMES, DEFAULT_ROLES, hasGlobalAccess } from './rbac';
import { liveMemberByEmail } from './repositories/accounts';
import { EnvKeyCache } from './keys';

export class OrganisationError extends PhaseBridgeError {
  constructor(message: string) {
    super('organisation', message);
  }
}

const DEFAULT_ROLE_COLORS: Record<string, string> = {
  Owner: '#3b82f6',
  Admin: '#a855f7',
  Manager: '#f59e0b',
  Developer: '#10b981',
  Service: '#6b7280',
};

export interface InitOrganisationOptions {
  orgName?: string;
  ownerEmail?: string;
  tokenName?: string;
}

export interface InitOrganisationResult {
  orgId: string;
  ownerId: string;
  /** The owner's `pss_user:v1` personal access token: shown once, stored only as a hash. */
  ownerToken: string;
}

/** The single organisation of this server, if initialised. */
export async function findOrganisation(db: Db): Promise<{ id: string; name: string } | undefined> {
  return db.selectFrom('organisations').select(['id', 'name']).orderBy('created_at').executeTakeFirst();
}

/** Creates the organisation, its five default roles and the owner with a PAT. Refuses when one exists. */
export async function initOrganisation(
  store: Store,
  serverSecretHex: string,
  opts: InitOrganisationOptions = {},
): Promise<InitOrganisationResult> {
  await initCrypto();
  const server = serverKeyPair(serverSecretHex);
  return store.db.transaction().execute(async (trx) => {
    if (await findOrganisation(trx)) {
      throw new OrganisationError('this database already has an organisation; `server init` runs once');
    }
    const now = nowIso();
    const orgId = newId();
    await trx
      .insertInto('organisations')
      .values({ id: orgId, name: opts.orgName ?? 'phase-bridge', created_at: now, updated_at: now })
      .execute();
    for (const name of DEFAULT_ROLE_NAMES) {
      await trx
        .insertInto('roles')
        .values({
          id: newId(),
          org_id: orgId,
          name,
          description: DEFAULT_ROLES[name].meta.description,
          color: DEFAULT_ROLE_COLORS[name],
          permissions: JSON.stringify(DEFAULT_ROLES[name]),
          is_default: 1,
          created_at: nowIso(),
          updated_at: nowIso(),
        })
        .execute();
    }
    const { id, token } = await insertMember(trx, server, orgId, {
      role: 'Owner',
      email: opts.ownerEmail ?? 'owner@localhost',
      tokenName: opts.tokenName ?? 'owner',
    });
    return { orgId, ownerId: id, ownerToken: token };
  });
}

export interface CreateMemberOptions {
  /** Role name (case-insensitive) or role id. */
  role: string;
  email?: string;
  fullName?: string;
  tokenName?: string;
  /** Token expiry (ISO-8601 stored format) or null for never. */
  expiresAt?: string | null;
}

/** Adds a member with a server-managed keyring and returns a fresh PAT. Global roles get every environment. */
export async function createMemberWithToken(
  store: Store,
  serverSecretHex: string,
  opts: CreateMemberOptions,
): Promise<{ id: string; token: string }> {
  await initCrypto();
  const server = serverKeyPair(serverSecretHex);
  return store.db.transaction().execute(async (trx) => {
    const org = await findOrganisation(trx);
    if (!org) throw new OrganisationError('no organisation yet: run `phase-bridge server init` first');
    return insertMember(trx, server, org.id, opts);
  });
}

/** Mints another PAT for an existing member (used by tests for expiry and revocation). */
export async function mintMemberToken(
  store: Store,
  serverSecretHex: string,
  memberId: string,
  opts: { name?: string; expiresAt?: string | null } = {},
): Promise<{ id: string; token: string }> {
  await initCrypto();
  const server = serverKeyPair(serverSecretHex);
  const m = await store.db
    .selectFrom('members')
    .select(['server_wrapped_keyring'])
    .where('id', '=', memberId)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (!m) throw new OrganisationError(`member ${memberId} not found`);
  const minted = mintAccountToken('user', unwrapServerKeyring(m.server_wrapped_keyring, server));
  const id = newId();
  await store.db
    .insertInto('user_tokens')
    .values({
      id,
      member_id: memberId,
      name: opts.name ?? 'token',
      token_hash: tokenHash(minted.tokenValue),
      identity_key: minted.identityKey,
      wrapped_key_share: minted.wrappedKeyShare,
      created_at: nowIso(),
      expires_at: storedExpiry(opts.expiresAt),
      deleted_at: null,
      last_used_at: null,
    })
    .execute();
  return { id, token: minted.token };
}

async function insertMember(
  trx: Db,
  server: KeyPairHex,
  orgId: string,
  opts: CreateMemberOptions,
): Promise<{ id: string; token: string }> {
  const roles = await trx.selectFrom('roles').selectAll().where('org_id', '=', orgId).execute();
  const role =
    roles.find((r) => r.id === opts.role) ??
    roles.find((r) => r.name.toLowerCase() === opts.role.toLowerCase());
  if (!role) {
    throw new OrganisationError(`unknown role '${opts.role}'; roles: ${roles.map((r) => r.name).join(', ')}`);
  }
  const email = (opts.email ?? `${newId().slice(0, 8)}@localhost`).trim().toLowerCase();
  const dup = await liveMemberByEmail(trx, orgId, email);
  if (dup) throw new OrganisationError(`'${email}' is already a member of this organisation`);
  if (role.name === 'Owner' && role.is_default) {
    const owner = await trx
      .selectFrom('members')
      .select('id')
      .where('org_id', '=', orgId)
      .where('role_id', '=', role.id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (owner) throw new OrganisationError('the organisation already has an Owner');
  }
  const identity = newServerManagedIdentity(server.publicKey);
  const id = newId();
  const now = nowIso();
  await trx
    .insertInto('members')
    .values({
      id,
      org_id: orgId,
      email,
      username: email.split('@')[0],
      full_name: opts.fullName ?? null,
      role_id: role.id,
      identity_key: identity.identityKey,
      server_wrapped_keyring: identity.serverWrappedKeyring,
      created_at: now,
      updated_at: now,
      deleted_at: null,
    })
    .execute();
  // Joining consumes a pending invite for this email.
  await trx
    .updateTable('invites')
    .set({ valid: 0 })
    .where('org_id', '=', orgId)
    .where('invitee_email', '=', email)
    .execute();
  const minted = mintAccountToken('user', identity.keyring);
  await trx
    .insertInto('user_tokens')
    .values({
      id: newId(),
      member_id: id,
      name: opts.tokenName ?? 'default',
      token_hash: tokenHash(minted.tokenValue),
      identity_key: minted.identityKey,
      wrapped_key_share: minted.wrappedKeyShare,
      created_at: now,
      expires_at: storedExpiry(opts.expiresAt),
      deleted_at: null,
      last_used_at: null,
    })
    .execute();
  if (hasGlobalAccess(role)) {
    // Global-access members belong to every app and hold every environment (§5.1).
    const cache = new EnvKeyCache(server);
    const apps = await trx.selectFrom('apps').select('id').where('org_id', '=', orgId).execute();
    for (const app of apps) {
      await addAppMember(trx, app.id, 'member', id);
      const envs = await trx.selectFrom('environments').selectAll().where('app_id', '=', app.id).execute();
      for (const env of envs) {
        const material = await cache.get(trx, env.id);
        if (material) {
          await grantEnvironment(trx, env, material, {
            type: 'member',
            id,
            identityKey: identity.identityKey,
          });
        }
      }
    }
  }
  return { id, token: minted.token };
}

/** Normalises an expiry to the stored format (text comparison with `now` must be time comparison). */
function storedExpiry(v: string | null | undefined): string | null {
  if (v === undefined || v === null) return null;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new OrganisationError(`expiry '${v}' is not an ISO-8601 datetime`);
  return toStoredIso(d);
}
