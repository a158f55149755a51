/**
 * `npm start` end to end: the built CLI's quickstart in a fresh directory serves the server, deploys the CDKTF
 * example with the real terraform binary and provider, and the agent then serves the declared secrets. A second
 * run on the same directory reuses the organisation and state. SIGTERM stops it cleanly.
 *
 * Its Terraform state: one per data directory, `<data-dir>/deploy/terraform.tfstate`, mode 0600 in a 0700 data
 * directory, nothing in the current directory; a state an earlier version left in the current directory
 * (`terraform.quickstart.tfstate`) moves into the data directory it belongs to and no other.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { freePort } from '../support/ports';
import { requireTerraform } from '../provider/terraform-harness';

jest.setTimeout(240_000);

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'phase-bridge.js');
const LEGACY = 'terraform.quickstart.tfstate';
const dirs: string[] = [];

beforeAll(() => {
  requireTerraform();
  // The quickstart runs from dist/: a stale build would test yesterday's code.
  for (const name of ['quickstart', 'deploy']) {
    const src = join(ROOT, 'bin', `${name}.ts`);
    const built = join(ROOT, 'dist', 'bin', `${name}.js`);
    if (!existsSync(built) || statSync(src).mtimeMs > statSync(built).mtimeMs + 1000) {
      throw new Error(
        `dist/bin/${name}.js is missing or older than bin/${name}.ts: run \`npm run build\` first`,
      );
    }
  }
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pb-quickstart-'));
  dirs.push(d);
  return d;
}

/** The quickstart in `cwd` under umask 022 (terraform's own files come out 0644 there). */
function spawnQuickstart(cwd: string, args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(
    '/bin/sh',
    ['-c', 'umask 022 && exec "$0" "$@"', process.execPath, CLI, 'quickstart', ...args],
    { cwd, env: { ...process.env, CHECKPOINT_DISABLE: '1' } },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

async function ports(): Promise<string[]> {
  const [port, agentPort] = [await freePort(), await freePort()];
  return ['--port', String(port), '--agent-port', String(agentPort)];
}

async function runQuickstart(
  cwd: string,
  args: string[] = [],
): Promise<{ child: ChildProcess; out: () => string; agentPort: number }> {
  const p = await ports();
  const { child, out } = spawnQuickstart(cwd, [...p, ...args]);
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out().includes('Ctrl-C stops')) {
        clearInterval(t);
        resolve();
      }
    }, 100);
    child.once('exit', (code) => {
      clearInterval(t);
      reject(new Error(`quickstart exited ${code}:\n${out()}`));
    });
  });
  return { child, out, agentPort: Number(p[3]) };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

/** Runs the quickstart to readiness, stops it, and returns its output. */
async function runOnce(cwd: string, args: string[] = []): Promise<string> {
  const { child, out } = await runQuickstart(cwd, args);
  expect(await stop(child)).toBe(0);
  return out();
}

/** Runs a quickstart expected to give up on its own; returns its exit code and output. */
async function runToExit(cwd: string, args: string[] = []): Promise<{ code: number | null; out: string }> {
  const { child, out } = spawnQuickstart(cwd, [...(await ports()), ...args]);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, out: out() };
}

const mode = (f: string): number => statSync(f).mode & 0o777;
const stateFile = (dataDir: string): string => join(dataDir, 'deploy', 'terraform.tfstate');

interface State {
  outputs: { agent_token?: { value: string } };
  resources: { type: string; instances: { attributes: { id: string } }[] }[];
}
const readState = (f: string): State => JSON.parse(readFileSync(f, 'utf8')) as State;
/** The id of the quickstart app a state manages (a new id means terraform created a second app). */
const appId = (f: string): string => {
  const app = readState(f).resources.find((r) => r.type === 'phase_app');
  if (!app) throw new Error(`no phase_app in ${f}`);
  return app.instances[0].attributes.id;
};
const agentToken = (dataDir: string): string => readFileSync(join(dataDir, 'agent-token'), 'utf8').trim();

