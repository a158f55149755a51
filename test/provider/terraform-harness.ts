/**
 * Runs the real terraform binary against the installed provider: a test-local HOME (whose
 * `.terraform.d/plugins` receives the launcher from `installProvider`), a test-local TF_CLI_CONFIG_FILE and
 * CHECKPOINT_DISABLE=1. Terraform is required: a missing binary fails loudly, it never skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installProvider } from '../../provider/install';
import { PROVIDER_ENTRY, assertProviderBuilt } from './plugin-client';

export const TERRAFORM = process.env.TERRAFORM_BIN || 'terraform';

/** Throws a clear error when terraform is missing or older than 1.11 (write-only attributes). */
export function requireTerraform(): string {
  const r = spawnSync(TERRAFORM, ['version', '-json'], {
    encoding: 'utf8',
    env: { ...process.env, CHECKPOINT_DISABLE: '1' },
  });
  if (r.error || r.status !== 0) {
    throw new Error(
      `The provider tests need the terraform binary (>= 1.11) on PATH or in TERRAFORM_BIN; "${TERRAFORM}" could not run: ` +
        `${r.error?.message ?? r.stderr}`,
    );
  }
  const version = (JSON.parse(r.stdout) as { terraform_version: string }).terraform_version;
  const [maj, min] = version.split('.').map(Number);
  if (maj < 1 || (maj === 1 && min < 11))
    throw new Error(`terraform ${version} is too old: the provider tests need 1.11 or newer`);
  return version;
}

export interface TfResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Workspace {
  root: string;
  home: string;
  env: NodeJS.ProcessEnv;
  dir(name: string): string;
  write(dirName: string, files: Record<string, string>): string;
  /**
   * Runs terraform in `dir`; throws with its output when the exit code is not in `ok`. Asynchronous on purpose:
   * the server under test runs in this process and must keep answering while terraform runs.
   */
  tf(dir: string, args: string[], ok?: number[]): Promise<TfResult>;
  /** The raw state file text. */
  stateText(dir: string): string;
  /** `terraform show -json` of the state. */
  state(dir: string): Promise<TfState>;
  /** Plans to a file and returns the planned actions per resource address (no-op entries omitted). */
  planActions(dir: string, extraArgs?: string[]): Promise<Record<string, string[]>>;
  cleanup(): void;
}

export interface TfResource {
  address: string;
  type: string;
  name: string;
  mode: string;
  // Attribute values as `terraform show -json` prints them.
  values: Record<string, TfJson>;
}

/** JSON values from terraform's JSON output. */
export type TfJson = any;

export interface TfState {
  values?: { root_module?: { resources?: TfResource[] } };
}

export function createWorkspace(phaseEnv: Record<string, string>): Workspace {
  assertProviderBuilt();
  const root = mkdtempSync(join(tmpdir(), 'pb-tf-'));
  const home = join(root, 'home');
  mkdirSync(home);
  const rc = join(root, 'terraformrc');
  // Empty CLI configuration: no provider_installation block, so the implied local mirror in $HOME is used.
  writeFileSync(rc, '');
  installProvider({ home, entry: PROVIDER_ENTRY });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    CHECKPOINT_DISABLE: '1',
    TF_CLI_CONFIG_FILE: rc,
    TF_IN_AUTOMATION: '1',
  };
  for (const k of [
    'PHASE_HOST',
    'PHASE_TOKEN',
    'PHASE_SERVICE_TOKEN',
    'PHASE_PAT_TOKEN',
    'TF_LOG',
    'TF_DISABLE_PLUGIN_TLS',
    'TF_PLUGIN_CACHE_DIR',
  ])
    delete env[k];
  Object.assign(env, phaseEnv);

  const run = (dir: string, args: string[], ok: number[] = [0]): Promise<TfResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(TERRAFORM, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const res = { code: code ?? -1, stdout, stderr };
        if (!ok.includes(res.code)) {
          reject(
            new Error(
              `terraform ${args.join(' ')} exited ${res.code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
            ),
          );
        } else resolve(res);
      });
    });

  return {
    root,
    home,
    env,
    dir: (name) => join(root, name),
    write(dirName, files) {
      const d = join(root, dirName);
      mkdirSync(d, { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
      return d;
    },
    tf: run,
    stateText: (dir) =>
      existsSync(join(dir, 'terraform.tfstate')) ? readFileSync(join(dir, 'terraform.tfstate'), 'utf8') : '',
    state: async (dir) => JSON.parse((await run(dir, ['show', '-json', '-no-color'])).stdout) as TfState,
    async planActions(dir, extraArgs = []) {
      await run(dir, ['plan', '-input=false', '-no-color', '-out=tfplan', ...extraArgs]);
      const plan = JSON.parse((await run(dir, ['show', '-json', '-no-color', 'tfplan'])).stdout) as {
        resource_changes?: Array<{ address: string; change: { actions: string[] } }>;
      };
      const out: Record<string, string[]> = {};
      for (const rc of plan.resource_changes ?? []) {
        if (!(
          rc.change.actions.length === 1 &&
          (rc.change.actions[0] === 'no-op' || rc.change.actions[0] === 'read')
        )) {
          out[rc.address] = rc.change.actions;
        }
      }
      return out;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

export function resources(state: TfState): TfResource[] {
  return state.values?.root_module?.resources ?? [];
}

export function resource(state: TfState, address: string): TfResource {
  const r = resources(state).find((x) => x.address === address);
  if (!r) throw new Error(`${address} is not in the state`);
  return r;
}
