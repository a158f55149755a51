/**
 * What the agent trusts on disk (issue 11), against the real agent: the compiled CLI in its own process (`npm test`
 * builds dist/ first; PHASE_BRIDGE_DIST tests another build). Every case runs in a private temporary directory:
 * HOME and TMPDIR point into it and XDG_RUNTIME_DIR is unset, so the agent's default data directory is
 * `<private>/tmp/phase-bridge-agent-<uid>`, never the real one under /tmp. Directories and files "planted by
 * another user" are chowned to nobody (uid 65534), which needs root (the test run is root; one case runs the agent
 * itself as nobody to check that "you" means the process's own uid).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentPathError } from '../../agent/errors';
import { createLogger } from '../../agent/logger';
import { TokenSource } from '../../agent/token-source';
import { checkPath, CLIENT_TOKEN_RULE, readTrustedFile, TOKEN_FILE_RULE } from '../../agent/trust';
import { startTestServer } from '../support/server';
import { provision, until, type Provisioned } from './helpers';

const DIST = process.env.PHASE_BRIDGE_DIST ?? resolve(__dirname, '../../dist');
const CLI = join(DIST, 'bin/cli.js');
const LAUNCH = `require(${JSON.stringify(CLI)}).main(['node', 'phase-bridge', ...process.argv.slice(1)]).catch((e) => { process.stderr.write(String(e && e.message)); process.exit(1); })`;
const NOBODY = 65534;
const ME = process.getuid?.() ?? -1;
const VALUE = 'trusted-secret-value-42';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;
let srv: TestServer;
let prov: Provisioned;
const sandboxes: string[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  expect(existsSync(CLI)).toBe(true); // build first: npm run build (npm test does)
  expect(ME).toBe(0); // the planted-by-another-user cases chown to nobody
  srv = await startTestServer();
  prov = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'TRUST_KEY', value: VALUE }] });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await srv?.close();
  for (const d of sandboxes) rmSync(d, { recursive: true, force: true });
});

/** A private directory with a shared-style temp directory (1777, like /tmp) and a home. */
function sandbox(): { root: string; tmp: string; home: string; defaultDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'agent-trust-'));
  sandboxes.push(root);
  const tmp = join(root, 'tmp');
  mkdirSync(tmp);
  chmodSync(tmp, 0o1777);
  const home = join(root, 'home');
  mkdirSync(home, { mode: 0o700 });
  return { root, tmp, home, defaultDir: join(tmp, `phase-bridge-agent-${ME}`) };
}

interface Run {
  child: ChildProcess;
  err: () => string;
  /** Settles when the process exits, or when it logs `agent listening` (then `url` is set and it keeps running). */
  settled: Promise<{ code: number | null; url?: string }>;
  exit: Promise<number | null>;
}

function cli(args: string[], env: Record<string, string>, opts: { uid?: number; gid?: number } = {}): Run {
  const child = spawn(process.execPath, ['-e', LAUNCH, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_PATH: process.env.NODE_PATH ?? '',
      PHASE_HOST: srv.url,
      PHASE_APP: prov.appName,
      PHASE_ENV: 'Development',
      PHASE_SERVICE_TOKEN: prov.token,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
  });
  children.push(child);
  let err = '';
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const settled = new Promise<{ code: number | null; url?: string }>((r) => {
    child.stderr!.on('data', (c) => {
      err += c;
      for (const line of err.split('\n')) {
        if (!line.includes('"agent listening"')) continue;
        try {
          r({ code: null, url: JSON.parse(line).url });
        } catch {
          // a partial line; the next chunk completes it
        }
      }
    });
    void exit.then((code) => r({ code }));
    setTimeout(() => r({ code: null }), 20_000).unref();
  });
  return { child, err: () => err, settled, exit };
}

function get(url: string, path: string, clientToken: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet) => {
    const req = request(new URL(path, url), { headers: { 'x-phase-agent-token': clientToken } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolveGet({ status: 0, body: '' }));
    req.end();
  });
}

const AGENT = ['agent', '--port', '0', '--refresh', '5s'];

