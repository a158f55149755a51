/**
 * The CDKTF CLI flow, offline, for a user who ran `phase-bridge provider install`: `cdktf synth`, `cdktf diff`,
 * `cdktf deploy`, `cdktf destroy` (cdktf-cli 0.21, a devDependency) with the repository's root cdktf.json, against a
 * real server, with the real terraform binary. The project directory is a temporary one holding a verbatim copy of
 * the root cdktf.json and a link to the build output, so that the local state (`terraform.<stack>.tfstate`, next to
 * cdktf.json) and cdktf.out/ stay out of the repository. HOME is private: the provider goes into its
 * `.terraform.d/plugins`, and terraform never reads the real user's configuration.
 *
 * `--skip-provider-lock`: cdktf 0.21 follows the first `terraform init` with `terraform providers lock`, which always
 * asks the provider's origin registry (it ignores local mirrors), and the locally installed provider is in none.
 * `terraform init` itself writes the lock file from the local mirror, which later runs keep.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhaseClient } from '../../core/client';
import { startTestServer, type TestServer } from '../support/server';
import { requireTerraform } from '../provider/terraform-harness';

jest.setTimeout(300_000);

const REPO = join(__dirname, '..', '..');
const CDKTF = join(REPO, 'node_modules', 'cdktf-cli', 'bundle', 'bin', 'cdktf');
const CLI = join(REPO, 'bin', 'phase-bridge.js');
/** The build output the project links to as dist/ (PHASE_BRIDGE_DIST: another build, as in test/agent/cli.test.ts). */
const DIST = process.env.PHASE_BRIDGE_DIST ?? join(REPO, 'dist');

let root: string;
let project: string;
let server: TestServer;
let env: NodeJS.ProcessEnv;

/** A cdktf command in the project (asynchronous: the server answering terraform runs in this process). */
function cdktf(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CDKTF, ...args], {
      cwd: project,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      // The CLI draws with ANSI sequences even without a terminal.
      // eslint-disable-next-line no-control-regex
      const plain = out.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
      if (code === 0) resolve(plain);
      else reject(new Error(`cdktf ${args.join(' ')} exited ${code}\n${plain}`));
    });
  });
}

beforeAll(async () => {
  if (!existsSync(CDKTF))
    throw new Error(`the CLI flow test needs cdktf-cli (a devDependency): ${CDKTF} is missing; run npm ci`);
  if (!existsSync(join(DIST, 'examples', 'cdktf', 'main.js')))
    throw new Error('the CLI flow test runs the built example: run `npm run build` first (npm test does)');
  requireTerraform();
  server = await startTestServer({ store: 'sqlite' });
  root = mkdtempSync(join(tmpdir(), 'pb-cdktf-cli-'));
  const home = join(root, 'home');
  mkdirSync(home);
  const rc = join(root, 'terraformrc');
  writeFileSync(rc, ''); // no provider_installation block: terraform uses the implied local mirror in HOME
  env = { ...process.env };
  for (const k of Object.keys(env))
    if (/^(TF_|PHASE_|CDKTF_)/.test(k) || /^npm_/i.test(k) || k === 'TERRAFORM_BINARY_NAME') delete env[k];
  Object.assign(env, {
    HOME: home,
    TF_CLI_CONFIG_FILE: rc,
    CHECKPOINT_DISABLE: '1', // no version check, no telemetry (terraform and cdktf)
    CI: '1', // cdktf: no interactive prompts or spinners
    PHASE_HOST: server.url,
    PHASE_TOKEN: server.ownerToken,
  });
  if (process.env.TERRAFORM_BIN) env.TERRAFORM_BINARY_NAME = process.env.TERRAFORM_BIN;
  // What the user ran once: the provider into ~/.terraform.d/plugins.
  const install = spawnSync(process.execPath, [CLI, 'provider', 'install'], { env, encoding: 'utf8' });
  if (install.status !== 0)
    throw new Error(`phase-bridge provider install failed:\n${install.stdout}${install.stderr}`);

  project = join(root, 'project');
  mkdirSync(project);
  copyFileSync(join(REPO, 'cdktf.json'), join(project, 'cdktf.json'));
  symlinkSync(DIST, join(project, 'dist'), 'dir');
});

afterAll(async () => {
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('cdktf synth, diff, deploy, diff again and destroy with the root cdktf.json, offline', async () => {
  const owner = new PhaseClient({ host: server.url, token: server.ownerToken });

  expect(await cdktf(['synth'])).toContain('Generated Terraform code for the stacks: quickstart');
  const stackFile = join(project, 'cdktf.out', 'stacks', 'quickstart', 'cdk.tf.json');
  const stack = JSON.parse(readFileSync(stackFile, 'utf8')) as {
    terraform: { required_providers: Record<string, { source: string; version?: string }> };
  };
  const required = stack.terraform.required_providers.phase;
  expect(required.source).toBe('phase-bridge/phase');
  // cdktf-cli validates the synthesised stack and refuses a required provider without a version constraint.
  if (!required.version)
    throw new Error(
      'the synthesised stack has no version constraint for the phase provider; cdktf diff/deploy refuse it ' +
        '(a zod error: terraform.required_providers.phase.version Required). PhaseProvider must write one.',
    );

  const plan = await cdktf(['diff', '--skip-provider-lock']);
  expect(plan).toMatch(/Plan: \d+ to add, 0 to change, 0 to destroy/);
  expect(plan).not.toContain('registry.terraform.io/.well-known');
  expect(existsSync(join(project, 'cdktf.out', 'stacks', 'quickstart', '.terraform.lock.hcl'))).toBe(true);
  expect(await owner.listApps()).toEqual([]); // a diff changes nothing

  const deployed = await cdktf(['deploy', '--auto-approve', '--skip-provider-lock']);
  expect(deployed).toMatch(/Apply complete! Resources: \d+ added, 0 changed, 0 destroyed/);
  expect((await owner.listApps()).map((a) => a.name)).toEqual(['quickstart']);
  expect((await owner.listServiceAccounts()).map((s) => s.name)).toEqual(['quickstart-agent']);
  // The local state lives next to cdktf.json, in the temporary project.
  expect(existsSync(join(project, 'terraform.quickstart.tfstate'))).toBe(true);

  expect(await cdktf(['diff', '--skip-provider-lock'])).toContain('No changes');

  const destroyed = await cdktf(['destroy', '--auto-approve', '--skip-provider-lock']);
  expect(destroyed).toMatch(/Destroy complete! Resources: \d+ destroyed/);
  expect(await owner.listApps()).toEqual([]);
  expect(await owner.listServiceAccounts()).toEqual([]);
});
