/**
 * API behaviour, part 2: `/v1/secrets/` (plaintext CRUD, references, tags, paths, types, versions, overrides),
 * the E2E `/secrets/` endpoint's status codes and casing, `updated_at` bumps, and path-restricted access.
 * Runs on every store.
 */
import { encryptAsymmetric, initCrypto, keyDigest } from '../../core/crypto';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, envKeysFor, type Call } from './helpers';

describe.each(STORES)('secrets API on %s', (store) => {
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

  test('/v1/secrets CRUD: 200 on create, 409 duplicates, key lookup across paths, versions, types, delete', async () => {
    const { app } = await createApp(owner);
    const q = `?app_id=${app.id}&env=Production`;
    const c = await owner('POST', `/v1/secrets/${q}`, {
      secrets: [
        {
          key: 'debug',
          value: 'False',
          comment: 'Debug mode',
          tags: ['config', 'backend'],
          path: '/backend/',
        },
        { key: 'DEBUG', value: 'True' },
        { key: 'SEALED_ONE', value: 'v1', type: 'sealed' },
      ],
    });
    expect(c.status).toBe(200);
    expect(c.body).toHaveLength(3);
    expect(c.body[0]).toMatchObject({
      key: 'DEBUG',
      value: 'False',
      comment: 'Debug mode',
      tags: ['backend', 'config'],
      override: null,
      type: 'secret',
      lifecycle: 'static',
      path: '/backend',
      version: 1,
    });
    expect(c.body[0].keyDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof c.body[0].folder).toBe('string');
    expect(c.body[1].folder).toBeNull();
    expect(Object.keys(c.body[0])).toEqual([
      'id',
      'key',
      'value',
      'comment',
      'tags',
      'override',
      'type',
      'lifecycle',
      'path',
      'keyDigest',
      'version',
      'createdAt',
      'updatedAt',
      'environment',
      'folder',
    ]);

    const dup = await owner('POST', `/v1/secrets/${q}`, {
      secrets: [{ key: 'debug', value: 'x', path: '/backend' }],
    });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({ error: 'Duplicate secret found' });

    // ?key= is case-insensitive and spans paths; ?path= is exact; empty path = no filter; tags filter.
    expect((await owner('GET', `/v1/secrets/${q}&key=Debug`)).body.map((s: any) => s.path).sort()).toEqual([
      '/',
      '/backend',
    ]);
    expect((await owner('GET', `/v1/secrets/${q}&path=/backend`)).body.map((s: any) => s.key)).toEqual([
      'DEBUG',
    ]);
    expect((await owner('GET', `/v1/secrets/${q}&path=`)).body).toHaveLength(3);
    expect((await owner('GET', `/v1/secrets/${q}&tags=config`)).body.map((s: any) => s.path)).toEqual([
      '/backend',
    ]);
    expect((await owner('GET', `/v1/secrets/${q}&tags=nope`)).body).toEqual([]);

    // PUT: version + 1, omitted fields kept, tags kept when omitted, path moves.
    const id = c.body[0].id;
    const u = await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ id, value: 'maybe' }] });
    expect(u.status).toBe(200);
    expect(u.body[0]).toMatchObject({
      key: 'DEBUG',
      value: 'maybe',
      comment: 'Debug mode',
      tags: ['backend', 'config'],
      version: 2,
    });
    const mv = await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ id, path: '/', tags: [] }] });
    expect(mv.status).toBe(409); // DEBUG already lives at /
    const mv2 = await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ id, path: '/other', tags: [] }] });
    expect(mv2.body[0]).toMatchObject({ path: '/other', tags: [], version: 3 });
    expect((await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ value: 'x' }] })).body).toEqual({
      error: 'Secret ID not provided',
    });
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ id: missing }] })).body).toEqual({
      error: `Secret not found: ${missing}`,
    });

    // Sealed: value silently kept, cannot be unsealed.
    const sealed = c.body[2].id;
    const s1 = await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ id: sealed, value: 'v2' }] });
    expect(s1.body[0]).toMatchObject({ value: 'v1', version: 2, type: 'sealed' });
    const s2 = await owner('PUT', `/v1/secrets/${q}`, { secrets: [{ id: sealed, type: 'secret' }] });
    expect(s2.status).toBe(400);
    expect(s2.body).toEqual({
      error: 'Sealed secrets cannot be unsealed. Delete and recreate the secret instead.',
    });

    // Validation messages.
    const bad: Array<[unknown, string]> = [
      [{ secrets: [] }, "'secrets' must be a non-empty list."],
      [{ secrets: [{ value: 'x' }] }, "Each secret requires a non-empty 'key'."],
      [
        { secrets: [{ key: 'A', value: 'x', type: 'weird' }] },
        `Invalid 'type': "weird". Must be one of: secret, sealed, config.`,
      ],
      [
        { secrets: [{ key: 'A', value: 'x', override: { value: 'y', isActive: 'yes' } }] },
        "'override.isActive' must be a boolean.",
      ],
      [
        { secrets: [{ key: 'A', value: 'x', tags: ['t'.repeat(65)] }] },
        'Tag names cannot exceed 64 characters.',
      ],
    ];
    for (const [body, msg] of bad) {
      const r = await owner('POST', `/v1/secrets/${q}`, body);
      expect({ status: r.status, body: r.body }).toEqual({ status: 400, body: { error: msg } });
    }
    expect((await owner('POST', `/v1/secrets/${q}`)).body).toEqual({ error: 'Request body is required.' });
    expect((await owner('GET', `/v1/secrets/${q}&lease_ttl=abc`)).body).toEqual({
      error: 'lease_ttl must be a valid integer (seconds)',
    });
    expect((await owner('GET', '/v1/secrets/')).body).toEqual({
      error: 'Environment context required. Supply `app_id` and `env` as query parameters.',
    });
    expect((await owner('GET', `/v1/secrets/?app_id=${app.id}&env=nope`)).body).toEqual({
      error: `Environment 'nope' not found in App ${app.id}`,
    });
    const patch = await owner('PATCH', `/v1/secrets/${q}`);
    expect(patch.status).toBe(403);
    expect(patch.body).toEqual({ error: 'Unsupported HTTP method: PATCH' });

    // DELETE: every id must exist here; message counts.
    const del = await owner('DELETE', `/v1/secrets/${q}`, { secrets: [id] });
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ message: 'Deleted 1 secret' });
    const again = await owner('DELETE', `/v1/secrets/${q}`, { secrets: [id] });
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ error: `Secret(s) not found in this environment: ${id}` });
    expect((await owner('DELETE', `/v1/secrets/${q}`, { secrets: [] })).body).toEqual({
      error: "'secrets' must be a non-empty list of secret IDs.",
    });
    // The secret_id context works too.
    const bySecret = await owner('GET', `/v1/secrets/?secret_id=${sealed}`);
    expect(bySecret.status).toBe(200);
    expect(bySecret.body.map((s: any) => s.key).sort()).toEqual(['DEBUG', 'SEALED_ONE']);
  });

  test('references resolve server-side: local, path, cross-env, cross-app, cycles and missing stay literal', async () => {
    const { app } = await createApp(owner, 'refs-main');
    const { app: other } = await createApp(owner, 'refs-other');
    const post = (a: string, env: string, secrets: unknown[]) =>
      owner('POST', `/v1/secrets/?app_id=${a}&env=${env}`, { secrets });
    await post(other.id, 'Production', [{ key: 'REMOTE', value: 'remote-value' }]);
    await post(app.id, 'Staging', [{ key: 'STAGE_ONLY', value: 'from-staging' }]);
    await post(app.id, 'Development', [
      { key: 'HOST', value: 'db.local' },
      { key: 'PORT', value: '5432' },
      { key: 'NESTED', value: 'n-${HOST}', path: '/deep/er' },
      { key: 'URL', value: 'postgres://${HOST}:${PORT}/${/deep/er/NESTED}' },
      { key: 'CROSS_ENV', value: '${staging.STAGE_ONLY}' },
      { key: 'CROSS_APP', value: '${refs-other::production.REMOTE}' },
      { key: 'LOOP_A', value: 'a${LOOP_B}' },
      { key: 'LOOP_B', value: 'b${LOOP_A}' },
      { key: 'MISSING', value: '${NOPE} and ${{ github }}' },
    ]);
    const got = await owner('GET', `/v1/secrets/?app_id=${app.id}&env=development`);
    const v = Object.fromEntries(got.body.map((s: any) => [s.key, s.value]));
    expect(v.URL).toBe('postgres://db.local:5432/n-db.local');
    expect(v.CROSS_ENV).toBe('from-staging');
    expect(v.CROSS_APP).toBe('remote-value');
    expect(v.MISSING).toBe('${NOPE} and ${{ github }}');
    expect(v.LOOP_A.startsWith('ab')).toBe(true);
    expect(v.LOOP_A).toContain('${');

    // Extension: raw=true returns values as written.
    const raw = await owner('GET', `/v1/secrets/?app_id=${app.id}&env=development&key=URL&raw=true`);
    expect(raw.body[0].value).toBe('postgres://${HOST}:${PORT}/${/deep/er/NESTED}');

    // A service account without access to Staging gets the reference back unresolved.
    const sa = await createSa(owner, 'refs-bot');
    const envs = (await owner('GET', `/v1/environments/?app_id=${app.id}`)).body.data;
    const dev = envs.find((e: any) => e.name === 'Development');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [dev.id] }],
    });
    const viaSa = await caller(srv, sa.token)(
      'GET',
      `/v1/secrets/?app_id=${app.id}&env=Development&key=CROSS_ENV`,
    );
    expect(viaSa.status).toBe(200);
    expect(viaSa.body[0].value).toBe('${staging.STAGE_ONLY}');
  });

  test('personal overrides are per member (PAT) and never shown to service accounts', async () => {
    const { app, envs } = await createApp(owner);
    const q = `?app_id=${app.id}&env=Development`;
    const c = await owner('POST', `/v1/secrets/${q}`, {
      secrets: [{ key: 'MODE', value: 'shared', override: { value: 'mine', isActive: true } }],
    });
    expect(c.body[0].value).toBe('shared');
    expect(c.body[0].override).toMatchObject({ value: 'mine', isActive: true });
    const off = await owner('PUT', `/v1/secrets/${q}`, {
      secrets: [{ id: c.body[0].id, override: { value: 'mine2', isActive: false } }],
    });
    expect(off.body[0].override).toMatchObject({ value: 'mine2', isActive: false });
    const sa = await createSa(owner, 'ov-bot');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id] }],
    });
    const viaSa = await caller(srv, sa.token)('GET', `/v1/secrets/${q}`);
    expect(viaSa.body[0].override).toBeNull();
    // E2E: snake_case by default, camelCase with X-Use-Camel-Case: true.
    const e2e = await owner('GET', '/service/secrets/', undefined, { Environment: envs.Development.id });
    expect(e2e.body[0].override).toHaveProperty('is_active', false);
    const camel = await owner('GET', '/service/secrets/', undefined, {
      environment: envs.Development.id,
      'X-Use-Camel-Case': 'true',
    });
    expect(camel.body[0].override).toHaveProperty('isActive', false);
    expect(camel.body[0]).toHaveProperty('keyDigest');
  });

  test('E2E /secrets/: headers, status codes, ciphertext validation, PUT semantics and updated_at bumps', async () => {
    const { app, envs } = await createApp(owner);
    const sa = await createSa(owner, 'e2e-codes');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Staging.id] }],
    });
    const sac = caller(srv, sa.token);
    const env = await envKeysFor(sac, sa.token, envs.Staging.id);
    const H = { Environment: envs.Staging.id };
    const item = (key: string, value: string, path = '/') => ({
      key: encryptAsymmetric(key, env.publicKey),
      keyDigest: keyDigest(key, env.salt),
      value: encryptAsymmetric(value, env.publicKey),
      comment: '',
      path,
      tags: ['t1'],
    });
    const updatedAt = async () =>
      (await sac('GET', '/service/secrets/tokens/')).body.apps[0].environment_keys[0].environment.updated_at;
    const t0 = await updatedAt();

    expect(
      (await sac('POST', '/service/secrets/', { secrets: [item('A', '1'), item('B', '2', '/p')] }, H)).status,
    ).toBe(200);
    const t1 = await updatedAt();
    expect(t1 > t0).toBe(true);
    const dup = await sac('POST', '/service/secrets/', { secrets: [item('A', 'again')] }, H);
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({ error: 'Duplicate secret found' });
    const badCt = await sac(
      'POST',
      '/service/secrets/',
      { secrets: [{ ...item('C', '3'), value: 'plaintext!' }] },
      H,
    );
    expect(badCt.status).toBe(400);
    expect(badCt.body.error).toContain('Invalid ciphertext format');
    expect((await sac('POST', '/service/secrets/', 'nope', H)).body).toEqual({
      error: 'Request body must be valid JSON.',
    });
    expect((await sac('POST', '/service/secrets/', undefined, H)).body).toEqual({
      error: 'Request body is required.',
    });

    // Header names are case-insensitive and `_` ≡ `-`.
    const byDigest = await sac('GET', '/service/secrets/', undefined, {
      ENVIRONMENT: envs.Staging.id,
      keydigest: keyDigest('A', env.salt),
    });
    expect(byDigest.body).toHaveLength(1);
    expect((await sac('GET', '/service/secrets/', undefined, { ...H, Path: '/p/' })).body).toHaveLength(1);
    expect((await sac('GET', '/service/secrets/', undefined, H)).body).toHaveLength(2);
    expect((await sac('GET', '/service/secrets/', undefined, { ...H, lease_ttl: 'x' })).status).toBe(400);

    // PUT keeps omitted fields and clears tags when omitted.
    const a = byDigest.body[0];
    expect(a.tags).toEqual(['t1']);
    const put = await sac(
      'PUT',
      '/service/secrets/',
      { secrets: [{ id: a.id, value: encryptAsymmetric('one', env.publicKey) }] },
      H,
    );
    expect(put.status).toBe(200);
    const after = (
      await sac('GET', '/service/secrets/', undefined, { ...H, KeyDigest: keyDigest('A', env.salt) })
    ).body[0];
    expect(after).toMatchObject({ key: a.key, version: 2, tags: [] });
    const t2 = await updatedAt();
    expect(t2 > t1).toBe(true);

    // A well-formed but undecryptable ciphertext written E2E never breaks the SSE view (it is left out).
    const junk = `ph:v1:${'00'.repeat(32)}:AAAA`;
    expect(
      (await sac('POST', '/service/secrets/', { secrets: [{ ...item('JUNK', 'x'), value: junk }] }, H))
        .status,
    ).toBe(200);
    const sseView = await owner('GET', `/v1/secrets/?app_id=${app.id}&env=Staging`);
    expect(sseView.status).toBe(200);
    expect(sseView.body.map((x: any) => x.key).sort()).toEqual(['A', 'B']);

    // Unknown environment header: 401; no header: 403; another environment's id cannot be deleted from here.
    const unknownEnv = await sac('GET', '/service/secrets/', undefined, {
      Environment: '00000000-0000-4000-8000-000000000000',
    });
    expect(unknownEnv.status).toBe(401);
    expect(unknownEnv.body).toEqual({ error: 'Environment not found' });
    expect((await sac('GET', '/service/secrets/')).status).toBe(403);
    const ownerProd = await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Production`, {
      secrets: [{ key: 'P', value: 'p' }],
    });
    const cross = await sac('DELETE', '/service/secrets/', { secrets: [ownerProd.body[0].id] }, H);
    expect(cross.status).toBe(200);
    expect((await owner('GET', `/v1/secrets/?app_id=${app.id}&env=Production`)).body).toHaveLength(1);

    const del = await sac('DELETE', '/service/secrets/', { secrets: [a.id] }, H);
    expect(del.status).toBe(200);
    expect(del.text).toBe('');
    const t3 = await updatedAt();
    expect(t3 > t2).toBe(true);
    expect((await sac('GET', '/service/secrets/', undefined, H)).body).toHaveLength(2);

    // /v1 writes bump it too.
    const before = (await owner('GET', `/v1/environments/${envs.Staging.id}/`)).body.updatedAt;
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Staging`, { secrets: [{ key: 'Z', value: 'z' }] });
    expect((await owner('GET', `/v1/environments/${envs.Staging.id}/`)).body.updatedAt > before).toBe(true);

    // Missing Authorization on /secrets/tokens/ is a 403 (Phase answers 500), malformed too.
    const anon = caller(srv, null);
    expect((await anon('GET', '/service/secrets/tokens/')).status).toBe(403);
    expect(
      (await anon('GET', '/service/secrets/tokens/', undefined, { Authorization: 'Bearer' })).body,
    ).toEqual({
      error: 'Token expired or deleted',
    });
    const noAuth = await anon('GET', '/service/secrets/', undefined, H);
    expect(noAuth.status).toBe(401);
    expect(noAuth.body).toEqual({ error: 'Authentication credentials were not provided.' });
    expect(noAuth.headers.get('www-authenticate')).toBe('Bearer');
    expect((await anon('GET', '/public/secrets/')).status).toBe(404);
  });

  test('path-restricted access: the SA sees and writes only under its paths, on /v1 and E2E', async () => {
    const { app, envs } = await createApp(owner);
    const q = `?app_id=${app.id}&env=Development`;
    await owner('POST', `/v1/secrets/${q}`, {
      secrets: [
        { key: 'ROOT', value: 'r' },
        { key: 'API', value: 'a', path: '/api' },
        { key: 'API_DEEP', value: 'd', path: '/api/v2' },
        { key: 'APIX', value: 'x', path: '/apix' },
        { key: 'WEB', value: 'w', path: '/web' },
        { key: 'LEAK', value: '${/web/WEB}', path: '/api' },
      ],
    });
    const sa = await createSa(owner, 'path-bot');
    const g = await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id], paths: ['/api/'] }],
    });
    expect(g.status).toBe(200);
    expect(g.body.apps[0].paths).toEqual(['/api']);
    const sac = caller(srv, sa.token);
    const seen = await sac('GET', `/v1/secrets/${q}`);
    expect(seen.body.map((s: any) => s.key).sort()).toEqual(['API', 'API_DEEP', 'LEAK']);
    // A reference cannot reach outside the allowed paths.
    expect(seen.body.find((s: any) => s.key === 'LEAK').value).toBe('${/web/WEB}');
    const outside = await sac('POST', `/v1/secrets/${q}`, {
      secrets: [{ key: 'NEW', value: 'n', path: '/web' }],
    });
    expect(outside.status).toBe(403);
    expect(
      (await sac('POST', `/v1/secrets/${q}`, { secrets: [{ key: 'NEW', value: 'n', path: '/api/new' }] }))
        .status,
    ).toBe(200);

    const t = await sac('GET', '/service/secrets/tokens/');
    expect(t.body.apps[0].environment_keys[0].paths).toEqual(['/api']);
    const e2e = await sac('GET', '/service/secrets/', undefined, { Environment: envs.Development.id });
    expect(e2e.body.map((s: any) => s.path).sort()).toEqual(['/api', '/api', '/api/new', '/api/v2']);
    const env = await envKeysFor(sac, sa.token, envs.Development.id);
    const write = await sac(
      'POST',
      '/service/secrets/',
      {
        secrets: [
          {
            key: encryptAsymmetric('Q', env.publicKey),
            keyDigest: keyDigest('Q', env.salt),
            value: encryptAsymmetric('q', env.publicKey),
            comment: '',
            path: '/',
          },
        ],
      },
      { Environment: envs.Development.id },
    );
    expect(write.status).toBe(403);
    expect(write.body.error).toMatch(/outside the paths/);
    const bad = await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id], paths: [] }],
    });
    expect(bad.status).toBe(400);
  });

  test('path restrictions on a member grant apply to PAT reads too', async () => {
    const { app, envs } = await createApp(owner);
    const q = `?app_id=${app.id}&env=Staging`;
    await owner('POST', `/v1/secrets/${q}`, {
      secrets: [
        { key: 'OPEN', value: 'o', path: '/team-a' },
        { key: 'HIDDEN', value: 'h', path: '/team-b' },
      ],
    });
    const dev = await srv.addMember('Developer');
    const g = await owner('PUT', `/v1/members/${dev.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Staging.id], paths: ['team-a'] }],
    });
    expect(g.status).toBe(200);
    expect(g.body.apps[0]).toMatchObject({ id: app.id, paths: ['/team-a'] });
    const access = await owner('GET', `/v1/members/${dev.id}/access/`);
    expect(access.body.apps[0].paths).toEqual(['/team-a']);
    const devc = caller(srv, dev.token);
    expect((await devc('GET', `/v1/secrets/${q}`)).body.map((x: any) => x.key)).toEqual(['OPEN']);
    const hidden = (await owner('GET', `/v1/secrets/${q}&key=HIDDEN`)).body[0];
    const put = await devc('PUT', `/v1/secrets/${q}`, { secrets: [{ id: hidden.id, value: 'pwned' }] });
    expect(put.status).toBe(404);
    expect((await devc('DELETE', `/v1/secrets/${q}`, { secrets: [hidden.id] })).status).toBe(404);
    expect((await owner('GET', `/v1/secrets/${q}&key=HIDDEN`)).body[0].value).toBe('h');
    // Admins have global access: their grants cannot be narrowed.
    const admin = await srv.addMember('Admin');
    const refused = await owner('PUT', `/v1/members/${admin.id}/access/`, { apps: [] });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: 'Access cannot be changed for members with a global access role.',
    });
  });

  test('updated_at increases on every write even when the stored value is ahead of this clock', async () => {
    const { app, envs } = await createApp(owner);
    // Another process with a faster clock wrote last.
    const ahead = '2100-01-01T00:00:00.999999Z';
    await srv.server.store.db
      .updateTable('environments')
      .set({ updated_at: ahead })
      .where('id', '=', envs.Development.id)
      .execute();
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
      secrets: [{ key: 'A', value: '1' }],
    });
    const first = (await owner('GET', `/v1/environments/${envs.Development.id}/`)).body.updatedAt;
    expect(first).toBe('2100-01-01T00:00:01.000000Z');
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
      secrets: [{ key: 'B', value: '2' }],
    });
    expect((await owner('GET', `/v1/environments/${envs.Development.id}/`)).body.updatedAt).toBe(
      '2100-01-01T00:00:01.000001Z',
    );
  });

  test('100 concurrent writers: every write is acknowledged once and readable, duplicates refused', async () => {
    const { app } = await createApp(owner);
    const q = `?app_id=${app.id}&env=Development`;
    const writes = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        owner('POST', `/v1/secrets/${q}`, { secrets: [{ key: `C_${i % 90}`, value: `v${i}` }] }),
      ),
    );
    const statuses = writes.map((w) => w.status);
    expect(statuses.filter((x) => x === 200)).toHaveLength(90);
    expect(statuses.filter((x) => x === 409)).toHaveLength(10);
    const all = (await owner('GET', `/v1/secrets/${q}`)).body;
    expect(all).toHaveLength(90);
    expect(new Set(all.map((x: any) => x.key)).size).toBe(90);
  });
});