/** Runs the agent; expects exit 2 with exactly one line on stderr, never a listening agent. Returns the line. */
async function refused(run: Run, plantedClientToken?: string): Promise<string> {
  const s = await run.settled;
  if (s.url && plantedClientToken) {
    // Before the fix the agent listened with the planted client token: show it served the secret to its holder.
    const r = await get(s.url, '/v1/secrets/TRUST_KEY', plantedClientToken);
    expect({ servedToPlantedToken: r.status === 200 }).toEqual({ servedToPlantedToken: false });
  }
  expect({ code: s.code, listening: s.url !== undefined }).toEqual({ code: 2, listening: false });
  const lines = run.err().trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^phase-bridge: refusing /);
  return lines[0];
}

test('a planted default data directory (another user owns it, with a client-token inside) is refused: exit 2, one line, the planted token never used', async () => {
  const sb = sandbox();
  const planted = 'planted-client-token-0123456789abcdef';
  mkdirSync(sb.defaultDir, { mode: 0o755 });
  writeFileSync(join(sb.defaultDir, 'client-token'), `${planted}\n`, { mode: 0o644 });
  chownSync(join(sb.defaultDir, 'client-token'), NOBODY, NOBODY);
  chownSync(sb.defaultDir, NOBODY, NOBODY);
  const line = await refused(cli(AGENT, { HOME: sb.home, TMPDIR: sb.tmp }), planted);
  expect(line).toContain(`the data directory ${sb.defaultDir}`);
  expect(line).toContain(`owned by uid ${NOBODY}, not by you (uid ${ME})`);
  expect(line).toMatch(/remove it/);
  // Nothing was added to the planted directory (no snapshot, no client token rewrite).
  expect(readdirSync(sb.defaultDir)).toEqual(['client-token']);
  expect(readFileSync(join(sb.defaultDir, 'client-token'), 'utf8')).toBe(`${planted}\n`);
});