/** Every file below `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)));
}

test('declare, deploy and serve on the embedded server, twice', async () => {
  const dir = freshDir();
  for (const round of [1, 2]) {
    const { child, out, agentPort } = await runQuickstart(dir);
    try {
      expect(out()).toContain(round === 1 ? 'New organisation' : 'Owner token:');
      const clientToken = readFileSync(join(dir, '.phase-bridge', 'agent', 'client-token'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${agentPort}/v1/secrets/GREETING`, {
        headers: { 'X-Phase-Agent-Token': clientToken },
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello from phase-bridge (db: postgres://app:dev@127.0.0.1:5432/app)');
      for (const f of ['owner-token', 'agent-token', 'server.key']) {
        expect(statSync(join(dir, '.phase-bridge', f)).mode & 0o777).toBe(0o600);
      }
      // Tokens never reach the console.
      const owner = readFileSync(join(dir, '.phase-bridge', 'owner-token'), 'utf8').trim();
      expect(out()).not.toContain(owner.split(':')[2]);
      expect(out()).not.toContain(agentToken(join(dir, '.phase-bridge')));
    } finally {
      expect(await stop(child)).toBe(0);
    }
  }
});

test("the quickstart's state file mode and location", async () => {
  const dir = freshDir();
  const data = join(dir, '.phase-bridge');
  for (const round of [1, 2]) {
    const out = await runOnce(dir);
    // Nothing but the data directory in the current directory (earlier versions left terraform.quickstart.tfstate).
    expect(readdirSync(dir)).toEqual(['.phase-bridge']);
    // The state is the data directory's, and it is the real one: it holds the token handed to the agent.
    expect(existsSync(stateFile(data))).toBe(true);
    expect(readState(stateFile(data)).outputs.agent_token?.value).toBe(agentToken(data));
    expect(mode(stateFile(data))).toBe(0o600);
    // terraform writes the previous state here on every apply (the second round's is not empty).
    expect(mode(`${stateFile(data)}.backup`)).toBe(0o600);
    if (round === 2) expect(statSync(`${stateFile(data)}.backup`).size).toBeGreaterThan(0);
    expect(mode(data)).toBe(0o700);
    expect(mode(join(data, 'deploy'))).toBe(0o700);
    expect(out).toContain(`Terraform state: ${stateFile(data)} (mode 0600`);
  }
});

test('the repository ignores everything the quickstart writes', async () => {
  const dir = freshDir();
  await runOnce(dir);
  // What it writes below its current directory, plus what earlier versions wrote there.
  const written = [...filesUnder(dir), LEGACY, `${LEGACY}.backup`];
  const r = spawnSync('git', ['-C', ROOT, 'check-ignore', '--no-index', '--stdin'], {
    input: written.join('\n'),
    encoding: 'utf8',
  });
  if (r.error) throw new Error(`this test needs git: ${r.error.message}`);
  const ignored = r.stdout.split('\n').filter(Boolean);
  expect(written.filter((f) => !ignored.includes(f))).toEqual([]);
  // (The list is the real one: it has the state and the tokens.)
  expect(written).toEqual(
    expect.arrayContaining([
      join('.phase-bridge', 'deploy', 'terraform.tfstate'),
      join('.phase-bridge', 'agent-token'),
    ]),
  );
});

test("a second data directory keeps its own state and leaves the first one's alone", async () => {
  const dir = freshDir();
  const first = join(dir, '.phase-bridge');
  const second = join(dir, 'other');
  await runOnce(dir);
  const firstState = readFileSync(stateFile(first));
  const firstMtime = statSync(stateFile(first)).mtimeMs;
  const firstApp = appId(stateFile(first));

  await runOnce(dir, ['--data-dir', 'other']);
  expect(readFileSync(stateFile(first))).toEqual(firstState);
  expect(statSync(stateFile(first)).mtimeMs).toBe(firstMtime);
  expect(mode(stateFile(second))).toBe(0o600);
  expect(mode(second)).toBe(0o700);
  expect(readState(stateFile(second)).outputs.agent_token?.value).toBe(agentToken(second));
  expect(agentToken(second)).not.toBe(agentToken(first));
  const secondState = readFileSync(stateFile(second));

  // Plain `npm start` again: its own state, the same app (no second app and service account).
  await runOnce(dir);
  expect(appId(stateFile(first))).toBe(firstApp);
  expect(readState(stateFile(first)).outputs.agent_token?.value).toBe(agentToken(first));
  expect(readFileSync(stateFile(second))).toEqual(secondState);
  expect(readdirSync(dir).sort()).toEqual(['.phase-bridge', 'other']);
});

/** Puts a data directory's state where earlier versions kept it (the current directory, 0644) and says so. */
function makeLegacy(dir: string, dataDir: string): string {
  const legacy = join(dir, LEGACY);
  renameSync(stateFile(dataDir), legacy);
  chmodSync(legacy, 0o644);
  unlinkSync(`${stateFile(dataDir)}.backup`);
  // Earlier versions' working directory recorded that absolute path as its backend.
  const backend = join(dataDir, 'deploy', '.terraform', 'terraform.tfstate');
  const b = JSON.parse(readFileSync(backend, 'utf8')) as { backend: { config: { path: string } } };
  b.backend.config.path = legacy;
  writeFileSync(backend, JSON.stringify(b));
  return legacy;
}

