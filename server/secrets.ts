/**
 * Secret storage shared by the E2E `/secrets/` endpoints (ciphertext in and out) and the SSE `/v1/secrets/` API
 * (plaintext, encrypted by the server). Reads are three queries whatever the size: secrets, their tags, and the
 * caller's personal overrides.
 */
import { sql } from 'kysely';
import type { Principal } from './context';
import type { SecretTable } from './db/schema';
import { isUniqueViolation } from './db/store';
import { conflict, isoToMicros, microsToIso, newId, nowIso } from './http';
import type { Db } from './keys';
import { pathAllowed } from './access';

export interface OverrideRow {
  id: string;
  value: string;
  is_active: number;
  created_at: string;
  updated_at: string;
}

export interface LoadedSecret extends SecretTable {
  tags: string[];
  override: OverrideRow | null;
}

export interface SecretFilter {
  path?: string;
  keyDigest?: string;
  /** Any of these tag names. */
  tags?: string[];
  ids?: string[];
  /** Path restriction (extension). */
  allowedPaths?: string[] | null;
}

export async function loadSecrets(
  db: Db,
  envId: string,
  filter: SecretFilter,
  p: Principal | null,
): Promise<LoadedSecret[]> {
  let q = db
    .selectFrom('secrets')
    .selectAll()
    .where('environment_id', '=', envId)
    .where('deleted_at', 'is', null);
  if (filter.path !== undefined) q = q.where('path', '=', filter.path);
  if (filter.keyDigest !== undefined) q = q.where('key_digest', '=', filter.keyDigest);
  if (filter.ids !== undefined) {
    if (filter.ids.length === 0) return [];
    q = q.where('id', 'in', filter.ids);
  }
  const rows = await q.orderBy('created_at').orderBy('id').execute();
  const allowed = filter.allowedPaths ?? null;
  const visible = allowed ? rows.filter((r) => pathAllowed(allowed, r.path)) : rows;
  if (visible.length === 0) return [];

  const tagRows = await db
    .selectFrom('secret_tags')
    .innerJoin('tags', 'tags.id', 'secret_tags.tag_id')
    .innerJoin('secrets', 'secrets.id', 'secret_tags.secret_id')
    .select(['secret_tags.secret_id', 'tags.name'])
    .where('secrets.environment_id', '=', envId)
    .where('secrets.deleted_at', 'is', null)
    .orderBy('tags.name')
    .execute();
  const tagsBySecret = new Map<string, string[]>();
  for (const t of tagRows) {
    const list = tagsBySecret.get(t.secret_id);
    if (list) list.push(t.name);
    else tagsBySecret.set(t.secret_id, [t.name]);
  }

  const overrides = new Map<string, OverrideRow>();
  if (p && p.kind === 'member') {
    const ov = await db
      .selectFrom('personal_secrets')
      .innerJoin('secrets', 'secrets.id', 'personal_secrets.secret_id')
      .select([
        'personal_secrets.id',
        'personal_secrets.secret_id',
        'personal_secrets.value',
        'personal_secrets.is_active',
        'personal_secrets.created_at',
        'personal_secrets.updated_at',
      ])
      .where('secrets.environment_id', '=', envId)
      .where('personal_secrets.member_id', '=', p.accountId)
      .execute();
    for (const o of ov) overrides.set(o.secret_id, o);
  }

  const out: LoadedSecret[] = [];
  const wanted = filter.tags;
  for (const r of visible) {
    const tags = tagsBySecret.get(r.id) ?? [];
    if (wanted && !tags.some((t) => wanted.includes(t))) continue;
    // Extend the row in place (no copy): this loop runs once per secret on every read.
    const loaded = r as LoadedSecret;
    loaded.tags = tags;
    loaded.override = overrides.get(r.id) ?? null;
    out.push(loaded);
  }
  return out;
}

/** The four field names that differ between the two casings of a secret object. */
const CASING = {
  snake: { isActive: 'is_active', createdAt: 'created_at', updatedAt: 'updated_at', keyDigest: 'key_digest' },
  camel: { isActive: 'isActive', createdAt: 'createdAt', updatedAt: 'updatedAt', keyDigest: 'keyDigest' },
} as const;

/**
 * The wire object: snake_case (E2E default) or camelCase (`/v1`, E2E with `X-Use-Camel-Case: true`), built
 * directly in the requested casing (no second pass converting keys) because this is the hot path of every read.
 */
export function secretWire(
  s: LoadedSecret,
  values?: { key: string; value: string; comment: string; override?: string },
  camel = false,
): Record<string, unknown> {
  const n = camel ? CASING.camel : CASING.snake;
  const o = s.override;
  return {
    id: s.id,
    key: values ? values.key : s.key,
    value: values ? values.value : s.value,
    comment: values ? values.comment : s.comment,
    tags: s.tags,
    override: o
      ? {
          id: o.id,
          value: values?.override ?? o.value,
          [n.isActive]: o.is_active === 1,
          [n.createdAt]: o.created_at,
          [n.updatedAt]: o.updated_at,
        }
      : null,
    type: s.type,
    lifecycle: 'static',
    path: s.path,
    [n.keyDigest]: s.key_digest,
    version: s.version,
    [n.createdAt]: s.created_at,
    [n.updatedAt]: s.updated_at,
    environment: s.environment_id,
    folder: s.folder_id,
  };
}

