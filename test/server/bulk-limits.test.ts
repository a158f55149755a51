/**
 * One request cannot stall the server (issue 11): the entry cap of secrets writes (413 naming it), a write at the
 * cap served while `/health/` keeps answering, and the per-request time limit (a clean 503 that writes nothing).
 * Speed targets live in bench/server, not here: these tests assert order and outcome, never a duration.
 * Runs on every store.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Database from 'better-sqlite3';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Kysely, SqliteDialect } from 'kysely';
import { encryptAsymmetric, initCrypto, kxRandomKeyPair } from '../../core/crypto';
import { createServer, type PhaseBridgeServer } from '../../server/app';
import { Pacer, requestClockPlugin, requestTimeout } from '../../server/deadline';
import { HttpError } from '../../server/http';
import { MAX_SECRETS_PER_REQUEST } from '../../server/secrets';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, type Call } from './helpers';

const CAP = MAX_SECRETS_PER_REQUEST;

/** `n` plaintext entries for `/v1/secrets/`. */
const plain = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => ({
    key: `${prefix}_${i}`,
    value: `value-${i}`,
    comment: i % 3 === 0 ? 'a comment' : '',
    path: i % 5 === 0 ? '/nested' : '/',
  }));

describe.each(STORES)('bulk limits on %s', (store) => {
  let srv: TestServer;
  let owner: Call;
  let bot: Call;
  let appId: string;
  let envId: string;
  let q: string;

  beforeAll(async () => {
    await initCrypto();
    srv = await startTestServer({ store, bodyLimit: '4mb' });
    owner = caller(srv, srv.ownerToken);
    const { app, envs } = await createApp(owner);
    appId = app.id;
    envId = envs.Development.id;
    const sa = await createSa(owner, 'bulk');
    const g = await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envId] }],
    });
    expect(g.status).toBe(200);
    bot = caller(srv, sa.token);
    q = `/v1/secrets/?app_id=${appId}&env=Development`;
  });
  afterAll(async () => {
    await srv?.close();
  });

  test(`more than ${CAP} entries: 413 naming the cap on /v1 and E2E POST, PUT and DELETE, before validation`, async () => {
    const tooMany = CAP + 1;
    const pk = kxRandomKeyPair().publicKey;
    const ct = encryptAsymmetric('x', pk);
    const bodies: Array<[string, string, unknown, Record<string, string>?]> = [
      ['POST', q, { secrets: plain(tooMany, 'OVER') }],
      ['PUT', q, { secrets: Array.from({ length: tooMany }, (_, i) => ({ id: `id-${i}`, value: 'v' })) }],
      [
        'POST',
        '/service/secrets/',
        { secrets: Array.from({ length: tooMany }, () => ({ key: ct, keyDigest: 'd', value: ct })) },
        { Environment: envId },
      ],
      // Entries are not even looked at: the count is checked first.
      [
        'PUT',
        '/service/secrets/',
        { secrets: Array.from({ length: tooMany }, () => ({})) },
        { Environment: envId },
      ],
      // Deletes too: one statement, but each id is a bound parameter and a row looked up.
      ['DELETE', q, { secrets: Array.from({ length: tooMany }, (_, i) => `id-${i}`) }],
      [
        'DELETE',
        '/service/secrets/',
        { secrets: Array.from({ length: tooMany }, (_, i) => `id-${i}`) },
        { Environment: envId },
      ],
    ];
    for (const [method, path, body, headers] of bodies) {
      const r = await bot(method, path, body, headers);
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 413 });
      expect(Object.keys(r.body)).toEqual(['error']);
      expect(r.body.error).toContain(`${tooMany}`);
      expect(r.body.error).toContain(`At most ${CAP} are accepted per request`);
    }
    // Nothing was written.
    const all = await bot('GET', q);
    expect(all.body.filter((s: { key: string }) => s.key.startsWith('OVER_'))).toEqual([]);
  });

  test(`a ${CAP}-entry write succeeds, and /health/ answers before it has finished`, async () => {
    let finished = false;
    const write = bot('POST', q, { secrets: plain(CAP, 'BULK') }).then((r) => {
      finished = true;
      return r;
    });
    let answeredBefore = 0;
    while (!finished) {
      const h = await fetch(`${srv.url}/health/`);
      await h.arrayBuffer();
      expect(h.status).toBe(200);
      if (!finished) answeredBefore++;
    }
    const r = await write;
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(CAP);
    expect(r.body[0]).toMatchObject({
      key: 'BULK_0',
      value: 'value-0',
      comment: 'a comment',
      path: '/nested',
    });
    expect(r.body[CAP - 1]).toMatchObject({ key: `BULK_${CAP - 1}`, value: `value-${CAP - 1}`, path: '/' });
    expect(answeredBefore).toBeGreaterThan(0);

    // A few more, tagged, so that the environment holds more than 1,000 secrets (SQLite then streams the read).
    const extra = await bot('POST', q, {
      secrets: [1, 2, 3].map((i) => ({ key: `EXTRA_${i}`, value: `x${i}`, tags: ['bulk', `t${i}`] })),
    });
    expect(extra.status).toBe(200);

    // And the bulk read of them, with /health/ answering meanwhile too.
    let readDone = false;
    const read = bot('GET', q).then((x) => {
      readDone = true;
      return x;
    });
    let duringRead = 0;
    while (!readDone) {
      const h = await fetch(`${srv.url}/health/`);
      await h.arrayBuffer();
      if (!readDone) duringRead++;
    }
    const all = (await read).body as Array<{ key: string; value: string }>;
    expect(all.filter((s) => s.key.startsWith('BULK_'))).toHaveLength(CAP);
    expect(all.find((s) => s.key === 'BULK_7')?.value).toBe('value-7');
    expect(duringRead).toBeGreaterThan(0);
    expect(all).toHaveLength(CAP + 3);
    expect(all.find((s) => s.key === 'EXTRA_2')).toMatchObject({ value: 'x2', tags: ['bulk', 't2'] });
    const e2e = await bot('GET', '/service/secrets/', undefined, { Environment: envId });
    expect(e2e.body).toHaveLength(CAP + 3);
    expect(e2e.body.map((s: { id: string }) => s.id)).toEqual(all.map((s: any) => s.id));
    expect(e2e.body.filter((s: { tags: string[] }) => s.tags.includes('bulk'))).toHaveLength(3);

    // A bulk update at the cap.
    const upd = await bot('PUT', q, {
      secrets: all
        .filter((s: any) => s.key.startsWith('BULK_'))
        .map((s: any) => ({ id: s.id, value: 'new' })),
    });
    expect(upd.status).toBe(200);
    expect(upd.body).toHaveLength(CAP);
    expect(
      upd.body.every((s: { value: string; version: number }) => s.value === 'new' && s.version === 2),
    ).toBe(true);
  });

  describe('request time limit', () => {
    let limited: PhaseBridgeServer;
    let lurl: string;

    beforeAll(async () => {
      // A second server on the same store with a 1 ms limit: any real work outlives it.
      limited = await createServer({
        database: srv.database,
        serverSecret: srv.serverSecret,
        requestTimeout: 1,
        logLevel: 'silent',
        bodyLimit: '4mb',
      });
      lurl = (await limited.listen(0)).url;
    });
    afterAll(async () => {
      await limited?.close();
    });

    const limitedCall = (token: string): Call => caller({ ...srv, url: lurl }, token);

    test('a bulk write past the limit: 503 {"error"} naming the limit, and nothing of it is written', async () => {
      const sa = await createSa(owner, 'bulk-limited');
      await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
        apps: [{ id: appId, environments: [envId] }],
      });
      const slow = limitedCall(sa.token);
      const r = await slow('POST', q, { secrets: plain(CAP, 'LATE') });
      expect(r.status).toBe(503);
      expect(Object.keys(r.body)).toEqual(['error']);
      expect(r.body.error).toContain('time limit of 1 ms');

      const e2e = await slow(
        'POST',
        '/service/secrets/',
        {
          secrets: Array.from({ length: CAP }, (_, i) => ({
            key: encryptAsymmetric(`LATE_E2E_${i}`, kxRandomKeyPair().publicKey),
            keyDigest: `digest-${i}`,
            value: encryptAsymmetric('v', kxRandomKeyPair().publicKey),
          })),
        },
        { Environment: envId },
      );
      expect(e2e.status).toBe(503);
      expect(e2e.body.error).toContain('time limit');

      // A read past the limit is a 503 too.
      expect((await slow('GET', q)).status).toBe(503);

      // The server without a limit sees nothing of either write; the limited one still serves /health/.
      const all = (await bot('GET', q)).body as Array<{ key: string }>;
      expect(all.filter((s) => s.key.startsWith('LATE'))).toEqual([]);
      const raw = await bot('GET', '/service/secrets/', undefined, { Environment: envId });
      expect(raw.body.filter((s: { key_digest: string }) => s.key_digest.startsWith('digest-'))).toEqual([]);
      expect((await fetch(`${lurl}/health/`)).status).toBe(200);
    });

    test('any other request: a 503 from the limit means nothing was written', async () => {
      const name = `late-app-${Date.now()}`;
      const r = await limitedCall(srv.ownerToken)('POST', '/v1/apps/', { name });
      const apps = (await owner('GET', '/v1/apps/')).body.data as Array<{ name: string }>;
      const created = apps.filter((a) => a.name === name);
      if (r.status === 503) {
        expect(r.body.error).toContain('time limit');
        expect(created).toHaveLength(0);
      } else {
        // A write under way when the limit passed is answered for real, never with the 503.
        expect(r.status).toBe(201);
        expect(created).toHaveLength(1);
      }
    });
  });
});

