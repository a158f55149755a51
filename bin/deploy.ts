/**
 * The quickstart's "declare and deploy" step: synthesise the CDKTF stack of examples/cdktf, then run the real
 * terraform binary through the phase-bridge provider against the embedded server. Everything lives under the data
 * directory (provider mirror, CLI config, working directory, state), nothing in the user's home or the current
 * directory: one Terraform state per data directory, `<data-dir>/deploy/terraform.tfstate`, mode 0600 (it holds the
 * minted service token).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { App } from '../constructs/cdktf';
import { PhaseBridgeError } from '../core/errors';
import { QuickstartStack } from '../examples/cdktf/stack';
import { installProvider } from '../provider/install';

export const TERRAFORM = process.env.TERRAFORM_BIN || 'terraform';

/** The state's name inside `<data-dir>/deploy/` (the local backend's path, relative to the working directory). */
export const STATE_FILE = 'terraform.tfstate';
/**
 * Where earlier versions left the state: CDKTF's default local backend, `terraform.<stack>.tfstate` in the current
 * directory (mode 0644, shared by every data directory run from there).
 */
export const LEGACY_STATE_FILE = 'terraform.quickstart.tfstate';

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
  /** Terraform's working directory, `<data-dir>/deploy` (mode 0700). */
  workDir: string;
  /** The Terraform state, `<data-dir>/deploy/terraform.tfstate` (mode 0600). */
  stateFile: string;
  /** File (mode 0600) holding the service-account token the stack minted for the agent. */
  agentTokenFile: string;
}

/** Synthesises and applies the quickstart stack; idempotent (a second run applies no changes). */
export async function deployQuickstart(o: {
  dataDir: string;
  url: string;
  ownerToken: string;
  /** Where notes about an earlier version's state go (one line each). */
  log?: (line: string) => void;
}): Promise<DeployResult> {
  const log = o.log ?? (() => undefined);
  const base = resolve(o.dataDir);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const workDir = join(base, 'deploy');
  mkdirSync(workDir, { recursive: true, mode: 0o700 }); // its state holds the minted token
  chmodSync(workDir, 0o700); // also when an earlier version created it with other modes
  const stateFile = join(workDir, STATE_FILE);
  const agentTokenFile = join(base, 'agent-token');
  adoptLegacyState({ workDir, stateFile, agentTokenFile, cwd: process.cwd(), log });

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
  const stack = new QuickstartStack(app, 'quickstart');
  // CDKTF's default backend is `terraform.quickstart.tfstate` in the current directory; the state belongs to the data
  // directory instead (relative to terraform's working directory, so the data directory can move).
  stack.addOverride('terraform.backend', { local: { path: STATE_FILE } });
  app.synth();
  copyFileSync(join(outdir, 'stacks', 'quickstart', 'cdk.tf.json'), join(workDir, 'cdk.tf.json'));

  // terraform keeps the mode of a state file that exists and creates missing ones 0644-ish: create both 0600 first
  // (an empty state file reads as no state), and enforce the mode again after every terraform command.
  for (const f of [stateFile, `${stateFile}.backup`]) closeSync(openSync(f, 'a', 0o600));
  const secureState = (): void => {
    for (const f of [stateFile, `${stateFile}.backup`]) if (existsSync(f)) chmodSync(f, 0o600);
  };
  secureState();

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
    new Promise<string>((resolvePromise, reject) => {
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
    }).finally(secureState);
  // -reconfigure: a working directory initialised by an earlier version names the old backend path; its state, when
  // it was this data directory's, has just been moved to stateFile.
  await tf(['init', '-input=false', '-reconfigure']);
  await tf(['apply', '-auto-approve', '-input=false']);
  const token = (await tf(['output', '-raw', 'agent_token'])).trim();
  writeFileSync(agentTokenFile, `${token}\n`, { mode: 0o600 });
  return { workDir, stateFile, agentTokenFile };
}

const nonEmpty = (f: string): boolean => existsSync(f) && statSync(f).size > 0;

/** The `agent_token` output recorded in a state file (how a state is matched to its data directory). */
function stateAgentToken(file: string): string | undefined {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as { outputs?: { agent_token?: { value?: unknown } } };
    const v = s.outputs?.agent_token?.value;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The local backend path a working directory was last initialised with (`.terraform/terraform.tfstate`). */
function recordedBackendPath(workDir: string): string | undefined {
  try {
    const s = JSON.parse(readFileSync(join(workDir, '.terraform', 'terraform.tfstate'), 'utf8')) as {
      backend?: { type?: string; config?: { path?: unknown } };
    };
    const p = s.backend?.type === 'local' ? s.backend.config?.path : undefined;
    return typeof p === 'string' && p !== '' ? resolve(workDir, p) : undefined;
  } catch {
    return undefined;
  }
}

function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    copyFileSync(from, to);
    unlinkSync(from);
  }
  chmodSync(to, 0o600);
}

/**
 * Earlier versions kept the state in the current directory (see LEGACY_STATE_FILE), where runs with different data
 * directories overwrote each other's. Such a state is moved into this data directory when it is this data
 * directory's (its agent_token output is the token in `<data-dir>/agent-token`) and the data directory has no state
 * yet; any other one is left in place, mode 0600, with a warning (it holds a service token). A data directory that was deployed
 * before (it has an agent-token) but has no state is refused: applying would create a second app and service
 * account and leave the first token valid.
 */
function adoptLegacyState(o: {
  workDir: string;
  stateFile: string;
  agentTokenFile: string;
  cwd: string;
  log: (line: string) => void;
}): void {
  const candidates = new Set<string>([join(o.cwd, LEGACY_STATE_FILE)]);
  const recorded = recordedBackendPath(o.workDir);
  if (recorded) candidates.add(recorded);
  candidates.delete(o.stateFile);
  const ours = existsSync(o.agentTokenFile) ? readFileSync(o.agentTokenFile, 'utf8').trim() : undefined;
  for (const f of candidates) {
    if (!nonEmpty(f)) continue;
    const mine = ours !== undefined && ours !== '' && stateAgentToken(f) === ours;
    if (mine && !nonEmpty(o.stateFile)) {
      moveFile(f, o.stateFile);
      if (existsSync(`${f}.backup`)) moveFile(`${f}.backup`, `${o.stateFile}.backup`);
      o.log(
        `Moved this data directory's Terraform state from ${f} (an earlier version's location) to ${o.stateFile}.`,
      );
      continue;
    }
    // Not ours to move or delete, but it holds a token: at least nobody else reads it any more.
    for (const g of [f, `${f}.backup`]) if (existsSync(g)) chmodSync(g, 0o600);
    o.log(
      `Warning: ${f} is a Terraform state left by an earlier version and holds a service token; it is not this ` +
        `data directory's state, so it was left in place (mode now 0600). Move it to ` +
        `<its data directory>/deploy/${STATE_FILE} (the next run with that --data-dir does so) or delete it` +
        `${existsSync(`${f}.backup`) ? ` (and ${f}.backup)` : ''}.`,
    );
  }
  if (ours !== undefined && !nonEmpty(o.stateFile)) {
    throw new PhaseBridgeError(
      'quickstart_state',
      `this data directory was deployed before (${o.agentTokenFile} exists) but its Terraform state ` +
        `${o.stateFile} is missing: applying now would create a second app and service account and leave the ` +
        `first token valid. Put the state back at ${o.stateFile}, or start over with a new --data-dir ` +
        `(deleting ${o.agentTokenFile} deploys a second copy on purpose).`,
    );
  }
}
