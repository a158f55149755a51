/**
 * Test harness: a real phase-bridge server on loopback with a fresh store (a temporary SQLite file, or a fresh
 * database on the test PostgreSQL cluster), an initialised organisation and the owner's PAT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createServer, type PhaseBridgeServer } from '../../server/app';
import { createMemberWithToken, findOrganisation, initOrganisation, mintMemberToken } from '../../server/org';
import { testPgUrl } from './postgres';

export type StoreName = 'sqlite' | 'postgres';

export interface TestServer {
  /** e.g. http://127.0.0.1:PORT (serves /v1, /public/v1, /service/public/v1, /service/secrets, ...). */
  url: string;
  /** `pss_user:v1` PAT of the organisation owner. */
  ownerToken: string;
  ownerId: string;
  orgId: string;
  store: StoreName;
  /** The database URL (`sqlite:/tmp/...` or `postgres://.../pb_<random>`), e.g. to restart on the same data. */
  database: string;
  /** The server secret (hex), e.g. to restart with the same key. */
  serverSecret: string;
  /** The running server (its Express app, store and context). */
  server: PhaseBridgeServer;
  /** A member with a PAT (members cannot be created over Phase's REST API). */
  addMember(
    role: 'Owner' | 'Admin' | 'Manager' | 'Developer' | 'Service' | string,
    email?: string,
  ): Promise<{ id: string; token: string }>;
  /** Another PAT for an existing member, optionally expiring (ISO-8601, stored format). */
  mintMemberToken(
    memberId: string,
    opts?: { name?: string; expiresAt?: string | null },
  ): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

export interface StartTestServerOptions {
  store?: StoreName;
  /** SQLite only: keep the database in this directory (not removed on close). */
  dataDir?: string;
  /** Reuse an existing database (restart tests); skips organisation setup when one exists. */
  database?: string;
  serverSecret?: string;
  /** Owner token to report when reusing a database. */
  ownerToken?: string;
  rateLimit?: string;
  /** `--trusted-proxy` entries: peers whose X-Forwarded-For / X-Real-IP are believed (the client is 127.0.0.1). */
  trustedProxies?: string[];
  /** Identity logins may call issuers and STS stand-ins on loopback. */
  allowLoopbackIdentityEndpoints?: boolean;
  /** Heartbeat of the change stream (default 15 s). */
  changeStreamHeartbeatMs?: number;
  bodyLimit?: string | number;
  host?: string;
}

/** Creates a fresh database `pb_<random>` on the test cluster and returns its URL. */
export async function createPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = testPgUrl();
  const name = `pb_${randomBytes(8).toString('hex')}`;
  const admin = new Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new Client({ connectionString: base });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function startTestServer(opts: StartTestServerOptions = {}): Promise<TestServer> {
  const store: StoreName = opts.store ?? (opts.database?.startsWith('postgres') ? 'postgres' : 'sqlite');
  let database = opts.database;
  const cleanups: Array<() => Promise<void>> = [];
  if (!database) {
    if (store === 'postgres') {
      const pg = await createPgDatabase();
      database = pg.url;
      cleanups.push(pg.drop);
    } else {
      const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'pb-test-'));
      database = `sqlite:${join(dir, 'phase.db')}`;
      if (!opts.dataDir) cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    }
  }
  const serverSecret = opts.serverSecret ?? randomBytes(32).toString('hex');
  const server = await createServer({
    database,
    serverSecret,
    rateLimit: opts.rateLimit,
    trustedProxies: opts.trustedProxies,
    allowLoopbackIdentityEndpoints: opts.allowLoopbackIdentityEndpoints,
    changeStreamHeartbeatMs: opts.changeStreamHeartbeatMs,
    bodyLimit: opts.bodyLimit,
    logLevel: 'silent',
  });
  let ownerToken = opts.ownerToken ?? '';
  let ownerId = '';
  let orgId = '';
  const existing = await findOrganisation(server.store.db);
  if (existing) {
    orgId = existing.id;
  } else {
    const init = await initOrganisation(server.store, serverSecret, {
      orgName: 'test-org',
      ownerEmail: 'owner@example.com',
    });
    ownerToken = init.ownerToken;
    ownerId = init.ownerId;
    orgId = init.orgId;
  }
  const { url } = await server.listen(0, opts.host ?? '127.0.0.1');
  let n = 0;
  return {
    url,
    ownerToken,
    ownerId,
    orgId,
    store,
    database,
    serverSecret,
    server,
    addMember: (role, email) =>
      createMemberWithToken(server.store, serverSecret, {
        role,
        email: email ?? `${role.toLowerCase()}-${++n}-${randomBytes(3).toString('hex')}@example.com`,
      }),
    mintMemberToken: (memberId, o) => mintMemberToken(server.store, serverSecret, memberId, o),
    close: async () => {
      await server.close();
      for (const c of cleanups) await c();
    },
  };
}
