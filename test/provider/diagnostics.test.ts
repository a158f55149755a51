/**
 * The provider process against a real server, driven over gRPC: errors become diagnostics a person can act on
 * (authentication, permission with the missing permission named, not found, conflict, validation, the
 * upstream's own message), path-restricted access round-trips, and the lookup data sources.
 */
import { PhaseClient } from '../../core/client';
import { decodeValue, encodeValue } from '../../provider/framework/msgpack';
import { blockType } from '../../provider/framework/schema';
import { isObjectValue, type TfObject } from '../../provider/framework/types';
import { providerDef } from '../../provider/provider';
import { startTestServer, type TestServer } from '../support/server';
import { startPlugin, type Plugin } from './plugin-client';

type WireDiag = { severity: string; summary: string; detail: string };
const diagsOf = (res: Record<string, unknown>): WireDiag[] => (res.diagnostics as WireDiag[]) ?? [];
const resType = (name: string) =>
  blockType(providerDef.resources.find((r) => r.typeName === name)!.schema.block);
const dsType = (name: string) =>
  blockType(providerDef.dataSources.find((r) => r.typeName === name)!.schema.block);
const mp = (t: ReturnType<typeof resType>, v: TfObject | null) => ({
  msgpack: Buffer.from(encodeValue(t, v)),
});

