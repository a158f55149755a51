/**
 * API behaviour, part 3: roles, members, RBAC status codes, network policies, audit logs, rate limit, body limit,
 * health and metrics. Runs on every store.
 */
import { initCrypto } from '../../core/crypto';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, type Call } from './helpers';

describe.each(STORES)('organisation API on %s', (store) => {
  let srv: TestServer;
  let owner: Call;
  let roles: Record<string, { id: string }>;

  beforeAll(async () => {
    await initCrypto();
    srv = await startTestServer({ store });
    owner = caller(srv, srv.ownerToken);
    roles = Object.fromEntries((await owner('GET', '/v1/roles/')).body.data.map((r: any) => [r.name, r]));
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('roles: five defaults with exact maps, custom role CRUD and validation', async () => {
    const list = (await owner('GET', '/v1/roles/')).body.data;
    expect(list.map((r: any) => r.name)).toEqual(['Owner', 'Admin', 'Manager', 'Developer', 'Service']);
    expect(list[0].description).toBe(
      'The organisation owner, limited to a single user, with full access to all resources and actions.',
    );
    expect(list.every((r: any) => r.isDefault)).toBe(true);
    const dev = (await owner('GET', `/v1/roles/${roles.Developer.id}/`)).body;
    expect(dev.permissions.globalAccess).toBe(false);
    expect(dev.permissions.permissions.Apps).toEqual(['read']);
    expect(dev.permissions.appPermissions.Environments).toEqual(['read', 'create', 'update']);
    expect(dev.permissions.permissions.ServiceAccounts).toEqual([]);
    expect(dev.permissions.permissions).not.toHaveProperty('MemberPersonalAccessTokens');
    const ownerRole = (await owner('GET', `/v1/roles/${roles.Owner.id}/`)).body;
    expect(ownerRole.permissions.globalAccess).toBe(true);
    expect(ownerRole.permissions.appPermissions.EncryptionMode).toEqual(['read', 'update']);

    const c = await owner('POST', '/v1/roles/', {
      name: 'Reader',
      description: 'reads',
      color: '#123456',
      permissions: { permissions: { Apps: ['read'] }, appPermissions: { Secrets: ['read'] } },
    });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ name: 'Reader', isDefault: false, color: '#123456' });
    expect(c.body.permissions).toEqual({
      permissions: { Apps: ['read'] },
      appPermissions: { Secrets: ['read'] },
    });
    expect(
      (
        await owner('POST', '/v1/roles/', {
          name: 'reader',
          permissions: { permissions: {}, app_permissions: {} },
        })
      ).status,
    ).toBe(409);
    const errs: Array<[unknown, number, string | RegExp]> = [
      [{ name: 'X' }, 400, 'Missing required field: permissions (must be a JSON object)'],
      [
        { name: 'X', permissions: { permissions: {}, app_permissions: {}, global_access: true } },
        400,
        'Unknown top-level keys: global_access',
      ],
      [{ name: 'X', permissions: { permissions: {} } }, 400, 'Missing required keys: app_permissions'],
      [
        { name: 'X', permissions: { permissions: { Nope: ['read'] }, app_permissions: {} } },
        400,
        /Unknown permission class 'Nope'/,
      ],
      [
        { name: 'X', permissions: { permissions: { Logs: ['delete'] }, app_permissions: {} } },
        400,
        /Valid actions: read/,
      ],
      [
        { name: 'X', color: '#12345678', permissions: { permissions: {}, app_permissions: {} } },
        400,
        'Role color cannot exceed 7 characters.',
      ],
    ];
    for (const [body, status, msg] of errs) {
      const r = await owner('POST', '/v1/roles/', body);
      expect(r.status).toBe(status);
      if (typeof msg === 'string') expect(r.body).toEqual({ error: msg });
      else expect(r.body.error).toMatch(msg);
    }
    expect((await owner('PUT', `/v1/roles/${roles.Admin.id}/`, { name: 'x' })).body).toEqual({
      error: 'Default roles cannot be modified.',
    });
    expect((await owner('DELETE', `/v1/roles/${roles.Admin.id}/`)).status).toBe(403);
    const u = await owner('PUT', `/v1/roles/${c.body.id}/`, { description: 'reads more' });
    expect(u.status).toBe(200);
    expect(u.body.description).toBe('reads more');
    expect((await owner('PUT', `/v1/roles/${c.body.id}/`, {})).body).toEqual({
      error: 'At least one field must be provided.',
    });
    const sa = await owner('POST', '/v1/service-accounts/', { name: 'r', role_id: c.body.id });
    expect(sa.status).toBe(201);
    expect((await owner('DELETE', `/v1/roles/${c.body.id}/`)).body).toEqual({
      error: 'Cannot delete a role that has service accounts assigned to it.',
    });
    await owner('DELETE', `/v1/service-accounts/${sa.body.id}/`);
    expect((await owner('DELETE', `/v1/roles/${c.body.id}/`)).status).toBe(204);
  });

  test('RBAC: developers and service accounts are refused what their role lacks (user 403, SA 401 on context)', async () => {
    const devMember = await srv.addMember('Developer');
    const devc = caller(srv, devMember.token);
    const { app, envs } = await createApp(owner);
    expect((await devc('GET', '/v1/apps/')).body.data).toEqual([]); // not a member of any app
    const denied = await devc('POST', '/v1/service-accounts/', { name: 'x', role_id: roles.Service.id });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({ error: "You don't have permission to create service accounts." });
    expect((await devc('POST', '/v1/apps/', { name: 'x' })).status).toBe(403);
    expect((await devc('GET', `/v1/apps/${app.id}/`)).body).toEqual({ error: 'User cannot access this app' });
    expect((await devc('GET', `/v1/apps/${app.id}/`)).status).toBe(403);
    const envDenied = await devc('GET', `/v1/secrets/?app_id=${app.id}&env=Development`);
    expect(envDenied.status).toBe(403);
    expect(envDenied.body).toEqual({ error: 'User cannot access this environment' });
    // Granting the developer Development only.
    const grant = await owner('PUT', `/v1/members/${devMember.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id] }],
    });
    expect(grant.status).toBe(200);
    expect(grant.body.apps[0].environments.map((e: any) => e.name)).toEqual(['Development']);
    expect((await devc('GET', `/v1/secrets/?app_id=${app.id}&env=Development`)).status).toBe(200);
    expect(
      (await devc('GET', `/v1/environments/?app_id=${app.id}`)).body.data.map((e: any) => e.name),
    ).toEqual(['Development']);
    expect((await devc('DELETE', `/v1/environments/${envs.Development.id}/`)).status).toBe(403); // Developer lacks Environments:delete
    expect((await devc('GET', `/v1/apps/${app.id}/`)).status).toBe(200);

    const sa = await createSa(owner, 'rbac-bot');
    const sac = caller(srv, sa.token);
    const saCtx = await sac('GET', `/v1/apps/${app.id}/`);
    expect(saCtx.status).toBe(401);
    expect(saCtx.body).toEqual({ error: 'Service account cannot access this app' });
    expect((await sac('POST', '/v1/roles/', { name: 'x', permissions: {} })).status).toBe(403);
    // An SA may mint tokens only for itself; a Manager cannot mint for org-level SAs (404, as in Phase).
    expect((await sac('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'self' })).status).toBe(403); // Service role lacks ServiceAccountTokens:create
    const mgr = caller(srv, (await srv.addMember('Manager')).token);
    const m = await mgr('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'x' });
    expect(m.status).toBe(404);
    expect(m.body).toEqual({ error: 'Service account not found.' });
    // Invalid credentials.
    const anon = caller(srv, null);
    expect((await anon('GET', '/v1/apps/', undefined, { Authorization: 'Bearer Bogus abc' })).body).toEqual({
      error: 'Invalid token',
    });
    expect(
      (await anon('GET', '/v1/apps/', undefined, { Authorization: `Bearer User ${'a'.repeat(64)}` })).status,
    ).toBe(401);
    expect((await anon('PATCH', '/v1/apps/')).status).toBe(401); // unsupported methods fail after authentication
  });

  test('members: list, detail, role rules, removal kills tokens', async () => {
    const a = await srv.addMember('Developer', 'dev-x@example.com');
    const list = (await owner('GET', '/v1/members/')).body.data;
    expect(list[0]).toMatchObject({ email: 'owner@example.com', role: { name: 'Owner' } });
    const m = list.find((x: any) => x.id === a.id);
    expect(m).toMatchObject({ email: 'dev-x@example.com', username: 'dev-x', role: { name: 'Developer' } });
    expect(Object.keys(m)).toEqual(['id', 'username', 'fullName', 'email', 'role', 'createdAt', 'updatedAt']);
    expect((await owner('POST', '/v1/members/', {})).status).toBe(405);
    const ownerRow = list[0];
    expect((await owner('PUT', `/v1/members/${ownerRow.id}/`, { role_id: roles.Admin.id })).body).toEqual({
      error: 'The Owner role cannot be changed via the API. Use the ownership transfer flow.',
    });
    expect((await owner('PUT', `/v1/members/${a.id}/`, { role_id: roles.Owner.id })).status).toBe(403);
    const up = await owner('PUT', `/v1/members/${a.id}/`, { role_id: roles.Manager.id });
    expect(up.status).toBe(200);
    expect(up.body.role.name).toBe('Manager');
    const mc = caller(srv, a.token);
    expect((await mc('PUT', `/v1/members/${a.id}/`, { role_id: roles.Developer.id })).body).toEqual({
      error: 'You cannot update your own role.',
    });
    expect((await mc('GET', '/v1/members/')).status).toBe(200);
    expect((await owner('DELETE', `/v1/members/${ownerRow.id}/`)).status).toBe(403);
    expect((await owner('DELETE', `/v1/members/${a.id}/`)).status).toBe(204);
    expect((await mc('GET', '/v1/members/')).status).toBe(401);
    expect((await owner('GET', `/v1/members/${a.id}/`)).body).toEqual({ error: 'Member not found.' });

    // A new Admin (global access) holds every existing environment.
    const { envs } = await createApp(owner);
    const admin = await srv.addMember('Admin');
    const adminc = caller(srv, admin.token);
    expect((await adminc('GET', `/v1/environments/${envs.Production.id}/`)).status).toBe(200);
    const tokens = await adminc('GET', '/service/secrets/tokens/');
    expect(tokens.body.user_id).toBe(admin.id);
    expect(tokens.body.apps.length).toBeGreaterThan(0);
    // Expired PATs are refused.
    const past = new Date(Date.now() - 1000).toISOString().replace('Z', '000Z');
    const expired = await srv.mintMemberToken(admin.id, { expiresAt: past });
    expect((await caller(srv, expired.token)('GET', '/v1/apps/')).status).toBe(401);
  });

  test("invites: create with Phase's checks, list, consumed by add-member, cancel", async () => {
    const r = await owner('POST', '/v1/members/invites/', {
      email: ' New.Person@Example.com ',
      role_id: roles.Developer.id,
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      inviteeEmail: 'new.person@example.com',
      role: { id: roles.Developer.id, name: 'Developer' },
      invitedBy: { type: 'member', email: 'owner@example.com' },
      valid: true,
    });
    expect(new Date(r.body.expiresAt).getTime() - Date.now()).toBeGreaterThan(13 * 86_400_000);
    const errs: Array<[unknown, number, string]> = [
      [{ email: 'nope', role_id: roles.Developer.id }, 400, "'nope' is not a valid email address."],
      [{ email: 'a@example.com' }, 400, 'Missing required field: role_id'],
      [
        { email: 'a@example.com', role_id: roles.Admin.id },
        400,
        "Members cannot be invited with the 'Admin' role.",
      ],
      [
        { email: 'a@example.com', role_id: roles.Manager.id },
        400,
        'Members cannot be invited with a role that allows creating service account tokens.',
      ],
      [
        { email: 'owner@example.com', role_id: roles.Developer.id },
        409,
        "'owner@example.com' is already a member of this organisation.",
      ],
      [
        { email: 'new.person@example.com', role_id: roles.Developer.id },
        409,
        "An active invite already exists for 'new.person@example.com'.",
      ],
    ];
    for (const [body, status, msg] of errs) {
      const e = await owner('POST', '/v1/members/invites/', body);
      expect({ status: e.status, body: e.body }).toEqual({ status, body: { error: msg } });
    }
    expect((await owner('GET', '/v1/members/invites/')).body.data.map((i: any) => i.id)).toContain(r.body.id);
    await srv.addMember('Developer', 'new.person@example.com');
    expect((await owner('GET', '/v1/members/invites/')).body.data.map((i: any) => i.id)).not.toContain(
      r.body.id,
    );
    const other = await owner('POST', '/v1/members/invites/', {
      email: 'later@example.com',
      role_id: roles.Service.id,
    });
    expect(other.status).toBe(201);
    expect((await owner('DELETE', `/v1/members/invites/${other.body.id}/`)).status).toBe(204);
    expect((await owner('DELETE', `/v1/members/invites/${other.body.id}/`)).body).toEqual({
      error: 'Invite not found.',
    });
  });

  test('network policies: CRUD, validation, attachments and enforcement from loopback', async () => {
    const sa = await createSa(owner, 'net-bot');
    const sac = caller(srv, sa.token);
    expect((await sac('GET', '/v1/service-accounts/')).status).toBe(200);

    const c = await owner('POST', '/v1/network-policies/', { name: 'office', allowed_ips: ['10.0.0.1/32'] });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({
      name: 'office',
      allowedIps: ['10.0.0.1/32'],
      isGlobal: false,
      attachments: [],
    });
    const bad: Array<[unknown, string]> = [
      [
        { name: 'x', allowed_ips: ['300.1.1.1'] },
        "'allowed_ips': '300.1.1.1' is not a valid IPv4/IPv6 address or CIDR range.",
      ],
      [
        { name: 'x', allowed_ips: ['10.0.0.0/33'] },
        "'allowed_ips': '10.0.0.0/33' is not a valid IPv4/IPv6 address or CIDR range.",
      ],
      [{ name: 'x', allowed_ips: [] }, "'allowed_ips' must not be empty."],
      [{ name: 'x' }, 'Missing required field: allowed_ips'],
      [{ allowed_ips: ['::1'] }, 'Missing required field: name'],
      [{ name: 'x', allowed_ips: ['::1'], extra: 1 }, "Unknown field(s): 'extra'."],
      [{ name: 'x', allowed_ips: ['::1'], is_global: 'yes' }, "'is_global' must be a boolean."],
    ];
    for (const [body, msg] of bad) {
      const r = await owner('POST', '/v1/network-policies/', body);
      expect({ status: r.status, body: r.body }).toEqual({ status: 400, body: { error: msg } });
    }
    // Attach: the SA is now limited to 10.0.0.1 and loopback is denied.
    const at = await owner('PUT', `/v1/network-policies/${c.body.id}/attachments/`, {
      account_type: 'service_account',
      account_id: sa.id,
    });
    expect(at.status).toBe(200);
    expect(at.body.attachments).toEqual([{ accountType: 'service_account', accountId: sa.id }]);
    const denied = await sac('GET', '/v1/service-accounts/');
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({
      error: 'Access denied: a network access policy restricts access from your IP address.',
    });
    expect(
      (
        await sac('GET', '/service/secrets/', undefined, {
          Environment: '00000000-0000-4000-8000-000000000000',
        })
      ).status,
    ).toBe(403);
    // /secrets/tokens/ is not policy-checked.
    expect((await sac('GET', '/service/secrets/tokens/')).status).toBe(200);
    // Forged X-Forwarded-For is ignored without --trusted-proxy.
    expect(
      (await sac('GET', '/v1/service-accounts/', undefined, { 'X-Forwarded-For': '10.0.0.1' })).status,
    ).toBe(403);
    // Other accounts are not affected by an account policy.
    expect((await owner('GET', '/v1/service-accounts/')).status).toBe(200);
    // Allow loopback (IPv4 and IPv6): access is back.
    const u = await owner('PUT', `/v1/network-policies/${c.body.id}/`, {
      allowed_ips: ['10.0.0.1/32', '127.0.0.0/8', '::1'],
    });
    expect(u.status).toBe(200);
    expect((await sac('GET', '/v1/service-accounts/')).status).toBe(200);
    // A global policy applies to everyone (union with account policies).
    const g = await owner('POST', '/v1/network-policies/', {
      name: 'global',
      allowed_ips: ['192.0.2.0/24'],
      is_global: true,
    });
    expect(g.status).toBe(201);
    expect((await sac('GET', '/v1/service-accounts/')).status).toBe(200); // account policy allows loopback
    // The owner has no account policy, so the global one alone applies and loopback is denied.
    expect((await owner('GET', '/v1/apps/')).status).toBe(403);
    // Nobody allowed can delete it over the API now (the SA lacks the permission): remove it in the store.
    await srv.server.store.db.deleteFrom('network_policies').where('id', '=', g.body.id).execute();
    expect((await owner('GET', '/v1/apps/')).status).toBe(200);
    expect((await owner('DELETE', `/v1/network-policies/${c.body.id}/attachments/${sa.id}/`)).status).toBe(
      204,
    );
    expect((await owner('GET', `/v1/network-policies/${c.body.id}/`)).body.attachments).toEqual([]);
    expect((await owner('DELETE', `/v1/network-policies/${c.body.id}/`)).status).toBe(204);
    expect((await owner('GET', `/v1/network-policies/${c.body.id}/`)).status).toBe(404);
  });

  test('audit logs record who read and wrote what (digests, never values), filterable', async () => {
    const { app } = await createApp(owner);
    const sa = await createSa(owner, 'audit-bot');
    const envs = (await owner('GET', `/v1/environments/?app_id=${app.id}`)).body.data;
    const dev = envs.find((e: any) => e.name === 'Development');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [dev.id] }],
    });
    const since = new Date().toISOString();
    const w = await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
      secrets: [{ key: 'AUDITED', value: 'top-secret-value' }],
    });
    const digest = w.body[0].keyDigest;
    await caller(srv, sa.token)('GET', `/v1/secrets/?app_id=${app.id}&env=Development`, undefined, {
      'User-Agent': 'audit-test/1.0',
    });

    const all = await owner('GET', `/v1/audit-logs/?since=${encodeURIComponent(since)}&app_id=${app.id}`);
    expect(all.status).toBe(200);
    expect(JSON.stringify(all.body)).not.toContain('top-secret-value');
    expect(JSON.stringify(all.body)).not.toContain('AUDITED');
    const create = all.body.data.find((e: any) => e.eventType === 'C' && e.resourceType === 'secret');
    expect(create).toMatchObject({
      actorType: 'member',
      keyDigest: digest,
      environmentId: dev.id,
      path: '/',
    });
    const read = await owner('GET', `/v1/audit-logs/?actor=${sa.id}&event_type=R`);
    expect(read.body.count).toBe(1);
    expect(read.body.data[0]).toMatchObject({
      actorType: 'service_account',
      actorId: sa.id,
      userAgent: 'audit-test/1.0',
    });
    expect(read.body.data[0].ipAddress).toMatch(/127\.0\.0\.1|::1/);
    expect(read.body.data[0].detail.keyDigests).toEqual([digest]);
    const byDigest = await owner('GET', `/v1/audit-logs/?key_digest=${digest}`);
    expect(byDigest.body.data.map((e: any) => e.eventType).sort()).toEqual(['C', 'R']);
    const byEnv = await owner('GET', `/v1/audit-logs/?app_id=${app.id}&env=development&event_type=C`);
    expect(byEnv.body.data.every((e: any) => e.environmentId === dev.id)).toBe(true);
    expect(byEnv.body.count).toBe(1);
    expect((await owner('GET', '/v1/audit-logs/?bogus=1')).status).toBe(400);
    expect((await owner('GET', '/v1/audit-logs/?since=yesterday')).status).toBe(400);
    expect((await owner('GET', '/v1/audit-logs/?event_type=X')).status).toBe(400);
    expect((await caller(srv, sa.token)('GET', '/v1/audit-logs/')).status).toBe(403); // Service role lacks Logs:read
  });

  test('health, readiness, metrics, body limit and unknown routes', async () => {
    const anon = caller(srv, null);
    for (const p of ['/health', '/health/', '/service/health/']) {
      const h = await anon('GET', p);
      expect(h.status).toBe(200);
      expect(h.body.status).toBe('alive');
      expect(typeof h.body.version).toBe('string');
    }
    const ready = await anon('GET', '/health/ready');
    expect(ready.body).toEqual({ status: 'ready', store });
    const root = await anon('GET', '/');
    expect(root.body.status).toBe('ok');
    await owner('GET', '/v1/apps/');
    await anon('GET', '/v1/apps/');
    const m = await fetch(`${srv.url}/metrics`);
    const text = await m.text();
    expect(m.headers.get('content-type')).toContain('text/plain');
    expect(text).toMatch(
      /phase_bridge_http_requests_total\{method="GET",route="\/v1\/apps\/",status="200"\} \d+/,
    );
    expect(text).toMatch(/phase_bridge_auth_failures_total\{reason="missing"\} \d+/);
    expect(text).toContain('phase_bridge_http_request_duration_seconds_bucket');
    const big = await owner('POST', '/v1/apps/', { name: 'x', description: 'y'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: 'Request body is too large.' });
    const nf = await anon('GET', '/nope/');
    expect(nf.status).toBe(404);
    expect(nf.body).toEqual({ error: 'Not found.' });
  });
});

describe.each(STORES)('rate limit and proxy trust on %s', (store) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ store, rateLimit: '5/m', trustedProxies: ['127.0.0.1', '::1'] });
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('per-token limit answers 429 with Retry-After; other tokens are independent', async () => {
    const owner = caller(srv, srv.ownerToken);
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 7; i++) {
      last = await owner('GET', '/v1/roles/');
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses[5]).toBe(429);
    expect(last!.body.error).toMatch(/^Request was throttled\. Expected available in \d+ seconds?\.$/);
    const retry = Number(last!.headers.get('retry-after'));
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 60).toBe(true);
    const other = await srv.addMember('Developer');
    expect((await caller(srv, other.token)('GET', '/v1/roles/')).status).toBe(200);
  });

  test('behind a --trusted-proxy, X-Real-IP or the rightmost untrusted X-Forwarded-For decides network policies', async () => {
    const m = await srv.addMember('Admin');
    const mc = caller(srv, m.token);
    const p = await mc('POST', '/v1/network-policies/', { name: 'proxy', allowed_ips: ['203.0.113.7'] });
    expect(p.status).toBe(201);
    const dev = await srv.addMember('Developer');
    const devc = caller(srv, dev.token);
    expect(
      (
        await mc('PUT', `/v1/network-policies/${p.body.id}/attachments/`, {
          account_type: 'member',
          account_id: dev.id,
        })
      ).status,
    ).toBe(200);
    expect((await devc('GET', '/v1/apps/')).status).toBe(403);
    expect((await devc('GET', '/v1/apps/', undefined, { 'X-Real-IP': '203.0.113.7' })).status).toBe(200);
    expect(
      (await devc('GET', '/v1/apps/', undefined, { 'X-Forwarded-For': '10.0.0.1, 203.0.113.7' })).status,
    ).toBe(200);
    // The leftmost entry is whatever the client sent: the proxy appended 10.0.0.1, which is the client.
    expect(
      (await devc('GET', '/v1/apps/', undefined, { 'X-Forwarded-For': '203.0.113.7, 10.0.0.1' })).status,
    ).toBe(403);
  });
});

describe.each(STORES)('readiness on %s', (store) => {
  test('/health/ready answers 503 when the store is down while /health stays alive', async () => {
    const srv = await startTestServer({ store });
    try {
      const anon = caller(srv, null);
      expect((await anon('GET', '/health/ready')).status).toBe(200);
      await srv.server.store.close();
      const down = await anon('GET', '/health/ready');
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'unavailable', store });
      expect((await anon('GET', '/health')).status).toBe(200);
      // Requests needing the store fail cleanly with a JSON 500, never a hang or a crash.
      const r = await caller(srv, srv.ownerToken)('GET', '/v1/apps/');
      expect(r.status).toBe(500);
      expect(r.body).toEqual({ error: 'Internal server error.' });
    } finally {
      await srv.close().catch(() => undefined);
    }
  });
});
