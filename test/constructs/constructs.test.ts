/**
 * The level-2 constructs: what each synthesises (through cdktf's own Testing helpers and jest matchers), that every
 * attribute and block they emit exists in the provider's schema with required ones set, and every synth-time
 * validation message. Runs against cdktf and, through the import seam, cdktn.
 */
import type {} from 'cdktf/lib/testing/adapters/jest';
import { Testing, TerraformStack } from '../../constructs/cdktf';
import {
  agentSidecar,
  PhaseApp,
  PhaseNetworkPolicy,
  PhaseProvider,
  PhaseRole,
  PhaseServiceAccount,
  WorkloadIdentity,
} from '../../constructs';
import {
  app as l1app,
  dataPhaseRole,
  networkPolicy,
  networkPolicyAttachment,
  provider as l1provider,
  role as l1role,
  secret as l1secret,
  serviceAccount,
  serviceAccountAccess,
  serviceAccountToken,
} from '../../constructs/provider';
import {
  externalIdentity as l1identity,
  serviceAccountIdentity as l1attachment,
} from '../../constructs/provider';
import { providerDef } from '../../provider/provider';
import type { BlockDef } from '../../provider/framework/schema';

Testing.setupJest();

type Synth = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

/** A stack built by `fn`, with the provider added when `fn` did not (cdktf validates that there is one). */
function stackOf(fn: (stack: TerraformStack) => void): TerraformStack {
  const stack = new TerraformStack(Testing.app(), 'stack');
  fn(stack);
  if (!stack.node.tryFindChild('phase')) new PhaseProvider(stack, 'phase');
  return stack;
}

/** Synthesises with validations, as `cdktf synth` does: a validation problem throws. */
function synth(fn: (stack: TerraformStack) => void): Synth {
  return JSON.parse(Testing.synth(stackOf(fn), true)) as Synth;
}

