/**
 * Secret storage shared by the E2E `/secrets/` endpoints (ciphertext in and out) and the SSE `/v1/secrets/` API
 * (plaintext, encrypted by the server). Reads are three queries whatever the size: secrets, their tags, and the
 * caller's personal overrides. Bulk writes are batched (one duplicate check, multi-row inserts, folder and tag ids
 * looked up once per request) and paced (deadline.ts) so that one request cannot stall the server (issue 11).
 */
import { sql } from 'kysely';
import { audit, type AuditInput } from './audit';
import type { Principal } from './context';
import type { SecretTable } from './db/schema';
import { isUniqueViolation } from './db/store';
import type { Pacer } from './deadline';
import { HttpError, conflict, isoToMicros, microsToIso, newId, nowIso } from './http';
import type { Db } from './keys';
import { pathAllowed } from './access';
import { publishChange } from './changes';

/**
 * Most entries one `POST`, `PUT` or `DELETE` on `/v1/secrets/` or E2E `/secrets/` accepts; more is a 413 naming the
 * number.
 * Encrypting and decrypting 1,000 entries server-side takes about half a second of CPU on a small machine
 * (docs/performance.md), paced so other requests are served in between, and far inside the default time limit.
 */
export const MAX_SECRETS_PER_REQUEST = 1000;

/** 413 when a write carries more than `MAX_SECRETS_PER_REQUEST` entries. */
export function checkEntryCount(n: number): void {
  if (n > MAX_SECRETS_PER_REQUEST) {
    throw new HttpError(
      413,
      `Too many secrets in one request: ${n}. At most ${MAX_SECRETS_PER_REQUEST} are accepted per request; ` +
        'send them in several requests.',
    );
  }
}

/**
 * Check-and-set (extension): an update entry may carry `expectedVersion`, the `version` its client read; a secret
 * whose stored version differs was written by someone else in between, and the request fails with 409 (nothing of
 * it is applied). Without it the update applies whatever the version (last writer wins, as in Phase).
 */
export function checkExpectedVersion(
  cur: { id: string; version: number },
  expected: number | undefined,
): void {
  if (expected === undefined || cur.version === expected) return;
  throw conflict(
    `Secret ${cur.id} was changed by another write: it is at version ${cur.version}, this update expected ` +
      `version ${expected}. Read it again and retry.`,
  );
}

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

/** How a large read runs: on SQLite, more than `SYNC_ROWS` secrets are streamed with the pacer ticking. */
export interface LoadOptions {
  pacer: Pacer;
  kind: 'sqlite' | 'postgres';
}

/** More rows than this are streamed on SQLite with a pacer (see selectRows). */
const SYNC_ROWS = 1000;

/**
 * The rows of a select; `stream`ed with ticks in between when asked (SQLite, large results): one statement, so
 * still one snapshot, but better-sqlite3 no longer builds thousands of rows in one synchronous call. Streaming costs
 * a couple of microseconds per row, so smaller results are read in one call. PostgreSQL rows arrive over the socket
 * in chunks, which already lets the event loop run.
 */
async function selectRows<R>(
  q: { execute(): Promise<R[]>; stream(): AsyncIterableIterator<R> },
  pacer: Pacer | null,
): Promise<R[]> {
  if (!pacer) return q.execute();
  const out: R[] = [];
  for await (const row of q.stream()) {
    out.push(row);
    if (out.length % 100 === 0) await pacer.tick();
  }
  return out;
}

export async function loadSecrets(
  db: Db,
  envId: string,
  filter: SecretFilter,
  p: Principal | null,
  load?: LoadOptions,
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
  // Large reads on SQLite are streamed: a count (one index range) decides, since streaming small ones costs more.
  let stream: Pacer | null = null;
  if (load?.kind === 'sqlite') {
    const n = await q
      .clearSelect()
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(n.n) > SYNC_ROWS) stream = load.pacer;
  }
  const rows = await selectRows(q.orderBy('created_at').orderBy('id'), stream);
  const allowed = filter.allowedPaths ?? null;
  const visible = allowed ? rows.filter((r) => pathAllowed(allowed, r.path)) : rows;
  if (visible.length === 0) return [];

  const tagRows = await selectRows(
    db
      .selectFrom('secret_tags')
      .innerJoin('tags', 'tags.id', 'secret_tags.tag_id')
      .innerJoin('secrets', 'secrets.id', 'secret_tags.secret_id')
      .select(['secret_tags.secret_id', 'tags.name'])
      .where('secrets.environment_id', '=', envId)
      .where('secrets.deleted_at', 'is', null)
      .orderBy('tags.name'),
    stream,
  );
  const tagsBySecret = new Map<string, string[]>();
  for (const t of tagRows) {
    const list = tagsBySecret.get(t.secret_id);
    if (list) list.push(t.name);
    else tagsBySecret.set(t.secret_id, [t.name]);
  }

  const overrides = new Map<string, OverrideRow>();
  if (p && p.kind === 'member') {
    const ov = await selectRows(
      db
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
        .where('personal_secrets.member_id', '=', p.accountId),
      stream,
    );
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
  const find = () =>
    db.selectFrom('folders').select('id').where('environment_id', '=', envId).where('path', '=', path);
  const existing = await find().executeTakeFirst();
  if (existing) return existing.id;
  await db
    .insertInto('folders')
    .values({ id: newId(), environment_id: envId, path, created_at: nowIso() })
    .onConflict((oc) => oc.columns(['environment_id', 'path']).doNothing())
    .execute();
  return (await find().executeTakeFirstOrThrow()).id;
}

