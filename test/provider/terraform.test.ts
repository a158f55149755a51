/**
 * End to end with the real terraform binary and a real phase-bridge server on loopback: init (offline, from the
 * implied local mirror), plan, apply, an empty second plan, update in place, forced replacement, import, drift,
 * token rotation via rotate_after, an ephemeral token used during apply and gone afterwards, a write-only
 * secret value absent from state, and a destroy that leaves the server empty.
 */
import { PhaseClient } from '../../core/client';
import { startTestServer, type TestServer } from '../support/server';
import {
  createWorkspace,
  requireTerraform,
  resource,
  resources,
  type TfJson,
  type Workspace,
} from './terraform-harness';

jest.setTimeout(240_000);

interface MainOpts {
  appName: string;
  saName: string;
  dbValue: string;
  dbEnv: string;
  qaName: string;
  rotateAfter: string;
  woValue: string;
  woVersion: number;
  extra?: string;
}

const WO_VALUE_1 = 'wo-first-7f3a9c1e';
const WO_VALUE_2 = 'wo-second-2b8d4e6f';

function mainConfig(o: MainOpts): string {
  return `
terraform {
  required_providers {
    phase = { source = "phase-bridge/phase" }
  }
}

provider "phase" {}

data "phase_role" "service" {
  name = "Service"
}

resource "phase_app" "app" {
  name        = "${o.appName}"
  description = "managed by terraform"
}

resource "phase_environment" "qa" {
  app_id = phase_app.app.id
  name   = "${o.qaName}"
}

resource "phase_role" "reader" {
  name            = "tf-reader"
  description     = "reads secrets"
  permissions     = { Apps = ["read"] }
  app_permissions = { Secrets = ["read"], Environments = ["read"] }
}

resource "phase_service_account" "ci" {
  name    = "${o.saName}"
  role_id = data.phase_role.service.id
}

resource "phase_service_account_access" "ci" {
  service_account_id = phase_service_account.ci.id
  app {
    app_id       = phase_app.app.id
    environments = [phase_app.app.environment_ids["Development"]]
  }
}

resource "phase_service_account_token" "ci" {
  service_account_id = phase_service_account.ci.id
  name               = "ci-token"
  expires_in         = 86400
  rotate_after       = "${o.rotateAfter}"
  lifecycle {
    create_before_destroy = true
  }
}

resource "phase_network_policy" "office" {
  name        = "office"
  allowed_ips = ["127.0.0.1", "::1", "10.0.0.0/8"]
}

resource "phase_network_policy_attachment" "ci" {
  policy_id  = phase_network_policy.office.id
  account_id = phase_service_account.ci.id
}

resource "phase_secret" "db" {
  app_id  = phase_app.app.id
  env     = "${o.dbEnv}"
  key     = "DB_URL"
  value   = "${o.dbValue}"
  comment = "database"
  tags    = ["db"]
}

resource "phase_secret" "wo" {
  app_id           = phase_app.app.id
  env              = "Development"
  key              = "API_KEY"
  value_wo         = "${o.woValue}"
  value_wo_version = ${o.woVersion}
}

output "ci_token" {
  value     = phase_service_account_token.ci.token
  sensitive = true
}
${o.extra ?? ''}
`;
}

const BASE: MainOpts = {
  appName: 'tf-app',
  saName: 'ci',
  dbValue: 'postgres://db-one',
  dbEnv: 'Development',
  qaName: 'qa',
  rotateAfter: '720h',
  woValue: WO_VALUE_1,
  woVersion: 1,
};

