/**
 * Declared in TypeScript, deployed by the real terraform binary through the real provider, against the real server:
 * the quickstart stack (examples/cdktf) creates an app, secrets and a workload identity whose token then decrypts
 * the secrets end to end. A second plan is empty, the write-only value never reaches state, destroy empties the server.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing } from '../../constructs/cdktf';
import { initCrypto } from '../../core/crypto';
import { PhaseClient } from '../../core/client';
import { PhaseSession } from '../../core/session';
import { QuickstartStack } from '../../examples/cdktf/stack';
import { startTestServer, type TestServer } from '../support/server';
import { TERRAFORM, createWorkspace, requireTerraform, type Workspace } from '../provider/terraform-harness';

jest.setTimeout(300_000);

let server: TestServer;
let ws: Workspace;
let dir: string;

beforeAll(async () => {
  requireTerraform();
  await initCrypto();
  server = await startTestServer({ store: 'sqlite' });
  ws = createWorkspace({ PHASE_HOST: server.url, PHASE_TOKEN: server.ownerToken });
  const app = Testing.app();
  const stack = new QuickstartStack(app, 'quickstart', {
    appName: 'cdk-e2e',
    databaseUrl: 'postgres://cdk:wo-secret-7f3a@db/app',
  });
  dir = join(Testing.fullSynth(stack), 'stacks', 'quickstart');
});

/** terraform, asynchronously: the server runs in this process and must keep answering while terraform works. */
function tf(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(TERRAFORM, [...args, '-no-color'], { cwd: dir, env: ws.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`terraform ${args[0]} exited ${code}\n${out}`)),
    );
  });
}

afterAll(async () => {
  ws?.cleanup();
  await server?.close();
});

test('cdktf synth → terraform apply → the minted token decrypts the declared secrets', async () => {
  await tf(['init', '-input=false']);
  await tf(['apply', '-auto-approve', '-input=false']);

  const token = (await tf(['output', '-raw', 'agent_token'])).trim();
  expect(token).toMatch(/^pss_service:v2:/);
  const session = await new PhaseSession({ host: server.url, token }).init();
  const secrets = await session.get({ appName: 'cdk-e2e', env: 'Development' });
  const byKey = Object.fromEntries(secrets.map((s) => [s.key, s.value]));
  expect(byKey.DATABASE_URL).toBe('postgres://cdk:wo-secret-7f3a@db/app');
  expect(byKey.GREETING).toBe('hello from phase-bridge (db: postgres://cdk:wo-secret-7f3a@db/app)');

  expect(readFileSync(join(dir, 'terraform.tfstate'), 'utf8')).not.toContain('wo-secret-7f3a');
  // -detailed-exitcode: 0 = no changes, 2 = changes pending.
  await expect(tf(['plan', '-input=false', '-detailed-exitcode'])).resolves.toContain('No changes');

  await tf(['destroy', '-auto-approve', '-input=false']);
  const owner = new PhaseClient({ host: server.url, token: server.ownerToken });
  expect((await owner.listApps()).map((a) => a.name)).not.toContain('cdk-e2e');
  expect((await owner.listServiceAccounts()).map((s) => s.name)).not.toContain('cdk-e2e-agent');
});
