/**
 * server/repositories/rows.ts `updateRow`: the compiler refuses a patch that would move a row to another
 * organisation, rewrite its id, or write one table's columns through a union of table names. ts-jest type-checks
 * this file, so a `@ts-expect-error` that no longer finds an error fails the suite. The call is also run once on a
 * real SQLite database, to show that an allowed patch does what it says.
 */
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { DB } from '../../server/db/schema';
import { updateRow } from '../../server/repositories/rows';

type Db = Parameters<typeof updateRow>[0];

function refused(db: Db, table: 'roles' | 'apps'): void {
  // @ts-expect-error org_id cannot be patched
  void updateRow(db, 'apps', 'id', { org_id: 'other-org' });
  // @ts-expect-error id cannot be patched
  void updateRow(db, 'roles', 'id', { id: 'another-id' });
  // @ts-expect-error a union of tables is refused
  void updateRow(db, table, 'id', { name: 'x' });
}

test('an allowed patch updates the row by id, and the refused ones do not compile', async () => {
  expect(typeof refused).toBe('function');
  const sqlite = new Database(':memory:');
  sqlite.exec('CREATE TABLE apps (id TEXT PRIMARY KEY, org_id TEXT, name TEXT)');
  sqlite.exec("INSERT INTO apps VALUES ('a1', 'o1', 'before'), ('a2', 'o1', 'other')");
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  await updateRow(db as unknown as Db, 'apps', 'a1', { name: 'after' });
  expect(sqlite.prepare('SELECT id, name FROM apps ORDER BY id').all()).toEqual([
    { id: 'a1', name: 'after' },
    { id: 'a2', name: 'other' },
  ]);
  await db.destroy();
});
