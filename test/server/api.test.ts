/**
 * API behaviour, part 1: apps, environments, service accounts and tokens, access grants and the full E2E chain
 * (a grantee's /secrets/tokens/ holds environment keys that decrypt with core crypto using the minted token).
 * Runs on every store.
 */
import {
  decryptAsymmetric,
  encryptAsymmetric,
  initCrypto,
  keyDigest,
  reconstructPrivateKey,
  unwrapEnvironmentKey,
} from '../../core/crypto';
import { parsePssToken } from '../../core/token';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, type Call } from './helpers';

describe.each(STORES)('API on %s', (store) => {
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

  describe('apps', () => {
    test('create gives 201, SSE and the three default environments; list, get, update, delete', async () => {
      const r = await owner('POST', '/v1/apps/', { name: 'billing', description: 'desc' });
      expect(r.status).toBe(201);
      expect(r.body.sseEnabled).toBe(true);
      expect(r.body.description).toBe('desc');
      expect(r.body.environments.map((e: any) => [e.name, e.envType, e.index])).toEqual([
        ['Development', 'dev', 0],
        ['Staging', 'staging', 1],
        ['Production', 'prod', 2],
      ]);
      expect(r.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      const id = r.body.id;

      const list = await owner('GET', '/v1/apps/');
      expect(list.status).toBe(200);
      expect(list.body.data.map((a: any) => a.id)).toContain(id);

      const got = await owner('GET', `/v1/apps/${id}/`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ id, name: 'billing', sseEnabled: true });

      const upd = await owner('PUT', `/v1/apps/${id}/`, { name: 'billing2' });
      expect(upd.status).toBe(200);
      expect(upd.body.name).toBe('billing2');
      const none = await owner('PUT', `/v1/apps/${id}/`, {});
      expect(none.status).toBe(400);
      expect(none.body).toEqual({ error: "At least one of 'name' or 'description' must be provided." });

      const del = await owner('DELETE', `/v1/apps/${id}/`);
      expect(del.status).toBe(204);
      expect(del.text).toBe('');
      expect((await owner('GET', `/v1/apps/${id}/`)).status).toBe(404);
    });

    test('custom environments, validation messages and the same routes under every prefix', async () => {
      const r = await owner('POST', '/service/public/v1/apps/', {
        name: 'custom',
        environments: ['dev', 'qa'],
      });
      expect(r.status).toBe(201);
      expect(r.body.environments.map((e: any) => [e.name, e.envType])).toEqual([
        ['dev', 'custom'],
        ['qa', 'custom'],
      ]);
      for (const prefix of ['/v1', '/public/v1', '/service/v1', '/service/public/v1']) {
        const g = await owner('GET', `${prefix}/apps/${r.body.id}/`);
        expect(g.status).toBe(200);
      }
      // Unlike Phase's Django routes, the slash is optional (issue 15: Phase's own curl examples leave it out).
      expect((await owner('GET', `/v1/apps/${r.body.id}`)).status).toBe(200);
      expect((await owner('GET', `/service/public/v1/apps/${r.body.id}?x=1`)).status).toBe(200);
      expect((await owner('POST', '/v1/apps/', {})).body).toEqual({ error: 'Missing required field: name' });
      expect((await owner('POST', '/v1/apps/', { name: 5 })).body).toEqual({
        error: "'name' must be a string.",
      });
      expect((await owner('POST', '/v1/apps/', { name: 'x'.repeat(65) })).body).toEqual({
        error: "'name' cannot exceed 64 characters.",
      });
      expect((await owner('POST', '/v1/apps/', { name: 'a', environments: [] })).body).toEqual({
        error: "'environments' must not be empty.",
      });
      expect((await owner('POST', '/v1/apps/', { name: 'a', environments: ['x', 'X'] })).body).toEqual({
        error: "Duplicate environment name: 'X'.",
      });
      const bad = await owner('POST', '/v1/apps/', { name: 'a', environments: ['bad name'] });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/^Environment name is invalid/);
      expect((await owner('POST', '/v1/apps/', '[1,2]')).body).toEqual({
        error: 'Request body must be a JSON object.',
      });
      const invalid = await owner('POST', '/v1/apps/', '{"name":');
      expect(invalid.status).toBe(400);
      expect(invalid.body).toEqual({ error: 'Request body must be valid JSON.' });
      const patch = await owner('PATCH', '/v1/apps/');
      expect(patch.status).toBe(405);
      expect(patch.body).toEqual({ error: 'Method "PATCH" not allowed.' });
    });
  });

  describe('environments', () => {
    test('list, create, rename, duplicate names, delete', async () => {
      const { app, envs } = await createApp(owner);
      const list = await owner('GET', `/v1/environments/?app_id=${app.id}`);
      expect(list.status).toBe(200);
      expect(list.body.data.map((e: any) => e.name)).toEqual(['Development', 'Staging', 'Production']);
      expect((await owner('GET', '/v1/environments/')).body).toEqual({
        error: 'Could not resolve app from request.',
      });

      const c = await owner('POST', `/v1/environments/?app_id=${app.id}`, { name: 'qa' });
      expect(c.status).toBe(201);
      expect(c.body).toMatchObject({ name: 'qa', envType: 'custom', index: 3 });
      const dup = await owner('POST', `/v1/environments/?app_id=${app.id}`, { name: 'QA' });
      expect(dup.status).toBe(400);
      expect(dup.body).toEqual({ error: "An environment named 'QA' already exists in this app." });
      expect((await owner('POST', `/v1/environments/?app_id=${app.id}`, {})).body).toEqual({
        error: 'Missing required field: name',
      });

      const ren = await owner('PUT', `/v1/environments/${c.body.id}/`, { name: 'staging' });
      expect(ren.status).toBe(409);
      expect(ren.body).toEqual({ error: "An environment named 'staging' already exists in this app." });
      const ok = await owner('PUT', `/v1/environments/${c.body.id}/`, { name: 'uat' });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ name: 'uat', envType: 'custom', index: 3 });
      expect((await owner('GET', `/v1/environments/${envs.Development.id}/`)).body.name).toBe('Development');
      expect((await owner('DELETE', `/v1/environments/${c.body.id}/`)).status).toBe(204);
      expect((await owner('GET', `/v1/environments/${c.body.id}/`)).status).toBe(404);
    });
  });

  describe('service accounts and tokens', () => {
    test('create returns initialToken once; detail lists tokens; global roles refused', async () => {
      const roles = (await owner('GET', '/v1/roles/')).body.data;
      const service = roles.find((r: any) => r.name === 'Service');
      const admin = roles.find((r: any) => r.name === 'Admin');
      const r = await owner('POST', '/v1/service-accounts/', { name: 'deploy-bot', role_id: service.id });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ name: 'deploy-bot', role: { id: service.id, name: 'Service' } });
      expect(r.body.initialToken).toMatchObject({ name: 'Default', expiresAt: null });
      expect(r.body.initialToken.token).toMatch(
        /^pss_service:v2:[0-9a-f]{64}:[0-9a-f]{64}:[0-9a-f]{64}:[0-9a-f]{64}$/,
      );
      const pss = parsePssToken(r.body.initialToken.token);
      expect(r.body.initialToken.bearerToken).toBe(`ServiceAccount ${pss.bearer}`);

      const detail = await owner('GET', `/v1/service-accounts/${r.body.id}/`);
      expect(detail.status).toBe(200);
      expect(detail.body.tokens).toHaveLength(1);
      expect(detail.body.tokens[0]).not.toHaveProperty('token');
      expect(detail.body.apps).toEqual([]);
      expect(JSON.stringify(detail.body)).not.toContain(pss.bearer);

      const g = await owner('POST', '/v1/service-accounts/', { name: 'x', role_id: admin.id });
      expect(g.status).toBe(400);
      expect(g.body).toEqual({ error: "Service accounts cannot be assigned the 'Admin' role." });
      expect((await owner('POST', '/v1/service-accounts/', { name: 'x' })).body).toEqual({
        error: 'Missing required field: role_id',
      });
      expect(
        (
          await owner('POST', '/v1/service-accounts/', {
            name: 'x',
            role_id: '00000000-0000-4000-8000-000000000000',
          })
        ).status,
      ).toBe(404);
    });

    test('token mint rules, expiry and revocation are enforced on the next request', async () => {
      const sa = await createSa(owner, 'tok-bot');
      const future = new Date(Date.now() + 3600_000).toISOString();
      const a = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, {
        name: 'at',
        expires_at: future,
      });
      expect(a.status).toBe(201);
      expect(a.body.expiresAt).toBe(future);
      const b = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'in', expires_in: 1 });
      expect(b.status).toBe(201);
      const errs: Array<[unknown, string]> = [
        [
          { name: 'x', expiry: 1 },
          "Unknown field 'expiry'. Use 'expires_at' (ISO-8601 with timezone) or 'expires_in' (positive integer seconds).",
        ],
        [{ name: 'x', expires_at: 'nope' }, "'expires_at' is not a valid ISO-8601 datetime."],
        [
          { name: 'x', expires_at: '2099-01-01T00:00:00' },
          "'expires_at' must include a timezone offset (e.g. 'Z' or '+00:00').",
        ],
        [{ name: 'x', expires_at: '2001-01-01T00:00:00Z' }, "'expires_at' must be in the future."],
        [{ name: 'x', expires_in: 0 }, "'expires_in' must be a positive integer (seconds)."],
        [{ name: 'x', expires_in: true }, "'expires_in' must be a positive integer (seconds)."],
        [{}, 'Missing required field: name'],
      ];
      for (const [body, msg] of errs) {
        const e = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, body);
        expect({ status: e.status, body: e.body }).toEqual({ status: 400, body: { error: msg } });
      }
      const detail = await owner('GET', `/v1/service-accounts/${sa.id}/`);
      expect(detail.body.tokens.map((t: any) => t.name)).toEqual(['in', 'at', 'Default']);

      const viaA = caller(srv, a.body.token);
      expect((await viaA('GET', '/v1/service-accounts/')).status).toBe(200);
      // Expired token: 401 on /v1 and /secrets/, 403 on /secrets/tokens/.
      await new Promise((r) => setTimeout(r, 1100));
      const viaB = caller(srv, b.body.token);
      expect((await viaB('GET', '/v1/service-accounts/')).body).toEqual({
        error: 'Token expired or deleted',
      });
      expect((await viaB('GET', '/v1/service-accounts/')).status).toBe(401);
      expect((await viaB('GET', '/service/secrets/tokens/')).status).toBe(403);
      // Revocation.
      expect((await owner('DELETE', `/v1/service-accounts/${sa.id}/tokens/${a.body.id}/`)).status).toBe(204);
      expect((await viaA('GET', '/v1/service-accounts/')).status).toBe(401);
      expect((await owner('DELETE', `/v1/service-accounts/${sa.id}/tokens/${a.body.id}/`)).body).toEqual({
        error: 'Token not found.',
      });
      // Deleting the SA kills its remaining tokens.
      const viaInitial = caller(srv, sa.token);
      expect((await viaInitial('GET', '/v1/service-accounts/')).status).toBe(200);
      expect((await owner('DELETE', `/v1/service-accounts/${sa.id}/`)).status).toBe(204);
      expect((await viaInitial('GET', '/v1/service-accounts/')).status).toBe(401);
      expect((await owner('GET', `/v1/service-accounts/${sa.id}/`)).status).toBe(404);
    });
  });

  describe('access grants and the E2E chain', () => {
    test("a grantee's /secrets/tokens/ holds keys that decrypt with the minted token; revoking removes them", async () => {
      const { app, envs } = await createApp(owner);
      const sa = await createSa(owner, 'e2e-bot');
      const before = await caller(srv, sa.token)('GET', '/service/secrets/tokens/');
      expect(before.status).toBe(200);
      expect(before.body.apps).toEqual([]);

      const grant = await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
        apps: [{ id: app.id, environments: [envs.Development.id, envs.Staging.id] }],
      });
      expect(grant.status).toBe(200);
      expect(grant.body.apps).toEqual([
        {
          id: app.id,
          name: app.name,
          environments: [
            { id: envs.Development.id, name: 'Development', envType: 'dev' },
            { id: envs.Staging.id, name: 'Staging', envType: 'staging' },
          ],
          paths: null,
        },
      ]);

      // The owner writes a secret through the SSE API...
      const w = await owner('POST', `/v1/secrets/?app_id=${app.id}&env=development`, {
        secrets: [{ key: 'db_url', value: 'postgres://x', comment: 'c' }],
      });
      expect(w.status).toBe(200);
      expect(w.body[0]).toMatchObject({ key: 'DB_URL', value: 'postgres://x', comment: 'c', version: 1 });

      // ...and the SA reads it end to end with nothing but its token and core crypto.
      const sac = caller(srv, sa.token);
      const t = await sac('GET', '/service/secrets/tokens/', undefined, { 'X-Use-Camel-Case': 'true' });
      expect(t.status).toBe(200);
      expect(Object.keys(t.body)).toEqual([
        'wrapped_key_share',
        'account_id',
        'offline_enabled',
        'organisation',
        'apps',
      ]);
      expect(t.body.account_id).toBe(sa.id);
      const pss = parsePssToken(sa.token);
      const priv = reconstructPrivateKey(t.body.wrapped_key_share, pss.keyShare, pss.wrapKey);
      const entry = t.body.apps.find((a: any) => a.id === app.id);
      expect(entry.encryption).toBe('SSE');
      expect(entry.environment_keys.map((k: any) => k.environment.name)).toEqual(['Development', 'Staging']);
      const devKey = entry.environment_keys[0];
      const env = unwrapEnvironmentKey(
        { wrappedSeed: devKey.wrapped_seed, wrappedSalt: devKey.wrapped_salt },
        { publicKey: pss.publicKey, privateKey: priv },
      );
      expect(env.publicKey).toBe(devKey.identity_key);

      const list = await sac('GET', '/service/secrets/', undefined, { Environment: envs.Development.id });
      expect(list.status).toBe(200);
      expect(list.body).toHaveLength(1);
      const s = list.body[0];
      expect(Object.keys(s)).toEqual([
        'id',
        'key',
        'value',
        'comment',
        'tags',
        'override',
        'type',
        'lifecycle',
        'path',
        'key_digest',
        'version',
        'created_at',
        'updated_at',
        'environment',
        'folder',
      ]);
      expect(decryptAsymmetric(s.key, env.privateKey, env.publicKey)).toBe('DB_URL');
      expect(decryptAsymmetric(s.value, env.privateKey, env.publicKey)).toBe('postgres://x');
      expect(s.key_digest).toBe(keyDigest('DB_URL', env.salt));

      // The SA writes E2E; the owner's SSE view sees the plaintext.
      const created = await sac(
        'POST',
        '/service/secrets/',
        {
          secrets: [
            {
              key: encryptAsymmetric('API_KEY', env.publicKey),
              keyDigest: keyDigest('API_KEY', env.salt),
              value: encryptAsymmetric('s3cr3t', env.publicKey),
              comment: '',
              path: '/',
              tags: ['backend'],
            },
          ],
        },
        { Environment: envs.Development.id },
      );
      expect(created.status).toBe(200);
      expect(created.text).toBe('');
      const sse = await owner('GET', `/v1/secrets/?app_id=${app.id}&env=Development&key=api_key`);
      expect(sse.body).toHaveLength(1);
      expect(sse.body[0]).toMatchObject({ key: 'API_KEY', value: 's3cr3t', tags: ['backend'] });

      // Production was never granted.
      const prod = await sac('GET', '/service/secrets/', undefined, { Environment: envs.Production.id });
      expect(prod.status).toBe(401);
      expect(prod.body).toEqual({ error: 'Service account cannot access this environment' });

      // The same endpoints at the root (without /service), never under /public.
      expect(
        (await sac('GET', '/secrets/', undefined, { Environment: envs.Development.id })).body,
      ).toHaveLength(2);
      expect((await sac('GET', '/secrets/tokens/')).body.account_id).toBe(sa.id);
      expect((await sac('GET', '/public/secrets/tokens/')).status).toBe(404);

      // Rename and role change keep access.
      const roles = (await owner('GET', '/v1/roles/')).body.data;
      const dev = roles.find((r: any) => r.name === 'Developer');
      const upd = await owner('PUT', `/v1/service-accounts/${sa.id}/`, {
        name: 'e2e-bot-2',
        role_id: dev.id,
      });
      expect(upd.status).toBe(200);
      expect(upd.body).toMatchObject({ name: 'e2e-bot-2', role: { id: dev.id, name: 'Developer' } });
      expect(upd.body.apps[0].environments).toHaveLength(2);
      expect((await owner('PUT', `/v1/service-accounts/${sa.id}/`, {})).body).toEqual({
        error: "At least one of 'name' or 'role_id' must be provided.",
      });
      const badGrant = await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
        apps: [{ id: app.id, environments: [] }],
      });
      expect(badGrant.status).toBe(400);
      expect(badGrant.body.error).toMatch(
        /must not be empty\. To revoke all access, remove the app from the list\.$/,
      );
      expect((await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {})).body).toEqual({
        error: 'Missing required field: apps',
      });
      expect((await owner('GET', `/v1/service-accounts/${sa.id}/access/`)).status).toBe(405);

      // Revoke everything: the keys disappear and reads are refused.
      const rev = await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, { apps: [] });
      expect(rev.status).toBe(200);
      expect(rev.body.apps).toEqual([]);
      expect((await sac('GET', '/service/secrets/tokens/')).body.apps).toEqual([]);
      expect(
        (await sac('GET', '/service/secrets/', undefined, { Environment: envs.Development.id })).status,
      ).toBe(401);
    });
  });
});
