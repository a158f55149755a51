/**
 * External identities with the real terraform binary against a real phase-bridge server on loopback (issue 13,
 * docs/identity.md): an OIDC identity (Kubernetes-shaped, checked with a real login against an issuer on loopback)
 * and an AWS IAM identity, their attachments, an empty second plan, in-place changes, import by id, drift, plan-time
 * validation and destroy. Then `revoke_grace` on phase_service_account_token: a replaced token keeps working after
 * the apply that replaced it, and without the grace it is refused.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, RequestValidationError } from '../../core/api-errors';
import { PhaseClient } from '../../core/client';
import { identityState } from '../../provider/resources/external-identity';
import { graceSeconds } from '../../provider/resources/service-account-token';
import { startOidcIssuer, type OidcIssuer } from '../support/identity-issuers';
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

const HEADER = `
terraform {
  required_providers {
    phase = { source = "phase-bridge/phase" }
  }
}

provider "phase" {}

data "phase_role" "service" {
  name = "Service"
}
`;

interface IdentityOpts {
  description: string;
  subjects: string[];
  /** `jwks_url = ...`, `jwks = file("jwks.json")` or the same through `jsonencode` inside the oidc block. */
  keys: 'url' | 'inline' | 'jsonencode';
  awsMaxTtl: number;
}

const hcl = (v: unknown): string => JSON.stringify(v);

function identityConfig(issuer: OidcIssuer, o: IdentityOpts): string {
  return `${HEADER}
resource "phase_service_account" "api" {
  name    = "api"
  role_id = data.phase_role.service.id
}

resource "phase_external_identity" "k8s" {
  name               = "k8s-api"
  description        = ${hcl(o.description)}
  provider_type      = "oidc"
  token_name_pattern = "k8s-login"

  oidc {
    issuer         = ${hcl(issuer.url)}
    audiences      = ["phase"]
    ${
      o.keys === 'url'
        ? `jwks_url = ${hcl(issuer.jwksUrl)}`
        : o.keys === 'inline'
          ? 'jwks = file("jwks.json")'
          : 'jwks = jsonencode(jsondecode(file("jwks.json")))'
    }
    bound_subjects = ${hcl(o.subjects)}
  }
}

resource "phase_service_account_identity" "k8s" {
  identity_id        = phase_external_identity.k8s.id
  service_account_id = phase_service_account.api.id
}

resource "phase_external_identity" "aws" {
  name                = "worker-role"
  provider_type       = "aws_iam"
  default_ttl_seconds = 900
  max_ttl_seconds     = ${o.awsMaxTtl}

  aws_iam {
    trusted_principals = ["arn:aws:sts::123456789012:assumed-role/worker/*"]
    sts_endpoint       = "https://sts.eu-west-1.amazonaws.com"
  }
}

resource "phase_service_account_identity" "aws" {
  identity_id        = phase_external_identity.aws.id
  service_account_id = phase_service_account.api.id
}
`;
}

const BASE: IdentityOpts = {
  description: 'pods of payments/api',
  subjects: ['system:serviceaccount:payments:api'],
  keys: 'url',
  awsMaxTtl: 7200,
};