describe('terraform with the phase-bridge provider', () => {
  let srv: TestServer;
  let ws: Workspace;
  let owner: PhaseClient;
  let dir: string;
  let opts: MainOpts = { ...BASE };
  const apply = async (o: Partial<MainOpts> = {}): Promise<void> => {
    opts = { ...opts, ...o };
    ws.write('main', { 'main.tf': mainConfig(opts) });
    await ws.tf(dir, ['apply', '-input=false', '-auto-approve', '-no-color']);
  };
  const plan = (o: Partial<MainOpts> = {}): Promise<Record<string, string[]>> => {
    ws.write('main', { 'main.tf': mainConfig({ ...opts, ...o }) });
    return ws.planActions(dir);
  };
  const st = async (address: string): Promise<Record<string, TfJson>> =>
    resource(await ws.state(dir), address).values;
  const appId = async (): Promise<string> => (await st('phase_app.app')).id as string;

  beforeAll(async () => {
    requireTerraform();
    srv = await startTestServer();
    ws = createWorkspace({ PHASE_HOST: srv.url, PHASE_TOKEN: srv.ownerToken });
    owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
    dir = ws.write('main', { 'main.tf': mainConfig(opts) });
  });

  afterAll(async () => {
    ws?.cleanup();
    await srv?.close();
  });

  it('initialises offline from the local mirror written by `provider install`', async () => {
    const r = await ws.tf(dir, ['init', '-input=false', '-no-color']);
    expect(r.stdout).toMatch(/Installed phase-bridge\/phase v\d+\.\d+\.\d+ \(unauthenticated\)/);
  });

  it('plans and applies every resource type', async () => {
    const actions = await plan();
    expect(Object.values(actions).every((a) => a.join() === 'create')).toBe(true);
    expect(Object.keys(actions)).toHaveLength(10);
    await apply();
  });

  it('created the objects on the server', async () => {
    const apps = await owner.listApps();
    expect(apps.map((a) => a.name)).toEqual(['tf-app']);
    const envs = (await owner.listEnvironments(apps[0].id)).map((e) => e.name);
    expect(envs).toEqual(expect.arrayContaining(['Development', 'Staging', 'Production', 'qa']));
    const sas = await owner.listServiceAccounts();
    expect(sas.map((s) => s.name)).toEqual(['ci']);
    const detail = await owner.getServiceAccount(sas[0].id);
    // The API's initial token was revoked; only the managed token is live.
    expect(detail.tokens.map((t) => t.name)).toEqual(['ci-token']);
    expect(detail.apps.map((a) => a.id)).toEqual([apps[0].id]);
    const roles = await owner.listRoles();
    expect(roles.find((r) => r.name === 'tf-reader')?.isDefault).toBe(false);
    const policies = await owner.listNetworkPolicies();
    expect(policies).toHaveLength(1);
    expect(policies[0].attachments).toEqual([{ accountType: 'service_account', accountId: sas[0].id }]);
  });

  it('issues a working service-account token', async () => {
    const token = (await ws.tf(dir, ['output', '-raw', 'ci_token'])).stdout.trim();
    expect(token).toMatch(/^pss_service:v2:/);
    const asCi = new PhaseClient({ host: srv.url, token, retries: 0 });
    const secrets = await asCi.listSecrets({ appId: await appId(), env: 'Development' });
    expect(secrets.map((s) => s.key).sort()).toEqual(['API_KEY', 'DB_URL']);
  });

  it('keeps the write-only value out of state while the server has it', async () => {
    const [s] = await owner.listSecrets({ appId: await appId(), env: 'Development', key: 'API_KEY' });
    expect(s.value === WO_VALUE_1).toBe(true);
    const text = ws.stateText(dir);
    expect(text.includes(WO_VALUE_1)).toBe(false);
    expect((await st('phase_secret.wo')).value_wo).toBeNull();
  });

  it('plans nothing on a second plan', async () => {
    expect(await plan()).toEqual({});
  });

  it('updates in place: app, service account and environment names, a secret value, a write-only version bump', async () => {
    const changes = {
      appName: 'tf-app-renamed',
      saName: 'ci-renamed',
      qaName: 'qa2',
      dbValue: 'postgres://db-two',
      woValue: WO_VALUE_2,
      woVersion: 2,
    };
    const actions = await plan(changes);
    expect(actions).toEqual({
      'phase_app.app': ['update'],
      'phase_service_account.ci': ['update'],
      'phase_environment.qa': ['update'],
      'phase_secret.db': ['update'],
      'phase_secret.wo': ['update'],
    });
    const idBefore = await appId();
    await apply(changes);
    expect(await appId()).toBe(idBefore);
    expect((await owner.getApp(idBefore)).name).toBe('tf-app-renamed');
    expect((await owner.listServiceAccounts()).map((s) => s.name)).toEqual(['ci-renamed']);
    const [db] = await owner.listSecrets({ appId: idBefore, env: 'Development', key: 'DB_URL' });
    expect(db.value === 'postgres://db-two').toBe(true);
    const [wo] = await owner.listSecrets({ appId: idBefore, env: 'Development', key: 'API_KEY' });
    expect(wo.value === WO_VALUE_2).toBe(true);
    expect(ws.stateText(dir).includes(WO_VALUE_2)).toBe(false);
    expect(await plan()).toEqual({});
  });

  it('replaces a secret whose environment changes', async () => {
    const oldId = (await st('phase_secret.db')).id;
    const actions = await plan({ dbEnv: 'Staging' });
    expect(actions['phase_secret.db']).toEqual(['delete', 'create']);
    await apply({ dbEnv: 'Staging' });
    const newId = (await st('phase_secret.db')).id;
    expect(newId).not.toBe(oldId);
    expect(await owner.listSecrets({ appId: await appId(), env: 'Development', key: 'DB_URL' })).toEqual([]);
    expect(
      (await owner.listSecrets({ appId: await appId(), env: 'Staging', key: 'DB_URL' })).map((s) => s.id),
    ).toEqual([newId]);
    expect(await plan()).toEqual({});
  });

  it('imports existing objects by their documented ids', async () => {
    const id = await appId();
    await owner.createSecrets({ appId: id, env: 'Production' }, [
      { key: 'IMPORTED', value: 'from-outside', path: '/imp' },
    ]);
    const role = await owner.createRole({
      name: 'outside-role',
      permissions: { permissions: { Apps: ['read'] }, app_permissions: {} },
    });
    const extra = `
resource "phase_secret" "imported" {
  app_id = phase_app.app.id
  env    = "Production"
  key    = "IMPORTED"
  value  = "from-outside"
  path   = "/imp"
}
resource "phase_role" "imported" {
  name        = "outside-role"
  permissions = { Apps = ["read"] }
}
`;
    opts = { ...opts, extra };
    ws.write('main', { 'main.tf': mainConfig(opts) });
    await ws.tf(dir, [
      'import',
      '-input=false',
      '-no-color',
      'phase_secret.imported',
      `${id}:Production:/imp:IMPORTED`,
    ]);
    await ws.tf(dir, ['import', '-input=false', '-no-color', 'phase_role.imported', role.id]);
    expect((await st('phase_secret.imported')).path).toBe('/imp');
    expect((await st('phase_role.imported')).id).toBe(role.id);
    expect(await plan()).toEqual({});
    // A malformed import id is a diagnostic that says what is expected.
    const bad = await ws.tf(
      dir,
      ['import', '-input=false', '-no-color', 'phase_environment.qa', 'not-an-id'],
      [1],
    );
    expect(bad.stderr).toMatch(/<app_id>:<environment_id>/);
  });

  it('plans re-creation of objects deleted outside Terraform', async () => {
    const env = await st('phase_environment.qa');
    const sec = await st('phase_secret.imported');
    await owner.deleteEnvironment(env.id);
    await owner.deleteSecrets({ appId: await appId(), env: 'Production' }, [sec.id]);
    const actions = await plan();
    expect(actions).toEqual({ 'phase_environment.qa': ['create'], 'phase_secret.imported': ['create'] });
    await apply();
    // Phase grants a new environment to the service accounts already in the app (spec §12.1); the declarative
    // access resource notices and revokes what it does not list.
    expect(await plan()).toEqual({ 'phase_service_account_access.ci': ['update'] });
    await apply();
    const sa = await owner.getServiceAccount((await st('phase_service_account.ci')).id);
    expect(sa.apps[0].environments.map((e) => e.name)).toEqual(['Development']);
    expect(await plan()).toEqual({});
  });

  it('rotates the token once it is older than rotate_after, creating the new one before revoking the old', async () => {
    const before = await st('phase_service_account_token.ci');
    const age = Date.now() - Date.parse(before.created_at);
    if (age < 3000) await new Promise((r) => setTimeout(r, 3000 - age));
    const actions = await plan({ rotateAfter: '3s' });
    expect(actions['phase_service_account_token.ci']).toEqual(['create', 'delete']);
    await apply({ rotateAfter: '3s' });
    const after = await st('phase_service_account_token.ci');
    expect(after.id).not.toBe(before.id);
    expect(after.token === before.token).toBe(false);
    const sa = await owner.getServiceAccount((await st('phase_service_account.ci')).id);
    expect(sa.tokens.map((t) => t.id)).toEqual([after.id]);
    // A longer rotate_after is an in-place change that keeps the token.
    expect(await plan({ rotateAfter: '720h' })).toEqual({ 'phase_service_account_token.ci': ['update'] });
    await apply({ rotateAfter: '720h' });
    expect((await st('phase_service_account_token.ci')).id).toBe(after.id);
    expect(await plan()).toEqual({});
  });

  it('uses an ephemeral token during apply that is gone afterwards and never in state', async () => {
    const ephemeral = `
ephemeral "phase_service_account_token" "short" {
  service_account_id = phase_service_account.ci.id
  name               = "ephemeral-ci"
  expires_in         = 600
}

provider "phase" {
  alias       = "as_ci"
  phase_token = ephemeral.phase_service_account_token.short.token
}

resource "phase_secret" "by_ci" {
  provider   = phase.as_ci
  depends_on = [phase_service_account_access.ci]
  app_id   = phase_app.app.id
  env      = "Development"
  key      = "WRITTEN_BY_CI"
  value    = "ok"
}
`;
    const managedToken = (await st('phase_service_account_token.ci')).token as string;
    await apply({ extra: (opts.extra ?? '') + ephemeral });
    const saId = (await st('phase_service_account.ci')).id;
    // The secret was written with the ephemeral token: the service account's own credentials worked during apply.
    const [written] = await owner.listSecrets({
      appId: await appId(),
      env: 'Development',
      key: 'WRITTEN_BY_CI',
    });
    expect(written?.value).toBe('ok');
    const sa = await owner.getServiceAccount(saId);
    expect(sa.tokens.map((t) => t.name)).toEqual(['ci-token']);
    const text = ws.stateText(dir);
    expect(text).not.toMatch(/ephemeral-ci/);
    const tokensInState = text.match(/pss_service:v2:[0-9a-f:]+/g) ?? [];
    expect(new Set(tokensInState)).toEqual(new Set([managedToken]));
    expect(resources(await ws.state(dir)).some((r) => r.mode === 'ephemeral')).toBe(false);
    expect(await plan()).toEqual({});
  });

  it('destroys everything and leaves the server empty', async () => {
    await ws.tf(dir, ['destroy', '-input=false', '-auto-approve', '-no-color']);
    expect(await owner.listApps()).toEqual([]);
    expect(await owner.listServiceAccounts()).toEqual([]);
    expect((await owner.listRoles()).filter((r) => !r.isDefault).map((r) => r.name)).toEqual([]);
    expect(await owner.listNetworkPolicies()).toEqual([]);
    expect(resources(await ws.state(dir))).toEqual([]);
  });
});
