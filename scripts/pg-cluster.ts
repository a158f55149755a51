/**
 * A throw-away PostgreSQL cluster for tests, CI and benchmarks.
 *
 * Usage as a script (what `.ci/run` can call):
 *
 *     node dist/scripts/pg-cluster.js start
 *
 * initialises a cluster in a fresh temp directory, starts `postgres` in the foreground of this process, prints one
 * line `PHASE_BRIDGE_TEST_PG_URL=postgres://postgres@127.0.0.1:<port>/postgres` on stdout once the server accepts
 * connections, and keeps running. SIGINT or SIGTERM (Ctrl-C, `kill <pid>`) shuts PostgreSQL down ("fast" mode) and
 * deletes the directory. There is no daemon mode and no `stop` subcommand: the cluster lives exactly as long as this
 * process, so nothing is left behind by a crashed run except a temp directory.
 *
 * Usage from code (jest global setup, benchmarks): `const pg = await startPostgres(); … await pg.stop();`.
 *
 * The cluster listens on 127.0.0.1 on a free port only, with its unix socket inside the temp directory, trust
 * authentication (loopback only, throw-away data) and `fsync=on` (crash-safety tests must see real durability).
 * PostgreSQL refuses to run as root, so when we are root the binaries run as the `postgres` user (via `setpriv`,
 * else `runuser`) and the temp directory is handed to that user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Client } from 'pg';
import { PhaseBridgeError } from '../core/errors';

/** PostgreSQL could not be found or started; the message says what to install or look at. */
export class PostgresUnavailableError extends PhaseBridgeError {
  constructor(message: string) {
    super('postgres_unavailable', message);
  }
}

export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  dataDir: string;
  /** Fast shutdown, then removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

interface PgBinaries {
  initdb: string;
  postgres: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** PATH first, then Debian's versioned directories (newest version wins). */
export function findPgBinaries(): PgBinaries {
  const initdb = onPath('initdb');
  const postgres = onPath('postgres');
  if (initdb && postgres) return { initdb, postgres };
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter(
        (v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'postgres')),
      )
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    if (versions.length) {
      const bin = join(root, versions[0], 'bin');
      return { initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres') };
    }
  }
  throw new PostgresUnavailableError(
    'PostgreSQL binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin. ' +
      'Install the Debian package: apt-get install postgresql',
  );
}

/** When root, the command prefix that drops to the `postgres` user, and that user's uid/gid. */
function dropPrivileges(): { prefix: string[]; uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new PostgresUnavailableError(
      'running as root, and PostgreSQL refuses to run as root, but there is no `postgres` user to run it as. ' +
        'Install the Debian package (apt-get install postgresql), which creates it, or run as a normal user.',
    );
  }
  const uid = Number(id.stdout.trim());
  const g = Number(gid.stdout.trim());
  // setpriv execs in place, so our signals reach postgres itself; runuser keeps a parent process in between.
  if (onPath('setpriv')) {
    return { prefix: ['setpriv', `--reuid=${uid}`, `--regid=${g}`, '--init-groups', '--'], uid, gid: g };
  }
  if (onPath('runuser')) return { prefix: ['runuser', '-u', 'postgres', '--'], uid, gid: g };
  throw new PostgresUnavailableError(
    'running as root but neither runuser nor setpriv is available to drop to the postgres user',
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(
  url: string,
  child: ChildProcess,
  log: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new PostgresUnavailableError(
        `postgres exited during start-up (code ${child.exitCode}):\n${log()}`,
      );
    }
    const c = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (err) {
      lastErr = err instanceof Error ? err.message : String(err);
      await c.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new PostgresUnavailableError(
    `postgres did not accept connections within ${timeoutMs} ms (${lastErr}):\n${log()}`,
  );
}

/** Initialises and starts a fresh cluster. Rejects with PostgresUnavailableError naming the fix. */
export async function startPostgres(opts: { startTimeoutMs?: number } = {}): Promise<PostgresCluster> {
  const bins = findPgBinaries();
  const priv = dropPrivileges();
  const base = mkdtempSync(join(tmpdir(), 'phase-bridge-pg-'));
  const dataDir = join(base, 'data');
  if (priv) {
    chownSync(base, priv.uid, priv.gid);
    chmodSync(base, 0o700);
  }
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    priv ? [priv.prefix[0], [...priv.prefix.slice(1), cmd, ...args]] : [cmd, args];

  const cleanup = (): void => rmSync(base, { recursive: true, force: true });
  // initdb's own fsync of the fresh cluster is skipped (-N): nothing in it is worth keeping; the server runs fsync=on.
  const [icmd, iargs] = wrap(bins.initdb, [
    '-D',
    dataDir,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--locale=C',
    '-N',
  ]);
  const init = spawnSync(icmd, iargs, { encoding: 'utf8', cwd: base });
  if (init.status !== 0) {
    cleanup();
    throw new PostgresUnavailableError(
      `initdb failed (exit ${init.status ?? init.signal}): ${(init.stderr || init.stdout || String(init.error ?? '')).trim()}`,
    );
  }

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const [pcmd, pargs] = wrap(bins.postgres, [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${base}`,
      '-c',
      'fsync=on',
      '-c',
      'synchronous_commit=on',
      '-c',
      'full_page_writes=on',
      '-c',
      'max_connections=300',
      '-c',
      'shared_buffers=64MB',
      '-c',
      'log_min_messages=warning',
      '-c',
      'logging_collector=off',
    ]);
    const child = spawn(pcmd, pargs, { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    try {
      await waitReady(url, child, () => output, opts.startTimeoutMs ?? 30_000);
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      if (/already in use|could not bind|could not create listen socket/i.test(output)) continue;
      cleanup();
      throw err;
    }
    // If our process exits without stop() (an uncaught error, process.exit), do not leave postgres running:
    // SIGQUIT is PostgreSQL's immediate shutdown and can be sent synchronously from an exit handler.
    const onExit = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
    };
    process.once('exit', onExit);
    child.once('exit', () => process.off('exit', onExit));
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(hard);
          cleanup();
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        // SIGINT = PostgreSQL's "fast" shutdown; the postgres user's process accepts it from root.
        child.kill('SIGINT');
        const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      });
      return stopped;
    };
    return { url, port, dataDir, stop };
  }
  cleanup();
  throw lastError instanceof Error ? lastError : new PostgresUnavailableError('could not start postgres');
}

async function main(argv: string[]): Promise<void> {
  const cmd = argv[0];
  if (cmd !== 'start') {
    process.stderr.write(
      'usage: node dist/scripts/pg-cluster.js start\n' +
        '  starts a throw-away PostgreSQL on 127.0.0.1, prints PHASE_BRIDGE_TEST_PG_URL=..., runs until SIGINT/SIGTERM\n',
    );
    process.exitCode = 2;
    return;
  }
  let cluster: PostgresCluster;
  try {
    cluster = await startPostgres();
  } catch (err) {
    process.stderr.write(`pg-cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`PHASE_BRIDGE_TEST_PG_URL=${cluster.url}\n`);
  const shutdown = (): void => {
    void cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', shutdown);
  // Keep the event loop alive until a signal arrives.
  setInterval(() => undefined, 1 << 30);
}

if (require.main === module) void main(process.argv.slice(2));