/** Exchanges a Kubernetes-shaped token for a service-account token (`POST .../oidc/auth/`). */
async function oidcLogin(
  srv: TestServer,
  saId: string,
  jwt: string,
): Promise<{ status: number; body: Record<string, any> }> {
  const r = await fetch(`${srv.url}/identities/external/v1/oidc/auth/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      account: { type: 'service', id: saId },
      oidc: { jwt: Buffer.from(jwt).toString('base64') },
    }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

describe('terraform: external identities and their attachments', () => {
  let srv: TestServer;
  let issuer: OidcIssuer;
  let ws: Workspace;
  let owner: PhaseClient;
  let dir: string;
  let opts: IdentityOpts = { ...BASE };
  const write = (o: IdentityOpts): void => void ws.write('ids', { 'main.tf': identityConfig(issuer, o) });
  const apply = async (o: Partial<IdentityOpts> = {}): Promise<void> => {
    opts = { ...opts, ...o };
    write(opts);
    await ws.tf(dir, ['apply', '-input=false', '-auto-approve', '-no-color']);
  };
  const plan = (o: Partial<IdentityOpts> = {}): Promise<Record<string, string[]>> => {
    write({ ...opts, ...o });
    return ws.planActions(dir);
  };
  const st = async (address: string): Promise<Record<string, TfJson>> =>
    resource(await ws.state(dir), address).values;
  const saId = async (): Promise<string> => (await st('phase_service_account.api')).id as string;
  const k8sToken = (namespace = 'payments', serviceAccount = 'api') =>
    issuer.kubernetesToken({ namespace, serviceAccount });

  beforeAll(async () => {
    requireTerraform();
    issuer = await startOidcIssuer();
    srv = await startTestServer({ allowLoopbackIdentityEndpoints: true });
    ws = createWorkspace({ PHASE_HOST: srv.url, PHASE_TOKEN: srv.ownerToken });
    owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
    dir = ws.write('ids', { 'main.tf': identityConfig(issuer, opts) });
    await ws.tf(dir, ['init', '-input=false', '-no-color']);
  });

  afterAll(async () => {
    ws?.cleanup();
    await srv?.close();
    await issuer?.close();
  });

  it('plans and applies both identities and both attachments', async () => {
    expect(await plan()).toEqual({
      'phase_service_account.api': ['create'],
      'phase_external_identity.k8s': ['create'],
      'phase_service_account_identity.k8s': ['create'],
      'phase_external_identity.aws': ['create'],
      'phase_service_account_identity.aws': ['create'],
    });
    await apply();
  });

  it('created the records with the camelCase config of docs/identity.md, both attached to the account', async () => {
    const sa = await saId();
    const list = await owner.listExternalIdentities();
    expect(list.map((i) => i.name).sort()).toEqual(['k8s-api', 'worker-role']);
    const k8s = list.find((i) => i.name === 'k8s-api')!;
    expect(k8s).toMatchObject({
      provider: 'oidc',
      description: 'pods of payments/api',
      tokenNamePattern: 'k8s-login',
      defaultTtlSeconds: 3600,
      maxTtlSeconds: 86400,
      serviceAccounts: [sa],
    });
    expect(k8s.config).toEqual({
      issuer: issuer.url,
      audiences: ['phase'],
      jwksUrl: issuer.jwksUrl,
      boundSubjects: ['system:serviceaccount:payments:api'],
    });
    const aws = list.find((i) => i.name === 'worker-role')!;
    expect(aws).toMatchObject({
      provider: 'aws_iam',
      defaultTtlSeconds: 900,
      maxTtlSeconds: 7200,
      serviceAccounts: [sa],
    });
    expect(aws.config).toEqual({
      trustedPrincipals: ['arn:aws:sts::123456789012:assumed-role/worker/*'],
      stsEndpoint: 'https://sts.eu-west-1.amazonaws.com',
    });
    // State: computed TTLs from the server, server defaults left null, ids as documented.
    const k8sState = await st('phase_external_identity.k8s');
    expect(k8sState.id).toBe(k8s.id);
    expect([k8sState.default_ttl_seconds, k8sState.max_ttl_seconds]).toEqual([3600, 86400]);
    expect(k8sState.oidc[0].allowed_algorithms).toBeNull();
    expect(k8sState.aws_iam).toEqual([]);
    expect((await st('phase_external_identity.aws')).aws_iam[0].signature_ttl_seconds).toBeNull();
    expect((await st('phase_service_account_identity.k8s')).id).toBe(`${k8s.id}:${sa}`);
  });

  it('lets a matching Kubernetes token log in as the account, with the configured token name', async () => {
    const sa = await saId();
    const r = await oidcLogin(srv, sa, await k8sToken());
    expect(r.status).toBe(200);
    expect(r.body.authentication).toMatchObject({
      tokenType: 'ServiceAccount',
      token: expect.stringMatching(/^pss_service:v2:/),
      TTL: 3600,
    });
    expect((await owner.getServiceAccount(sa)).tokens.map((t) => t.name)).toContain('k8s-login');
    const other = await oidcLogin(srv, sa, await k8sToken('default'));
    expect(other.status).toBe(403);
  });

  it('plans nothing on a second plan', async () => {
    expect(await plan()).toEqual({});
  });

  it('updates in place: description, bound subjects, keys inline instead of a URL, a TTL', async () => {
    const jwks = (await (await fetch(issuer.jwksUrl)).json()) as { keys: unknown[] };
    // Pretty-printed on purpose: the server's compact copy must not plan a change.
    writeFileSync(join(dir, 'jwks.json'), `${JSON.stringify(jwks, null, 2)}\n`);
    const changes: Partial<IdentityOpts> = {
      description: 'pods of payments/api and payments/worker',
      subjects: ['system:serviceaccount:payments:api', 'system:serviceaccount:payments:worker'],
      keys: 'inline',
      awsMaxTtl: 3600,
    };
    expect(await plan(changes)).toEqual({
      'phase_external_identity.k8s': ['update'],
      'phase_external_identity.aws': ['update'],
    });
    const before = await st('phase_external_identity.k8s');
    await apply(changes);
    const after = await st('phase_external_identity.k8s');
    expect(after.id).toBe(before.id);
    const k8s = await owner.getExternalIdentity(after.id);
    expect(k8s.description).toBe('pods of payments/api and payments/worker');
    expect(k8s.config).toEqual({
      issuer: issuer.url,
      audiences: ['phase'],
      jwks,
      boundSubjects: ['system:serviceaccount:payments:api', 'system:serviceaccount:payments:worker'],
    });
    expect(k8s.serviceAccounts).toEqual([await saId()]);
    const aws = await owner.getExternalIdentity((await st('phase_external_identity.aws')).id);
    expect(aws.maxTtlSeconds).toBe(3600);
    // The new subject logs in now, with keys the server no longer downloads.
    expect((await oidcLogin(srv, await saId(), await k8sToken('payments', 'worker'))).status).toBe(200);
    expect(await plan()).toEqual({});
  });

  it('imports both identities and the attachment by their documented ids', async () => {
    const k8s = await st('phase_external_identity.k8s');
    const aws = await st('phase_external_identity.aws');
    const sa = await saId();
    await ws.tf(dir, [
      'state',
      'rm',
      '-no-color',
      'phase_external_identity.k8s',
      'phase_external_identity.aws',
      'phase_service_account_identity.k8s',
    ]);
    expect(resources(await ws.state(dir)).map((r) => r.address)).not.toContain('phase_external_identity.k8s');
    // An imported JWKS reads back as `jsonencode` writes it (compact, keys sorted): written so, the plan is empty.
    opts = { ...opts, keys: 'jsonencode' };
    write(opts);
    await ws.tf(dir, ['import', '-input=false', '-no-color', 'phase_external_identity.k8s', k8s.id]);
    await ws.tf(dir, ['import', '-input=false', '-no-color', 'phase_external_identity.aws', aws.id]);
    await ws.tf(dir, [
      'import',
      '-input=false',
      '-no-color',
      'phase_service_account_identity.k8s',
      `${k8s.id}:${sa}`,
    ]);
    const imported = await st('phase_external_identity.k8s');
    expect(imported.provider_type).toBe('oidc');
    expect(imported.oidc[0].bound_subjects.sort()).toEqual([
      'system:serviceaccount:payments:api',
      'system:serviceaccount:payments:worker',
    ]);
    expect(imported.oidc[0].jwks_url).toBeNull();
    expect(JSON.parse(imported.oidc[0].jwks as string)).toHaveProperty('keys');
    expect((await st('phase_external_identity.aws')).aws_iam[0].sts_endpoint).toBe(
      'https://sts.eu-west-1.amazonaws.com',
    );
    expect(await plan()).toEqual({});
    const bad = await ws.tf(
      dir,
      ['import', '-input=false', '-no-color', 'phase_service_account_identity.aws', aws.id],
      [1],
    );
    expect(bad.stderr).toMatch(/<identity_id>:<service_account_id>/);
  });

  it('plans to attach again when an attachment is removed outside Terraform', async () => {
    const k8s = await st('phase_external_identity.k8s');
    await owner.detachExternalIdentity(k8s.id, await saId());
    expect(await plan()).toEqual({ 'phase_service_account_identity.k8s': ['create'] });
    await apply();
    expect((await owner.getExternalIdentity(k8s.id)).serviceAccounts).toEqual([await saId()]);
    expect(await plan()).toEqual({});
  });

  it('refuses at plan time a block that does not match provider_type, and a bare * pattern', async () => {
    const bad = ws.write('bad', {
      'main.tf': `${HEADER}
resource "phase_external_identity" "mismatch" {
  name          = "mismatch"
  provider_type = "aws_iam"
  oidc {
    issuer         = "https://token.actions.githubusercontent.com"
    audiences      = ["phase"]
    bound_subjects = ["repo:acme/payments:*"]
  }
}

resource "phase_external_identity" "anyone" {
  name          = "anyone"
  provider_type = "oidc"
  oidc {
    issuer         = "https://token.actions.githubusercontent.com"
    audiences      = ["phase"]
    bound_subjects = ["*"]
  }
}
`,
    });
    await ws.tf(bad, ['init', '-input=false', '-no-color']);
    const r = await ws.tf(bad, ['validate', '-no-color'], [1]);
    expect(r.stderr).toMatch(/provider_type = "aws_iam" needs one aws_iam block: add aws_iam \{/);
    expect(r.stderr).toMatch(/provider_type is "aws_iam", so the oidc block has no effect/);
    expect(r.stderr).toMatch(/A bare '\*' is not allowed/);
    expect(await owner.listExternalIdentities()).toHaveLength(2);
  });

  it('destroys the identities and their attachments', async () => {
    await ws.tf(dir, ['destroy', '-input=false', '-auto-approve', '-no-color']);
    expect(await owner.listExternalIdentities()).toEqual([]);
    expect(await owner.listServiceAccounts()).toEqual([]);
    expect(resources(await ws.state(dir))).toEqual([]);
  });
});

interface GraceOpts {
  tokenName: string;
  revokeGrace?: string;
}

function graceConfig(o: GraceOpts): string {
  return `${HEADER}
resource "phase_app" "app" {
  name = "grace-app"
}

resource "phase_secret" "k" {
  app_id = phase_app.app.id
  env    = "Development"
  key    = "K"
  value  = "v"
}

resource "phase_service_account" "rot" {
  name    = "rotating"
  role_id = data.phase_role.service.id
}

resource "phase_service_account_access" "rot" {
  service_account_id = phase_service_account.rot.id
  app {
    app_id       = phase_app.app.id
    environments = [phase_app.app.environment_ids["Development"]]
  }
}

resource "phase_service_account_token" "t" {
  depends_on         = [phase_service_account_access.rot]
  service_account_id = phase_service_account.rot.id
  name               = ${hcl(o.tokenName)}
  expires_in         = 86400
  ${o.revokeGrace ? `revoke_grace       = ${hcl(o.revokeGrace)}` : ''}
  lifecycle {
    create_before_destroy = true
  }
}
`;
}

describe('terraform: revoke_grace keeps a replaced token valid', () => {
  let srv: TestServer;
  let ws: Workspace;
  let owner: PhaseClient;
  let dir: string;
  const apply = async (o: GraceOpts): Promise<void> => {
    ws.write('grace', { 'main.tf': graceConfig(o) });
    await ws.tf(dir, ['apply', '-input=false', '-auto-approve', '-no-color']);
  };
  const plan = (o: GraceOpts): Promise<Record<string, string[]>> => {
    ws.write('grace', { 'main.tf': graceConfig(o) });
    return ws.planActions(dir);
  };
  const token = async (): Promise<{ id: string; token: string }> => {
    const v = resource(await ws.state(dir), 'phase_service_account_token.t').values;
    return { id: v.id as string, token: v.token as string };
  };
  const ids = async (): Promise<{ app: string; sa: string }> => {
    const s = await ws.state(dir);
    return {
      app: resource(s, 'phase_app.app').values.id as string,
      sa: resource(s, 'phase_service_account.rot').values.id as string,
    };
  };
  /** What the token reads with: the secret's keys, or the HTTP status it was refused with. */
  const readsWith = async (t: string): Promise<string[] | number> => {
    const c = new PhaseClient({ host: srv.url, token: t, retries: 0 });
    try {
      return (await c.listSecrets({ appId: (await ids()).app, env: 'Development' })).map((s) => s.key);
    } catch (e) {
      if (e instanceof ApiError) return e.status;
      throw e;
    }
  };

  beforeAll(async () => {
    requireTerraform();
    srv = await startTestServer();
    ws = createWorkspace({ PHASE_HOST: srv.url, PHASE_TOKEN: srv.ownerToken });
    owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
    dir = ws.write('grace', { 'main.tf': graceConfig({ tokenName: 't1', revokeGrace: '1h' }) });
    await ws.tf(dir, ['init', '-input=false', '-no-color']);
  });

  afterAll(async () => {
    ws?.cleanup();
    await srv?.close();
  });

  it('a token replaced with revoke_grace = "1h" still works after the apply that replaced it', async () => {
    await apply({ tokenName: 't1', revokeGrace: '1h' });
    const first = await token();
    expect(await readsWith(first.token)).toEqual(['K']);
    expect(await plan({ tokenName: 't2', revokeGrace: '1h' })).toEqual({
      'phase_service_account_token.t': ['create', 'delete'],
    });
    await apply({ tokenName: 't2', revokeGrace: '1h' });
    const second = await token();
    expect(second.id).not.toBe(first.id);
    expect(await readsWith(second.token)).toEqual(['K']);
    expect(await readsWith(first.token)).toEqual(['K']);
    // The server let the old token expire an hour from now instead of revoking it.
    const old = (await owner.getServiceAccount((await ids()).sa)).tokens.find((t) => t.id === first.id);
    const left = Date.parse(old?.expiresAt ?? '') - Date.now();
    expect(left).toBeGreaterThan(3500_000);
    expect(left).toBeLessThanOrEqual(3600_000);
  });

  it('without revoke_grace the replaced token is refused at once', async () => {
    // Removing the grace is an in-place change of state only.
    expect(await plan({ tokenName: 't2' })).toEqual({ 'phase_service_account_token.t': ['update'] });
    await apply({ tokenName: 't2' });
    const second = await token();
    await apply({ tokenName: 't3' });
    const third = await token();
    expect(third.id).not.toBe(second.id);
    expect(await readsWith(third.token)).toEqual(['K']);
    expect(await readsWith(second.token)).toBe(401);
    const tokens = (await owner.getServiceAccount((await ids()).sa)).tokens.map((t) => t.id);
    expect(tokens).not.toContain(second.id);
  });

  it('refuses a grace longer than 7 days at plan time', async () => {
    ws.write('grace', { 'main.tf': graceConfig({ tokenName: 't3', revokeGrace: '8d' }) });
    const r = await ws.tf(dir, ['plan', '-input=false', '-no-color'], [1]);
    expect(r.stderr).toMatch(/revoke_grace "8d" is longer than 7 days/);
    ws.write('grace', { 'main.tf': graceConfig({ tokenName: 't3' }) });
    await ws.tf(dir, ['destroy', '-input=false', '-auto-approve', '-no-color']);
    expect(await owner.listServiceAccounts()).toEqual([]);
  });
});

describe('identity state mapping and the grace, without terraform', () => {
  const record = {
    id: 'id-1',
    name: 'n',
    description: '',
    provider: 'oidc',
    config: {
      issuer: 'https://issuer.example',
      audiences: ['phase'],
      jwks: { keys: [{ kty: 'EC', kid: 'k', crv: 'P-256' }] },
      allowedAlgorithms: ['ES256', 'RS256'],
      boundSubjects: ['a', 'b'],
    },
    tokenNamePattern: null,
    defaultTtlSeconds: 3600,
    maxTtlSeconds: 86400,
    serviceAccounts: [],
  };

  test('an import (no prior state) reads server defaults as null and the JWKS as jsonencode writes it', () => {
    const st = identityState(record, { id: 'id-1' });
    expect(st).toMatchObject({
      description: null,
      token_name_pattern: null,
      provider_type: 'oidc',
      aws_iam: [],
    });
    const [oidc] = st.oidc as Array<Record<string, unknown>>;
    expect(oidc.allowed_algorithms).toBeNull();
    expect(oidc.jwks).toBe('{"keys":[{"crv":"P-256","kid":"k","kty":"EC"}]}');
    expect(oidc.bound_claims).toBeNull();
  });

  test('configured values keep their spelling and order when the server holds the same', () => {
    const prior = {
      id: 'id-1',
      oidc: [
        {
          allowed_algorithms: ['RS256', 'ES256'],
          jwks: '{ "keys": [ { "kty": "EC", "crv": "P-256", "kid": "k" } ] }',
          bound_subjects: ['b', 'a'],
        },
      ],
    };
    const [oidc] = identityState(record, prior).oidc as Array<Record<string, unknown>>;
    expect(oidc.allowed_algorithms).toEqual(['RS256', 'ES256']);
    expect(oidc.jwks).toBe(prior.oidc[0].jwks);
    expect(oidc.bound_subjects).toEqual(['b', 'a']);
    // A real change on the server shows up.
    const changed = { ...record, config: { ...record.config, boundSubjects: ['c'] } };
    expect((identityState(changed, prior).oidc as Array<Record<string, unknown>>)[0].bound_subjects).toEqual([
      'c',
    ]);
  });

  test('revoke_grace in seconds, and the client refuses a grace the server would refuse before sending', async () => {
    expect(graceSeconds({ revoke_grace: '1h30m' })).toBe(5400);
    expect(graceSeconds({ revoke_grace: null })).toBeUndefined();
    const sent: string[] = [];
    const client = new PhaseClient({
      host: 'http://127.0.0.1:9',
      token: 'ServiceAccount ' + 'a'.repeat(64),
      retries: 0,
      transport: async (req) => {
        sent.push(req.url);
        return { status: 204, header: () => null, text: '' };
      },
    });
    await expect(
      client.deleteServiceAccountToken('sa', 't', { graceSeconds: 8 * 86400 }),
    ).rejects.toBeInstanceOf(RequestValidationError);
    expect(sent).toEqual([]);
    await client.deleteServiceAccountToken('sa', 't', { graceSeconds: 60 });
    await client.deleteServiceAccountToken('sa', 't');
    expect(sent).toEqual([
      'http://127.0.0.1:9/service/public/v1/service-accounts/sa/tokens/t/?grace_seconds=60',
      'http://127.0.0.1:9/service/public/v1/service-accounts/sa/tokens/t/',
    ]);
  });
});
