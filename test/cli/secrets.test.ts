/**
 * The user CLI for local work (issue 15): `login`, `whoami`, `secrets list|get|set|delete|import|export` and
 * `logout`, run as a person runs them (the built `bin/phase-bridge.js`, a private config directory) against the real
 * server, including the bad inputs: no login, an unknown app, a revoked token.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestServer, type TestServer } from '../support/server';
import { caller, createApp, createSa } from '../server/helpers';

const ROOT = resolve(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'phase-bridge.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('phase-bridge login and secrets', () => {
  let srv: TestServer;
  let home: string;
  let appName: string;
  let appId: string;

  function cli(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Result> {
    return new Promise((done) => {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: home,
        XDG_CONFIG_HOME: join(home, 'config'),
      };
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...env, ...opts.env }, cwd: home });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.on('close', (code) => done({ code, stdout, stderr }));
      child.stdin.end(opts.stdin ?? '');
    });
  }

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'bin', 'cli.js'))) {
      throw new Error('dist/ is missing: `npm test` builds it first (npm run build)');
    }
    srv = await startTestServer({ store: 'sqlite' });
    home = mkdtempSync(join(tmpdir(), 'pb-cli-home-'));
    const owner = caller(srv, srv.ownerToken);
    const { app } = await createApp(owner, `cli-${Date.now()}`);
    appName = app.name;
    appId = app.id;
  });

  afterAll(async () => {
    await srv?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('without a login every command says how to log in', async () => {
    const r = await cli(['secrets', 'list', '--app', 'x', '--env', 'Development']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not logged in: run `phase-bridge login --host <url>`');
    const w = await cli(['whoami']);
    expect(w.code).toBe(1);
  });

  test('login reads the token from stdin and saves it 0600; whoami names the organisation', async () => {
    const r = await cli(['login', '--host', srv.url], { stdin: `${srv.ownerToken}\n` });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Logged in to');
    const file = join(home, 'config', 'phase-bridge', 'credentials.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, 'config', 'phase-bridge')).mode & 0o777).toBe(0o700);
    const w = await cli(['whoami']);
    expect(w.code).toBe(0);
    expect(w.stdout).toContain('organisation: test-org');
    expect(w.stdout).toContain('(User token)');
    expect(w.stdout).toContain(appName);
  });

  test('a bad token is refused at login and nothing is saved', async () => {
    const other = mkdtempSync(join(tmpdir(), 'pb-cli-other-'));
    try {
      const r = await cli(['login', '--host', srv.url], {
        stdin: `User ${'0'.repeat(64)}\n`,
        env: { XDG_CONFIG_HOME: join(other, 'config') },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Token expired or deleted|401|403/);
      expect(existsSync(join(other, 'config', 'phase-bridge', 'credentials.json'))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('set (value from stdin, never argv), list masked and shown, get, export, delete', async () => {
    const scope = ['--app', appName, '--env', 'Development'];
    const set = await cli(['secrets', 'set', 'DB_URL', ...scope], { stdin: 'postgres://cli\n' });
    expect([set.code, set.stdout.trim()]).toEqual([0, 'Created DB_URL']);
    const again = await cli(['secrets', 'set', 'DB_URL', ...scope, '--comment', 'primary'], {
      stdin: 'postgres://v2',
    });
    expect(again.stdout.trim()).toBe('Updated DB_URL');
    await cli(['secrets', 'set', 'API_KEY', 'k-123', ...scope, '--path', '/api', '--tags', 'web']);

    const masked = await cli(['secrets', 'list', ...scope]);
    expect(masked.code).toBe(0);
    expect(masked.stdout).toContain('DB_URL');
    expect(masked.stdout).not.toContain('postgres://v2');
    expect(masked.stdout).toContain('********');
    const shown = await cli(['secrets', 'list', ...scope, '--show']);
    expect(shown.stdout).toContain('postgres://v2');
    expect(shown.stdout).toContain('k-123');

    expect((await cli(['secrets', 'get', 'DB_URL', ...scope])).stdout).toBe('postgres://v2\n');
    expect((await cli(['secrets', 'get', 'API_KEY', ...scope, '--path', '/api'])).stdout).toBe('k-123\n');
    // By id as well as by name.
    expect((await cli(['secrets', 'get', 'DB_URL', '--app', appId, '--env', 'development'])).stdout).toBe(
      'postgres://v2\n',
    );

    const json = await cli(['secrets', 'export', ...scope, '--format', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({ DB_URL: 'postgres://v2', API_KEY: 'k-123' });
    const out = join(home, 'exported.env');
    expect((await cli(['secrets', 'export', ...scope, '--path', '/', '--out', out])).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('DB_URL=');
    expect(statSync(out).mode & 0o777).toBe(0o600);

    const del = await cli(['secrets', 'delete', 'DB_URL', ...scope]);
    expect([del.code, del.stdout.trim()]).toEqual([0, 'Deleted DB_URL']);
    const gone = await cli(['secrets', 'get', 'DB_URL', ...scope]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("no secret 'DB_URL'");
  });

  test('import creates and updates from a dotenv file', async () => {
    const scope = ['--app', appName, '--env', 'Staging'];
    await cli(['secrets', 'set', 'EXISTING', 'old', ...scope]);
    const file = join(home, 'in.env');
    writeFileSync(file, 'EXISTING=new\nFRESH="multi word"\n# comment\nexport SHELLISH=1\n');
    const r = await cli(['secrets', 'import', file, ...scope]);
    expect(r.stdout.trim()).toBe('Imported 3 secrets (2 created, 1 updated)');
    const json = JSON.parse(
      (await cli(['secrets', 'export', ...scope, '--format', 'json'])).stdout,
    ) as Record<string, string>;
    expect(json).toEqual({ EXISTING: 'new', FRESH: 'multi word', SHELLISH: '1' });
  });

  test('an unknown app names the apps the token can reach; an unknown environment is the server’s 404', async () => {
    const r = await cli(['secrets', 'list', '--app', 'nope', '--env', 'Development']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown app 'nope'; this token can reach");
    expect(r.stderr).toContain(appName);
    const e = await cli(['secrets', 'list', '--app', appName, '--env', 'Nope']);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain("Environment 'Nope' not found");
  });

  test('PHASE_HOST / PHASE_TOKEN override the login; a revoked token is a clear 401', async () => {
    const owner = caller(srv, srv.ownerToken);
    const sa = await createSa(owner, 'cli-sa');
    const env = { PHASE_HOST: srv.url, PHASE_TOKEN: sa.token };
    const who = await cli(['whoami'], { env });
    expect(who.stdout).toContain(`service account ${sa.id}`);
    expect(who.stdout).toContain('login from: environment (PHASE_TOKEN)');
    const detail = await owner('GET', `/v1/service-accounts/${sa.id}/`);
    await owner('DELETE', `/v1/service-accounts/${sa.id}/tokens/${detail.body.tokens[0].id}/`);
    const r = await cli(['secrets', 'list', '--app', appId, '--env', 'Development'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/401|Token expired or deleted/);
    expect(r.stderr).not.toContain(sa.token.split(':')[2]);
  });

  test('every command’s --help shows an example', async () => {
    for (const args of [
      ['login'],
      ['logout'],
      ['whoami'],
      ['secrets', 'list'],
      ['secrets', 'get'],
      ['secrets', 'set'],
      ['secrets', 'delete'],
      ['secrets', 'import'],
      ['secrets', 'export'],
    ]) {
      const r = await cli([...args, '--help']);
      expect([args.join(' '), /Examples?:\n {2}\$ .*phase-bridge /.test(r.stdout)]).toEqual([
        args.join(' '),
        true,
      ]);
    }
  });

  test('run uses the login when no token is given', async () => {
    const scope = ['--app', appName, '--env', 'Staging'];
    await cli(['secrets', 'set', 'FROM_LOGIN', 'yes', ...scope]);
    const r = await cli([
      'run',
      ...scope,
      '--',
      process.execPath,
      '-e',
      'process.stdout.write(String(process.env.FROM_LOGIN))',
    ]);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'yes', expect.any(String)]);
  });

  test('logout forgets the login', async () => {
    expect((await cli(['logout'])).stdout).toContain('Removed');
    expect((await cli(['whoami'])).code).toBe(1);
  });
});
