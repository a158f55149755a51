/**
 * The PhaseClient's management surface against phase-bridge's real server on loopback: every call's response must
 * pass the client's zod schemas, and errors come back typed with the server's text.
 */
import { ConflictError, NotFoundError, UnauthorizedError } from '../../core/api-errors';
import { PhaseClient } from '../../core/client';
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

test('apps and environments', async () => {
  const app = await owner.apps.create({ name: 'client-apps', description: 'd' });
  expect(app.environments.map((e) => [e.name, e.envType, e.index])).toEqual([
    ['Development', 'dev', 0],
    ['Staging', 'staging', 1],
    ['Production', 'prod', 2],
  ]);
  expect((await owner.apps.list()).map((a) => a.id)).toContain(app.id);
  expect((await owner.apps.update(app.id, { name: 'client-apps-2' })).name).toBe('client-apps-2');
  expect((await owner.apps.get(app.id)).description).toBe('d');

  const env = await owner.environments.create(app.id, 'preview');
  expect(env.envType).toBe('custom');
  expect((await owner.environments.update(env.id, 'preview2')).name).toBe('preview2');
  expect((await owner.environments.get(env.id)).name).toBe('preview2');
  const dup = await owner.environments.update(env.id, 'staging').catch((e: unknown) => e);
  expect(dup).toBeInstanceOf(ConflictError);
  expect((dup as ConflictError).phaseError).toBe(
    "An environment named 'staging' already exists in this app.",
  );
  await owner.environments.delete(env.id);
  expect((await owner.environments.list(app.id)).map((e) => e.name)).toEqual([
    'Development',
    'Staging',
    'Production',
  ]);

  await owner.apps.delete(app.id);
  const gone = await owner.apps.get(app.id).catch((e: unknown) => e);
  expect(gone).toBeInstanceOf(NotFoundError);
});

test('roles, service accounts, tokens, access and members', async () => {
  const roles = await owner.roles.list();
  expect(roles.map((r) => r.name)).toEqual(
    expect.arrayContaining(['Owner', 'Admin', 'Manager', 'Developer', 'Service']),
  );
  const service = roles.find((r) => r.name === 'Service')!;
  expect((await owner.roles.get(service.id)).permissions).toBeDefined();

  const app = await owner.apps.create({ name: 'client-sa' });
  const sa = await owner.serviceAccounts.create({ name: 'bot', role_id: service.id, token_name: 'first' });
  expect(sa.initialToken).toMatchObject({ name: 'first', expiresAt: null });
  expect((await owner.serviceAccounts.list()).map((s) => s.id)).toContain(sa.id);
  expect((await owner.serviceAccounts.update(sa.id, { name: 'bot-2' })).name).toBe('bot-2');

  const granted = await owner.serviceAccounts.setAccess(sa.id, [
    { id: app.id, environments: [app.environments[0].id] },
  ]);
  expect(granted.apps).toEqual([
    expect.objectContaining({
      id: app.id,
      name: app.name,
      environments: [expect.objectContaining({ id: app.environments[0].id, name: 'Development' })],
    }),
  ]);
  const expiresAt = new Date(Date.now() + 3600_000).toISOString();
  const t = await owner.serviceAccounts.createToken(sa.id, { name: 'second', expires_at: expiresAt });
  expect(t.token).toMatch(/^pss_service:v2:/);
  const detail = await owner.serviceAccounts.get(sa.id);
  expect(detail.tokens.map((x) => x.name).sort()).toEqual(['first', 'second']);

  // The new token works through /v1 as a REST token, then stops working once deleted.
  const bot = new PhaseClient({ host: srv.url, token: t.bearerToken, retries: 0 });
  expect(await bot.secrets.list({ appId: app.id, env: 'development' })).toEqual([]);
  await owner.serviceAccounts.deleteToken(sa.id, t.id);
  const dead = await bot.secrets.list({ appId: app.id, env: 'development' }).catch((e: unknown) => e);
  expect(dead).toBeInstanceOf(UnauthorizedError);
  expect((dead as UnauthorizedError).phaseError).toBe('Token expired or deleted');

  const member = await srv.addMember('Developer');
  expect((await owner.members.list()).map((m) => m.id)).toContain(member.id);
  expect((await owner.members.get(member.id)).role?.name).toBe('Developer');
  const access = await owner.members.setAccess(member.id, [
    { id: app.id, environments: [app.environments[1].id] },
  ]);
  expect(access.apps.map((a) => a.environments.map((e) => e.name))).toEqual([['Staging']]);
  expect((await owner.members.getAccess(member.id)).apps).toEqual(access.apps);

  await owner.serviceAccounts.delete(sa.id);
  await owner.apps.delete(app.id);
});

test('SSE secrets, network policies and audit logs (extensions)', async () => {
  const app = await owner.apps.create({ name: 'client-ext' });
  const scope = { appId: app.id, env: 'Development' };
  const [s] = await owner.secrets.create(scope, [{ key: 'token', value: 'v1', tags: ['t'], path: '/a' }]);
  expect([s.key, s.path, s.tags, s.version]).toEqual(['TOKEN', '/a', ['t'], 1]);
  const [u] = await owner.secrets.update(scope, [{ id: s.id, value: 'v2' }]);
  expect([u.value, u.tags, u.version]).toEqual(['v2', ['t'], 2]);
  const dup = await owner.secrets
    .create(scope, [{ key: 'TOKEN', value: 'x', path: '/a' }])
    .catch((e: unknown) => e);
  expect(dup).toBeInstanceOf(ConflictError);
  expect((dup as ConflictError).phaseError).toBe('Duplicate secret found');
  expect(await owner.secrets.delete(scope, [s.id])).toBe('Deleted 1 secret');

  const roles = await owner.roles.list();
  const sa = await owner.serviceAccounts.create({
    name: 'ext-bot',
    role_id: roles.find((r) => r.name === 'Service')!.id,
  });
  const policy = await owner.networkPolicies.create({ name: 'office', allowedIps: ['10.0.0.0/8', '::1'] });
  expect(policy).toMatchObject({
    name: 'office',
    allowedIps: ['10.0.0.0/8', '::1'],
    isGlobal: false,
    attachments: [],
  });
  const attached = await owner.networkPolicies.attach(policy.id, {
    account_type: 'service_account',
    account_id: sa.id,
  });
  expect(attached.attachments).toEqual([{ accountType: 'service_account', accountId: sa.id }]);
  expect((await owner.networkPolicies.update(policy.id, { name: 'office-2' })).name).toBe('office-2');
  await owner.networkPolicies.detach(policy.id, { account_type: 'service_account', account_id: sa.id });
  expect((await owner.networkPolicies.get(policy.id)).attachments).toEqual([]);
  expect((await owner.networkPolicies.list()).map((p) => p.id)).toContain(policy.id);
  await owner.networkPolicies.delete(policy.id);

  // The audit log records the secret writes by key digest, never the value.
  const dev = app.environments.find((e) => e.name === 'Development')!;
  const page = await owner.auditLogs({ appId: app.id, resourceType: 'secret', limit: 50 });
  expect(page.data.length).toBeGreaterThan(0);
  expect(JSON.stringify(page)).not.toContain('"v2"');
  const created = await owner.auditLogs({ environmentId: dev.id, eventType: 'C' });
  expect(created.data.length).toBeGreaterThan(0);
  expect(created.data.every((e) => e.eventType === 'C')).toBe(true);
  expect(created.data.map((e) => e.keyDigest)).toContain(s.keyDigest);

  await owner.serviceAccounts.delete(sa.id);
  await owner.apps.delete(app.id);
});
