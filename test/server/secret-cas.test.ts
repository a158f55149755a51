/**
 * Check-and-set on secret updates (extension, issue 11): an update entry carrying `expectedVersion` (the `version`
 * its client read) gets 409 when someone else wrote in between, and nothing of the request is applied; an entry
 * without it keeps Phase's last-writer-wins. `/v1/secrets/` and E2E `/secrets/`. Runs on every store.
 */
import Phase from '@phase.dev/phase-node';
import { encryptAsymmetric, initCrypto, kxRandomKeyPair } from '../../core/crypto';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, type Call } from './helpers';
import { sleep, withTimeout } from './verify-helpers';

describe.each(STORES)('secret check-and-set on %s', (store) => {
  let srv: TestServer;
  let owner: Call;

  beforeAll(async () => {
    await initCrypto();
    srv = await startTestServer({ store });
    owner = caller(srv, srv.ownerToken);
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('/v1 PUT: matching version → 200; stale version → 409 and nothing applied; no version → last writer wins', async () => {
    const { app } = await createApp(owner);
    const q = `/v1/secrets/?app_id=${app.id}&env=Development`;
    const created = await owner('POST', q, {
      secrets: [
        { key: 'DB_URL', value: 'v1' },
        { key: 'OTHER', value: 'o1' },
      ],
    });
    expect(created.status).toBe(200);
    const [db, other] = created.body as Array<{ id: string; version: number }>;
    expect(db.version).toBe(1);

    // Two clients read version 1; the first writes with it.
    const first = await owner('PUT', q, { secrets: [{ id: db.id, value: 'first', expectedVersion: 1 }] });
    expect(first.status).toBe(200);
    expect(first.body[0]).toMatchObject({ value: 'first', version: 2 });

    // The second one's write, based on version 1, is refused, with the versions named; a request is all or nothing.
    const stale = await owner('PUT', q, {
      secrets: [
        { id: other.id, value: 'o2', expectedVersion: 1 },
        { id: db.id, value: 'second', expectedVersion: 1 },
      ],
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toEqual({
      error: `Secret ${db.id} was changed by another write: it is at version 2, this update expected version 1. Read it again and retry.`,
    });
    const now = (await owner('GET', q)).body as Array<{ id: string; value: string; version: number }>;
    expect(now.find((s) => s.id === db.id)).toMatchObject({ value: 'first', version: 2 });
    expect(now.find((s) => s.id === other.id)).toMatchObject({ value: 'o1', version: 1 });

    // Read again, retry with the version read: applied.
    const retry = await owner('PUT', q, { secrets: [{ id: db.id, value: 'second', expectedVersion: 2 }] });
    expect(retry.status).toBe(200);
    expect(retry.body[0]).toMatchObject({ value: 'second', version: 3 });

    // Without the field (every Phase client): last writer wins, whatever the version.
    const blind = await owner('PUT', q, { secrets: [{ id: db.id, value: 'blind' }] });
    expect(blind.status).toBe(200);
    expect(blind.body[0]).toMatchObject({ value: 'blind', version: 4 });
    const nulled = await owner('PUT', q, {
      secrets: [{ id: db.id, value: 'null-version', expectedVersion: null }],
    });
    expect(nulled.status).toBe(200);
    expect(nulled.body[0]).toMatchObject({ value: 'null-version', version: 5 });
  });

  test('invalid expectedVersion: 400 naming the field, on /v1 and E2E', async () => {
    const { app, envs } = await createApp(owner);
    const q = `/v1/secrets/?app_id=${app.id}&env=Development`;
    const id = (await owner('POST', q, { secrets: [{ key: 'K', value: 'v' }] })).body[0].id;
    for (const bad of ['1', 0, -1, 1.5, true, {}]) {
      const v1 = await owner('PUT', q, { secrets: [{ id, value: 'x', expectedVersion: bad }] });
      expect({ bad, status: v1.status }).toEqual({ bad, status: 400 });
      expect(v1.body.error).toContain("'expectedVersion' must be a positive integer");
      const e2e = await owner(
        'PUT',
        '/service/secrets/',
        { secrets: [{ id, expectedVersion: bad }] },
        { Environment: envs.Development.id },
      );
      expect({ bad, status: e2e.status }).toEqual({ bad, status: 400 });
      expect(e2e.body.error).toContain("'expectedVersion' must be a positive integer");
    }
  });

  test('E2E PUT: the same rule (409 on a stale version, last writer wins without one)', async () => {
    const { app, envs } = await createApp(owner);
    const sa = await createSa(owner, 'cas-e2e');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Staging.id] }],
    });
    const bot = caller(srv, sa.token);
    const H = { Environment: envs.Staging.id };
    // The server does not decrypt E2E values; any well-formed ciphertext will do.
    const pk = kxRandomKeyPair().publicKey;
    const ct = (s: string) => encryptAsymmetric(s, pk);
    expect(
      (
        await bot(
          'POST',
          '/service/secrets/',
          { secrets: [{ key: ct('K'), keyDigest: 'digest-k', value: ct('1') }] },
          H,
        )
      ).status,
    ).toBe(200);
    const [read] = (await bot('GET', '/service/secrets/', undefined, H)).body as Array<{
      id: string;
      version: number;
    }>;
    expect(read.version).toBe(1);

    const ok = await bot(
      'PUT',
      '/service/secrets/',
      { secrets: [{ id: read.id, value: ct('2'), expectedVersion: 1 }] },
      H,
    );
    expect(ok.status).toBe(200);
    const stale = await bot(
      'PUT',
      '/service/secrets/',
      { secrets: [{ id: read.id, value: ct('3'), expectedVersion: 1 }] },
      H,
    );
    expect(stale.status).toBe(409);
    expect(stale.body.error).toContain('it is at version 2, this update expected version 1');
    const [after] = (await bot('GET', '/service/secrets/', undefined, { ...H, 'X-Use-Camel-Case': 'true' }))
      .body;
    expect(after.version).toBe(2);
    expect(
      (
        await bot(
          'PUT',
          '/service/secrets/',
          { secrets: [{ id: read.id, value: ct('4'), expectedVersion: 2 }] },
          H,
        )
      ).status,
    ).toBe(200);
    // No expectedVersion: last writer wins.
    expect(
      (await bot('PUT', '/service/secrets/', { secrets: [{ id: read.id, value: ct('5') }] }, H)).status,
    ).toBe(200);
    const [last] = (await bot('GET', '/service/secrets/', undefined, H)).body;
    expect(last.version).toBe(4);
  });

  test('official Node SDK: update() carries expectedVersion through (opt-in); without it last writer wins', async () => {
    const { app, envs } = await createApp(owner);
    const sa = await createSa(owner, 'cas-sdk');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id] }],
    });
    const q = `/v1/secrets/?app_id=${app.id}&env=Development`;
    expect((await owner('POST', q, { secrets: [{ key: 'SDK_CAS', value: 'v1' }] })).status).toBe(200);
    const sdk = new Phase(sa.token, srv.url.replace(/\/+$/, ''));
    await withTimeout(sdk.init(), 10_000, 'sdk.init');
    const [read] = await withTimeout(sdk.get({ appId: app.id, envName: 'Development' }), 10_000, 'sdk.get');
    expect(read).toMatchObject({ key: 'SDK_CAS', value: 'v1', version: 1 });
    const update = (value: string, extra: Record<string, unknown>) =>
      sdk.update({
        appId: app.id,
        envName: 'Development',
        secrets: [
          { id: read.id, key: read.key, value, ...extra } as Parameters<Phase['update']>[0]['secrets'][0],
        ],
      });

    await withTimeout(update('v2', { expectedVersion: 1 }), 10_000, 'sdk.update');
    // The SDK logs a failed update and never settles it: watch for its log line instead.
    const log = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      void update('stale', { expectedVersion: 1 });
      for (let i = 0; i < 200 && !log.mock.calls.some((c) => String(c[0]).includes('409')); i++)
        await sleep(25);
      expect(log.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringContaining('409')]);
    } finally {
      log.mockRestore();
    }
    expect((await owner('GET', `${q}&key=SDK_CAS`)).body[0]).toMatchObject({ value: 'v2', version: 2 });

    await withTimeout(update('v3', {}), 10_000, 'sdk.update');
    expect((await owner('GET', `${q}&key=SDK_CAS`)).body[0]).toMatchObject({ value: 'v3', version: 3 });
  });

  test('two writers with the same read version at once: exactly one wins, the other gets 409', async () => {
    const { app } = await createApp(owner);
    const q = `/v1/secrets/?app_id=${app.id}&env=Development`;
    const id = (await owner('POST', q, { secrets: [{ key: 'RACE', value: 'v' }] })).body[0].id;
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.all(
        ['a', 'b'].map((w) =>
          owner('PUT', q, { secrets: [{ id, value: `${w}${round}`, expectedVersion: round }] }),
        ),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const winner = results.find((r) => r.status === 200)!;
      const [now] = (await owner('GET', `${q}&key=RACE`)).body;
      expect(now).toMatchObject({ value: winner.body[0].value, version: round + 1 });
    }
  });
});