test('a default data directory that is ours but world-writable (0777) is refused with the chmod fix', async () => {
  const sb = sandbox();
  mkdirSync(sb.defaultDir);
  chmodSync(sb.defaultDir, 0o777);
  const line = await refused(cli(AGENT, { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line).toContain(`the data directory ${sb.defaultDir}`);
  expect(line).toContain('writable by its group and everyone (mode 0777)');
  expect(line).toContain(`chmod 700 ${sb.defaultDir}`);
  expect(readdirSync(sb.defaultDir)).toEqual([]);
});

test('a default data directory that is a symbolic link (planted by another user) is refused', async () => {
  const sb = sandbox();
  const target = join(sb.root, 'elsewhere');
  mkdirSync(target, { mode: 0o700 });
  symlinkSync(target, sb.defaultDir);
  lchownSync(sb.defaultDir, NOBODY, NOBODY);
  const line = await refused(cli(AGENT, { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line).toContain(`the data directory ${sb.defaultDir}: it is a symbolic link`);
  expect(readdirSync(target)).toEqual([]);
});

test('the default data directory is created 0700, the client token 0640, and a restart reuses the token the agent wrote; agent-probe reads it there', async () => {
  const sb = sandbox();
  const env = { HOME: sb.home, TMPDIR: sb.tmp };
  const first = cli(AGENT, env);
  const s1 = await first.settled;
  expect(s1.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(statSync(sb.defaultDir).mode & 0o7777).toBe(0o700);
  expect(statSync(sb.defaultDir).uid).toBe(ME);
  const tokenFile = join(sb.defaultDir, 'client-token');
  expect(statSync(tokenFile).mode & 0o777).toBe(0o640);
  const clientToken = readFileSync(tokenFile, 'utf8').trim();
  await until(async () => (await get(s1.url!, '/v1/secrets/TRUST_KEY', clientToken)).body === VALUE, 15_000);
  const probe = cli(['agent-probe', '--url', s1.url!, '--path', '/readyz'], env);
  expect(await probe.exit).toBe(0);
  first.child.kill('SIGTERM');
  expect(await first.exit).toBe(0);

  const second = cli(AGENT, env);
  const s2 = await second.settled;
  expect(s2.url).toBeDefined();
  expect(readFileSync(tokenFile, 'utf8').trim()).toBe(clientToken);
  await until(async () => (await get(s2.url!, '/v1/secrets/TRUST_KEY', clientToken)).body === VALUE, 15_000);
  second.child.kill('SIGTERM');
  expect(await second.exit).toBe(0);
});

test('agent-probe refuses the client token of a planted default data directory (exit 2) and sends nothing', async () => {
  const sb = sandbox();
  mkdirSync(sb.defaultDir, { mode: 0o755 });
  writeFileSync(join(sb.defaultDir, 'client-token'), 'planted-client-token-for-the-probe\n');
  chownSync(sb.defaultDir, NOBODY, NOBODY);
  const probe = cli(['agent-probe', '--url', 'http://127.0.0.1:9', '--path', '/healthz'], {
    HOME: sb.home,
    TMPDIR: sb.tmp,
  });
  expect(await probe.exit).toBe(2);
  expect(probe.err().trimEnd().split('\n')).toEqual([
    expect.stringMatching(
      new RegExp(`^phase-bridge: refusing the data directory ${sb.defaultDir}: it is owned by uid ${NOBODY}`),
    ),
  ]);
});

test('a client token file named by the operator but planted by another user is refused and never read', async () => {
  const sb = sandbox();
  const planted = 'planted-named-client-token-0123456789';
  const file = join(sb.tmp, 'client-token'); // a sticky shared directory, like /tmp
  writeFileSync(file, `${planted}\n`, { mode: 0o644 });
  chownSync(file, NOBODY, NOBODY);
  const run = cli([...AGENT, '--client-token-file', file, '--no-snapshot'], {
    HOME: sb.home,
    TMPDIR: sb.tmp,
  });
  const line = await refused(run, planted);
  expect(line).toContain(`the client token file ${file}: it is owned by uid ${NOBODY}`);
  expect(readFileSync(file, 'utf8')).toBe(`${planted}\n`);
});

test('a client token file in a world-writable (not sticky) directory is refused, even one we own', async () => {
  const sb = sandbox();
  const shared = join(sb.root, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const file = join(shared, 'client-token');
  const planted = 'client-token-anyone-could-swap-01234';
  writeFileSync(file, `${planted}\n`, { mode: 0o600 });
  const run = cli([...AGENT, '--client-token-file', file, '--no-snapshot'], {
    HOME: sb.home,
    TMPDIR: sb.tmp,
  });
  const line = await refused(run, planted);
  expect(line).toContain(`the directory of the client token file ${shared}`);
  expect(line).toContain('writable by its group and everyone (mode 0777)');
});

test('a group-writable snapshot file is refused (exit 2), and so is one owned by another user', async () => {
  const sb = sandbox();
  const dataDir = join(sb.root, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  const snap = join(dataDir, 'snapshot.json');
  writeFileSync(snap, '{}');
  chmodSync(snap, 0o660);
  const line = await refused(cli([...AGENT, '--data-dir', dataDir], { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line).toContain(`the snapshot file ${snap}: it is writable by its group (mode 0660)`);
  expect(line).toContain(`chmod 600 ${snap}`);
  expect(readdirSync(dataDir)).toEqual(['snapshot.json']); // no client token written either

  chmodSync(snap, 0o600);
  chownSync(snap, NOBODY, NOBODY);
  const line2 = await refused(cli([...AGENT, '--data-dir', dataDir], { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line2).toContain(`the snapshot file ${snap}: it is owned by uid ${NOBODY}`);
});

test('an operator-named data directory that is group-writable or owned by another user is refused', async () => {
  const sb = sandbox();
  const dataDir = join(sb.root, 'data');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o770);
  const line = await refused(cli([...AGENT, '--data-dir', dataDir], { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line).toContain(`the data directory ${dataDir}: it is writable by its group (mode 0770)`);
  chmodSync(dataDir, 0o700);
  chownSync(dataDir, NOBODY, NOBODY);
  const line2 = await refused(cli([...AGENT, '--data-dir', dataDir], { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line2).toContain(`the data directory ${dataDir}: it is owned by uid ${NOBODY}`);
  expect(readdirSync(dataDir)).toEqual([]);
});

test('a render target whose parent directory is world-writable and not sticky is refused; a planted target is refused', async () => {
  const sb = sandbox();
  const shared = join(sb.root, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const target = join(shared, 'app.env');
  const args = [...AGENT, '--data-dir', join(sb.root, 'data'), '--render', target];
  const line = await refused(cli(args, { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line).toContain(`the directory of the render target ${shared}`);
  expect(line).toContain('writable by its group and everyone (mode 0777)');
  expect(existsSync(target)).toBe(false);

  // In a sticky shared directory (like /tmp) a target that another user already created is refused too.
  const planted = join(sb.tmp, 'app.env');
  writeFileSync(planted, 'PLANTED=1\n');
  chownSync(planted, NOBODY, NOBODY);
  const args2 = [...AGENT, '--data-dir', join(sb.root, 'data2'), '--render', planted];
  const line2 = await refused(cli(args2, { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line2).toContain(`the render target ${planted}: it is owned by uid ${NOBODY}`);
  expect(readFileSync(planted, 'utf8')).toBe('PLANTED=1\n');
});

test('--once renders into a sticky shared directory (like /tmp): mode 0600, owned by us', async () => {
  const sb = sandbox();
  const target = join(sb.tmp, 'rendered.env');
  const run = cli(['agent', '--once', '--no-snapshot', '--render', target], {
    HOME: sb.home,
    TMPDIR: sb.tmp,
  });
  expect(await run.exit).toBe(0);
  expect(readFileSync(target, 'utf8')).toMatch(new RegExp(`^TRUST_KEY="?${VALUE}"?$`, 'm'));
  expect(statSync(target).mode & 0o777).toBe(0o600);
  // --once without listeners never needs the data directory: nothing was created under TMPDIR but the target.
  expect(readdirSync(sb.tmp)).toEqual(['rendered.env']);
});

test('a world-readable token file is used, with a warning in the log', async () => {
  const sb = sandbox();
  const tokenFile = join(sb.root, 'token');
  writeFileSync(tokenFile, `${prov.token}\n`);
  chmodSync(tokenFile, 0o644);
  const dataDir = join(sb.root, 'data');
  const run = cli([...AGENT, '--data-dir', dataDir, '--token-file', tokenFile], {
    HOME: sb.home,
    TMPDIR: sb.tmp,
  });
  const s = await run.settled;
  expect(s.url).toBeDefined();
  const clientToken = readFileSync(join(dataDir, 'client-token'), 'utf8').trim();
  await until(async () => (await get(s.url!, '/v1/secrets/TRUST_KEY', clientToken)).body === VALUE, 15_000);
  const warning = run
    .err()
    .split('\n')
    .filter((l) => l.includes('readable by every local user'))
    .map((l) => JSON.parse(l));
  expect(warning).toHaveLength(1);
  expect(warning[0].level).toBe(40); // pino warn
  expect(warning[0].file).toBe(tokenFile);
  expect(warning[0].msg).toContain(`chmod 600 ${tokenFile}`);
  run.child.kill('SIGTERM');
  expect(await run.exit).toBe(0);
});

test('a group-writable token file, or one owned by another user, is refused', async () => {
  const sb = sandbox();
  const tokenFile = join(sb.root, 'token');
  writeFileSync(tokenFile, `${prov.token}\n`);
  chmodSync(tokenFile, 0o620);
  const args = [...AGENT, '--data-dir', join(sb.root, 'data'), '--token-file', tokenFile];
  const line = await refused(cli(args, { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line).toContain(`the token file ${tokenFile}: it is writable by its group (mode 0620)`);
  expect(line).not.toContain(prov.token.split(':')[2]);
  chmodSync(tokenFile, 0o600);
  chownSync(tokenFile, NOBODY, NOBODY);
  const line2 = await refused(cli(args, { HOME: sb.home, TMPDIR: sb.tmp }));
  expect(line2).toContain(`the token file ${tokenFile}: it is owned by uid ${NOBODY}`);
});

test('as a non-root user (nobody): "owned by you" is the process uid, so a default data directory root created is refused and a fresh one is created as nobody; a root-owned token file is accepted', async () => {
  const sb = sandbox();
  chmodSync(sb.root, 0o755);
  chownSync(sb.home, NOBODY, NOBODY);
  const nobodyDefault = join(sb.tmp, `phase-bridge-agent-${NOBODY}`);
  mkdirSync(nobodyDefault, { mode: 0o700 }); // owned by root: not the agent's
  const env = { HOME: sb.home, TMPDIR: sb.tmp };
  const line = await refused(cli(AGENT, env, { uid: NOBODY, gid: NOBODY }));
  expect(line).toContain(
    `the data directory ${nobodyDefault}: it is owned by uid 0, not by you (uid ${NOBODY})`,
  );

  rmSync(nobodyDefault, { recursive: true });
  // A token file owned by root (as a Kubernetes secret mount is) is trusted too: root controls everything anyway.
  const tokenFile = join(sb.root, 'token');
  writeFileSync(tokenFile, `${prov.token}\n`, { mode: 0o440 });
  chownSync(tokenFile, 0, NOBODY);
  const ok = cli([...AGENT, '--token-file', tokenFile], env, { uid: NOBODY, gid: NOBODY });
  const s = await ok.settled;
  expect(s.url).toBeDefined();
  const st = statSync(nobodyDefault);
  expect({ uid: st.uid, mode: st.mode & 0o7777 }).toEqual({ uid: NOBODY, mode: 0o700 });
  const clientToken = readFileSync(join(nobodyDefault, 'client-token'), 'utf8').trim();
  await until(async () => (await get(s.url!, '/v1/secrets/TRUST_KEY', clientToken)).body === VALUE, 15_000);
  ok.child.kill('SIGTERM');
  expect(await ok.exit).toBe(0);
});

describe('the rules, in process', () => {
  const fakeToken = (c: string): string =>
    `pss_service:v2:${c.repeat(64)}:${'b'.repeat(64)}:${'c'.repeat(64)}:${'d'.repeat(64)}`;
  const capture = (): {
    log: ReturnType<typeof createLogger>;
    lines: () => Array<Record<string, unknown>>;
  } => {
    const out: string[] = [];
    const log = createLogger('info', { write: (s: string) => void out.push(s) });
    return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
  };

  test('a Kubernetes-style secret mount (root-owned links token -> ..data/token -> ..<stamp>/token, 0440) is followed, without a warning', async () => {
    const sb = sandbox();
    const mount = join(sb.root, 'secret');
    mkdirSync(join(mount, '..2024_01_01_00_00_00.1'), { recursive: true });
    writeFileSync(join(mount, '..2024_01_01_00_00_00.1', 'token'), fakeToken('a'), { mode: 0o440 });
    symlinkSync('..2024_01_01_00_00_00.1', join(mount, '..data'));
    symlinkSync('..data/token', join(mount, 'token'));
    const { log, lines } = capture();
    const ts = new TokenSource({ tokenFile: join(mount, 'token'), pollIntervalMs: 60_000, log });
    try {
      await ts.start();
      expect(ts.raw).toBe(fakeToken('a'));
      expect(lines().filter((l) => (l.level as number) >= 40)).toEqual([]);
    } finally {
      ts.stop();
    }
  });

  test('a symbolic link owned by another user is refused, even when it points at a good file', async () => {
    const sb = sandbox();
    const good = join(sb.root, 'good-token');
    writeFileSync(good, fakeToken('a'), { mode: 0o600 });
    const link = join(sb.root, 'token');
    symlinkSync(good, link);
    lchownSync(link, NOBODY, NOBODY);
    await expect(readTrustedFile(link, TOKEN_FILE_RULE)).rejects.toThrow(
      new RegExp(`^refusing the token file ${link}: it is a symbolic link owned by uid ${NOBODY}`),
    );
    await expect(checkPath(link, TOKEN_FILE_RULE)).rejects.toBeInstanceOf(AgentPathError);
  });

  test('a planted FIFO is refused as "not a regular file", without blocking on it', async () => {
    const sb = sandbox();
    const fifo = join(sb.root, 'client-token');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    await expect(readTrustedFile(fifo, CLIENT_TOKEN_RULE)).rejects.toThrow(
      `refusing the client token file ${fifo}: it is not a regular file`,
    );
  });

  test('a token file that turns group-writable is not re-read: the previous token stays in use, with a warning', async () => {
    const sb = sandbox();
    const file = join(sb.root, 'token');
    writeFileSync(file, fakeToken('a'), { mode: 0o600 });
    const { log, lines } = capture();
    const ts = new TokenSource({ tokenFile: file, pollIntervalMs: 60_000, log });
    try {
      await ts.start();
      writeFileSync(file, fakeToken('e'));
      chmodSync(file, 0o660);
      await ts.check();
      expect(ts.raw).toBe(fakeToken('a'));
      const warned = lines().filter((l) => l.msg === 'token file unreadable; keeping the previous token');
      expect(warned).toHaveLength(1);
      expect(warned[0].reason).toContain('it is writable by its group (mode 0660)');
      chmodSync(file, 0o600);
      await ts.check();
      expect(ts.raw).toBe(fakeToken('e'));
    } finally {
      ts.stop();
    }
  });
});
