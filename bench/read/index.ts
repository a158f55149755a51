/**
 * E2E read benchmark (`npm run bench -- read`, or `node dist/bench/read/index.js`): a cold init + get of a
 * 1,000-secret environment, core's `PhaseSession` against the official `@phase.dev/phase-node` SDK, same server,
 * same token, same environment, in one run.
 *
 * A real phase-bridge server (SQLite) runs in the bench process with one environment of 1,000 secrets (random
 * 24-byte values, base64) readable by a Service-role service account. Every sample is a fresh Node process
 * (bench/read/child.ts) that loads one client and times `init()` then `get()` of the environment: the SDK's
 * `new Phase(token, host)`, `init()`, `get({ appId, envName })`; ours `PhaseSession.create()`,
 * `get({ appId, env })` (both resolve references, both decrypt key and value of every secret). Samples
 * alternate ours as shipped (native backend, decryption worker threads `auto`: one on two cores), the SDK, ours
 * forced onto the WebAssembly backend (`PHASE_BRIDGE_CRYPTO=wasm`) and ours in one thread
 * (`PHASE_BRIDGE_DECRYPT_THREADS=0`), so a swing in the machine's load hits all four alike. The parent checks that all four read the same 1,000 secrets (a digest of the sorted key=value lines). Goal: SDK / ours ≥ 3× (medians of
 * init + get). READ_BENCH_SAMPLES (default 15 per client), READ_BENCH_SECRETS (default 1,000).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhaseClient } from '../../core/client';
import { createServer } from '../../server/app';
import { initOrganisation } from '../../server/org';
import { runStandalone, type BenchResult } from '../report';

const SECRETS = Number(process.env.READ_BENCH_SECRETS ?? 1000);
const SAMPLES = Number(process.env.READ_BENCH_SAMPLES ?? 15);

interface Sample {
  loadMs: number;
  initMs: number;
  getMs: number;
  /** CPU time of init + get, every thread of the process (user + system). */
  cpuMs: number;
  count: number;
  digest: string;
  backend: string;
  /** Decryption worker threads the session ran with. */
  threads: number;
  rss: number;
}

type Who = 'ours' | 'ours-single' | 'ours-wasm' | 'sdk';