describe('provider diagnostics and data against a real server', () => {
  let srv: TestServer;
  let plugin: Plugin;
  let owner: PhaseClient;

  const configure = async (token: string): Promise<WireDiag[]> =>
    diagsOf(
      await plugin.call('ConfigureProvider', {
        terraform_version: '1.11.4',
        config: {
          msgpack: Buffer.from(
            encodeValue(blockType(providerDef.schema.block), { host: srv.url, phase_token: token }),
          ),
        },
      }),
    );

  /** Plans then applies a create, as Terraform does; returns the new state or the diagnostics. */
  const create = async (
    type: string,
    config: TfObject,
  ): Promise<{ state: TfObject | null; diags: WireDiag[] }> => {
    const t = resType(type);
    const planRes = await plugin.call('PlanResourceChange', {
      type_name: type,
      prior_state: mp(t, null),
      proposed_new_state: mp(t, config),
      config: mp(t, config),
    });
    if (diagsOf(planRes).length) return { state: null, diags: diagsOf(planRes) };
    const res = await plugin.call('ApplyResourceChange', {
      type_name: type,
      prior_state: mp(t, null),
      planned_state: planRes.planned_state,
      config: mp(t, config),
    });
    // On failure the response carries no state: Terraform records nothing (create) or keeps the prior state.
    const v = res.new_state ? decodeValue(t, (res.new_state as { msgpack: Uint8Array }).msgpack, []) : null;
    return { state: isObjectValue(v) ? v : null, diags: diagsOf(res) };
  };

  const read = async (type: string, state: TfObject): Promise<TfObject | null> => {
    const t = resType(type);
    const res = await plugin.call('ReadResource', { type_name: type, current_state: mp(t, state) });
    expect(diagsOf(res)).toEqual([]);
    const v = decodeValue(t, (res.new_state as { msgpack: Uint8Array }).msgpack, []);
    return isObjectValue(v) ? v : null;
  };

  const readData = async (
    type: string,
    config: TfObject,
  ): Promise<{ state: TfObject | null; diags: WireDiag[] }> => {
    const t = dsType(type);
    const res = await plugin.call('ReadDataSource', { type_name: type, config: mp(t, config) });
    const v = res.state ? decodeValue(t, (res.state as { msgpack: Uint8Array }).msgpack, []) : null;
    return { state: isObjectValue(v) ? v : null, diags: diagsOf(res) };
  };

  beforeAll(async () => {
    srv = await startTestServer();
    plugin = await startPlugin();
    owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
  });
  afterAll(async () => {
    plugin?.kill();
    await srv?.close();
  });

  it('reports an unknown token as an authentication failure with the upstream message', async () => {
    expect(
      await configure(
        `pss_user:v1:${'ab'.repeat(32)}:${'cd'.repeat(32)}:${'ef'.repeat(32)}:${'01'.repeat(32)}`,
      ),
    ).toEqual([]);
    const { diags } = await readData('phase_app', { name: 'x' });
    expect(diags).toHaveLength(1);
    expect(diags[0].summary).toBe('Authentication failed');
    expect(diags[0].detail).toMatch(/Phase said: "/);
    expect(diags[0].detail).toMatch(/PHASE_TOKEN/);
  });

  it('names the missing permission when the role forbids the operation', async () => {
    const dev = await srv.addMember('Developer');
    await configure(dev.token);
    const roles = await owner.listRoles();
    const service = roles.find((r) => r.name === 'Service')!;
    const { diags } = await create('phase_service_account', { name: 'nope', role_id: service.id });
    expect(diags[0].summary).toBe('Permission denied');
    expect(diags[0].detail).toMatch(/ServiceAccounts:create/);
    expect(diags[0].detail).toMatch(/Phase said: "/);
  });

  it('reports not found, conflict and validation errors with what Phase said', async () => {
    await configure(srv.ownerToken);
    const nf = await create('phase_environment', {
      app_id: '00000000-0000-4000-8000-000000000000',
      name: 'qa',
    });
    expect(nf.diags[0].summary).toBe('Not found');
    expect(nf.diags[0].detail).toMatch(/create of phase_environment/);

    const conflict = await create('phase_role', { name: 'service', permissions: {}, app_permissions: {} });
    expect(conflict.diags[0].summary).toBe('Conflict');
    expect(conflict.diags[0].detail).toMatch(/already exists/);

    const admin = (await owner.listRoles()).find((r) => r.name === 'Admin')!;
    const invalid = await create('phase_service_account', { name: 'bot', role_id: admin.id });
    expect(invalid.diags[0].summary).toBe('Invalid request');
    expect(invalid.diags[0].detail).toMatch(/Phase said: ".*Admin.*"/);
    expect(await owner.listServiceAccounts()).toEqual([]);

    const lookup = await readData('phase_role', { name: 'No Such Role' });
    expect(lookup.diags[0].summary).toBe('role not found');
  });

  it('grants path-restricted access and reads it back; deleted objects read as gone', async () => {
    await configure(srv.ownerToken);
    const app = await owner.createApp({ name: 'paths-app' });
    const dev = app.environments.find((e) => e.name === 'Development')!;
    const service = (await owner.listRoles()).find((r) => r.name === 'Service')!;
    const sa = await create('phase_service_account', { name: 'scoped', role_id: service.id });
    expect(sa.diags).toEqual([]);
    const saId = sa.state!.id as string;
    const access = await create('phase_service_account_access', {
      service_account_id: saId,
      app: [{ app_id: app.id, environments: [dev.id], paths: ['/backend'] }],
    });
    expect(access.diags).toEqual([]);
    const back = await read('phase_service_account_access', access.state!);
    expect(back!.app).toEqual([{ app_id: app.id, environments: [dev.id], paths: ['/backend'] }]);
    const detail = await owner.getServiceAccount(saId);
    expect(detail.apps[0].paths).toEqual(['/backend']);

    const ds = await readData('phase_service_account', { name: 'scoped' });
    expect(ds.state).toMatchObject({ id: saId, role_name: 'Service', app_ids: [app.id], token_ids: [] });
    const appDs = await readData('phase_app', { name: 'paths-app' });
    expect(appDs.state).toMatchObject({
      id: app.id,
      sse_enabled: true,
      environments: ['Development', 'Staging', 'Production'],
    });
    expect((appDs.state!.environment_ids as Record<string, string>).Development).toBe(dev.id);
    const roleDs = await readData('phase_role', { name: 'Service' });
    expect(roleDs.state).toMatchObject({ id: service.id, is_default: true });
    expect((roleDs.state!.app_permissions as Record<string, string[]>).Secrets).toEqual([
      'create',
      'read',
      'update',
      'delete',
    ]);

    await owner.deleteServiceAccount(saId);
    expect(await read('phase_service_account', sa.state!)).toBeNull();
    expect(await read('phase_service_account_access', access.state!)).toBeNull();
  });

  it('keeps the configured path spelling, and reads a secret as gone once its environment is deleted', async () => {
    await configure(srv.ownerToken);
    const app = await owner.createApp({ name: 'drift-app' });
    const env = await owner.createEnvironment(app.id, 'scratch');
    const created = await create('phase_secret', {
      app_id: app.id,
      env: 'scratch',
      key: 'k1',
      value: 'v',
      path: 'backend/',
      override: [],
    });
    expect(created.diags).toEqual([]);
    expect(created.state).toMatchObject({ key: 'k1', path: 'backend/', version: 1 });
    const [server] = await owner.listSecrets({ appId: app.id, env: 'scratch' });
    expect([server.key, server.path]).toEqual(['K1', '/backend']);
    expect(await read('phase_secret', created.state!)).toMatchObject({
      key: 'k1',
      path: 'backend/',
      comment: null,
      tags: null,
    });
    await owner.deleteEnvironment(env.id);
    expect(await read('phase_secret', created.state!)).toBeNull();
  });

  it('imports every resource type by its documented id', async () => {
    await configure(srv.ownerToken);
    const app = await owner.createApp({ name: 'import-app' });
    const env = await owner.createEnvironment(app.id, 'imp');
    const role = await owner.createRole({
      name: 'imp-role',
      permissions: { permissions: { Apps: ['read'] }, app_permissions: {} },
    });
    const service = (await owner.listRoles()).find((r) => r.name === 'Service')!;
    const sa = await owner.createServiceAccount({ name: 'imp-sa', role_id: service.id });
    await owner.setServiceAccountAccess(sa.id, [{ id: app.id, environments: [env.id] }]);
    const token = await owner.createServiceAccountToken(sa.id, { name: 'imp-token', expires_in: 3600 });
    const policy = await owner.createNetworkPolicy({ name: 'imp-policy', allowedIps: ['10.1.0.0/16'] });
    await owner.attachNetworkPolicy(policy.id, { account_type: 'service_account', account_id: sa.id });
    await owner.createSecrets({ appId: app.id, env: 'imp' }, [{ key: 'IMP', value: 'v', path: '/a/b' }]);

    const importAndRead = async (type: string, id: string): Promise<TfObject | null> => {
      const res = await plugin.call('ImportResourceState', { type_name: type, id });
      expect(diagsOf(res)).toEqual([]);
      const [imported] = res.imported_resources as Array<{ state: { msgpack: Uint8Array } }>;
      const state = decodeValue(resType(type), imported.state.msgpack, []);
      return read(type, state as TfObject);
    };
    expect(await importAndRead('phase_app', app.id)).toMatchObject({
      id: app.id,
      name: 'import-app',
      environments: ['Development', 'Staging', 'Production', 'imp'],
    });
    expect(await importAndRead('phase_environment', `${app.id}:${env.id}`)).toMatchObject({
      id: env.id,
      app_id: app.id,
      name: 'imp',
      env_type: 'custom',
    });
    expect(await importAndRead('phase_role', role.id)).toMatchObject({
      name: 'imp-role',
      permissions: { Apps: ['read'] },
      is_default: false,
    });
    expect(await importAndRead('phase_service_account', sa.id)).toMatchObject({
      name: 'imp-sa',
      role_id: service.id,
      role_name: 'Service',
    });
    expect(await importAndRead('phase_service_account_access', sa.id)).toMatchObject({
      service_account_id: sa.id,
      app: [{ app_id: app.id, environments: [env.id], paths: null }],
    });
    expect(await importAndRead('phase_service_account_token', `${sa.id}:${token.id}`)).toMatchObject({
      id: token.id,
      name: 'imp-token',
      token: null,
      expires_at: token.expiresAt,
    });
    expect(await importAndRead('phase_network_policy', policy.id)).toMatchObject({
      name: 'imp-policy',
      allowed_ips: ['10.1.0.0/16'],
      is_global: false,
    });
    expect(await importAndRead('phase_network_policy_attachment', `${policy.id}:${sa.id}`)).toMatchObject({
      id: `${policy.id}:${sa.id}`,
      account_type: 'service_account',
    });
    expect(await importAndRead('phase_secret', `${app.id}:imp:/a/b:IMP`)).toMatchObject({
      key: 'IMP',
      path: '/a/b',
      value: 'v',
      env: 'imp',
    });
    // An id that names nothing imports, then reads as gone (Terraform reports "Cannot import non-existent remote object").
    expect(await importAndRead('phase_app', '00000000-0000-4000-8000-000000000000')).toBeNull();
  });
});
