/**
 * The `phase-bridge server` CLI: init writes the key file and owner token with mode 0600, refuses to run twice,
 * add-member mints a working PAT, and a key file readable by others is refused. Runs on every store.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { register } from '../../server/cli';
import { loadServerSecret, SERVER_SECRET_ENV } from '../../server/config';
import { createPgDatabase, startTestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller } from './helpers';

async function run(args: string[]): Promise<void> {
  const program = new Command();
  program.exitOverride();
  register(program);
  await program.parseAsync(['node', 'phase-bridge', ...args]);
}

describe('server CLI', () => {
  let dir: string;
  const savedEnv = process.env[SERVER_SECRET_ENV];
  let stderr: jest.SpyInstance;
  let stdout: jest.SpyInstance;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pb-cli-'));
    delete process.env[SERVER_SECRET_ENV];
    stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    process.exitCode = undefined;
  });
  afterEach(() => {
    stderr.mockRestore();
    stdout.mockRestore();
    process.exitCode = undefined;
    if (savedEnv !== undefined) process.env[SERVER_SECRET_ENV] = savedEnv;
    rmSync(dir, { recursive: true, force: true });
  });

  test.each(STORES)(
    '%s: init, add-member and a server started on the same data answer with those tokens',
    async (store) => {
      const tokenFile = join(dir, 'owner.token');
      let database = `sqlite:${join(dir, 'phase.db')}`;
      let drop = async () => {};
      if (store === 'postgres') ({ url: database, drop } = await createPgDatabase());
      const db = ['--database', database];
      try {
        await run([
          'server',
          'init',
          '--data-dir',
          dir,
          ...db,
          '--token-file',
          tokenFile,
          '--owner-email',
          'boss@example.com',
        ]);
        expect(statSync(join(dir, 'server.key')).mode & 0o777).toBe(0o600);
        expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
        const ownerToken = readFileSync(tokenFile, 'utf8').trim();
        expect(ownerToken).toMatch(/^pss_user:v1:/);
        expect(stdout).not.toHaveBeenCalled(); // the token went to the file only
        expect(existsSync(join(dir, 'phase.db'))).toBe(store === 'sqlite');
        if (store === 'sqlite') expect(statSync(join(dir, 'phase.db')).mode & 0o777).toBe(0o600);

        await run(['server', 'init', '--data-dir', dir, ...db]);
        expect(process.exitCode).toBe(1);

        await run([
          'server',
          'add-member',
          '--data-dir',
          dir,
          ...db,
          '--role',
          'Developer',
          '--email',
          'dev@example.com',
        ]);
        const printed = stdout.mock.calls.map((c) => String(c[0])).join('');
        const devToken = printed.trim();
        expect(devToken).toMatch(/^pss_user:v1:/);

        const srv = await startTestServer({
          database,
          serverSecret: loadServerSecret(join(dir, 'server.key')),
          ownerToken,
        });
        try {
          const members = await caller(srv, ownerToken)('GET', '/v1/members/');
          expect(members.status).toBe(200);
          expect(members.body.data.map((m: any) => [m.email, m.role.name])).toEqual([
            ['boss@example.com', 'Owner'],
            ['dev@example.com', 'Developer'],
          ]);
          expect((await caller(srv, devToken)('GET', '/v1/roles/')).status).toBe(200);
          // A lost owner token can be replaced.
          stdout.mockClear();
          await run([
            'server',
            'mint-token',
            '--data-dir',
            dir,
            ...db,
            '--email',
            'BOSS@example.com',
            '--expires-in',
            '3600',
          ]);
          const fresh = stdout.mock.calls
            .map((c) => String(c[0]))
            .join('')
            .trim();
          expect(fresh).toMatch(/^pss_user:v1:/);
          expect(fresh).not.toBe(ownerToken);
          const who = await caller(srv, fresh)('GET', '/service/secrets/tokens/');
          expect(who.status).toBe(200);
          expect(who.body.user_id).toBe(members.body.data[0].id);
          await expect(
            run(['server', 'mint-token', '--data-dir', dir, ...db, '--email', 'nobody@example.com']),
          ).rejects.toThrow(/no member/);
        } finally {
          await srv.close();
        }
      } finally {
        await drop();
      }
    },
  );

  test('a key file readable by group or others is refused; a malformed secret is refused', () => {
    const keyFile = join(dir, 'server.key');
    require('node:fs').writeFileSync(keyFile, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    expect(loadServerSecret(keyFile, {})).toBe('ab'.repeat(32));
    chmodSync(keyFile, 0o644);
    expect(() => loadServerSecret(keyFile, {})).toThrow(/must not be readable by group or others/);
    expect(() => loadServerSecret(keyFile, { [SERVER_SECRET_ENV]: 'xyz' })).toThrow(/64 hex characters/);
    expect(loadServerSecret(keyFile, { [SERVER_SECRET_ENV]: 'CD'.repeat(32) })).toBe('cd'.repeat(32));
    expect(() => loadServerSecret(join(dir, 'missing.key'), {})).toThrow(/no server key/);
  });
});