/** The error a validating synth throws, or '' when it succeeds. */
function problems(fn: (stack: TerraformStack) => void): string {
  try {
    Testing.synth(stackOf(fn), true);
    return '';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const META = new Set(['depends_on', 'lifecycle', 'provider', 'count', 'for_each']);

/** Problems with one synthesised body against a provider block schema (recursing into nested blocks). */
function conformance(block: BlockDef, body: Record<string, unknown>, where: string): string[] {
  const out: string[] = [];
  const attrs = block.attributes ?? {};
  const blocks = block.blocks ?? {};
  for (const [k, v] of Object.entries(body)) {
    if (META.has(k)) continue;
    if (attrs[k]) {
      if (attrs[k].computed && !attrs[k].optional && !attrs[k].required)
        out.push(`${where}.${k} is computed-only`);
      continue;
    }
    if (blocks[k]) {
      for (const [i, item] of (Array.isArray(v) ? v : [v]).entries()) {
        out.push(...conformance(blocks[k].block, item as Record<string, unknown>, `${where}.${k}[${i}]`));
      }
      continue;
    }
    out.push(`${where}.${k} is not in the provider schema`);
  }
  for (const [k, a] of Object.entries(attrs))
    if (a.required && !(k in body)) out.push(`${where}.${k} is required`);
  return out;
}

function schemaOf(kind: 'resource' | 'data' | 'ephemeral', type: string): BlockDef {
  const list =
    kind === 'resource'
      ? providerDef.resources
      : kind === 'data'
        ? providerDef.dataSources
        : providerDef.ephemeralResources;
  const def = list.find((d) => d.typeName === type);
  if (!def) throw new Error(`provider has no ${kind} ${type}`);
  return def.schema.block;
}

function everything(stack: TerraformStack): void {
  new PhaseProvider(stack, 'phase', { host: 'http://127.0.0.1:8080' });
  const app = new PhaseApp(stack, 'app', { name: 'payments', environments: ['Development', 'Production'] });
  app.addEnvironment('Preview');
  app.addSecret('Production', 'DATABASE_URL', { valueWo: 'x', path: '/db', tags: ['db'] });
  app.addSecrets('Development', { A: '1', B: '2' }, { path: '/api' });
  const role = new PhaseRole(stack, 'reader', {
    name: 'reader',
    permissions: { Apps: ['read'] },
    appPermissions: { Secrets: ['read'] },
  });
  const wl = new WorkloadIdentity(stack, 'api', {
    name: 'api-server',
    access: [{ app, environments: ['Production', 'Preview'], paths: ['/db'] }],
    token: { rotateAfter: '720h', expiresIn: '90d' },
    outputToken: true,
  });
  wl.serviceAccount.addEphemeralToken('ci', { expiresIn: 600 });
  wl.serviceAccount.addToken('manual', { expiresAt: '2099-01-01T00:00:00Z' });
  const reader = new PhaseServiceAccount(stack, 'reader-sa', { name: 'reader', role });
  reader.grant(app, ['Development']);
  new PhaseNetworkPolicy(stack, 'office', { name: 'office', allowedIps: ['10.0.0.0/8', '::1'] }).attach(
    reader,
  );
}

describe('constructs: what they synthesise', () => {
  test('every emitted attribute exists in the provider schema and required ones are set', () => {
    const out = synth(everything);
    const found: string[] = [];
    let checked = 0;
    for (const kind of ['resource', 'data', 'ephemeral'] as const) {
      for (const [type, instances] of Object.entries(out[kind] ?? {})) {
        for (const [name, body] of Object.entries(instances)) {
          found.push(...conformance(schemaOf(kind, type), body, `${kind}.${type}.${name}`));
          checked++;
        }
      }
    }
    expect(found).toEqual([]);
    // app, environment, 3 secrets, role, 2 accounts, 2 access, 2 tokens, policy, attachment; 1 lookup; 1 ephemeral
    expect(checked).toBe(16);
    expect(conformance(providerDef.schema.block, out.provider.phase[0] as never, 'provider')).toEqual([]);
  });

  test('PhaseProvider: the phase-bridge source, host and token from props, nothing when left to the environment', () => {
    const withHost = Testing.synthScope(
      (s) => new PhaseProvider(s, 'phase', { host: 'https://phase.example' }),
    );
    expect(withHost).toHaveProviderWithProperties(l1provider.PhaseProvider, {
      host: 'https://phase.example',
    });
    const bare = JSON.parse(Testing.synth(stackOf((s) => void new PhaseProvider(s, 'phase')))) as {
      provider: { phase: Array<Record<string, unknown>> };
      terraform: { required_providers: Record<string, { source: string }> };
    };
    expect(bare.provider.phase).toEqual([{}]);
    expect(bare.terraform.required_providers.phase.source).toBe('phase-bridge/phase');
  });

  test('PhaseApp: environments by name, custom environments, secrets plain and write-only', () => {
    const synthed = Testing.synthScope((s) => {
      const app = new PhaseApp(s, 'app', { name: 'shop' });
      app.addSecret('Staging', 'TOKEN', { valueWo: 'w', valueWoVersion: 3, comment: 'c' });
      app.addSecrets('Production', { URL: 'https://x' }, { path: '/web', tags: ['web'] });
      app.addEnvironment('Preview');
      app.addSecret('Preview', 'P', { value: 'p' });
    });
    expect(synthed).toHaveResourceWithProperties(l1app.App, { name: 'shop' });
    expect(synthed).toHaveResourceWithProperties(l1secret.Secret, {
      env: 'Staging',
      key: 'TOKEN',
      value_wo: 'w',
      value_wo_version: 3,
      comment: 'c',
    });
    expect(synthed).toHaveResourceWithProperties(l1secret.Secret, {
      env: 'Production',
      key: 'URL',
      value: 'https://x',
      path: '/web',
      tags: ['web'],
    });
    const out = JSON.parse(synthed) as Synth;
    const tokenSecret = Object.values(out.resource.phase_secret).find((s) => s.key === 'TOKEN')!;
    expect(tokenSecret.value).toBeUndefined();
    const preview = Object.values(out.resource.phase_secret).find((s) => s.key === 'P')!;
    expect(preview.depends_on).toEqual([expect.stringContaining('phase_environment.')]);
  });

  test('PhaseServiceAccount: grants by environment name accumulate into one access resource', () => {
    const out = synth((s) => {
      const a = new PhaseApp(s, 'a', { name: 'a' });
      const b = new PhaseApp(s, 'b', { name: 'b' });
      const sa = new PhaseServiceAccount(s, 'sa', { name: 'worker', role: 'Developer' });
      sa.grant(a, ['Development'])
        .grant(a, ['Staging'], { paths: ['/x'] })
        .grant(b, ['Production'], { paths: ['/p'] });
      sa.grant(b, ['Production'], { paths: ['/q'] });
    });
    const accesses = Object.values(out.resource.phase_service_account_access);
    expect(accesses).toHaveLength(1);
    const apps = accesses[0].app as Array<{ app_id: string; environments: string[]; paths?: string[] }>;
    expect(apps).toHaveLength(2);
    // A grant without paths gives every path, so app a has none; app b accumulates both.
    expect(apps[0].paths).toBeUndefined();
    expect(apps[0].environments).toHaveLength(2);
    expect(
      apps[0].environments.every((e) => /environment_ids/.test(e) && /Development|Staging/.test(e)),
    ).toBe(true);
    expect(apps[1].paths).toEqual(['/p', '/q']);
    expect(Object.values(out.data.phase_role)).toEqual([{ name: 'Developer' }]);
  });

  test('PhaseServiceAccount: managed roles are looked up once per stack; a PhaseRole is referenced', () => {
    const out = synth((s) => {
      const custom = new PhaseRole(s, 'r', { name: 'r', appPermissions: { Secrets: ['read'] } });
      new PhaseServiceAccount(s, 'one', { name: 'one' });
      new PhaseServiceAccount(s, 'two', { name: 'two' });
      new PhaseServiceAccount(s, 'three', { name: 'three', role: custom });
    });
    expect(Object.values(out.data.phase_role)).toEqual([{ name: 'Service' }]);
    const roles = Object.values(out.resource.phase_service_account).map((x) => String(x.role_id));
    expect(roles.filter((r) => r.includes('data.phase_role'))).toHaveLength(2);
    expect(roles.filter((r) => r.includes('phase_role.r_role'))).toHaveLength(1);
    expect(Object.values(out.resource.phase_role)[0]).toEqual({
      name: 'r',
      permissions: {},
      app_permissions: { Secrets: ['read'] },
    });
  });

  test('addToken: sensitive values, rotation as create-before-destroy, after the account’s access', () => {
    const synthed = Testing.synthScope((s) => {
      const app = new PhaseApp(s, 'app', { name: 'app' });
      const sa = new PhaseServiceAccount(s, 'sa', { name: 'sa' });
      const t = sa.addToken('deploy', { expiresIn: 3600, rotateAfter: '30m' });
      sa.grant(app, ['Development']);
      t.toOutput('deploy_token');
    });
    expect(synthed).toHaveResourceWithProperties(serviceAccountToken.ServiceAccountToken, {
      name: 'deploy',
      expires_in: 3600,
      rotate_after: '30m',
      lifecycle: { create_before_destroy: true },
    });
    const out = JSON.parse(synthed) as Synth & {
      output: Record<string, { sensitive: boolean; value: string }>;
    };
    const token = Object.values(out.resource.phase_service_account_token)[0];
    expect(token.depends_on).toEqual([expect.stringContaining('phase_service_account_access.')]);
    expect(out.output.deploy_token.sensitive).toBe(true);
    expect(out.output.deploy_token.value).toMatch(/phase_service_account_token\..+\.token/);
  });

  test('addEphemeralToken renders under the top-level ephemeral key and is referenced as ephemeral', () => {
    let ref = '';
    const out = synth((s) => {
      const sa = new PhaseServiceAccount(s, 'sa', { name: 'ci' });
      ref = sa.addEphemeralToken('tok', { expiresIn: 300 }).token;
    });
    const [[name, body]] = Object.entries(out.ephemeral.phase_service_account_token);
    expect(body).toEqual({
      service_account_id: expect.stringMatching(/phase_service_account\.sa_account/),
      expires_in: 300,
    });
    expect(ref).toBe(`\${ephemeral.phase_service_account_token.${name}.token}`);
    expect(out.resource.phase_service_account_token).toBeUndefined();
  });

  test('PhaseNetworkPolicy: attach confines a service account', () => {
    const synthed = Testing.synthScope((s) => {
      const sa = new PhaseServiceAccount(s, 'sa', { name: 'sa' });
      new PhaseNetworkPolicy(s, 'p', { name: 'office', allowedIps: ['192.0.2.0/24'] }).attach(sa);
    });
    expect(synthed).toHaveResourceWithProperties(networkPolicy.NetworkPolicy, {
      name: 'office',
      allowed_ips: ['192.0.2.0/24'],
    });
    expect(synthed).toHaveResourceWithProperties(networkPolicyAttachment.NetworkPolicyAttachment, {
      account_type: 'service_account',
    });
  });

  test('WorkloadIdentity: account, access and token, with a sensitive output', () => {
    const synthed = Testing.synthScope((s) => {
      const app = new PhaseApp(s, 'app', { name: 'app' });
      new WorkloadIdentity(s, 'api', {
        name: 'api',
        access: [{ app, environments: ['Production'] }],
        outputToken: true,
      });
    });
    expect(synthed).toHaveResourceWithProperties(serviceAccount.ServiceAccount, { name: 'api' });
    expect(synthed).toHaveResource(serviceAccountAccess.ServiceAccountAccess);
    expect(synthed).toHaveResourceWithProperties(serviceAccountToken.ServiceAccountToken, {
      name: 'default',
    });
    expect(synthed).toHaveDataSourceWithProperties(dataPhaseRole.DataPhaseRole, { name: 'Service' });
    expect(synthed).not.toHaveResource(l1role.Role);
    expect(
      (JSON.parse(synthed) as { output: Record<string, { sensitive: boolean }> }).output.api_token.sensitive,
    ).toBe(true);
  });
});

describe('constructs: synth-time validation names the construct and the fix', () => {
  test('an environment name the app does not have', () => {
    const msg = problems((s) => {
      const app = new PhaseApp(s, 'shop', { name: 'shop', environments: ['Development', 'Production'] });
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).grant(app, ['Prod']);
    });
    expect(msg).toContain(
      "PhaseApp 'stack/shop': has no environment 'Prod'; it has Development, Production.",
    );
    expect(msg).toContain("call addEnvironment('Prod')");
  });

  test('a secret in an unknown environment', () => {
    expect(
      problems((s) => void new PhaseApp(s, 'a', { name: 'a' }).addSecret('QA', 'K', { value: 'v' })),
    ).toContain("has no environment 'QA'");
  });

  test('expiresAt and expiresIn together', () => {
    const msg = problems((s) =>
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).addToken('t', {
        expiresIn: 60,
        expiresAt: '2099-01-01T00:00:00Z',
      }),
    );
    expect(msg).toContain("PhaseToken 'stack/sa/t': give 'expiresIn' or 'expiresAt', not both.");
  });

  test('an expiry in the past', () => {
    const msg = problems((s) =>
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).addToken('t', { expiresAt: '2001-01-01T00:00:00Z' }),
    );
    expect(msg).toContain("expiresAt '2001-01-01T00:00:00Z' is in the past.");
  });

  test('rotateAfter not shorter than the lifetime', () => {
    const msg = problems((s) =>
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).addToken('t', {
        expiresIn: '30d',
        rotateAfter: '720h',
      }),
    );
    expect(msg).toContain("rotateAfter '720h' is not shorter than the token's lifetime");
    expect(
      problems((s) =>
        new PhaseServiceAccount(s, 'sa', { name: 'sa' }).addToken('t', {
          expiresIn: '31d',
          rotateAfter: '720h',
        }),
      ),
    ).toBe('');
  });

  test('a malformed duration', () => {
    const msg = problems((s) =>
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).addToken('t', { rotateAfter: 'monthly' }),
    );
    expect(msg).toContain(`rotateAfter 'monthly' is not a duration like "720h" or "30d".`);
  });

  test('a role with global access given to a service account', () => {
    const msg = problems((s) => void new PhaseServiceAccount(s, 'sa', { name: 'sa', role: 'Admin' }));
    expect(msg).toContain(
      "PhaseServiceAccount 'stack/sa': the 'Admin' role has global access, which service accounts cannot hold",
    );
  });

  test('a grant with no environments', () => {
    const msg = problems((s) => {
      const app = new PhaseApp(s, 'app', { name: 'app' });
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).grant(app, []);
    });
    expect(msg).toContain("a grant on app 'app' lists no environments; name at least one");
  });

  test('a secret with both or neither of value and valueWo', () => {
    const both = problems(
      (s) =>
        void new PhaseApp(s, 'a', { name: 'a' }).addSecret('Development', 'K', { value: 'v', valueWo: 'w' }),
    );
    expect(both).toContain("give exactly one of 'value' or 'valueWo' for secret 'K'.");
    const neither = problems(
      (s) => void new PhaseApp(s, 'a', { name: 'a' }).addSecret('Development', 'K', {}),
    );
    expect(neither).toContain("give exactly one of 'value' or 'valueWo' for secret 'K'.");
  });

  test('a network policy with a malformed entry', () => {
    const msg = problems(
      (s) => void new PhaseNetworkPolicy(s, 'p', { name: 'p', allowedIps: ['10.0.0.0/33', 'nope'] }),
    );
    expect(msg).toContain("'10.0.0.0/33' is not an IPv4/IPv6 address or CIDR range.");
    expect(msg).toContain("'nope' is not an IPv4/IPv6 address or CIDR range.");
  });

  test('a secret declared twice is refused at once', () => {
    expect(() =>
      stackOf((s) => {
        const app = new PhaseApp(s, 'a', { name: 'a' });
        app.addSecret('Development', 'K', { value: '1' });
        app.addSecret('Development', 'K', { value: '2' });
      }),
    ).toThrow("secret 'K' at '/' in 'Development' is declared twice.");
  });
});

