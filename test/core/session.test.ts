/**
 * PhaseSession and PhaseClient against phase-bridge's real server on loopback: the owner's PAT sets up an app, a
 * service account, a token and access through the /v1 client; the service account's pss token then reads and
 * writes secrets end to end, and the server's SSE `/v1/secrets/` API sees exactly the same values.
 */
import { ForbiddenError, NotFoundError, UnauthorizedError } from '../../core/api-errors';
import { PhaseClient } from '../../core/client';
import {
  AppNotFoundError,
  EnvironmentNotFoundError,
  MissingKeyMaterialError,
  PhaseSession,
} from '../../core/session';
import { ReferenceResolutionError } from '../../core/references';
import { startTestServer } from '../support/server';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

let srv: TestServer;
let owner: PhaseClient;

beforeAll(async () => {
  srv = await startTestServer();
  owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
});

afterAll(async () => {
  await srv?.close();
});

/** Sorted `path:key=value` lines, the common view of both APIs. */
function view(list: Array<{ path: string; key: string; value: string }>): string[] {
  return list.map((s) => `${s.path}:${s.key}=${s.value}`).sort();
}

test('a service-account session reads, creates, updates and deletes E2E and matches /v1/secrets', async () => {
  // -- setup through the /v1 client with the owner's PAT --
  const app = await owner.createApp({ name: `session-e2e-${Date.now()}` });
  expect(app.sseEnabled).toBe(true);
  expect(app.environments.map((e) => e.name)).toEqual(['Development', 'Staging', 'Production']);
  const envId = (name: string): string => app.environments.find((e) => e.name === name)!.id;

  const roles = await owner.listRoles();
  const serviceRole = roles.find((r) => r.name === 'Service');
  expect(serviceRole).toBeDefined();
  const sa = await owner.createServiceAccount({ name: 'session-bot', role_id: serviceRole!.id });
  expect(sa.initialToken.token).toMatch(/^pss_service:v2:/);
  expect(sa.initialToken.bearerToken).toBe(`ServiceAccount ${sa.initialToken.token.split(':')[2]}`);

  const detail = await owner.serviceAccounts.setAccess(sa.id, [
    { id: app.id, environments: [envId('Development'), envId('Staging')] },
  ]);
  expect(detail.apps.map((a) => [a.id, a.environments.map((e) => e.name).sort()])).toEqual([
    [app.id, ['Development', 'Staging']],
  ]);
  const minted = await owner.serviceAccounts.createToken(sa.id, { name: 'ci', expires_in: 3600 });
  // expires_in: 3600 → an expiry about an hour from now.
  const expiresIn = Date.parse(minted.expiresAt as string) - Date.now();
  expect(expiresIn).toBeGreaterThan(3500_000);
  expect(expiresIn).toBeLessThanOrEqual(3600_000);

  // -- the E2E session with the freshly minted token --
  const session = await PhaseSession.create({ host: srv.url, token: minted.token, retries: 0 });
  expect(session.accountId).toBe(sa.id);
  const mine = session.apps().find((a) => a.id === app.id)!;
  expect(mine.environments.map((e) => e.name).sort()).toEqual(['Development', 'Staging']);
  const scope = { appName: app.name.toUpperCase(), env: 'development' };
  const v1 = { appId: app.id, env: 'Development' };
  const versionsBefore = session.environmentVersions();

  await session.create({
    appId: app.id,
    env: 'staging',
    secrets: [{ key: 'shared', value: 'from-staging' }],
  });
  const created = await session.create({
    ...scope,
    secrets: [
      { key: 'api_key', value: 'k-ünï ✓', comment: 'primary key', tags: ['backend'] },
      { key: 'DATABASE_URL', value: 'postgres://db:5432/app', path: '/backend' },
      { key: 'COMBINED', value: '${API_KEY}@${staging.SHARED}' },
    ],
  });
  expect(created.map((s) => s.key).sort()).toEqual(['API_KEY', 'COMBINED', 'DATABASE_URL']);

  // Both APIs see the same plaintext; references resolve the same way client- and server-side.
  const e2e = await session.get(scope);
  const sse = await owner.listSecrets(v1);
  expect(view(e2e)).toEqual([
    '/:API_KEY=k-ünï ✓',
    '/:COMBINED=k-ünï ✓@from-staging',
    '/backend:DATABASE_URL=postgres://db:5432/app',
  ]);
  expect(view(sse)).toEqual(view(e2e));
  const apiKey = e2e.find((s) => s.key === 'API_KEY')!;
  const sseApiKey = sse.find((s) => s.key === 'API_KEY')!;
  expect([sseApiKey.id, sseApiKey.comment, sseApiKey.tags, sseApiKey.keyDigest]).toEqual([
    apiKey.id,
    'primary key',
    ['backend'],
    apiKey.keyDigest,
  ]);
  expect(
    (await session.get({ ...scope, resolveReferences: false })).find((s) => s.key === 'COMBINED')!.value,
  ).toBe('${API_KEY}@${staging.SHARED}');

  // The REST API token (bearer only) of the same service account sees the same through /v1.
  const rest = new PhaseClient({ host: srv.url, token: minted.bearerToken, retries: 0 });
  expect(view(await rest.listSecrets(v1))).toEqual(view(e2e));
  expect(() => new PhaseSession({ host: srv.url, token: minted.bearerToken })).toThrow(
    MissingKeyMaterialError,
  );

  // Filters: path, key, tags.
  expect(view(await session.get({ ...scope, path: '/backend' }))).toEqual([
    '/backend:DATABASE_URL=postgres://db:5432/app',
  ]);
  expect((await session.get({ ...scope, key: 'api_key' })).map((s) => s.id)).toEqual([apiKey.id]);
  expect((await session.get({ ...scope, tags: ['backend'] })).map((s) => s.key)).toEqual(['API_KEY']);

  // A write bumps the environment's updated_at in the bootstrap.
  const changed = await session.refresh();
  expect(changed.map((e) => e.name).sort()).toEqual(['Development', 'Staging']);
  expect(session.environmentVersions().get(envId('Development'))).not.toBe(
    versionsBefore.get(envId('Development')),
  );

  // Update keeps comment and tags; /v1 sees the new value and version.
  const updated = await session.update({ ...scope, secrets: [{ id: apiKey.id, value: 'rotated' }] });
  expect(updated.map((s) => [s.value, s.comment, s.tags, s.version])).toEqual([
    ['rotated', 'primary key', ['backend'], 2],
  ]);
  const sseAfter = (await owner.listSecrets({ ...v1, key: 'API_KEY' }))[0];
  expect([sseAfter.value, sseAfter.comment, sseAfter.tags, sseAfter.version]).toEqual([
    'rotated',
    'primary key',
    ['backend'],
    2,
  ]);
  expect((await session.get({ ...scope, key: 'COMBINED' }))[0].value).toBe('rotated@from-staging');

  // A secret written through /v1 (server-side encryption) decrypts in the session.
  const [viaV1] = await owner.createSecrets(v1, [
    { key: 'from_v1', value: 'plain', comment: 'c', path: '/x' },
  ]);
  expect(viaV1.key).toBe('FROM_V1');
  const readBack = await session.get({ ...scope, key: 'FROM_V1' });
  expect(readBack.map((s) => [s.id, s.value, s.comment, s.path])).toEqual([[viaV1.id, 'plain', 'c', '/x']]);

  // Delete by key and by id; /v1 agrees.
  const del = await session.delete({ ...scope, keys: ['database_url', 'nope'], path: '/backend' });
  expect(del.keysNotFound).toEqual(['NOPE']);
  await session.delete({ ...scope, ids: [viaV1.id] });
  expect(view(await owner.listSecrets(v1))).toEqual(['/:API_KEY=rotated', '/:COMBINED=rotated@from-staging']);
  expect(view(await session.get(scope))).toEqual(view(await owner.listSecrets(v1)));

  // Scope errors are typed; strict references fail naming the reference.
  await expect(session.get({ appId: app.id, env: 'Production' })).rejects.toBeInstanceOf(
    EnvironmentNotFoundError,
  );
  await expect(session.get({ appName: 'no-such-app', env: 'Development' })).rejects.toBeInstanceOf(
    AppNotFoundError,
  );
  await session.create({ ...scope, secrets: [{ key: 'BROKEN', value: '${Production.SECRET}' }] });
  await expect(session.get({ ...scope, key: 'BROKEN', resolveReferences: 'strict' })).rejects.toBeInstanceOf(
    ReferenceResolutionError,
  );
  expect((await session.get({ ...scope, key: 'BROKEN' }))[0].value).toBe('${Production.SECRET}');

  // Revoking the token cuts the session off: 403 on the bootstrap, 401 on /secrets/.
  await owner.serviceAccounts.deleteToken(sa.id, minted.id);
  await expect(session.refresh()).rejects.toBeInstanceOf(ForbiddenError);
  await expect(session.get(scope)).rejects.toBeInstanceOf(UnauthorizedError);

  // Management reads and cleanup through the client.
  expect((await owner.getApp(app.id)).name).toBe(app.name);
  expect((await owner.listEnvironments(app.id)).map((e) => e.name)).toEqual([
    'Development',
    'Staging',
    'Production',
  ]);
  await owner.deleteServiceAccount(sa.id);
  await owner.deleteApp(app.id);
  await expect(owner.getApp(app.id)).rejects.toBeInstanceOf(NotFoundError);
});
