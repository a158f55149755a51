#!/usr/bin/env node
'use strict';
/**
 * `npm start` (and `npm run down`): checks that no quickstart already runs on the data directory and that its
 * ports are free, in well under a second and before the build (which takes a while), then builds and runs
 * `phase-bridge quickstart` with the arguments given after `npm start --`.
 *
 * Plain JavaScript because it runs before dist/ is built. The lock file and the messages mirror
 * bin/quickstart-lock.ts, which the quickstart itself uses (keep the two in step; test/quickstart checks both).
 * `--down` skips the check and builds only when dist/ is missing or older than bin/.
 */
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync, statSync } = require('node:fs');
const { createServer } = require('node:net');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
const DEFAULT_DATA_DIR = './.phase-bridge'; // server/cli.ts
const LOCK_FILE = 'quickstart.lock';
const AGENT_HOST = '127.0.0.1';

/** The options of `phase-bridge quickstart` this check needs (the CLI parses and validates them all). */
function parse(args) {
  const o = {
    dataDir: DEFAULT_DATA_DIR,
    host: '127.0.0.1',
    port: process.env.PORT || '8080',
    agentPort: '8787',
    down: false,
    help: false,
  };
  const names = { '--data-dir': 'dataDir', '--host': 'host', '--port': 'port', '--agent-port': 'agentPort' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') break;
    if (a === '--down') o.down = true;
    else if (a === '-h' || a === '--help') o.help = true;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (names[name] === undefined) continue;
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value !== undefined) o[names[name]] = value;
  }
  return o;
}

function readLock(dataDir) {
  try {
    const l = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8'));
    return Number.isInteger(l.pid) && l.pid > 0 ? l : undefined;
  } catch {
    return undefined;
  }
}

function quickstartAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (e.code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('quickstart');
  } catch {
    return true;
  }
}

function runningQuickstart(dataDir) {
  const l = readLock(dataDir);
  return l && l.pid !== process.pid && quickstartAlive(l.pid) ? l : undefined;
}

function portInUse(host, port) {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', (e) => done(e.code === 'EADDRINUSE'));
    s.listen({ port, host }, () => s.close(() => done(false)));
  });
}

async function nextFree(host, from, avoid) {
  for (let p = from; p < from + 50 && p < 65536; p++) {
    if (!avoid.includes(p) && !(await portInUse(host, p))) return p;
  }
  return from;
}

const shown = (dir) => dir.replace(/^\.\/(?=.)/, '');
const isDefaultDataDir = (dir) => shown(dir) === shown(DEFAULT_DATA_DIR);

function commands(dataDir) {
  const npm = ['start', 'down'].includes(process.env.npm_lifecycle_event || '');
  const dd = isDefaultDataDir(dataDir) ? '' : ` --data-dir ${shown(dataDir)}`;
  return npm
    ? { start: 'npm start --', down: `npm run down${dd ? ` --${dd}` : ''}` }
    : { start: 'phase-bridge quickstart', down: `phase-bridge quickstart --down${dd}` };
}

function otherDataDir(dataDir) {
  const base = shown(dataDir).replace(/\/+$/, '');
  for (let i = 2; i < 10; i++) if (!runningQuickstart(`${base}-${i}`)) return `${base}-${i}`;
  return `${base}-${Date.now()}`;
}

/** The message that stops a second start, or undefined when the way is clear. */
async function preflight(o) {
  const port = Number(o.port);
  const agentPort = Number(o.agentPort);
  if (!Number.isInteger(port) || !Number.isInteger(agentPort)) return undefined; // the CLI says what is wrong
  const l = runningQuickstart(o.dataDir);
  const c = commands(o.dataDir);
  if (l) {
    const p = await nextFree(l.host, l.port + 1, [l.agentPort]);
    const a = await nextFree(AGENT_HOST, l.agentPort + 1, [l.port, p]);
    return (
      `a quickstart is already running (pid ${l.pid}, data dir ${shown(o.dataDir)}, server port ${l.port}, ` +
      `agent port ${l.agentPort}): stop it with Ctrl-C or \`${c.down}\`, or start another with ` +
      `\`${c.start} --port ${p} --agent-port ${a} --data-dir ${otherDataDir(o.dataDir)}\``
    );
  }
  const server = await portInUse(o.host, port);
  const agent = await portInUse(AGENT_HOST, agentPort);
  if (!server && !agent) return undefined;
  const taken = [
    ...(server ? [`${port} (server, on ${o.host})`] : []),
    ...(agent ? [`${agentPort} (agent, on ${AGENT_HOST})`] : []),
  ];
  const p = server ? await nextFree(o.host, port + 1, [agentPort]) : port;
  const a = agent ? await nextFree(AGENT_HOST, agentPort + 1, [port, p]) : agentPort;
  const dd = isDefaultDataDir(o.dataDir) ? '' : ` --data-dir ${shown(o.dataDir)}`;
  return (
    `port${taken.length > 1 ? 's' : ''} ${taken.join(' and ')} ${taken.length > 1 ? 'are' : 'is'} already in use ` +
    `(another quickstart with another data dir, or another program): start with ` +
    `\`${c.start} --port ${p} --agent-port ${a}${dd}\``
  );
}

/** `npm run build`, through the npm (or pnpm, yarn) that runs this script. */
function build() {
  const npm = process.env.npm_execpath;
  const r =
    npm && /\.[cm]?js$/.test(npm)
      ? spawnSync(process.execPath, [npm, 'run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
      : spawnSync('npm', ['run', 'build', '--silent'], {
          cwd: ROOT,
          stdio: 'inherit',
          shell: process.platform === 'win32',
        });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

/** dist/ is missing, or older than one of the CLI's own sources. */
function stale() {
  const bin = join(ROOT, 'bin');
  for (const f of readdirSync(bin)) {
    if (!f.endsWith('.ts')) continue;
    const out = join(ROOT, 'dist', 'bin', f.replace(/\.ts$/, '.js'));
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(join(bin, f)).mtimeMs) return true;
  }
  return false;
}

async function main() {
  const args = process.argv.slice(2);
  const o = parse(args);
  if (!o.down && !o.help) {
    const busy = await preflight(o);
    if (busy) {
      process.stderr.write(`phase-bridge: ${busy}\n`);
      process.exit(1);
    }
  }
  if (!o.down || stale()) build();
  // The quickstart runs in this process (one pid for its lock file and for Ctrl-C / `npm run down`).
  process.argv = [process.argv[0], join(__dirname, 'phase-bridge.js'), 'quickstart', ...args];
  require('./phase-bridge.js');
}

main().catch((err) => {
  process.stderr.write(`phase-bridge: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