describe('agentSidecar', () => {
  test('a Kubernetes native sidecar with the token as a file and exec probes, and an ECS definition', () => {
    const spec = agentSidecar({ app: 'shop', environment: 'Production', host: 'https://phase.example' });
    const c = spec.kubernetes.initContainer as {
      restartPolicy: string;
      args: string[];
      readinessProbe: { exec: { command: string[] } };
      resources: { requests: { memory: string }; limits: { memory: string } };
      volumeMounts: Array<{ name: string; mountPath: string }>;
    };
    expect(c.restartPolicy).toBe('Always');
    expect(c.args).toEqual(
      expect.arrayContaining([
        'agent',
        '--token-file=/var/run/secrets/phase/token',
        '--app=shop',
        '--env=Production',
      ]),
    );
    expect(c.readinessProbe.exec.command).toEqual(expect.arrayContaining(['agent-probe', '/readyz']));
    // The agent owns a subdirectory of the (world-writable) emptyDir, which it would refuse as its data directory.
    expect(c.args).toContain('--data-dir=/run/phase-agent/agent');
    expect(c.volumeMounts).toContainEqual({ name: 'phase-agent', mountPath: '/run/phase-agent' });
    expect(c.resources).toEqual({ requests: { cpu: '20m', memory: '80Mi' }, limits: { memory: '128Mi' } });
    expect(spec.kubernetes.volumes[0]).toEqual({
      name: 'phase-token',
      secret: {
        secretName: 'phase-service-token',
        defaultMode: 0o440,
        items: [{ key: 'token', path: 'token' }],
      },
    });
    expect(spec.kubernetes.workloadEnv).toContainEqual({
      name: 'PHASE_AGENT_TOKEN_FILE',
      value: '/run/phase-agent/agent/client-token',
    });
    expect(spec.ecs).toMatchObject({
      name: 'phase-agent',
      essential: true,
      memoryReservation: 80,
      memory: 128,
    });
    expect(spec.ecs.environment).toEqual([{ name: 'PHASE_HOST', value: 'https://phase.example' }]);
  });
});

