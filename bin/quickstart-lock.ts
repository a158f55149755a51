/**
 * One quickstart per data directory, and a clear word when one is already running: the running quickstart keeps
 * `<data-dir>/quickstart.lock` (its pid and ports; written when it starts, removed when it exits, a dead pid's lock
 * is ignored), and its ports are probed before anything slow happens.
 *
 * `npm start` checks the same things before it builds, in bin/quickstart-start.js (plain JavaScript, as dist/ may
 * not exist yet); the lock file's format and the messages are shared with it, keep the two in step.
 */
import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_DATA_DIR } from '../server/cli';

export const LOCK_FILE = 'quickstart.lock';

/** What `<data-dir>/quickstart.lock` holds (JSON). */
export interface QuickstartLock {
  pid: number;
  host: string;
  port: number;
  agentPort: number;
  startedAt: string;
}

/** The agent listens on loopback whatever `--host` says. */
export const AGENT_HOST = '127.0.0.1';

export function readLock(dataDir: string): QuickstartLock | undefined {
  try {
    const l = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')) as Partial<QuickstartLock>;
    return typeof l.pid === 'number' && Number.isInteger(l.pid) && l.pid > 0
      ? (l as QuickstartLock)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is a live quickstart. A pid the kernel has handed to another program since (the lock of a quickstart
 * that was killed) is told apart by its command line where /proc has one.
 */
export function quickstartAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('quickstart');
  } catch {
    return true; // no /proc (macOS, Windows) or not readable: the pid is alive, believe the lock
  }
}

/** The live quickstart on this data directory other than this process, if any. */
export function runningQuickstart(dataDir: string): QuickstartLock | undefined {
  const l = readLock(dataDir);
  return l && l.pid !== process.pid && quickstartAlive(l.pid) ? l : undefined;
}

export class QuickstartBusyError extends Error {
  readonly code = 'quickstart_busy';
}

/**
 * Takes the data directory's lock for this process (refused while another quickstart holds it; a dead one's lock
 * is replaced) and removes it when the process exits. The file appears whole (written aside, then hard-linked into
 * place), so a concurrent start never reads half a lock.
 */
export async function acquireLock(o: {
  dataDir: string;
  host: string;
  port: number;
  agentPort: number;
}): Promise<void> {
  const file = join(o.dataDir, LOCK_FILE);
  const mine: QuickstartLock = {
    pid: process.pid,
    host: o.host,
    port: o.port,
    agentPort: o.agentPort,
    startedAt: new Date().toISOString(),
  };
  const aside = `${file}.${process.pid}`;
  writeFileSync(aside, `${JSON.stringify(mine)}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(aside, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw e;
        const other = runningQuickstart(o.dataDir);
        if (other) throw new QuickstartBusyError(await runningMessage(o.dataDir, other));
        unlinkSync(file); // a quickstart that died without cleaning up
      }
    }
  } finally {
    unlinkSync(aside);
  }
  process.on('exit', () => {
    if (readLock(o.dataDir)?.pid === process.pid && existsSync(file)) unlinkSync(file);
  });
}

/** Whether something listens on host:port (probed by binding it, as the server is about to). */
export function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRINUSE'));
    s.listen({ port, host }, () => s.close(() => resolve(false)));
  });
}

/** The first free port from `from` on (not one of `avoid`), for the "start another" hint. */
async function nextFree(host: string, from: number, avoid: number[]): Promise<number> {
  for (let p = from; p < from + 50 && p < 65536; p++) {
    if (!avoid.includes(p) && !(await portInUse(host, p))) return p;
  }
  return from;
}

/** `npm start -- ...` / `npm run down` when npm runs us, else the CLI's own spelling. */
function commands(dataDir: string): { start: string; down: string } {
  const npm = ['start', 'down'].includes(process.env.npm_lifecycle_event ?? '');
  const dd = isDefaultDataDir(dataDir) ? '' : ` --data-dir ${shown(dataDir)}`;
  return npm
    ? { start: 'npm start --', down: `npm run down${dd ? ` --${dd}` : ''}` }
    : { start: 'phase-bridge quickstart', down: `phase-bridge quickstart --down${dd}` };
}

const shown = (dir: string): string => dir.replace(/^\.\/(?=.)/, '');
const isDefaultDataDir = (dir: string): boolean => shown(dir) === shown(DEFAULT_DATA_DIR);

/** Another data directory for a second quickstart: `<data-dir>-2`, `-3`, ... (one not in use). */
function otherDataDir(dataDir: string): string {
  const base = shown(dataDir).replace(/\/+$/, '');
  for (let i = 2; i < 10; i++) if (!runningQuickstart(`${base}-${i}`)) return `${base}-${i}`;
  return `${base}-${Date.now()}`;
}

/** The one line for "a quickstart already runs on this data directory". */
export async function runningMessage(dataDir: string, l: QuickstartLock): Promise<string> {
  const c = commands(dataDir);
  const port = await nextFree(l.host, l.port + 1, [l.agentPort]);
  const agentPort = await nextFree(AGENT_HOST, l.agentPort + 1, [l.port, port]);
  return (
    `a quickstart is already running (pid ${l.pid}, data dir ${shown(dataDir)}, server port ${l.port}, ` +
    `agent port ${l.agentPort}): stop it with Ctrl-C or \`${c.down}\`, or start another with ` +
    `\`${c.start} --port ${port} --agent-port ${agentPort} --data-dir ${otherDataDir(dataDir)}\``
  );
}

/** The one line for "these ports are taken" (by a quickstart on another data directory, or anything else). */
export async function busyPortsMessage(o: {
  dataDir: string;
  host: string;
  port: number;
  agentPort: number;
  /** Probe only the agent's port (the server already listens on its own). */
  agentOnly?: boolean;
}): Promise<string | undefined> {
  const server = !o.agentOnly && (await portInUse(o.host, o.port));
  const agent = await portInUse(AGENT_HOST, o.agentPort);
  if (!server && !agent) return undefined;
  const taken = [
    ...(server ? [`${o.port} (server, on ${o.host})`] : []),
    ...(agent ? [`${o.agentPort} (agent, on ${AGENT_HOST})`] : []),
  ];
  const port = server ? await nextFree(o.host, o.port + 1, [o.agentPort]) : o.port;
  const agentPort = agent ? await nextFree(AGENT_HOST, o.agentPort + 1, [o.port, port]) : o.agentPort;
  const dd = isDefaultDataDir(o.dataDir) ? '' : ` --data-dir ${shown(o.dataDir)}`;
  return (
    `port${taken.length > 1 ? 's' : ''} ${taken.join(' and ')} ${taken.length > 1 ? 'are' : 'is'} already in use ` +
    `(another quickstart with another data dir, or another program): start with ` +
    `\`${commands(o.dataDir).start} --port ${port} --agent-port ${agentPort}${dd}\``
  );
}
