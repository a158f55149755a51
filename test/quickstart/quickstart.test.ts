/**
 * `npm start` end to end: the built CLI's quickstart in a fresh directory serves the server, deploys the CDKTF
 * example with the real terraform binary and provider, and the agent then serves the declared secrets. A second
 * run on the same directory reuses the organisation and state. SIGTERM stops it cleanly.
 *
 * Its Terraform state: one per data directory, `<data-dir>/deploy/terraform.tfstate`, mode 0600 in a 0700 data
 * directory, nothing in the current directory; a state an earlier version left in the current directory
 * (`terraform.quickstart.tfstate`) moves into the data directory it belongs to and no other.
 *
 * As a person meets it: a second start while one runs is refused at once (before `npm start` builds), naming the
 * first one's pid and ports; a re-run says what terraform changed; `--down` (`npm run down`) stops the quickstart,
 * destroys what it deployed and removes its data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
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
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { freePort } from '../support/ports';
import { requireTerraform } from '../provider/terraform-harness';

jest.setTimeout(240_000);

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'phase-bridge.js');
/** What `npm start` and `npm run down` run. */
const START = join(ROOT, 'bin', 'quickstart-start.js');
const LEGACY = 'terraform.quickstart.tfstate';
const dirs: string[] = [];

beforeAll(() => {
  requireTerraform();
  // The quickstart runs from dist/: a stale build would test yesterday's code.
  for (const name of ['quickstart', 'deploy', 'quickstart-lock', 'quickstart-down', 'quickstart-stack']) {
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
    { cwd, env: cliEnv() },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

/** The environment of a command run by hand (not by npm, whose scripts are named in the messages instead). */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1', ...extra };
  if (!('npm_lifecycle_event' in extra)) delete env.npm_lifecycle_event;
  if (!('npm_execpath' in extra)) delete env.npm_execpath;
  return env;
}

async function ports(): Promise<string[]> {
  const [port, agentPort] = [await freePort(), await freePort()];
  return ['--port', String(port), '--agent-port', String(agentPort)];
}

async function runQuickstart(
  cwd: string,
  args: string[] = [],
): Promise<{ child: ChildProcess; out: () => string; port: number; agentPort: number }> {
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
  return { child, out, port: Number(p[1]), agentPort: Number(p[3]) };
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
  resources: { mode: string; type: string; instances: { attributes: { id: string } }[] }[];
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

/** A node script to completion: its exit code, output and how long it took. */
async function runNode(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv = cliEnv(),
): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { cwd, env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, out, ms: Date.now() - t0 };
}

/**
 * `npm start`'s environment, with `npm run build` replaced by a script that only leaves a mark: a test sees whether
 * the build was reached without running it.
 */
function npmEnv(dir: string, script: 'start' | 'down'): { env: NodeJS.ProcessEnv; built: () => boolean } {
  const fakeNpm = join(dir, 'fake-npm.js');
  const mark = join(dir, 'build-reached');
  writeFileSync(fakeNpm, `require('fs').writeFileSync(${JSON.stringify(mark)}, ''); process.exit(3);\n`);
  return {
    env: cliEnv({ npm_lifecycle_event: script, npm_execpath: fakeNpm }),
    built: () => existsSync(mark),
  };
}

const lockFile = (dataDir: string): string => join(dataDir, 'quickstart.lock');
const distTimes = (): number[] =>
  ['cli', 'quickstart', 'quickstart-lock'].map((n) => statSync(join(ROOT, 'dist', 'bin', `${n}.js`)).mtimeMs);

/** Whether something listens on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

/** The owner's REST token (`User <hex>`), from the token file. */
const ownerAuth = (dataDir: string): string =>
  `Bearer User ${readFileSync(join(dataDir, 'owner-token'), 'utf8').trim().split(':')[2]}`;

async function names(url: string, auth: string, path: string): Promise<string[]> {
  const res = await fetch(`${url}${path}`, { headers: { Authorization: auth } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data?: { name: string }[] } | { name: string }[];
  return (Array.isArray(body) ? body : (body.data ?? [])).map((x) => x.name);
}

test('a second start while one runs is refused at once, before the build, naming its pid and ports', async () => {
  const dir = freshDir();
  const data = join(dir, '.phase-bridge');
  const { child, port, agentPort } = await runQuickstart(dir);
  try {
    expect(JSON.parse(readFileSync(lockFile(data), 'utf8'))).toMatchObject({
      pid: child.pid,
      port,
      agentPort,
    });
    const before = distTimes();

    // `npm start -- --port P --agent-port A` on the same data directory.
    const npm = npmEnv(dir, 'start');
    const second = await runNode(
      dir,
      [START, '--port', String(port), '--agent-port', String(agentPort)],
      npm.env,
    );
    expect(second.code).toBe(1);
    expect(second.ms).toBeLessThan(2000);
    expect(second.out.trim().split('\n')).toHaveLength(1);
    expect(second.out).toContain(
      `a quickstart is already running (pid ${child.pid}, data dir .phase-bridge, server port ${port}, ` +
        `agent port ${agentPort}): stop it with Ctrl-C or \`npm run down\`, or start another with \`npm start -- --port `,
    );
    expect(second.out).toMatch(/--agent-port \d+ --data-dir \.phase-bridge-2`$/m);
    // The build was not reached (it would have run the fake npm), and dist/ is as it was.
    expect(npm.built()).toBe(false);
    expect(distTimes()).toEqual(before);

    // The same with other ports: the data directory is taken whatever the ports.
    const [p2, a2] = [port + 1000, agentPort + 1000];
    const otherPorts = await runNode(dir, [START, `--port=${p2}`, `--agent-port=${a2}`], npm.env);
    expect([otherPorts.code, otherPorts.out]).toEqual([1, expect.stringContaining(`(pid ${child.pid},`)]);

    // `phase-bridge quickstart` itself says the same, in its own spelling.
    const cli = await runNode(dir, [
      CLI,
      'quickstart',
      '--port',
      String(port),
      '--agent-port',
      String(agentPort),
    ]);
    expect(cli.code).toBe(1);
    expect(cli.out).toContain(
      `phase-bridge: a quickstart is already running (pid ${child.pid}, data dir .phase-bridge`,
    );
    expect(cli.out).toContain(
      '`phase-bridge quickstart --down`, or start another with `phase-bridge quickstart --port ',
    );

    // Another data directory on the same ports: the taken ports are named, with free ones to use instead.
    const ports2 = await runNode(
      dir,
      [START, '--data-dir', 'other', '--port', String(port), '--agent-port', String(agentPort)],
      npm.env,
    );
    expect(ports2.code).toBe(1);
    expect(ports2.out).toContain(
      `phase-bridge: ports ${port} (server, on 127.0.0.1) and ${agentPort} (agent, on 127.0.0.1) are already in use`,
    );
    expect(ports2.out).toMatch(/start with `npm start -- --port \d+ --agent-port \d+ --data-dir other`$/m);
    expect(existsSync(join(dir, 'other'))).toBe(false);
    expect(npm.built()).toBe(false);

    // None of that disturbed the running one: its lock and its agent are still there.
    expect(JSON.parse(readFileSync(lockFile(data), 'utf8')).pid).toBe(child.pid);
    expect(await listening(agentPort)).toBe(true);
  } finally {
    expect(await stop(child)).toBe(0);
  }
  // It removes its lock on the way out; a lock left by a quickstart that died is ignored.
  expect(existsSync(lockFile(data))).toBe(false);
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  writeFileSync(lockFile(data), JSON.stringify({ pid: dead, host: '127.0.0.1', port: 1, agentPort: 2 }));
  await runOnce(dir);
  expect(existsSync(lockFile(data))).toBe(false);
});

test('a re-run prints what terraform changed, and no values', async () => {
  const dir = freshDir();
  const data = join(dir, '.phase-bridge');
  const first = await runQuickstart(dir);
  try {
    const created = /Terraform: (\d+) added, 0 changed, 0 destroyed:$/m.exec(first.out());
    expect(created).not.toBeNull();
    const resources = readState(stateFile(data)).resources.filter((r) => r.mode !== 'data');
    expect(first.out()).toMatch(/^ {5}\+ phase_app\.\S+ \(created\)$/m);
    expect(first.out()).toMatch(/^ {5}\+ phase_service_account_token\.\S+ \(created\)$/m);
    expect(Number(created![1])).toBeGreaterThanOrEqual(6);
    expect(resources.length).toBeGreaterThanOrEqual(Number(created![1]));
    // Someone edits the app by hand: the next run puts the declared description back, and says so.
    const res = await fetch(`http://127.0.0.1:${first.port}/v1/apps/${appId(stateFile(data))}/`, {
      method: 'PUT',
      headers: { Authorization: ownerAuth(data), 'Content-Type': 'application/json' },
      body: JSON.stringify({ description: 'edited by hand' }),
    });
    expect(res.status).toBe(200);
  } finally {
    expect(await stop(first.child)).toBe(0);
  }

  const second = await runOnce(dir);
  expect(second).toMatch(
    /^ {3}Terraform: 0 added, 1 changed, 0 destroyed:\n {5}~ phase_app\.\S+ \(updated in place\)\n/m,
  );
  expect(second).not.toContain('edited by hand');
  expect(second).not.toContain('declared with CDKTF');
  expect(second).not.toContain(agentToken(data));
  expect(second).not.toContain(readFileSync(join(data, 'owner-token'), 'utf8').trim().split(':')[2]);
  expect(second).not.toContain('postgres://');

  const third = await runOnce(dir);
  expect(third).toContain('   Terraform: no changes (the server already matches the stack).');
  expect(third).not.toMatch(/^ {5}[+~-]/m);
});

test('--down stops the running quickstart, destroys what it deployed and removes the data directory', async () => {
  const dir = freshDir();
  const data = join(dir, '.phase-bridge');
  const { child, port, agentPort } = await runQuickstart(dir);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const auth = ownerAuth(data);
  // Deployed: the app and the service account are on the server.
  expect(await names(url, auth, '/v1/apps/')).toContain('quickstart');
  expect(await names(url, auth, '/v1/service-accounts/')).toContain('quickstart-agent');
  const deployed = readState(stateFile(data)).resources.filter((r) => r.mode !== 'data').length;
  // The database file outlives the data directory through a second link (SQLite checkpoints into it in place).
  const snap = join(dir, 'snap');
  mkdirSync(snap, { mode: 0o700 });
  linkSync(join(data, 'phase.db'), join(snap, 'phase.db'));
  copyFileSync(join(data, 'server.key'), join(snap, 'server.key'));

  const down = await runNode(dir, [CLI, 'quickstart', '--down']);
  expect([down.code, down.out]).toEqual([0, expect.any(String)]);
  expect(down.out).toContain(
    `Stopping the quickstart (pid ${child.pid}, server port ${port}, agent port ${agentPort})`,
  );
  expect(down.out).toContain(`Terraform: ${deployed} destroyed:`);
  expect(down.out).toMatch(/^ {5}- phase_service_account_token\.\S+ \(destroyed\)$/m);
  expect(down.out).toMatch(/^Removed \.phase-bridge \(.*deploy.*owner-token.*phase\.db.*\)\.$/m);
  expect(down.out).not.toContain(auth.split(' ')[2]);
  // Stopped cleanly, ports free, the data directory gone.
  expect(await exited).toBe(0);
  expect([await listening(port), await listening(agentPort)]).toEqual([false, false]);
  expect(readdirSync(dir).sort()).toEqual(['snap']);

  // The server's store (served again from the surviving link, asked with the owner token) has no app left.
  const p2 = await freePort();
  const server = spawn(process.execPath, [CLI, 'server', 'start', '--data-dir', snap, '--port', String(p2)], {
    cwd: dir,
    env: cliEnv(),
  });
  try {
    const url2 = `http://127.0.0.1:${p2}`;
    for (let i = 0; i < 100 && !(await fetch(`${url2}/v1/apps/`).catch(() => undefined)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await names(url2, auth, '/v1/apps/')).toEqual([]);
    expect(await names(url2, auth, '/v1/service-accounts/')).not.toContain('quickstart-agent');
  } finally {
    server.kill('SIGTERM');
  }

  // Again (as `npm run down`, which does not rebuild a fresh dist/): nothing to do, and it says so.
  const npm = npmEnv(dir, 'down');
  const again = await runNode(dir, [START, '--down'], npm.env);
  expect([again.code, again.out.trim()]).toEqual([0, 'Nothing to clean up: .phase-bridge does not exist.']);
  expect(npm.built()).toBe(false);

  // Nothing running (a dead pid's lock), nothing deployed, and a file that is not the quickstart's: that stays.
  const other = join(dir, 'other');
  mkdirSync(other);
  writeFileSync(lockFile(other), JSON.stringify({ pid: spawnSync(process.execPath, ['-e', '']).pid }));
  writeFileSync(join(other, 'notes.txt'), 'mine');
  const partial = await runNode(dir, [CLI, 'quickstart', '--down', '--data-dir', 'other']);
  expect(partial.code).toBe(0);
  expect(partial.out).toContain('No quickstart is running on other.');
  expect(partial.out).toContain('Nothing deployed');
  expect(partial.out).toContain('Removed quickstart.lock from other; the directory stays');
  expect(readdirSync(other)).toEqual(['notes.txt']);
});