describe('PhaseServiceAccount: workload identity (trustKubernetes, trustOidc, trustAwsPrincipal) and revokeGrace', () => {
  /** Every emitted body of the two identity types against the provider schema. */
  const conforms = (out: Synth): string[] =>
    ['phase_external_identity', 'phase_service_account_identity'].flatMap((type) =>
      Object.entries(out.resource[type] ?? {}).flatMap(([name, body]) =>
        conformance(schemaOf('resource', type), body, `${type}.${name}`),
      ),
    );

  test('trustKubernetes: an oidc identity bound to the pod service account and audience, attached to the account', () => {
    let returned: unknown;
    const out = synth((s) => {
      const sa = new PhaseServiceAccount(s, 'sa', { name: 'payments-api' });
      returned = sa.trustKubernetes({
        issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE',
        namespace: 'payments',
        serviceAccount: 'api',
        audience: 'phase',
        tokenTtl: '15m',
        maxTtl: '1h',
      });
    });
    expect(returned).toBeInstanceOf(l1identity.ExternalIdentity);
    expect(conforms(out)).toEqual([]);
    const [[name, identity]] = Object.entries(out.resource.phase_external_identity);
    expect(identity).toEqual({
      name: 'payments-api: kubernetes payments/api',
      provider_type: 'oidc',
      default_ttl_seconds: 900,
      max_ttl_seconds: 3600,
      oidc: [
        {
          issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE',
          audiences: ['phase'],
          bound_subjects: ['system:serviceaccount:payments:api'],
        },
      ],
    });
    const attachments = Object.values(out.resource.phase_service_account_identity);
    expect(attachments).toEqual([
      {
        identity_id: `\${phase_external_identity.${name}.id}`,
        service_account_id: expect.stringMatching(/^\$\{phase_service_account\.sa_account_[A-Z0-9]+\.id\}$/),
      },
    ]);
  });

  test('trustOidc: subjects, claims, inline keys as JSON text, algorithms; two identities on one issuer get their own ids', () => {
    const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }] };
    const synthed = Testing.synthScope((s) => {
      const sa = new PhaseServiceAccount(s, 'deploy', { name: 'deploy' });
      sa.trustOidc({
        issuer: 'https://token.actions.githubusercontent.com',
        audiences: ['https://github.com/acme'],
        subjects: ['repo:acme/payments:environment:production'],
        claims: { ref: 'refs/heads/main' },
        jwks,
        allowedAlgorithms: ['RS256'],
        name: 'github deploys',
      });
      sa.trustOidc({
        issuer: 'https://token.actions.githubusercontent.com',
        audiences: ['https://github.com/acme'],
        subjects: ['repo:acme/infra:*'],
      });
    });
    expect(synthed).toHaveResourceWithProperties(l1identity.ExternalIdentity, {
      name: 'github deploys',
      provider_type: 'oidc',
      oidc: [
        {
          issuer: 'https://token.actions.githubusercontent.com',
          audiences: ['https://github.com/acme'],
          bound_subjects: ['repo:acme/payments:environment:production'],
          bound_claims: { ref: 'refs/heads/main' },
          jwks: JSON.stringify(jwks),
          allowed_algorithms: ['RS256'],
        },
      ],
    });
    expect(synthed).toHaveResource(l1attachment.ServiceAccountIdentity);
    const out = JSON.parse(synthed) as Synth;
    expect(Object.keys(out.resource.phase_external_identity)).toHaveLength(2);
    expect(Object.keys(out.resource.phase_service_account_identity)).toHaveLength(2);
    const second = Object.values(out.resource.phase_external_identity).find(
      (i) => i.name !== 'github deploys',
    )!;
    expect(second.name).toBe('deploy: oidc token.actions.githubusercontent.com');
    expect(second.default_ttl_seconds).toBeUndefined();
  });

  test('trustAwsPrincipal: one pattern or several, the regional STS endpoint, no oidc block', () => {
    const out = synth((s) => {
      const sa = new PhaseServiceAccount(s, 'worker', { name: 'worker' });
      sa.trustAwsPrincipal('arn:aws:sts::123456789012:assumed-role/worker/*', {
        stsEndpoint: 'https://sts.eu-west-1.amazonaws.com',
        tokenTtl: 600,
      });
      sa.trustAwsPrincipal([
        'arn:aws:iam::123456789012:role/batch',
        'arn:aws:sts::123456789012:assumed-role/batch/*',
      ]);
    });
    expect(conforms(out)).toEqual([]);
    // Synthesised in logical-id order: find each by its content.
    const all = Object.values(out.resource.phase_external_identity);
    expect(all).toHaveLength(2);
    const one = all.find((i) => i.default_ttl_seconds === 600)!;
    const two = all.find((i) => i !== one)!;
    expect(one).toEqual({
      name: 'worker: aws iam',
      provider_type: 'aws_iam',
      default_ttl_seconds: 600,
      aws_iam: [
        {
          trusted_principals: ['arn:aws:sts::123456789012:assumed-role/worker/*'],
          sts_endpoint: 'https://sts.eu-west-1.amazonaws.com',
        },
      ],
    });
    expect(two.aws_iam).toEqual([
      {
        trusted_principals: [
          'arn:aws:iam::123456789012:role/batch',
          'arn:aws:sts::123456789012:assumed-role/batch/*',
        ],
      },
    ]);
  });

  test('revokeGrace reaches the level-1 token', () => {
    const synthed = Testing.synthScope((s) => {
      new PhaseServiceAccount(s, 'sa', { name: 'sa' }).addToken('t', {
        rotateAfter: '30d',
        revokeGrace: '1h',
      });
    });
    expect(synthed).toHaveResourceWithProperties(serviceAccountToken.ServiceAccountToken, {
      rotate_after: '30d',
      revoke_grace: '1h',
      lifecycle: { create_before_destroy: true },
    });
  });

  test('refused at synth: a bare * pattern, empty subjects and namespace, a non-https issuer', () => {
    const sa = (s: TerraformStack) => new PhaseServiceAccount(s, 'sa', { name: 'sa' });
    const anySubject = problems((s) =>
      sa(s).trustOidc({ issuer: 'https://issuer.example', audiences: ['phase'], subjects: ['*'] }),
    );
    expect(anySubject).toContain(
      "PhaseServiceAccount 'stack/sa': trustOidc: 'subjects' has the pattern '*', which would trust anyone; narrow it",
    );
    expect(
      problems((s) =>
        sa(s).trustOidc({ issuer: 'https://issuer.example', audiences: ['phase'], subjects: [] }),
      ),
    ).toContain("trustOidc: 'subjects' is empty; list at least one pattern");
    expect(problems((s) => sa(s).trustAwsPrincipal('*'))).toContain(
      "trustAwsPrincipal: 'arnPattern' has the pattern '*', which would trust anyone",
    );
    const k8s = (issuer: string, namespace = 'payments') =>
      problems((s) => sa(s).trustKubernetes({ issuer, namespace, serviceAccount: 'api', audience: 'phase' }));
    expect(k8s('https://kubernetes.default.svc', '')).toContain(
      "trustKubernetes: 'namespace' is empty; name the pods' namespace.",
    );
    expect(k8s('http://issuer.example')).toContain(
      "trustKubernetes: issuer 'http://issuer.example' must be an https:// URL (plain http is allowed only for 127.0.0.1 and localhost, in tests).",
    );
    expect(k8s('http://127.0.0.1:8443')).toBe('');
    expect(k8s('http://localhost:8443')).toBe('');
    expect(k8s('https://kubernetes.default.svc', 'pay*')).toContain('holds a pattern character');
  });

  test('refused at synth: conflicting keys, HMAC, a token TTL above the maximum, a grace over 7 days', () => {
    const sa = (s: TerraformStack) => new PhaseServiceAccount(s, 'sa', { name: 'sa' });
    const msg = problems((s) =>
      sa(s).trustOidc({
        issuer: 'https://issuer.example',
        audiences: ['phase'],
        subjects: ['ci'],
        jwksUrl: 'https://issuer.example/keys',
        jwks: { keys: [] },
        allowedAlgorithms: ['HS256'],
        claims: { ref: '*' },
        tokenTtl: '2d',
      }),
    );
    expect(msg).toContain("trustOidc: give 'jwksUrl' or 'jwks', not both.");
    expect(msg).toContain("trustOidc: algorithm 'HS256' is not allowed");
    expect(msg).toContain("trustOidc: claim 'ref' has the pattern '*', which matches anything");
    expect(msg).toContain(
      'trustOidc: tokenTtl (172800s) is longer than maxTtl (86400s, the default); raise maxTtl or shorten tokenTtl.',
    );
    expect(problems((s) => sa(s).trustAwsPrincipal('arn:aws:iam::1:role/x', { maxTtl: '31d' }))).toContain(
      "trustAwsPrincipal: maxTtl '31d' is longer than 30 days.",
    );
    expect(problems((s) => void sa(s).addToken('t', { revokeGrace: '8d' }))).toContain(
      "PhaseToken 'stack/sa/t': revokeGrace '8d' is longer than 7 days; use at most \"7d\".",
    );
    expect(problems((s) => void sa(s).addToken('t', { revokeGrace: 'soon' }))).toContain(
      `revokeGrace 'soon' is not a duration like "1h" or "30m".`,
    );
  });
});