test("an earlier version's state in the current directory moves into its data directory", async () => {
  const dir = freshDir();
  const data = join(dir, '.phase-bridge');
  await runOnce(dir);
  const app = appId(stateFile(data));
  const legacy = makeLegacy(dir, data);

  const out = await runOnce(dir);
  expect(out).toContain(`Moved this data directory's Terraform state from ${legacy}`);
  expect(existsSync(legacy)).toBe(false);
  expect(mode(stateFile(data))).toBe(0o600);
  // The moved state was used: the same app, not a second one.
  expect(appId(stateFile(data))).toBe(app);
  expect(readdirSync(dir)).toEqual(['.phase-bridge']);
});

test("another data directory's old state is left alone, and a deployed data directory without state is refused", async () => {
  const dir = freshDir();
  const a = join(dir, 'a');
  const data = join(dir, '.phase-bridge');
  await runOnce(dir, ['--data-dir', 'a']);
  const aApp = appId(stateFile(a));
  const legacy = makeLegacy(dir, a);
  const legacyText = readFileSync(legacy, 'utf8');

  // A fresh data directory: deploys with its own state and leaves a's alone (tightened to 0600: it holds a token).
  const fresh = await runOnce(dir);
  expect(fresh).toContain(`Warning: ${legacy} is a Terraform state left by an earlier version`);
  expect(readFileSync(legacy, 'utf8')).toBe(legacyText);
  expect(mode(legacy)).toBe(0o600);
  expect(readState(stateFile(data)).outputs.agent_token?.value).toBe(agentToken(data));
  const app = appId(stateFile(data));

  // That data directory loses its state: applying would create a second app, so it refuses.
  rmSync(stateFile(data));
  rmSync(`${stateFile(data)}.backup`);
  const refused = await runToExit(dir);
  expect(refused.code).toBe(1);
  expect(refused.out).toContain(`its Terraform state ${stateFile(data)} is missing`);
  expect(refused.out).toContain('would create a second app and service account');
  expect(readFileSync(legacy, 'utf8')).toBe(legacyText);
  expect(statSync(stateFile(data), { throwIfNoEntry: false })?.size ?? 0).toBe(0);

  // a, run again, takes its state back from the current directory: the same app.
  const back = await runOnce(dir, ['--data-dir', 'a']);
  expect(back).toContain(`Moved this data directory's Terraform state from ${legacy}`);
  expect(existsSync(legacy)).toBe(false);
  expect(appId(stateFile(a))).toBe(aApp);
  expect(aApp).not.toBe(app);
});
