/**
 * The constructs synthesise configuration the provider accepts: every attribute and block they emit exists in the
 * provider's own schema for that type, every required attribute is set, and the high-level construct wires
 * account, access and a rotating token together.
 */
import { Testing, TerraformStack } from '../../constructs/cdktf';
import {
  PhaseApp,
  PhaseEphemeralServiceAccountToken,
  PhaseProvider,
  PhaseSecret,
  PhaseServiceAccount,
  PhaseServiceAccountToken,
  WorkloadIdentity,
} from '../../constructs';
import { providerDef } from '../../provider/phase/provider';
import type { BlockDef } from '../../provider/framework/schema';

type Synth = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

function build(fn: (stack: TerraformStack) => void): Synth {
  const app = Testing.app();
  const stack = new TerraformStack(app, 'stack');
  fn(stack);
  return JSON.parse(Testing.synth(stack)) as Synth;
}

const META = new Set(['depends_on', 'lifecycle', 'provider', 'count', 'for_each']);

/** Problems with one synthesised body against a provider block schema (recursing into nested blocks). */
function conformance(block: BlockDef, body: Record<string, unknown>, where: string): string[] {
  const problems: string[] = [];
  const attrs = block.attributes ?? {};
  const blocks = block.blocks ?? {};
  for (const [k, v] of Object.entries(body)) {
    if (META.has(k)) continue;
    if (attrs[k]) {
      if (attrs[k].computed && !attrs[k].optional && !attrs[k].required)
        problems.push(`${where}.${k} is computed-only`);
      continue;
    }
    if (blocks[k]) {
      for (const [i, item] of (Array.isArray(v) ? v : [v]).entries()) {
        problems.push(
          ...conformance(blocks[k].block, item as Record<string, unknown>, `${where}.${k}[${i}]`),
        );
      }
      continue;
    }
    problems.push(`${where}.${k} is not in the provider schema`);
  }
  for (const [k, a] of Object.entries(attrs))
    if (a.required && !(k in body)) problems.push(`${where}.${k} is required`);
  return problems;
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
  new PhaseSecret(stack, 'db', {
    appId: app.id,
    env: 'Production',
    key: 'DATABASE_URL',
    valueWo: 'x',
    valueWoVersion: 1,
    path: '/db',
    tags: ['db'],
  });
  const wl = new WorkloadIdentity(stack, 'api', {
    name: 'api-server',
    access: [{ app, environments: ['Production'], paths: ['/db'] }],
    token: { rotateAfter: '720h', expiresIn: 90 * 86400 },
    outputToken: true,
  });
  new PhaseEphemeralServiceAccountToken(stack, 'ci', {
    serviceAccountId: wl.serviceAccount.id,
    expiresIn: 600,
  });
  new PhaseServiceAccountToken(stack, 'manual', {
    serviceAccountId: wl.serviceAccount.id,
    name: 'manual',
    expiresAt: '2030-01-01T00:00:00Z',
  });
}

describe('constructs', () => {
  test('every emitted attribute exists in the provider schema and required ones are set', () => {
    const out = build(everything);
    const problems: string[] = [];
    let checked = 0;
    for (const [kind, key] of [
      ['resource', 'resource'],
      ['data', 'data'],
      ['ephemeral', 'ephemeral'],
    ] as const) {
      for (const [type, instances] of Object.entries(out[key] ?? {})) {
        for (const [name, body] of Object.entries(instances)) {
          problems.push(...conformance(schemaOf(kind, type), body, `${kind}.${type}.${name}`));
          checked++;
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBe(8);
    const providerProblems = conformance(
      providerDef.schema.block,
      out.provider.phase[0] as never,
      'provider',
    );
    expect(providerProblems).toEqual([]);
  });

  test('the provider is required from the phase-bridge source', () => {
    const out = build(everything) as unknown as {
      terraform: { required_providers: Record<string, { source: string }> };
    };
    expect(out.terraform.required_providers.phase.source).toBe('phase-bridge/phase');
  });

  test('a workload identity wires account, access and a create-before-destroy rotating token', () => {
    const out = build(everything);
    const sa = Object.values(out.resource.phase_service_account)[0];
    expect(sa.name).toBe('api-server');
    expect(sa.role_id).toMatch(/^\$\{data\.phase_role\..+\.id\}$/);
    expect(Object.values(out.data.phase_role)[0]).toEqual({ name: 'Service' });
    const access = Object.values(out.resource.phase_service_account_access)[0] as {
      app: Array<Record<string, unknown>>;
    };
    expect(access.app).toHaveLength(1);
    expect(access.app[0].paths).toEqual(['/db']);
    expect(String((access.app[0].environments as string[])[0])).toContain('environment_ids');
    const tokens = Object.values(out.resource.phase_service_account_token);
    const rotating = tokens.find((t) => t.rotate_after === '720h') as Record<string, unknown>;
    expect(rotating.lifecycle).toEqual({ create_before_destroy: true });
    expect(rotating.depends_on).toEqual([expect.stringContaining('phase_service_account_access.')]);
    const outputs = (out as unknown as { output: Record<string, { sensitive: boolean; value: string }> })
      .output;
    expect(outputs.api_token.sensitive).toBe(true);
    expect(outputs.api_token.value).toMatch(/phase_service_account_token\..+\.token/);
  });

  test('the ephemeral token renders under the top-level ephemeral key and is referenced as ephemeral', () => {
    let ref = '';
    const out = build((stack) => {
      const sa = new PhaseServiceAccount(stack, 'sa', { name: 'ci', roleId: 'r' });
      const eph = new PhaseEphemeralServiceAccountToken(stack, 'tok', { serviceAccountId: sa.id });
      ref = eph.token;
    });
    const eph = out.ephemeral.phase_service_account_token;
    const [[name, body]] = Object.entries(eph);
    expect(body.service_account_id).toMatch(/phase_service_account\.sa\.id/);
    expect(ref).toBe(`\${ephemeral.phase_service_account_token.${name}.token}`);
    expect(out.resource?.phase_service_account_token).toBeUndefined();
  });

  test('write-only secret values are emitted as value_wo, never as value', () => {
    const out = build((stack) => {
      new PhaseSecret(stack, 's', {
        appId: 'a',
        env: 'Production',
        key: 'K',
        valueWo: 'w',
        valueWoVersion: 2,
      });
    });
    const s = out.resource.phase_secret.s;
    expect(s).toEqual({ app_id: 'a', env: 'Production', key: 'K', value_wo: 'w', value_wo_version: 2 });
  });
});
