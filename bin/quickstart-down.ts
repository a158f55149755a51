/**
 * `phase-bridge quickstart --down` (`npm run down`): undoes what the quickstart made on one data directory, without
 * asking. It stops the quickstart running there (SIGTERM to the pid in its lock file, then waits), destroys what
 * terraform deployed (serving the data directory's own database for the while, so the app, secrets, service account
 * and token go from the server), and removes the files the quickstart wrote, then the directory. Nothing running,
 * nothing deployed or no directory at all is fine: it says so.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PhaseBridgeError } from '../core/errors';
import { createServer } from '../server';
import { resolvePaths } from '../server/cli';
import { loadServerSecret } from '../server/config';
import { destroyQuickstart, managedResources, STATE_FILE, terraformVersion } from './deploy';
import { LOCK_FILE, quickstartAlive, readLock } from './quickstart-lock';

/** What the quickstart writes into its data directory: only these are removed. */
const QUICKSTART_FILES = [
  'phase.db',
  'phase.db-wal',
  'phase.db-shm',
  'phase.db-journal',
  'server.key',
  'owner-token',
  'agent-token',
  'agent',
  'deploy',
  'terraform',
  'cdktf.out',
  LOCK_FILE,
];

export async function quickstartDown(o: { dataDir: string; say: (line?: string) => void }): Promise<void> {
  const { say } = o;
  const dir = resolve(o.dataDir);
  const shown = o.dataDir.replace(/^\.\/(?=.)/, '');
  refuseUnsafe(dir);
  if (!existsSync(dir)) {
    say(`Nothing to clean up: ${shown} does not exist.`);
    return;
  }

  // 1. Stop the quickstart running on this data directory.
  const lock = readLock(dir);
  if (lock && lock.pid !== process.pid && quickstartAlive(lock.pid)) {
    say(
      `Stopping the quickstart (pid ${lock.pid}, server port ${lock.port}, agent port ${lock.agentPort})...`,
    );
    if (!(await stopProcess(lock.pid))) {
      throw new PhaseBridgeError(
        'quickstart_down',
        `the quickstart (pid ${lock.pid}) did not exit; nothing was destroyed or removed`,
      );
    }
    say('   Stopped.');
  } else {
    say(`No quickstart is running on ${shown}.`);
  }

  // 2. Destroy what terraform deployed, against this data directory's own server.
  const stateFile = join(dir, 'deploy', STATE_FILE);
  const deployed = managedResources(stateFile);
  const paths = resolvePaths({ dataDir: dir });
  const tokenFile = join(dir, 'owner-token');
  if (deployed === 0) {
    say('Nothing deployed (no resources in the Terraform state).');
  } else if (!terraformVersion()) {
    say(
      `terraform (>= 1.11) is not on PATH, so the ${deployed} deployed resources are not destroyed through it; ` +
        "they live in the data directory's database, which goes with it.",
    );
  } else if (!existsSync(paths.keyFile) || !existsSync(tokenFile)) {
    say(
      `The server key or owner token is gone, so the ${deployed} deployed resources cannot be destroyed through ` +
        'terraform; the database they live in goes with the data directory.',
    );
  } else {
    say(`Destroying the ${deployed} deployed resources with terraform...`);
    const srv = await createServer({
      database: paths.database,
      serverSecret: loadServerSecret(paths.keyFile),
      logLevel: 'warn',
    });
    try {
      const { url } = await srv.listen(0, '127.0.0.1');
      const changes = await destroyQuickstart({
        dataDir: dir,
        url,
        ownerToken: readFileSync(tokenFile, 'utf8').trim(),
      }).catch((e: Error) => {
        throw new PhaseBridgeError(
          'quickstart_down',
          `${e.message}\n${shown} was left as it is: fix the error and run again, or delete it by hand`,
        );
      });
      for (const line of changes) say(`   ${line}`);
    } finally {
      await srv.close();
    }
  }

  // 3. Remove what the quickstart wrote, then the directory when nothing else is left in it.
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!QUICKSTART_FILES.includes(name) && !name.startsWith(`${LOCK_FILE}.`)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  const left = readdirSync(dir);
  if (left.length === 0) {
    rmdirSync(dir);
    say(`Removed ${shown}${removed.length ? ` (${removed.join(', ')})` : ''}.`);
  } else {
    say(
      `Removed ${removed.length ? removed.join(', ') : 'nothing'} from ${shown}; the directory stays, as it ` +
        `also holds ${left.join(', ')}, which the quickstart did not write.`,
    );
  }
}

/** No cleaning up of /, the home directory, or the current directory or one above it. */
function refuseUnsafe(dir: string): void {
  const rel = relative(dir, process.cwd());
  const above = !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel));
  if (dir === resolve(sep) || dir === homedir() || above) {
    throw new PhaseBridgeError(
      'quickstart_down',
      `refusing to clean up ${dir}: it is ${dir === homedir() ? 'the home directory' : 'the current directory or one above it'}; ` +
        "pass the quickstart's own --data-dir",
    );
  }
}

/** SIGTERM, then up to 20 s for a clean exit; SIGKILL after that. True once the process is gone. */
async function stopProcess(pid: number): Promise<boolean> {
  const gone = async (ms: number): Promise<boolean> => {
    for (const end = Date.now() + ms; Date.now() < end;) {
      if (!quickstartAlive(pid)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return !quickstartAlive(pid);
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return !quickstartAlive(pid);
  }
  if (await gone(20_000)) return true;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  return gone(5_000);
}