/**
 * What the 503 of the time limit promises, on a bare Express app and an in-memory SQLite (deadline.ts): nothing the
 * request writes after it, and no 503 once the request may have committed. Waits are far past the limit.
 */
describe('time limit: a 503 means nothing was written (deadline.ts)', () => {
  const LIMIT = 250;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let db: Kysely<{ t: { x: string } }>;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    db = new Kysely<{ t: { x: string } }>({
      dialect: new SqliteDialect({ database: new Database(':memory:') }),
    }).withPlugin(requestClockPlugin);
    await db.schema.createTable('t').addColumn('x', 'text').execute();
    const app = express();
    app.use(requestTimeout(LIMIT));
    // Unmanaged handlers: a write issued in time is answered for real; a write after the 503 fails.
    app.post('/write-then-wait', async (_req: Request, res: Response) => {
      await db.insertInto('t').values({ x: 'write-then-wait' }).execute();
      await sleep(LIMIT * 3);
      res.json({ ok: true });
    });
    app.post('/wait-then-write', async (_req: Request, res: Response) => {
      await db.selectFrom('t').selectAll().execute();
      await sleep(LIMIT * 3);
      await db.insertInto('t').values({ x: 'wait-then-write' }).execute();
      res.json({ ok: true });
    });
    // Paced handlers: past the deadline inside the transaction it rolls back; after `commit()` the answer is real.
    app.post('/paced-past-deadline', async (_req: Request, res: Response) => {
      const work = new Pacer();
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('t').values({ x: 'paced-past-deadline' }).execute();
        await sleep(LIMIT * 3);
        await work.tick();
        work.commit();
      });
      res.json({ ok: true });
    });
    app.post('/paced-committed', async (_req: Request, res: Response) => {
      const work = new Pacer();
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('t').values({ x: 'paced-committed' }).execute();
        work.commit();
      });
      await sleep(LIMIT * 3);
      res.json({ ok: true });
    });
    // A handler that has started its own (streamed) answer is out of the limit's reach.
    app.post('/streamed', async (_req: Request, res: Response) => {
      res.status(200).type('text/plain');
      res.write('start;');
      await sleep(LIMIT * 3);
      await db.insertInto('t').values({ x: 'streamed' }).execute();
      res.end('end');
    });
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) return;
      if (err instanceof HttpError) res.status(err.status).json({ error: err.message });
      else res.status(500).json({ error: String(err) });
    });
    await new Promise<void>((resolve) => {
      server = app.listen(0, '127.0.0.1', () => resolve());
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server?.close(() => r()));
    await db?.destroy();
  });

  const post = async (path: string) => {
    const r = await fetch(`${url}${path}`, { method: 'POST' });
    return { status: r.status, body: (await r.json()) as { ok?: boolean; error?: string } };
  };
  const stored = async () => (await db.selectFrom('t').select('x').execute()).map((r) => r.x);

  test('a request that wrote before the limit is answered for real', async () => {
    expect(await post('/write-then-wait')).toEqual({ status: 200, body: { ok: true } });
    expect(await stored()).toContain('write-then-wait');
  });

  test('after the 503, a request cannot write', async () => {
    const r = await post('/wait-then-write');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain(`time limit of ${LIMIT} ms`);
    await sleep(LIMIT * 3);
    expect(await stored()).not.toContain('wait-then-write');
  });

  test('a handler streaming its answer is not cut off by the limit', async () => {
    const r = await fetch(`${url}/streamed`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('start;end');
    expect(await stored()).toContain('streamed');
  });

  test('paced work past the limit rolls back; paced work past its commit point answers for real', async () => {
    expect((await post('/paced-past-deadline')).status).toBe(503);
    await sleep(LIMIT * 3);
    expect(await stored()).not.toContain('paced-past-deadline');
    expect(await post('/paced-committed')).toEqual({ status: 200, body: { ok: true } });
    expect(await stored()).toContain('paced-committed');
  });
});