/** Folder row for a path (auto-created); null at the root. */
export async function ensureFolder(db: Db, envId: string, path: string): Promise<string | null> {
  if (path === '/') return null;
  const existing = await db
    .selectFrom('folders')
    .select('id')
    .where('environment_id', '=', envId)
    .where('path', '=', path)
    .executeTakeFirst();
  if (existing) return existing.id;
  await db
    .insertInto('folders')
    .values({ id: newId(), environment_id: envId, path, created_at: nowIso() })
    .onConflict((oc) => oc.columns(['environment_id', 'path']).doNothing())
    .execute();
  const row = await db
    .selectFrom('folders')
    .select('id')
    .where('environment_id', '=', envId)
    .where('path', '=', path)
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Replaces a secret's tags with these names, creating unknown tags in the organisation. */
export async function setTags(db: Db, orgId: string, secretId: string, names: string[]): Promise<void> {
  await db.deleteFrom('secret_tags').where('secret_id', '=', secretId).execute();
  const unique = [...new Set(names)];
  if (unique.length === 0) return;
  for (const name of unique) {
    await db
      .insertInto('tags')
      .values({ id: newId(), org_id: orgId, name, color: '' })
      .onConflict((oc) => oc.columns(['org_id', 'name']).doNothing())
      .execute();
  }
  const tags = await db
    .selectFrom('tags')
    .select('id')
    .where('org_id', '=', orgId)
    .where('name', 'in', unique)
    .execute();
  await db
    .insertInto('secret_tags')
    .values(tags.map((t) => ({ secret_id: secretId, tag_id: t.id })))
    .execute();
}

/**
 * Bumps the environment's `updated_at` (clients detect change by inequality). The new value is strictly greater
 * than the stored one even when two processes write in the same microsecond: the row is locked (PostgreSQL) and
 * the stored value read inside the writing transaction.
 */
export async function bumpEnvironment(
  db: Db,
  envId: string,
  kind: 'sqlite' | 'postgres' = 'sqlite',
): Promise<void> {
  const row =
    kind === 'postgres'
      ? (
          await sql<{
            updated_at: string;
          }>`select updated_at from environments where id = ${envId} for update`.execute(db)
        ).rows[0]
      : await db.selectFrom('environments').select('updated_at').where('id', '=', envId).executeTakeFirst();
  if (!row) return;
  let next = nowIso();
  if (next <= row.updated_at) next = microsToIso(isoToMicros(row.updated_at) + 1);
  await db.updateTable('environments').set({ updated_at: next }).where('id', '=', envId).execute();
}

/** Is there a live secret at (env, path, digest), other than `exceptId`? */
export async function isDuplicate(
  db: Db,
  envId: string,
  path: string,
  digest: string,
  exceptId?: string,
): Promise<boolean> {
  let q = db
    .selectFrom('secrets')
    .select('id')
    .where('environment_id', '=', envId)
    .where('path', '=', path)
    .where('key_digest', '=', digest)
    .where('deleted_at', 'is', null);
  if (exceptId) q = q.where('id', '!=', exceptId);
  return (await q.executeTakeFirst()) !== undefined;
}

/** Inserts a secret row; a concurrent duplicate (unique index) becomes 409. */
export async function insertSecret(db: Db, row: SecretTable): Promise<void> {
  try {
    await db.insertInto('secrets').values(row).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict('Duplicate secret found');
    throw err;
  }
}

/** Upserts the member's personal override. */
export async function upsertOverride(
  db: Db,
  secretId: string,
  memberId: string,
  value: string,
  isActive: boolean,
): Promise<void> {
  const now = nowIso();
  const existing = await db
    .selectFrom('personal_secrets')
    .select('id')
    .where('secret_id', '=', secretId)
    .where('member_id', '=', memberId)
    .executeTakeFirst();
  if (existing) {
    await db
      .updateTable('personal_secrets')
      .set({ value, is_active: isActive ? 1 : 0, updated_at: now })
      .where('id', '=', existing.id)
      .execute();
  } else {
    await db
      .insertInto('personal_secrets')
      .values({
        id: newId(),
        secret_id: secretId,
        member_id: memberId,
        value,
        is_active: isActive ? 1 : 0,
        created_at: now,
        updated_at: now,
      })
      .execute();
  }
}

/**
 * Serialises concurrent updates of these secrets across processes: PostgreSQL row locks held to the end of the
 * transaction, taken in id order so two requests updating the same secrets cannot deadlock. SQLite needs none: its
 * transactions hold the single connection, so they are already serial.
 */
export async function lockSecrets(db: Db, kind: 'sqlite' | 'postgres', ids: string[]): Promise<void> {
  if (kind !== 'postgres' || ids.length === 0) return;
  const sorted = [...new Set(ids)].sort();
  await sql`select id from secrets where id in (${sql.join(sorted)}) order by id for update`.execute(db);
}
