/**
 * The store: one kysely instance over SQLite (better-sqlite3, WAL, synchronous=FULL) or PostgreSQL (pg pool).
 * Everything the server needs for correctness lives here, so several processes on one PostgreSQL agree.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type DatabaseConnection,
  type Driver,
  type TransactionSettings,
} from 'kysely';
import { Pool } from 'pg';
import { PhaseBridgeError } from '../../core/errors';
import { migrationProvider } from './migrations';
import type { DB } from './schema';

export type StoreKind = 'sqlite' | 'postgres';

export interface Store {
  kind: StoreKind;
  db: Kysely<DB>;
  /** Cheap round trip for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreConfigError extends PhaseBridgeError {
  constructor(message: string) {
    super('store_config', message);
  }
}

/** Parses `sqlite:PATH`, a bare path, or `postgres://…` / `postgresql://…`. */
export function parseDatabaseUrl(url: string): { kind: StoreKind; target: string } {
  if (/^postgres(ql)?:\/\//i.test(url)) return { kind: 'postgres', target: url };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path)
      throw new StoreConfigError('--database sqlite: needs a path, e.g. sqlite:./.phase-bridge/phase.db');
    return { kind: 'sqlite', target: path };
  }
  if (/^[a-z]+:\/\//i.test(url)) {
    throw new StoreConfigError(
      `unsupported database URL scheme in '${url.split(':')[0]}:'; use sqlite:PATH or postgres://`,
    );
  }
  return { kind: 'sqlite', target: url };
}

/**
 * SQLite has one connection. kysely's own mutex wakes every waiter at once and lets a newcomer take the connection
 * ahead of them, so under many concurrent requests some starve for seconds. This driver puts a FIFO queue in front:
 * the connection is handed to the longest waiter, bounding the latency tail.
 */
class FairDriver implements Driver {
  private locked = false;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.locked) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.locked = true;
    return this.inner.acquireConnection();
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await this.inner.releaseConnection(connection);
    const next = this.waiters.shift();
    if (next)
      next(); // hand over directly: `locked` stays true, nobody can barge in
    else this.locked = false;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

class FairSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    return new FairDriver(super.createDriver());
  }
}

/** Opens the store and runs pending migrations. */
export async function openStore(url: string): Promise<Store> {
  const { kind, target } = parseDatabaseUrl(url);
  let db: Kysely<DB>;
  let closeExtra: () => Promise<void> = async () => {};
  if (kind === 'sqlite') {
    const file = target === ':memory:' ? target : resolve(target);
    const fresh = file !== ':memory:' && !existsSync(file);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const sqlite = new Database(file);
    // Token hashes and wrapped keys are not for other local users; SQLite gives -wal/-shm the same mode.
    if (fresh) chmodSync(file, 0o600);
    // WAL + FULL: every acknowledged commit is fsynced to the WAL before the response, so kill -9 loses nothing.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('busy_timeout = 5000');
    db = new Kysely<DB>({ dialect: new FairSqliteDialect({ database: sqlite }) });
  } else {
    const pool = new Pool({ connectionString: target, max: 10 });
    // An idle client error (server restart) must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    closeExtra = async () => {};
  }
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw new StoreConfigError(
      `database migration failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return {
    kind,
    db,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
      await closeExtra();
    },
  };
}

/** True for a unique-constraint violation in either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
