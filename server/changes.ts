/**
 * Change notices for environments (extension, docs/server.md "change stream"): every write that bumps an
 * environment's `updated_at` publishes `{environmentId, updatedAt}`. On PostgreSQL the notice goes through
 * `pg_notify` inside the writing transaction, so it is delivered to every server process, and only once the write has
 * committed; on SQLite (one process) through an in-process emitter. Notices carry ids and times, never names or values.
 */
import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import { Client } from 'pg';
import type { Logger } from 'pino';
import type { Db } from './keys';

export interface EnvChange {
  environmentId: string;
  updatedAt: string;
}

export const CHANGE_CHANNEL = 'phase_bridge_env_changes';

/** SQLite servers in this process. Notices for environments of another store are ignored by their subscribers. */
const local = new EventEmitter();
local.setMaxListeners(0);

/** Publishes a change from inside the writing transaction. */
export async function publishChange(db: Db, kind: 'sqlite' | 'postgres', change: EnvChange): Promise<void> {
  if (kind === 'postgres') {
    await sql`select pg_notify(${CHANGE_CHANNEL}, ${JSON.stringify([change.environmentId, change.updatedAt])})`.execute(
      db,
    );
  } else {
    // Emitted now; subscribers read the environment before they pass it on, which on SQLite's single connection
    // waits for the transaction to end (see routes/events.ts).
    setImmediate(() => local.emit('change', change));
  }
}

/** One server's view of the notices: a LISTEN connection on PostgreSQL, the in-process emitter on SQLite. */
export class ChangeFeed {
  private readonly emitter = new EventEmitter();
  private client?: Client;
  private closed = false;
  private readonly onLocal = (c: EnvChange) => this.emitter.emit('change', c);

  constructor(
    private readonly kind: 'sqlite' | 'postgres',
    private readonly connectionString: string,
    private readonly log: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.kind === 'sqlite') {
      local.on('change', this.onLocal);
      return;
    }
    await this.listen();
  }

  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.connectionString });
    client.on('notification', (n) => {
      try {
        const [environmentId, updatedAt] = JSON.parse(n.payload ?? '') as [string, string];
        this.emitter.emit('change', { environmentId, updatedAt });
      } catch {
        // A notice we did not write: ignored.
      }
    });
    client.on('error', (err) => {
      this.log.warn({ err: err.message }, 'change feed connection lost; reconnecting');
      // Subscribers fall back to their own polling meanwhile; a lost notice costs latency, not correctness.
      void client.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.listen().catch(() => undefined), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    this.client = client;
    this.emitter.emit('reconnected');
  }

  /** Calls `listener` for every change; returns the unsubscribe function. */
  subscribe(listener: (c: EnvChange) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    local.off('change', this.onLocal);
    this.emitter.removeAllListeners();
    await this.client?.end().catch(() => undefined);
  }
}
