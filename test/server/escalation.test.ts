/**
 * The subset rule (issue 11), tried as an attacker with a narrow grant would: each test is an escalation that worked
 * before the rule and must now be refused, followed by a check that nothing changed (the attacker still cannot read
 * what it was denied). Runs on every store.
 */
import { encryptAsymmetric, initCrypto, keyDigest } from '../../core/crypto';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, envKeysFor, type Call } from './helpers';

describe.each(STORES)('escalation through grants is refused (%s)', (store) => {
  let srv: TestServer;
  let owner: Call;
  let roles: Record<string, string>;
  let app: { id: string; name: string };
  let envs: Record<string, { id: string; name: string }>;

  /** A service account of `role` (a role id), optionally granted Development of the app with `paths`. */
  async function sa(roleId: string, paths?: string[] | null) {
    const r = await owner('POST', '/v1/service-accounts/', {
      name: `sa-${Math.random()}`.slice(0, 20),
      role_id: roleId,
    });
    expect(r.status).toBe(201);
    if (paths !== undefined) {
      const g = await owner('PUT', `/v1/service-accounts/${r.body.id}/access/`, {
        apps: [{ id: app.id, environments: [envs.Development.id], ...(paths ? { paths } : {}) }],
      });
      expect(g.status).toBe(200);
    }
    return {
      id: r.body.id as string,
      token: r.body.initialToken.token as string,
      call: caller(srv, r.body.initialToken.token),
    };
  }

  async function customRole(
    permissions: Record<string, string[]>,
    appPermissions: Record<string, string[]> = {},
  ) {
    const r = await owner('POST', '/v1/roles/', {
      name: `role-${Math.random().toString(36).slice(2, 9)}`,
      permissions: { permissions, app_permissions: appPermissions },
    });
    expect(r.status).toBe(201);
    return r.body.id as string;
  }

  /** The values a caller reads from Development through /v1/secrets. */
  async function valuesSeenBy(call: Call): Promise<string[]> {
    const r = await call('GET', `/v1/secrets/?app_id=${app.id}&env=Development`);
    if (r.status !== 200) return [];
    return (r.body as Array<{ value: string }>).map((s) => s.value).sort();
  }

  beforeAll(async () => {
    await initCrypto();
    srv = await startTestServer({ store });
    owner = caller(srv, srv.ownerToken);
    const list = await owner('GET', '/v1/roles/');
    roles = Object.fromEntries(list.body.data.map((r: { id: string; name: string }) => [r.name, r.id]));
    ({ app, envs } = await createApp(owner));
    const w = await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
      secrets: [
        { key: 'API_KEY', value: 'api-value', path: '/api' },
        { key: 'API_SUB', value: 'api-sub-value', path: '/api/sub' },
        { key: 'DB_PASSWORD', value: 'db-value', path: '/db' },
      ],
    });
    expect(w.status).toBe(200);
  });

  afterAll(async () => {
    await srv?.close();
  });

  describe('access and paths', () => {
    test('a path-limited service account cannot widen its own access, and still reads /api only', async () => {
      const updater = await customRole({ ServiceAccounts: ['read', 'update'] }, { Secrets: ['read'] });
      const me = await sa(updater, ['/api']);
      const r = await me.call('PUT', `/v1/service-accounts/${me.id}/access/`, {
        apps: [{ id: app.id, environments: [envs.Development.id] }],
      });
      expect([r.status, r.body]).toEqual([403, { error: 'You cannot change your own access.' }]);
      expect(await valuesSeenBy(me.call)).toEqual(['api-sub-value', 'api-value']);
    });

    test('a path-limited member cannot widen their own access', async () => {
      const m = await srv.addMember('Manager');
      await owner('PUT', `/v1/members/${m.id}/access/`, {
        apps: [{ id: app.id, environments: [envs.Development.id], paths: ['/api'] }],
      });
      const mc = caller(srv, m.token);
      const r = await mc('PUT', `/v1/members/${m.id}/access/`, {
        apps: [{ id: app.id, environments: [envs.Development.id] }],
      });
      expect([r.status, r.body]).toEqual([403, { error: 'You cannot change your own access.' }]);
      expect(await valuesSeenBy(mc)).toEqual(['api-sub-value', 'api-value']);
    });

    test('a path-limited Manager cannot give a new account paths outside its own, nor every path', async () => {
      const m = await srv.addMember('Manager');
      await owner('PUT', `/v1/members/${m.id}/access/`, {
        apps: [{ id: app.id, environments: [envs.Development.id], paths: ['/api'] }],
      });
      const mc = caller(srv, m.token);
      const made = await mc('POST', '/v1/service-accounts/', {
        name: 'made-by-limited',
        role_id: roles.Developer,
      });
      expect(made.status).toBe(201);
      const child = caller(srv, made.body.initialToken.token);
      const grant = (paths?: string[]) =>
        mc('PUT', `/v1/service-accounts/${made.body.id}/access/`, {
          apps: [{ id: app.id, environments: [envs.Development.id], ...(paths ? { paths } : {}) }],
        });

      const unlimited = await grant();
      expect(unlimited.status).toBe(403);
      expect(unlimited.body.error).toContain('limited to the paths /api');
      const outside = await grant(['/db']);
      expect(outside.status).toBe(403);
      expect(outside.body.error).toContain('/db');
      const lookalike = await grant(['/apix']);
      expect(lookalike.status).toBe(403);
      expect(await valuesSeenBy(child)).toEqual([]);

      expect((await grant(['/api/sub'])).status).toBe(200);
      expect(await valuesSeenBy(child)).toEqual(['api-sub-value']);
    });

    test('traversal in granted paths is refused with a 400 that says why', async () => {
      const target = await sa(roles.Service);
      for (const bad of ['/api/../db', '/api/./x', '/api/%2e%2e/db', '/api/%252e%252e/db']) {
        const r = await owner('PUT', `/v1/service-accounts/${target.id}/access/`, {
          apps: [{ id: app.id, environments: [envs.Development.id], paths: [bad] }],
        });
        expect([bad, r.status]).toEqual([bad, 400]);
        expect(r.body.error).toContain("'.' and '..' segments");
      }
    });
  });

  describe('roles', () => {
    test('a service account cannot change its own role, so it cannot then create an open network policy', async () => {
      const updater = await customRole({
        ServiceAccounts: ['read', 'update'],
        NetworkAccessPolicies: ['read'],
      });
      const me = await sa(updater);
      const r = await me.call('PUT', `/v1/service-accounts/${me.id}/`, { role_id: roles.Manager });
      expect([r.status, r.body]).toEqual([403, { error: 'You cannot update your own role.' }]);
      const detail = await owner('GET', `/v1/service-accounts/${me.id}/`);
      expect(detail.body.role.id).toBe(updater);
      const policy = await me.call('POST', '/v1/network-policies/', {
        name: 'open',
        allowed_ips: ['0.0.0.0/0'],
      });
      expect(policy.status).toBe(403);
      // Renaming itself is not a grant.
      expect((await me.call('PUT', `/v1/service-accounts/${me.id}/`, { name: 'renamed-self' })).status).toBe(
        200,
      );
    });

    test('a service account cannot give another account a role beyond its own', async () => {
      const updater = await customRole({ ServiceAccounts: ['read', 'update'] });
      const me = await sa(updater);
      const other = await sa(roles.Service);
      const r = await me.call('PUT', `/v1/service-accounts/${other.id}/`, { role_id: roles.Manager });
      expect(r.status).toBe(403);
      expect(r.body.error).toMatch(
        /^You cannot assign the 'Manager' role: it allows .+ You can only grant what you hold\.$/,
      );
    });

    test('a principal with Roles:update cannot edit the custom role it holds', async () => {
      const editor = await customRole({ Roles: ['read', 'update'] });
      const me = await sa(editor);
      const r = await me.call('PUT', `/v1/roles/${editor}/`, {
        permissions: {
          permissions: { Roles: ['read', 'update'], Members: ['read', 'update'] },
          app_permissions: {},
        },
      });
      expect([r.status, r.body]).toEqual([403, { error: 'You cannot modify the role you hold.' }]);
      const stored = await owner('GET', `/v1/roles/${editor}/`);
      expect(stored.body.permissions.permissions).toEqual({ Roles: ['read', 'update'] });
    });

    test('custom roles are written only inside the writer’s own permissions', async () => {
      const editor = await customRole({ Roles: ['create', 'read', 'update'], Apps: ['read'] });
      const me = await sa(editor);
      const victim = await customRole({});
      const wide = await me.call('PUT', `/v1/roles/${victim}/`, {
        permissions: { permissions: { Apps: ['read', 'delete'] }, app_permissions: {} },
      });
      expect(wide.status).toBe(403);
      expect(wide.body.error).toContain('Apps:delete');
      const created = await me.call('POST', '/v1/roles/', {
        name: 'sneaky',
        permissions: { permissions: {}, app_permissions: { Secrets: ['read'] } },
      });
      expect(created.status).toBe(403);
      expect(created.body.error).toContain('app Secrets:read');
      const narrow = await me.call('PUT', `/v1/roles/${victim}/`, {
        permissions: { permissions: { Apps: ['read'] }, app_permissions: {} },
      });
      expect(narrow.status).toBe(200);
    });

    test('a Manager cannot create a service account, assign a member or invite with a role beyond its own', async () => {
      const m = await srv.addMember('Manager');
      const mc = caller(srv, m.token);
      const svc = await mc('POST', '/v1/service-accounts/', { name: 'svc', role_id: roles.Service });
      expect(svc.status).toBe(403);
      expect(svc.body.error).toContain('app Environments:delete');
      const pat = await customRole({ MemberPersonalAccessTokens: ['create'] });
      const dev = await srv.addMember('Developer');
      expect((await mc('PUT', `/v1/members/${dev.id}/`, { role_id: pat })).status).toBe(403);
      const inv = await mc('POST', '/v1/members/invites/', { email: 'x@example.com', role_id: pat });
      expect(inv.status).toBe(403);
      // Within its own permissions it still works.
      expect(
        (await mc('POST', '/v1/service-accounts/', { name: 'dev', role_id: roles.Developer })).status,
      ).toBe(201);
    });
  });

  describe('tokens', () => {
    test('a non-global member cannot mint a token for a service account that holds more than it does', async () => {
      const m = await srv.addMember('Manager');
      const target = await sa(roles.Service, null);
      const r = await caller(srv, m.token)('POST', `/v1/service-accounts/${target.id}/tokens/`, {
        name: 'x',
      });
      expect(r.status).toBe(404);
    });
  });

  describe('network policies', () => {
    /** A Manager-like SA (custom role, policies CRUD) confined by a policy to loopback. */
    async function confined() {
      const role = await customRole({
        NetworkAccessPolicies: ['create', 'read', 'update', 'delete'],
        ServiceAccounts: ['read'],
      });
      const me = await sa(role);
      const pol = await owner('POST', '/v1/network-policies/', {
        name: 'loopback',
        allowed_ips: ['127.0.0.0/8', '::1'],
      });
      expect(pol.status).toBe(201);
      const at = await owner('PUT', `/v1/network-policies/${pol.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: me.id,
      });
      expect(at.status).toBe(200);
      return { ...me, policyId: pol.body.id as string };
    }

    test('a confined account cannot open a global policy, attach a wide one, or detach its last one', async () => {
      const me = await confined();
      const global = await me.call('POST', '/v1/network-policies/', {
        name: 'everyone',
        allowed_ips: ['0.0.0.0/0'],
        is_global: true,
      });
      expect(global.status).toBe(403);
      expect(global.body.error).toContain('outside your own network access');

      const wide = await me.call('POST', '/v1/network-policies/', {
        name: 'wide',
        allowed_ips: ['0.0.0.0/0'],
      });
      expect(wide.status).toBe(201); // attached to nobody, it grants nothing
      const attachSelf = await me.call('PUT', `/v1/network-policies/${wide.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: me.id,
      });
      expect(attachSelf.status).toBe(403);
      // Another account confined to one address: attaching the wide policy would widen it.
      const other = await sa(roles.Service);
      const host = await owner('POST', '/v1/network-policies/', { name: 'one', allowed_ips: ['127.0.0.1'] });
      await owner('PUT', `/v1/network-policies/${host.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: other.id,
      });
      const attachOther = await me.call('PUT', `/v1/network-policies/${wide.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: other.id,
      });
      expect(attachOther.status).toBe(403);
      const widen = await me.call('PUT', `/v1/network-policies/${me.policyId}/`, {
        allowed_ips: ['0.0.0.0/0'],
      });
      expect(widen.status).toBe(403);

      const detach = await me.call('DELETE', `/v1/network-policies/${me.policyId}/attachments/${me.id}/`);
      expect(detach.status).toBe(403);
      expect(detach.body.error).toContain('without any network policy');
      expect((await me.call('DELETE', `/v1/network-policies/${me.policyId}/`)).status).toBe(403);

      const still = await owner('GET', `/v1/network-policies/${me.policyId}/`);
      expect(still.body.allowedIps).toEqual(['127.0.0.0/8', '::1']);
      expect(still.body.attachments).toEqual([{ accountType: 'service_account', accountId: me.id }]);

      // Inside its own reach it may still manage policies.
      const narrow = await me.call('POST', '/v1/network-policies/', {
        name: 'host',
        allowed_ips: ['127.0.0.1'],
      });
      expect(narrow.status).toBe(201);
      const ok = await me.call('PUT', `/v1/network-policies/${narrow.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: other.id,
      });
      expect(ok.status).toBe(200);
      const free = await sa(roles.Service);
      const confine = await me.call('PUT', `/v1/network-policies/${wide.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: free.id,
      });
      expect(confine.status).toBe(200);
    });

    test('an unrestricted owner may attach an open policy', async () => {
      const other = await sa(roles.Service);
      const pol = await owner('POST', '/v1/network-policies/', {
        name: 'open',
        allowed_ips: ['0.0.0.0/0', '::/0'],
      });
      const r = await owner('PUT', `/v1/network-policies/${pol.body.id}/attachments/`, {
        account_type: 'service_account',
        account_id: other.id,
      });
      expect(r.status).toBe(200);
    });
  });

  describe('canonical secret paths on every write route', () => {
    const bad = ['/api/../db', '/api/./x', '/api/%2e%2e/db', '/api/%2E%2e', '/api/%2fdb'];

    test('/v1/secrets: create and update refuse dot segments, plain or encoded', async () => {
      const base = `/v1/secrets/?app_id=${app.id}&env=Development`;
      const existing = await owner('GET', base);
      const id = (existing.body as Array<{ id: string; key: string }>).find((s) => s.key === 'API_KEY')!.id;
      for (const path of bad) {
        const c = await owner('POST', base, { secrets: [{ key: 'TRAVERSE', value: 'x', path }] });
        expect([path, c.status]).toEqual([path, 400]);
        expect(c.body.error).toContain('send the canonical path');
        const u = await owner('PUT', base, { secrets: [{ id, path }] });
        expect([path, u.status]).toEqual([path, 400]);
      }
      expect(await valuesSeenBy(owner)).toEqual(['api-sub-value', 'api-value', 'db-value']);
    });

    test('E2E /secrets/: create refuses dot segments', async () => {
      const me = await sa(roles.Service, null);
      const env = await envKeysFor(me.call, me.token, envs.Development.id);
      for (const path of bad) {
        const r = await me.call(
          'POST',
          '/service/secrets/',
          {
            secrets: [
              {
                key: encryptAsymmetric('TRAVERSE', env.publicKey),
                keyDigest: keyDigest('TRAVERSE', env.salt),
                value: encryptAsymmetric('x', env.publicKey),
                comment: '',
                path,
                tags: [],
              },
            ],
          },
          { Environment: envs.Development.id },
        );
        expect([path, r.status]).toEqual([path, 400]);
        expect(r.body.error).toContain("'.' and '..' segments");
      }
    });
  });
});