function sample(who: Who, job: Record<string, string>): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.PHASE_BRIDGE_CRYPTO;
    delete env.PHASE_BRIDGE_DECRYPT_THREADS;
    if (who === 'ours-wasm') env.PHASE_BRIDGE_CRYPTO = 'wasm';
    if (who === 'ours-single') env.PHASE_BRIDGE_DECRYPT_THREADS = '0';
    const child = fork(
      join(__dirname, 'child.js'),
      [JSON.stringify({ ...job, who: who === 'sdk' ? 'sdk' : 'ours' })],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env },
    );
    let done = false;
    child.on('message', (m: { type: string; message?: string } & Sample) => {
      done = true;
      if (m.type === 'result') resolve(m);
      else reject(new Error(`${who}: ${m.message}`));
    });
    child.on('exit', (code) => {
      if (!done) reject(new Error(`${who}: child exited with ${code}`));
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r1 = (n: number): number => Math.round(n * 10) / 10;
const r2 = (n: number): number => Math.round(n * 100) / 100;

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'read-bench-'));
  const serverSecret = randomBytes(32).toString('hex');
  const server = await createServer({
    database: `sqlite:${join(dir, 'phase.db')}`,
    serverSecret,
    logLevel: 'silent',
  });
  try {
    const init = await initOrganisation(server.store, serverSecret, {
      orgName: 'bench',
      ownerEmail: 'owner@example.com',
    });
    const { url } = await server.listen(0, '127.0.0.1');
    const owner = new PhaseClient({ host: url, token: init.ownerToken, retries: 0 });
    const app = await owner.createApp({ name: 'read-bench' });
    const env = app.environments.find((e) => e.name === 'Production')!;
    const role = (await owner.listRoles()).find((r) => r.name === 'Service')!;
    const sa = await owner.createServiceAccount({ name: 'read-bench', role_id: role.id });
    await owner.setServiceAccountAccess(sa.id, [{ id: app.id, environments: [env.id] }]);
    for (let i = 0; i < SECRETS; i += 100) {
      await owner.createSecrets(
        { appId: app.id, env: 'Production' },
        Array.from({ length: Math.min(100, SECRETS - i) }, (_, j) => ({
          key: `SECRET_${String(i + j).padStart(4, '0')}`,
          value: randomBytes(24).toString('base64'),
        })),
      );
    }
    const job = {
      host: url.replace(/\/+$/, ''),
      token: sa.initialToken.token,
      appId: app.id,
      env: 'Production',
    };
    const order: Who[] = ['ours', 'sdk', 'ours-wasm', 'ours-single'];
    // One discarded round: the server's first reads and the OS page cache.
    for (const who of order) await sample(who, job);
    const runs: Record<Who, Sample[]> = { ours: [], sdk: [], 'ours-wasm': [], 'ours-single': [] };
    for (let i = 0; i < SAMPLES; i++) for (const who of order) runs[who].push(await sample(who, job));

    const digests = new Set(order.flatMap((w) => runs[w].map((s) => `${s.count}:${s.digest}`)));
    if (digests.size !== 1) throw new Error(`the clients read different secrets: ${[...digests].join(', ')}`);
    const count = runs.ours[0].count;
    if (count !== SECRETS) throw new Error(`read ${count} secrets, expected ${SECRETS}`);
    if (runs.ours[0].backend !== 'native') throw new Error(`ours ran on the ${runs.ours[0].backend} backend`);
    if (runs['ours-single'][0].threads !== 0)
      throw new Error('the one-thread column ran with worker threads');

    const stat = (w: Who, f: (s: Sample) => number) => {
      const xs = runs[w].map(f);
      return { med: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
    };
    const initGet = (s: Sample): number => s.initMs + s.getMs;
    const cold = (s: Sample): number => s.loadMs + s.initMs + s.getMs;
    const label: Record<Who, string> = {
      ours: 'phase-bridge core PhaseSession as shipped (native, worker threads auto)',
      'ours-wasm': 'phase-bridge core PhaseSession, PHASE_BRIDGE_CRYPTO=wasm',
      'ours-single': 'phase-bridge core PhaseSession, PHASE_BRIDGE_DECRYPT_THREADS=0',
      sdk: '@phase.dev/phase-node 3.1.1',
    };
    const results: BenchResult[] = [];
    for (const w of order) {
      const a = stat(w, initGet);
      const l = stat(w, (s) => s.loadMs);
      const i = stat(w, (s) => s.initMs);
      const g = stat(w, (s) => s.getMs);
      const cpu = stat(w, (s) => s.cpuMs);
      results.push({
        name: `init + get of ${count} secrets, ${label[w]}, median`,
        value: r1(a.med),
        unit: 'ms',
        note: `min ${r1(a.min)}, max ${r1(a.max)}; init ${r1(i.med)} + get ${r1(g.med)} ms; CPU ${r1(cpu.med)} ms; module load ${r1(l.med)} ms`,
      });
    }
    const sdk = stat('sdk', initGet).med;
    results.push({
      name: 'ratio SDK / ours (init + get, medians)',
      value: r2(sdk / stat('ours', initGet).med),
      unit: 'x',
      note: 'goal >= 3',
    });
    results.push({
      name: 'ratio SDK / ours in CPU time (init + get, all threads, medians)',
      value: r2(stat('sdk', (s) => s.cpuMs).med / stat('ours', (s) => s.cpuMs).med),
      unit: 'x',
      note: 'less sensitive to a loaded machine than wall time',
    });
    results.push({
      name: 'ratio SDK / ours with module load (require + init + get, medians)',
      value: r2(stat('sdk', cold).med / stat('ours', cold).med),
      unit: 'x',
    });
    results.push({
      name: 'ratio SDK / ours on the wasm backend (init + get, medians)',
      value: r2(sdk / stat('ours-wasm', initGet).med),
      unit: 'x',
      note: 'the fallback',
    });
    results.push({
      name: 'ratio SDK / ours in one thread (init + get, medians)',
      value: r2(sdk / stat('ours-single', initGet).med),
      unit: 'x',
      note: 'PHASE_BRIDGE_DECRYPT_THREADS=0',
    });
    for (const w of order)
      results.push({
        name: `resident memory after the read, ${label[w]}, median`,
        value: r1(median(runs[w].map((s) => s.rss)) / 1048576),
        unit: 'MB',
      });
    results.push({
      name: 'decryption worker threads, ours as shipped',
      value: runs.ours[0].threads,
      unit: '',
      note: `auto on ${availableParallelism()} cores`,
    });
    results.push({ name: 'samples per client', value: SAMPLES, unit: '', note: 'each a fresh Node process' });
    return results;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone('read', run, 78);
