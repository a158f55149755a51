/**
 * The queries every organisation-owned table shares: find one row by id inside an organisation, list an
 * organisation's rows, soft-delete. Tables with a `deleted_at` column hide their soft-deleted rows everywhere here.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema';
import { isUuid, newId, notFound, nowIso } from '../http';
import type { Db } from '../keys';

/** The tables owned by one organisation (an `org_id` column). */
export type OrgTable =
  'apps' | 'roles' | 'members' | 'service_accounts' | 'external_identities' | 'network_policies' | 'invites';

/** Tables whose rows are soft-deleted (`deleted_at` set) rather than removed. */
const SOFT_DELETED: ReadonlySet<OrgTable> = new Set(['members', 'service_accounts', 'external_identities']);

// The queries below are the same for every table; kysely cannot type a query over a union of tables, so they run
// untyped and their rows are typed by the table they were read from.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const untyped = (db: Db) => db as unknown as Kysely<any>;

/** The row with this id in the organisation (a live one, for soft-deleted tables), or undefined; any id is safe. */
export async function findInOrg<T extends OrgTable>(
  db: Db,
  table: T,
  orgId: string,
  id: unknown,
): Promise<DB[T] | undefined> {
  if (typeof id !== 'string' || !isUuid(id)) return undefined;
  let q = untyped(db).selectFrom(table).selectAll().where('id', '=', id).where('org_id', '=', orgId);
  if (SOFT_DELETED.has(table)) q = q.where('deleted_at', 'is', null);
  return (await q.executeTakeFirst()) as DB[T] | undefined;
}

/** The fields every new row starts with: a fresh id, created and updated now. */
export function newRecord(): { id: string; created_at: string; updated_at: string } {
  const now = nowIso();
  return { id: newId(), created_at: now, updated_at: now };
}

/** A row by id, whatever its organisation (one another row refers to), or undefined. */
export async function rowById<T extends OrgTable>(db: Db, table: T, id: string): Promise<DB[T] | undefined> {
  return (await untyped(db).selectFrom(table).selectAll().where('id', '=', id).executeTakeFirst()) as
    DB[T] | undefined;
}

/** findInOrg, or 404 with this message. */
export async function foundInOrg<T extends OrgTable>(
  db: Db,
  table: T,
  orgId: string,
  id: unknown,
  message: string,
): Promise<DB[T]> {
  const row = await findInOrg(db, table, orgId, id);
  if (!row) throw notFound(message);
  return row;
}

/** The organisation's (live) rows, oldest first unless `newestFirst`. */
export async function listInOrg<T extends OrgTable>(
  db: Db,
  table: T,
  orgId: string,
  newestFirst = false,
): Promise<Array<DB[T]>> {
  let q = untyped(db).selectFrom(table).selectAll().where('org_id', '=', orgId);
  if (SOFT_DELETED.has(table)) q = q.where('deleted_at', 'is', null);
  return (await q.orderBy('created_at', newestFirst ? 'desc' : 'asc').execute()) as Array<DB[T]>;
}

/** Inserts a new row of an organisation-owned table (the route built it whole, with newRecord or its own id). */
export async function insertRow<T extends OrgTable>(db: Db, table: T, row: DB[T]): Promise<void> {
  await untyped(db).insertInto(table).values(row).execute();
}

/** True for a union of several table names (distributes over `T`). */
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/** The fields a route may change on a row: never its identity, its organisation or its creation time. */
export type RowPatch<T extends OrgTable> = Omit<Partial<DB[T]>, 'id' | 'org_id' | 'created_at'>;

/**
 * Sets these fields of the row with this id (the route checked it is in the caller's organisation). `T` is one table:
 * a union would let a patch of one table's columns through for another.
 */
export async function updateRow<T extends OrgTable>(
  db: Db,
  table: true extends IsUnion<T> ? never : T,
  id: string,
  patch: RowPatch<T>,
): Promise<void> {
  await untyped(db)
    .updateTable(table as string)
    .set(patch as Record<string, unknown>)
    .where('id', '=', id)
    .execute();
}

/** Removes a row outright: these tables' rows are not soft-deleted. */
export async function hardDelete(db: Db, table: 'roles' | 'invites', id: string): Promise<void> {
  await db.deleteFrom(table).where('id', '=', id).execute();
}

/** Sets a row's `updated_at` to now (a change below it, such as attachments or grants). */
export async function touch(
  db: Db,
  table: 'network_policies' | 'service_accounts',
  id: string,
): Promise<void> {
  await db.updateTable(table).set({ updated_at: nowIso() }).where('id', '=', id).execute();
}

/** Marks a row of a soft-deleted table deleted (and updated) now. */
export async function softDelete(
  db: Db,
  table: 'members' | 'service_accounts' | 'external_identities',
  id: string,
): Promise<void> {
  const now = nowIso();
  await db.updateTable(table).set({ deleted_at: now, updated_at: now }).where('id', '=', id).execute();
}
