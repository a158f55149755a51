/**
 * Workload identity end to end (issue 13): a CDKTF stack declares an app, a secret and a service account that trusts
 * a Kubernetes service account, and no token at all; terraform applies it through the real provider against the real
 * server; the agent logs in with a projected-token file from an OIDC issuer on loopback, serves the secrets, and keeps
 * serving across several token lifetimes; the Terraform state holds no token.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Testing, TerraformOutput, TerraformStack } from '../../constructs/cdktf';
import { PhaseApp, PhaseProvider, PhaseServiceAccount } from '../../constructs';
import { startOidcIssuer, type OidcIssuer } from '../support/identity-issuers';
import { freePort } from '../support/ports';
import { startTestServer, type TestServer } from '../support/server';
import { TERRAFORM, createWorkspace, requireTerraform, type Workspace } from '../provider/terraform-harness';

jest.setTimeout(300_000);

const ROOT = resolve(__dirname, '..', '..');
let server: TestServer;
let issuer: OidcIssuer;
let ws: Workspace;
let dir: string;
let tmp: string;
let agent: ChildProcess | undefined;

function tf(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(TERRAFORM, [...args, '-no-color'], { cwd: dir, env: ws.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done(out) : fail(new Error(`terraform ${args[0]} exited ${code}\n${out}`)),
    );
  });
}

beforeAll(async () => {
  requireTerraform();
  issuer = await startOidcIssuer();
  server = await startTestServer({ store: 'sqlite', allowLoopbackIdentityEndpoints: true });
  ws = createWorkspace({ PHASE_HOST: server.url, PHASE_TOKEN: server.ownerToken });
  tmp = mkdtempSync(join(tmpdir(), 'pb-k8s-'));
  const app = Testing.app();
  const stack = new TerraformStack(app, 'k8s');
  new PhaseProvider(stack, 'phase');
  const shop = new PhaseApp(stack, 'app', { name: 'k8s-shop' });
  shop.addSecret('Production', 'DB_URL', { value: 'postgres://k8s' });
  const api = new PhaseServiceAccount(stack, 'api', { name: 'k8s-api' });
  api.grant(shop, ['Production']);
  // Short tokens, so the test sees several renewals.
  api.trustKubernetes({
    issuer: issuer.url,
    namespace: 'shop',
    serviceAccount: 'api',
    audience: 'phase',
    tokenTtl: 4,
  });
  new TerraformOutput(stack, 'account_id', { value: api.id });
  dir = join(Testing.fullSynth(stack), 'stacks', 'k8s');
});

afterAll(async () => {
  agent?.kill('SIGTERM');
  ws?.cleanup();
  await server?.close();
  await issuer?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('no token declared or stored; the agent logs in with a projected token and keeps serving across renewals', async () => {
  await tf(['init', '-input=false']);
  await tf(['apply', '-auto-approve', '-input=false']);
  const state = readFileSync(join(dir, 'terraform.tfstate'), 'utf8');
  expect(state).not.toMatch(/pss_service:|ServiceAccount [0-9a-f]{64}/);
  const accountId = (await tf(['output', '-raw', 'account_id'])).trim();

  const jwtFile = join(tmp, 'token');
  writeFileSync(
    jwtFile,
    await issuer.kubernetesToken({
      namespace: 'shop',
      serviceAccount: 'api',
      audience: 'phase',
      expiresIn: 600,
    }),
  );
  chmodSync(jwtFile, 0o600);
  const port = await freePort();
  const dataDir = join(tmp, 'agent');
  agent = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'phase-bridge.js'),
      'agent',
      '--host',
      server.url,
      '--auth',
      'kubernetes',
      '--account-id',
      accountId,
      '--jwt-file',
      jwtFile,
      '--app',
      'k8s-shop',
      '--env',
      'Production',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
    ],
    { env: { PATH: process.env.PATH, HOME: tmp, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let logs = '';
  agent.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  agent.stdout?.on('data', (d: Buffer) => (logs += d.toString()));

  const read = async (): Promise<number> => {
    try {
      const clientToken = readFileSync(join(dataDir, 'client-token'), 'utf8').trim();
      const r = await fetch(`http://127.0.0.1:${port}/v1/secrets/DB_URL`, {
        headers: { 'X-Phase-Agent-Token': clientToken },
      });
      return r.status;
    } catch {
      return 0;
    }
  };
  // Ready once it serves.
  const deadline = Date.now() + 60_000;
  while ((await read()) !== 200) {
    if (Date.now() > deadline) throw new Error(`the agent never served the secret:\n${logs}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  // Across three token lifetimes (4 s each), every read succeeds.
  const statuses: number[] = [];
  const until = Date.now() + 13_000;
  while (Date.now() < until) {
    statuses.push(await read());
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
  expect(statuses.length).toBeGreaterThan(20);

  // The server minted several short tokens for the account through the identity, none stored by terraform.
  const owner = await fetch(`${server.url}/v1/service-accounts/${accountId}/`, {
    headers: { Authorization: `Bearer User ${server.ownerToken.split(':')[2]}` },
  });
  const detail = (await owner.json()) as { tokens: Array<{ name: string }> };
  expect(detail.tokens.filter((t) => t.name === 'oidc').length).toBeGreaterThanOrEqual(3);
  expect(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')).not.toMatch(/pss_service:/);

  await tf(['destroy', '-auto-approve', '-input=false']);
});
