/**
 * The quickstart's "declare and deploy" step: synthesise the CDKTF stack of examples/cdktf, then run the real
 * terraform binary through the phase-bridge provider against the embedded server. Everything lives under the data
 * directory (provider mirror, CLI config, working directory, state), nothing in the user's home.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { App } from '../constructs/cdktf';
import { PhaseBridgeError } from '../core/errors';
import { QuickstartStack } from '../examples/cdktf/stack';
import { installProvider } from '../provider/install';

export const TERRAFORM = process.env.TERRAFORM_BIN || 'terraform';

/** The terraform version, or undefined when no usable binary (>= 1.11, for write-only attributes) is on PATH. */
export function terraformVersion(): string | undefined {
  const r = spawnSync(TERRAFORM, ['version', '-json'], {
    encoding: 'utf8',
    env: { ...process.env, CHECKPOINT_DISABLE: '1' },
  });
  if (r.error || r.status !== 0) return undefined;
  const v = (JSON.parse(r.stdout) as { terraform_version: string }).terraform_version;
  const [maj, min] = v.split('.').map(Number);
  return maj > 1 || (maj === 1 && min >= 11) ? v : undefined;
}

export interface DeployResult {
  /** Terraform's working directory (holds the state). */
  workDir: string;
  /** File (mode 0600) holding the service-account token the stack minted for the agent. */
  agentTokenFile: string;
}

/** Synthesises and applies the quickstart stack; idempotent (a second run applies no changes). */
export async function deployQuickstart(o: {
  dataDir: string;
  url: string;
  ownerToken: string;
}): Promise<DeployResult> {
  const base = resolve(o.dataDir);
  const home = join(base, 'terraform');
  const mirror = join(home, '.terraform.d', 'plugins');
  installProvider({ home });
  const rc = join(home, 'terraformrc');
  // An explicit filesystem mirror: terraform init works offline and never touches the user's ~/.terraform.d.
  writeFileSync(
    rc,
    `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(mirror)}\n  }\n}\n`,
  );

  const outdir = join(base, 'cdktf.out');
  const app = new App({ outdir });
  new QuickstartStack(app, 'quickstart');
  app.synth();
  const workDir = join(base, 'deploy');
  mkdirSync(workDir, { recursive: true, mode: 0o700 }); // its state holds the minted token
  copyFileSync(join(outdir, 'stacks', 'quickstart', 'cdk.tf.json'), join(workDir, 'cdk.tf.json'));

  // The owner token reaches terraform through the environment only, never through a file terraform writes.
  const env = {
    ...process.env,
    CHECKPOINT_DISABLE: '1',
    TF_IN_AUTOMATION: '1',
    TF_CLI_CONFIG_FILE: rc,
    PHASE_HOST: o.url,
    PHASE_TOKEN: o.ownerToken,
  };
  const tf = (args: string[]): Promise<string> =>
    new Promise((resolvePromise, reject) => {
      // Asynchronous on purpose: the server answering terraform runs in this process.
      const child = spawn(TERRAFORM, [...args, '-no-color'], { cwd: workDir, env });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0
          ? resolvePromise(out)
          : reject(
              new PhaseBridgeError(
                'quickstart_terraform',
                `terraform ${args[0]} failed (exit ${code}):\n${out}`,
              ),
            ),
      );
    });
  await tf(['init', '-input=false']);
  await tf(['apply', '-auto-approve', '-input=false']);
  const token = (await tf(['output', '-raw', 'agent_token'])).trim();
  const agentTokenFile = join(base, 'agent-token');
  writeFileSync(agentTokenFile, `${token}\n`, { mode: 0o600 });
  return { workDir, agentTokenFile };
}
