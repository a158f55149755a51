/**
 * The quickstart's "declare and deploy" step: synthesise the quickstart's CDKTF stack (bin/quickstart-stack.ts, the
 * declaration of examples/cdktf), then run the real terraform binary through the phase-bridge provider against the
 * embedded server; and `quickstart --down`'s destroy. Everything lives under the data
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
import { installProvider } from '../provider/install';
import { QuickstartStack } from './quickstart-stack';

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
  /** What terraform changed, to print (resource addresses and counts, never values): see terraformChanges. */
  changes: string[];
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

  const outdir = join(base, 'cdktf.out');
  const app = new App({ outdir });
  const stack = new QuickstartStack(app, 'quickstart');
  // CDKTF's default backend is `terraform.quickstart.tfstate` in the current directory; the state belongs to the data
  // directory instead (relative to terraform's working directory, so the data directory can move).
  stack.addOverride('terraform.backend', { local: { path: STATE_FILE } });
  app.synth();
  copyFileSync(join(outdir, 'stacks', 'quickstart', 'cdk.tf.json'), join(workDir, 'cdk.tf.json'));

  const tf = terraformIn({ base, workDir, stateFile, url: o.url, ownerToken: o.ownerToken });
  // -reconfigure: a working directory initialised by an earlier version names the old backend path; its state, when
  // it was this data directory's, has just been moved to stateFile.
  await tf(['init', '-input=false', '-reconfigure']);
  const applied = await tf(['apply', '-auto-approve', '-input=false']);
  const token = (await tf(['output', '-raw', 'agent_token'])).trim();
  writeFileSync(agentTokenFile, `${token}\n`, { mode: 0o600 });
  return { workDir, stateFile, agentTokenFile, changes: terraformChanges(applied) };
}

/** The number of resources (not data sources) a state file manages; 0 when it is missing or empty. */
export function managedResources(stateFile: string): number {
  try {
    const s = JSON.parse(readFileSync(stateFile, 'utf8')) as { resources?: { mode?: string }[] };
    return (s.resources ?? []).filter((r) => r.mode !== 'data').length;
  } catch {
    return 0;
  }
}

/**
 * `terraform destroy` on a data directory's state, against the server at `url`: the quickstart's app, secrets,
 * service account and token go from that server. Returns what it destroyed (see terraformChanges).
 */
export async function destroyQuickstart(o: {
  dataDir: string;
  url: string;
  ownerToken: string;
}): Promise<string[]> {
  const base = resolve(o.dataDir);
  const workDir = join(base, 'deploy');
  const stateFile = join(workDir, STATE_FILE);
  const tf = terraformIn({ base, workDir, stateFile, url: o.url, ownerToken: o.ownerToken });
  await tf(['init', '-input=false', '-reconfigure']);
  // -lock-timeout: a terraform the stopped quickstart left finishing up may hold the state lock for a moment.
  return terraformChanges(await tf(['destroy', '-auto-approve', '-input=false', '-lock-timeout=30s']));
}

/**
 * A terraform runner in `workDir` with the provider installed under `<base>/terraform` (an explicit filesystem
 * mirror: `terraform init` works offline and never touches the user's ~/.terraform.d), the owner token in its
 * environment only, and the state files kept at mode 0600.
 */
function terraformIn(o: {
  base: string;
  workDir: string;
  stateFile: string;
  url: string;
  ownerToken: string;
}): (args: string[]) => Promise<string> {
  const home = join(o.base, 'terraform');
  const mirror = join(home, '.terraform.d', 'plugins');
  installProvider({ home });
  const rc = join(home, 'terraformrc');
  writeFileSync(
    rc,
    `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(mirror)}\n  }\n}\n`,
  );

  // terraform keeps the mode of a state file that exists and creates missing ones 0644-ish: create both 0600 first
  // (an empty state file reads as no state), and enforce the mode again after every terraform command.
  const files = [o.stateFile, `${o.stateFile}.backup`];
  for (const f of files) closeSync(openSync(f, 'a', 0o600));
  const secureState = (): void => {
    for (const f of files) if (existsSync(f)) chmodSync(f, 0o600);
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
  return (args) =>
    new Promise<string>((resolvePromise, reject) => {
      // Asynchronous on purpose: the server answering terraform runs in this process.
      const child = spawn(TERRAFORM, [...args, '-no-color'], { cwd: o.workDir, env });
      // A quickstart stopped mid-deploy (Ctrl-C, `npm run down`) takes its terraform along.
      const stop = (): void => void child.kill('SIGTERM');
      process.once('exit', stop);
      child.on('close', () => process.removeListener('exit', stop));
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
}

/** How terraform's plan names each action (`  # <address> will be created`), as a diff symbol and a word. */
const ACTIONS: [RegExp, string, string][] = [
  [/^will be created$/, '+', 'created'],
  [/^will be updated in-place$/, '~', 'updated in place'],
  [/^will be destroyed$/, '-', 'destroyed'],
  [/^(must|will) be replaced\b/, '-/+', 'replaced'],
];

/**
 * What an apply or destroy changed, from terraform's own output: its counts ("Resources: 0 added, 1 changed, 0
 * destroyed") and one line per resource it acted on, by address. Only those lines are taken from the output, so no
 * attribute value (secret or otherwise; terraform redacts the sensitive ones anyway) is printed.
 */
export function terraformChanges(out: string): string[] {
  const acted: string[] = [];
  for (const m of out.matchAll(/^ {2}# (.+?) (will be|must be) (.+)$/gm)) {
    const phrase = `${m[2]} ${m[3]}`;
    if (phrase.startsWith('will be read')) continue; // a data source, nothing changes
    const a = ACTIONS.find(([re]) => re.test(phrase));
    acted.push(a ? `  ${a[1]} ${m[1]} (${a[2]})` : `  ~ ${m[1]} (${phrase})`);
  }
  if (acted.length === 0) {
    return [
      /^Destroy complete!|No objects need to be destroyed/m.test(out)
        ? 'Terraform: nothing left to destroy.'
        : 'Terraform: no changes (the server already matches the stack).',
    ];
  }
  const done = /^(?:Apply|Destroy) complete! Resources: (.+?)\.?$/m.exec(out);
  return [`Terraform: ${done ? done[1] : `${acted.length} changed`}:`, ...acted];
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
