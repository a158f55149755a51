/**
 * Crash safety and scale-out (issue 3): the real server as a child process (`node bin/phase-bridge.js server
 * start`, after `server init`), a stream of acknowledged writes, SIGKILL mid-stream, restart, and every write that
 * got a 200 is there and decrypts to what was written. Then several server processes on one PostgreSQL database
 * behave as one: what one writes the other reads, revocation through one is seen by the other at once, and a
 * duplicate created concurrently through both is refused exactly once.
 *
 * Needs the build (`npm run build`; `npm test` builds first): the suite fails, never skips, without it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from '../support/ports';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { STORES } from '../support/stores';
import { createPgDatabase, startTestServer } from '../support/server';
import Phase from '@phase.dev/phase-node';
import { Api, authFor, call, type AppInfo, sleep, uniq, withTimeout } from './verify-helpers';

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'phase-bridge.js');

function requireBuild(): void {
  if (
    !existsSync(join(ROOT, 'dist', 'bin', 'cli.js')) ||
    !existsSync(join(ROOT, 'dist', 'server', 'cli.js'))
  ) {
    throw new Error('dist/ is missing the CLI: run `npm run build` first (npm test does it)');
  }
}

interface Proc {
  child: ChildProcess;
  url: string;
  output: () => string;
}

const children = new Set<ChildProcess>();

async function startProc(database: string, secret: string, port?: number): Promise<Proc> {
  const p = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [BIN, 'server', 'start', '--database', database, '--port', String(p), '--log-level', 'warn'],
    {
      cwd: ROOT,
      env: { ...process.env, PHASE_BRIDGE_SERVER_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${p}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${out}`);
    try {
      const r = await fetch(`${url}/health/`);
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`server did not come up on ${url}: ${out}`);
    await sleep(50);
  }
  return { child, url, output: () => out };
}

async function kill9(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
  p.child.kill('SIGKILL');
  await exited;
}

function initDb(database: string, secret: string, dir: string): string {
  const tokenFile = join(dir, `owner-${randomBytes(4).toString('hex')}.token`);
  const r = spawnSync(
    process.execPath,
    [BIN, 'server', 'init', '--database', database, '--token-file', tokenFile],
    {
      cwd: ROOT,
      env: { ...process.env, PHASE_BRIDGE_SERVER_SECRET: secret },
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`server init failed (${r.status}): ${r.stderr}`);
  return readFileSync(tokenFile, 'utf8').trim();
}

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe.each(STORES)('crash safety: SIGKILL during acknowledged writes (%s)', (store) => {
  let dir: string;
  let database: string;
  let dropDb: (() => Promise<void>) | undefined;
  const secret = randomBytes(32).toString('hex');

  beforeAll(async () => {
    requireBuild();
    dir = mkdtempSync(join(tmpdir(), 'pb-crash-'));
    if (store === 'postgres') {
      const pg = await createPgDatabase();
      database = pg.url;
      dropDb = pg.drop;
    } else {
      database = `sqlite:${join(dir, 'phase.db')}`;
    }
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sleep(100);
    await dropDb?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every write that got a 200 survives kill -9 and decrypts to what was written', async () => {
    const ownerToken = initDb(database, secret, dir);
    let proc = await startProc(database, secret);
    const port = Number(new URL(proc.url).port);
    let owner = new Api(proc.url, authFor(ownerToken));
    const app: AppInfo = await owner.createApp(uniq('crash'));
    const path = `/v1/secrets/?app_id=${app.id}&env=Development`;
    const [counter] = await owner.ok('POST', path, { secrets: [{ key: 'COUNTER', value: '0' }] }, 200);

    const acked = new Map<string, string>();
    const attempted = new Map<string, string>();
    let lastAckedCounter = 0;
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `W${w}_${i}`;
        const value = `${randomBytes(12).toString('hex')}-ünï-${i}`;
        attempted.set(key, value);
        try {
          const r = await call(proc.url, 'POST', path, {
            auth: owner.auth,
            body: { secrets: [{ key, value, comment: `c${i}` }] },
          });
          if (r.status === 200) acked.set(key, value);
          else if (r.status >= 500) return;
        } catch {
          return; // connection died: the server is gone
        }
      }
    };
    const updater = async (): Promise<void> => {
      for (let n = 1; !stop; n++) {
        try {
          const r = await call(proc.url, 'PUT', path, {
            auth: owner.auth,
            body: { secrets: [{ id: counter.id, value: String(n) }] },
          });
          if (r.status === 200) lastAckedCounter = n;
          else return;
        } catch {
          return;
        }
      }
    };
    const streams = [0, 1, 2, 3].map(writer).concat(updater());
    // Let acknowledged writes pile up, then kill mid-stream (requests are in flight at this moment).
    const t0 = Date.now();
    while (acked.size < 120 && Date.now() - t0 < 8000) await sleep(10);
    await kill9(proc);
    stop = true;
    await Promise.all(streams);
    expect(acked.size).toBeGreaterThan(20);

    proc = await startProc(database, secret, port);
    owner = new Api(proc.url, authFor(ownerToken));
    const after = await owner.listSecrets(app.id, 'Development');
    const byKey = new Map(after.map((s) => [s.key, s]));
    const missing = [...acked.keys()].filter((k) => !byKey.has(k));
    expect(missing).toEqual([]);
    const wrong = [...acked].filter(([k, v]) => byKey.get(k)!.value !== v).map(([k]) => k);
    expect(wrong).toEqual([]);
    // Unacknowledged writes may or may not have landed, but whatever landed is intact and was really sent.
    for (const s of after) {
      if (s.key === 'COUNTER') continue;
      expect(attempted.get(s.key)).toBe(s.value);
    }
    expect(after.length).toBe(new Set(after.map((s) => s.key)).size);
    // The counter holds the last acknowledged update, or the one in flight when the process died.
    const c = Number(byKey.get('COUNTER')!.value);
    expect(c === lastAckedCounter || c === lastAckedCounter + 1).toBe(true);
    expect(byKey.get('COUNTER')!.version).toBe(c + 1);

    // The restarted server still takes writes and serves the E2E bootstrap.
    await owner.ok('POST', path, { secrets: [{ key: 'AFTER_RESTART', value: 'ok' }] }, 200);
    const health = await call(proc.url, 'GET', '/health/');
    expect(health.status).toBe(200);
    await kill9(proc);
  }, 60_000);
});

describe.each(STORES)('no lost updates: concurrent PUTs of one secret through one process (%s)', (store) => {
  test('the version counts every acknowledged update, and the value is one of them', async () => {
    const server = await startTestServer({ store });
    try {
      const owner = new Api(server.url.replace(/\/+$/, ''), authFor(server.ownerToken));
      const app = await owner.createApp(uniq('lost-update'));
      const path = owner.secretsPath(app.id, 'Development');
      const [s] = await owner.ok('POST', path, { secrets: [{ key: 'V', value: '0' }] }, 200);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          owner.req('PUT', path, { secrets: [{ id: s.id, value: `v${i}` }] }),
        ),
      );
      for (const r of results) expect(r.status).toBeLessThan(500);
      const ok = results.filter((r) => r.status === 200).length;
      const [final] = await owner.listSecrets(app.id, 'Development', '&key=V');
      expect({ version: final.version, valueWasWritten: /^v\d+$/.test(final.value) }).toEqual({
        version: 1 + ok,
        valueWasWritten: true,
      });

      // The same through the E2E endpoint, driven by the official SDK (ciphertext PUTs).
      const roles = await owner.roles();
      const sa = await owner.createSA(uniq('lost-update-sa'), roles.Service);
      await owner.grantSA(sa.id, [{ id: app.id, environments: [app.envs.Development] }]);
      const sdk = new Phase(sa.token, server.url.replace(/\/+$/, ''));
      await withTimeout(sdk.init(), 10_000, 'sdk.init');
      await withTimeout(
        Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            sdk.update({ appId: app.id, envName: 'Development', secrets: [{ id: s.id, value: `e${i}` }] }),
          ),
        ),
        20_000,
        'concurrent sdk.update',
      );
      const [afterE2e] = await owner.listSecrets(app.id, 'Development', '&key=V');
      expect({ version: afterE2e.version, valueWasWritten: /^e\d$/.test(afterE2e.value) }).toEqual({
        version: final.version + 10,
        valueWasWritten: true,
      });
    } finally {
      await server.close();
    }
  });
});

describe('scale-out: several server processes on one PostgreSQL behave as one', () => {
  let dir: string;
  let database: string;
  let dropDb: (() => Promise<void>) | undefined;
  const secret = randomBytes(32).toString('hex');
  let a: Proc;
  let b: Proc;
  let ownerToken: string;

  beforeAll(async () => {
    requireBuild();
    dir = mkdtempSync(join(tmpdir(), 'pb-scale-'));
    const pg = await createPgDatabase();
    database = pg.url;
    dropDb = pg.drop;
    ownerToken = initDb(database, secret, dir);
    [a, b] = await Promise.all([startProc(database, secret), startProc(database, secret)]);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sleep(100);
    await dropDb?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('write through one, read through the other; revocation is immediate on both', async () => {
    const ownerA = new Api(a.url, authFor(ownerToken));
    const ownerB = new Api(b.url, authFor(ownerToken));
    const roles = await ownerA.roles();
    const app = await ownerA.createApp(uniq('scale'));
    expect((await ownerB.ok('GET', `/v1/apps/${app.id}/`, undefined, 200)).id).toBe(app.id);

    const sa = await ownerB.createSA(uniq('scale-sa'), roles.Service);
    await ownerA.grantSA(sa.id, [{ id: app.id, environments: [app.envs.Development] }]);
    const saA = new Api(a.url, `Bearer ${sa.bearer}`);
    const saB = new Api(b.url, `Bearer ${sa.bearer}`);

    await saA.ok(
      'POST',
      saA.secretsPath(app.id, 'Development'),
      { secrets: [{ key: 'FROM_A', value: 'a-value' }] },
      200,
    );
    await saB.ok(
      'POST',
      saB.secretsPath(app.id, 'Development'),
      { secrets: [{ key: 'FROM_B', value: 'b-value' }] },
      200,
    );
    const la = await saA.listSecrets(app.id, 'Development');
    const lb = await saB.listSecrets(app.id, 'Development');
    const norm = (l: typeof la) => l.map((s) => [s.id, s.key, s.value, s.version]).sort();
    expect(norm(la)).toEqual(norm(lb));
    expect(la.map((s) => s.key).sort()).toEqual(['FROM_A', 'FROM_B']);

    const fromA = la.find((s) => s.key === 'FROM_A')!;
    await saB.ok(
      'PUT',
      saB.secretsPath(app.id, 'Development'),
      { secrets: [{ id: fromA.id, value: 'changed-on-b' }] },
      200,
    );
    expect((await saA.listSecrets(app.id, 'Development', '&key=FROM_A'))[0]).toMatchObject({
      value: 'changed-on-b',
      version: 2,
    });

    // The E2E bootstrap through B reflects a grant made through A.
    const tokensB = await call(b.url, 'GET', '/service/secrets/tokens/', { auth: `Bearer ${sa.bearer}` });
    expect(tokensB.status).toBe(200);
    expect(JSON.stringify(tokensB.json)).toContain(app.envs.Development);

    // A token minted on A, used on B, revoked on A: refused on B on the very next request.
    const t = await ownerA.ok('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'cross' }, 201);
    expect((await call(b.url, 'GET', '/v1/apps/', { auth: `Bearer ${t.bearerToken}` })).status).toBe(200);
    expect((await ownerA.req('DELETE', `/v1/service-accounts/${sa.id}/tokens/${t.id}/`)).status).toBe(204);
    expect((await call(b.url, 'GET', '/v1/apps/', { auth: `Bearer ${t.bearerToken}` })).status).toBe(401);
    expect(
      (await call(b.url, 'GET', '/service/secrets/tokens/', { auth: `Bearer ${t.bearerToken}` })).status,
    ).toBe(403);

    // Access revoked through B is gone on A at once.
    await ownerB.grantSA(sa.id, []);
    expect(
      (await call(a.url, 'GET', saA.secretsPath(app.id, 'Development'), { auth: `Bearer ${sa.bearer}` }))
        .status,
    ).toBe(401);
  });

  test('the same secret created concurrently through both processes is accepted exactly once', async () => {
    const ownerA = new Api(a.url, authFor(ownerToken));
    const ownerB = new Api(b.url, authFor(ownerToken));
    const app = await ownerA.createApp(uniq('race'));
    const path = ownerA.secretsPath(app.id, 'Development');
    const outcomes: number[][] = [];
    for (let i = 0; i < 12; i++) {
      const key = `RACE_${i}`;
      const rs = await Promise.all([
        ownerA.req('POST', path, { secrets: [{ key, value: 'from-a' }] }),
        ownerB.req('POST', path, { secrets: [{ key, value: 'from-b' }] }),
        ownerA.req('POST', path, { secrets: [{ key, value: 'from-a2' }] }),
      ]);
      for (const r of rs) expect(r.status).toBeLessThan(500);
      outcomes.push(rs.map((r) => r.status).sort());
    }
    for (const o of outcomes) expect(o).toEqual([200, 409, 409]);
    const list = await ownerB.listSecrets(app.id, 'Development');
    expect(list.length).toBe(12);
    expect(new Set(list.map((s) => s.key)).size).toBe(12);
  });

  test('concurrent updates of one secret through both processes: every acknowledged update counts once', async () => {
    const ownerA = new Api(a.url, authFor(ownerToken));
    const ownerB = new Api(b.url, authFor(ownerToken));
    const app = await ownerA.createApp(uniq('versions'));
    const path = ownerA.secretsPath(app.id, 'Development');
    const [s] = await ownerA.ok('POST', path, { secrets: [{ key: 'V', value: '0' }] }, 200);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? ownerA : ownerB).req('PUT', path, { secrets: [{ id: s.id, value: `v${i}` }] }),
      ),
    );
    const ok = results.filter((r) => r.status === 200).length;
    for (const r of results) expect(r.status).toBeLessThan(500);
    const [final] = await ownerB.listSecrets(app.id, 'Development', '&key=V');
    // No lost update: the version counts every acknowledged PUT.
    expect(final.version).toBe(1 + ok);
  });
});