/** Audit events of a bulk write, 200 per call with a tick in between (each call inserts them 50 per statement). */
export async function auditPaced(db: Db, p: Principal, events: AuditInput[], pacer: Pacer): Promise<void> {
  for (let i = 0; i < events.length; i += 200) {
    await audit(db, p, events.slice(i, i + 200));
    await pacer.tick();
  }
}

/** Folder ids by path for one environment, each looked up (or created) once per request. */
export class FolderIds {
  private readonly ids = new Map<string, string | null>();

  constructor(
    private readonly db: Db,
    private readonly envId: string,
  ) {}

  async of(path: string): Promise<string | null> {
    let id = this.ids.get(path);
    if (id === undefined) {
      id = await ensureFolder(this.db, this.envId, path);
      this.ids.set(path, id);
    }
    return id;
  }
}

/** Tag ids by name for one organisation, unknown names created; each name looked up once per request. */
export class TagIds {
  private readonly ids = new Map<string, string>();

  constructor(
    private readonly db: Db,
    private readonly orgId: string,
  ) {}

  /** The ids of these names (duplicates dropped), creating the missing tags. */
  async of(names: string[]): Promise<string[]> {
    const unique = [...new Set(names)];
    const missing = unique.filter((n) => !this.ids.has(n));
    if (missing.length) {
      await this.db
        .insertInto('tags')
        .values(missing.map((name) => ({ id: newId(), org_id: this.orgId, name, color: '' })))
        .onConflict((oc) => oc.columns(['org_id', 'name']).doNothing())
        .execute();
      const rows = await this.db
        .selectFrom('tags')
        .select(['id', 'name'])
        .where('org_id', '=', this.orgId)
        .where('name', 'in', missing)
        .execute();
      for (const r of rows) this.ids.set(r.name, r.id);
    }
    return unique.flatMap((n) => this.ids.get(n) ?? []);
  }
}

/** Replaces a secret's tags with these names, creating unknown tags in the organisation. */
export async function setTags(
  db: Db,
  orgId: string,
  secretId: string,
  names: string[],
  tags: TagIds = new TagIds(db, orgId),
): Promise<void> {
  await db.deleteFrom('secret_tags').where('secret_id', '=', secretId).execute();
  if (names.length === 0) return;
  const ids = await tags.of(names);
  if (ids.length === 0) return;
  await db
    .insertInto('secret_tags')
    .values(ids.map((tagId) => ({ secret_id: secretId, tag_id: tagId })))
    .execute();
}

/** Tags of new secrets (no existing links to replace), inserted in a few statements. */
export async function addTags(
  db: Db,
  tags: TagIds,
  items: Array<{ secretId: string; names: string[] }>,
  pacer?: Pacer,
): Promise<void> {
  const links: Array<{ secret_id: string; tag_id: string }> = [];
  for (const it of items) {
    for (const tagId of await tags.of(it.names)) links.push({ secret_id: it.secretId, tag_id: tagId });
  }
  for (let i = 0; i < links.length; i += 500) {
    await db
      .insertInto('secret_tags')
      .values(links.slice(i, i + 500))
      .execute();
    await pacer?.tick();
  }
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
  await publishChange(db, kind, { environmentId: envId, updatedAt: next });
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

/**
 * The live secrets of an environment among these key digests, as `path\u0000digest` (one query per 500 digests;
 * the duplicate check of a bulk create).
 */
export async function liveKeys(db: Db, envId: string, digests: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  const unique = [...new Set(digests)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db
      .selectFrom('secrets')
      .select(['path', 'key_digest'])
      .where('environment_id', '=', envId)
      .where('deleted_at', 'is', null)
      .where('key_digest', 'in', unique.slice(i, i + 500))
      .execute();
    for (const r of rows) out.add(`${r.path}\u0000${r.key_digest}`);
  }
  return out;
}

/** Inserts secret rows, 100 per statement; a concurrent duplicate (unique index) becomes 409. */
export async function insertSecrets(db: Db, rows: SecretTable[], pacer?: Pacer): Promise<void> {
  for (let i = 0; i < rows.length; i += 100) {
    try {
      await db
        .insertInto('secrets')
        .values(rows.slice(i, i + 100))
        .execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('Duplicate secret found');
      throw err;
    }
    await pacer?.tick();
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
