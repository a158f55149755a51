/**
 * Agent benchmark (`node dist/bench/agent/index.js`, or `npm run bench -- agent`): a real phase-bridge server on
 * loopback with 1,000 secrets; the agent in a child process; a bare node:http server in another child answering the
 * same bytes. Cached GET /v1/secrets and /v1/secrets/:key at 1, 10 and 50 connections, agent and baseline in turn,
 * plus cold start to ready, sync time for 1,000 secrets and resident memory. Each cell alternates six slices of
 * agent, baseline and control (3 s each side in total). The control is the same bare server after the same upstream
 * downloads as the agent (and the garbage collections they cause; see docs/performance.md, "Agent, seventh
 * session"). `PHASE_BRIDGE_TICK_SHAPE=off` runs all three without core/tick-object.ts. First, before any of that, the write-to-visible latency of an agent with the default
 * settings (push from the server's change stream; propagation.ts). Bounded: about 75 s in total. All children run with the agent's runtime profile
 * (agent/runtime-profile.ts), as the image does.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhaseClient } from '../../core/client';
import { createServer } from '../../server/app';
import { initOrganisation } from '../../server/org';
import { AGENT_RUNTIME_PROFILE } from '../../agent/runtime-profile';
import { load, merge, type LoadResult } from './load';
import { measurePropagation, percentile } from './propagation';
import { runStandalone, type BenchResult } from '../report';

const SECRETS = 1000;
const DURATION_MS = Number(process.env.AGENT_BENCH_MS ?? 3000);
const ROUNDS = Number(process.env.AGENT_BENCH_ROUNDS ?? 6);
/** Writes timed for the write-to-visible latency (AGENT_BENCH_WRITES=0 skips it), and the gap between them. */
const WRITES = Number(process.env.AGENT_BENCH_WRITES ?? 10);
const WRITE_GAP_MS = Number(process.env.AGENT_BENCH_WRITE_GAP_MS ?? 300);
/** AGENT_BENCH_CONNECTIONS=50 measures one column only (quick re-runs). */
const CONNECTIONS = (process.env.AGENT_BENCH_CONNECTIONS ?? '1,10,50').split(',').map(Number);

function waitMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type?: string; message?: string }): void => {
      if (m.type === type || (type === 'port' && 'port' in m)) {
        child.off('message', onMsg);
        resolve(m as T);
      } else if (m.type === 'error') reject(new Error(m.message));
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

const r2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * Process settings for the agent and the baseline: by default the agent's runtime profile (what the image ships);
 * AGENT_BENCH_PROFILE=node-defaults measures plain `node`; AGENT_BENCH_NODE_OPTIONS replaces the V8 flags.
 */
function runtimeSettings(): { execArgv: string[]; env: NodeJS.ProcessEnv; label: string } {
  const plain = process.env.AGENT_BENCH_PROFILE === 'node-defaults';
  const execArgv =
    process.env.AGENT_BENCH_NODE_OPTIONS !== undefined
      ? process.env.AGENT_BENCH_NODE_OPTIONS.split(' ').filter(Boolean)
      : plain
        ? []
        : [...AGENT_RUNTIME_PROFILE.nodeOptions];
  const extra: Record<string, string> = plain ? {} : { ...AGENT_RUNTIME_PROFILE.env };
  const env = { ...process.env, ...extra };
  const parts = [
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
    execArgv.length ? `node ${execArgv.join(' ')}` : 'node (default V8 flags)',
  ];
  return { execArgv, env, label: parts.join(' ') };
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-bench-'));
  const serverSecret = randomBytes(32).toString('hex');
  const server = await createServer({
    database: `sqlite:${join(dir, 'phase.db')}`,
    serverSecret,
    logLevel: 'silent',
  });
  const init = await initOrganisation(server.store, serverSecret, {
    orgName: 'bench',
    ownerEmail: 'owner@example.com',
  });
  const { url } = await server.listen(0, '127.0.0.1');
  const children: ChildProcess[] = [];
  try {
    const owner = new PhaseClient({ host: url, token: init.ownerToken, retries: 0 });
    const app = await owner.createApp({ name: 'bench-app' });
    const env = app.environments.find((e) => e.name === 'Production')!;
    const role = (await owner.listRoles()).find((r) => r.name === 'Service')!;
    const sa = await owner.createServiceAccount({ name: 'bench-agent', role_id: role.id });
    await owner.setServiceAccountAccess(sa.id, [{ id: app.id, environments: [env.id] }]);
    for (let i = 0; i < SECRETS; i += 100) {
      await owner.createSecrets(
        { appId: app.id, env: 'Production' },
        Array.from({ length: 100 }, (_, j) => ({
          key: `SECRET_${String(i + j).padStart(4, '0')}`,
          value: randomBytes(24).toString('base64'),
        })),
      );
    }

    const { execArgv, env: childEnv, label: runtime } = runtimeSettings();
    const results: BenchResult[] = [];
    const mb = (n: number): number => r2(n / 1048576);
    if (WRITES > 0) {
      // Write-to-visible latency, first and on its own (no other agent running): the default settings.
      const p = await measurePropagation({
        owner,
        appId: app.id,
        env: 'Production',
        agentConfig: {
          host: url,
          token: sa.initialToken.token,
          scopes: [{ appId: app.id, env: 'Production' }],
          port: 0,
          dataDir: join(dir, 'latency-agent'),
          logLevel: 'silent',
        },
        execArgv,
        childEnv,
        writes: WRITES,
        gapMs: WRITE_GAP_MS,
      });
      const f = (xs: number[], q: number): number => Math.round(percentile(xs, q));
      const how = `${p.fromSend.length} writes of one secret through PUT /v1/secrets, ${WRITE_GAP_MS} ms apart, environment of ${SECRETS} secrets; default agent settings (refresh 60 s, budget 1/min, burst 4, push burst 10); change stream ${p.streamState}; ${p.cycles.push} push cycles, ${p.calls.used} upstream calls in all`;
      results.push({
        name: 'write-to-visible latency, p50 (write sent to GET /v1/secrets/:key answering the new value)',
        value: f(p.fromSend, 50),
        unit: 'ms',
        note: `target < 200 ms; ${how}`,
      });
      results.push({
        name: 'write-to-visible latency, max',
        value: Math.round(p.fromSend[p.fromSend.length - 1]),
        unit: 'ms',
        note: `target <= 1,000 ms; all: ${p.fromSend.map((x) => Math.round(x)).join(', ')} ms`,
      });
      results.push({
        name: 'write-to-visible latency from the write committed (its answer), p50 / max',
        value: f(p.fromCommit, 50),
        unit: 'ms',
        note: `max ${Math.round(p.fromCommit[p.fromCommit.length - 1])} ms`,
      });
      results.push({
        name: 'resident memory of the pushed-to agent after the writes (peak)',
        value: mb(p.rss),
        unit: 'MB',
        note: `peak ${mb(p.peak)} MB; target <= 80 MB; ${runtime}`,
      });
    }

    const cfg = {
      host: url,
      token: sa.initialToken.token,
      scopes: [{ appId: app.id, env: 'Production' }],
      port: 0,
      dataDir: join(dir, 'agent'),
      logLevel: 'silent',
      budgetBurst: 100,
      // AGENT_BENCH_PUSH=0: the served agent without its change-stream subscription (push is on by default).
      ...(process.env.AGENT_BENCH_PUSH === '0' ? { push: false } : {}),
      // AGENT_BENCH_HEAP_HEADROOM=0 measures the agent without its heap keeper (V8's heuristics alone).
      ...(process.env.AGENT_BENCH_HEAP_HEADROOM
        ? { heapHeadroom: Number(process.env.AGENT_BENCH_HEAP_HEADROOM) }
        : {}),
    };
    const forkedAtEpochMs = performance.timeOrigin + performance.now();
    const agent = fork(join(__dirname, 'target.js'), [JSON.stringify(cfg)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
      env: childEnv,
    });
    children.push(agent);
    const ready = await waitMessage<{
      port: number;
      clientToken: string;
      key: string;
      readyMs: number;
      readyAtEpochMs: number;
      readyCpuMs: number;
      firstSyncMs: number;
      heap: number;
      resyncMs: number[];
      rssAtFirstSync: number;
      rss: number;
      rssAfterResync: number;
      count: number;
      routes: Array<{ path: string; body: string; headers: Record<string, string> }>;
    }>(agent, 'ready');
    const forkToReady = ready.readyAtEpochMs - forkedAtEpochMs;
    // Same process settings as the agent, so the two resident-memory figures compare like with like.
    const bare = fork(join(__dirname, 'bare.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
      env: childEnv,
    });
    children.push(bare);
    bare.send({ routes: ready.routes });
    const { port: barePort } = await waitMessage<{ port: number }>(bare, 'port');
    // The control: the same bare server after the same upstream downloads as the agent (first sync + re-syncs).
    const downloads = ready.resyncMs.length + 1;
    const control = fork(join(__dirname, 'bare.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
      env: childEnv,
    });
    children.push(control);
    control.send({
      routes: ready.routes,
      downloads: {
        host: url,
        token: sa.initialToken.token,
        envId: env.id,
        count: downloads,
        // AGENT_BENCH_CONTROL=worker: the control downloads in a worker thread, leaving its serving isolate pristine.
        inWorker: process.env.AGENT_BENCH_CONTROL === 'worker',
      },
    });
    const { port: controlPort } = await waitMessage<{ port: number }>(control, 'port');

    const rows: string[] = [];
    for (const [label, path] of [
      ['GET /v1/secrets (1,000 secrets)', '/v1/secrets'],
      ['GET /v1/secrets/:key', `/v1/secrets/${ready.key}`],
    ] as const) {
      for (const connections of CONNECTIONS) {
        // Alternating slices, so a swing in the machine's load hits all three servers alike.
        const sa: LoadResult[] = [];
        const sb: LoadResult[] = [];
        const sc: LoadResult[] = [];
        const headers = { 'X-Phase-Agent-Token': ready.clientToken };
        const slice = (port: number): Promise<LoadResult> =>
          load({ port, path, headers, connections, durationMs: DURATION_MS / ROUNDS });
        for (let i = 0; i < ROUNDS; i++) {
          sa.push(await slice(ready.port));
          sb.push(await slice(barePort));
          sc.push(await slice(controlPort));
        }
        const a = merge(sa);
        const b = merge(sb);
        const c = merge(sc);
        for (const [who, r] of [
          ['agent', a],
          ['baseline', b],
          ['control', c],
        ] as const)
          if (r.errors || Object.keys(r.statuses).some((s) => s !== '200'))
            throw new Error(`${who} answered ${JSON.stringify(r.statuses)} (${r.errors} socket errors)`);
        const ratio = a.rps / b.rps;
        rows.push(
          `${label.padEnd(34)} c=${String(connections).padEnd(3)} agent ${Math.round(a.rps).toString().padStart(7)} req/s p50 ${a.p50ms.toFixed(3)} p99 ${a.p99ms.toFixed(3)} ms | bare ${Math.round(b.rps).toString().padStart(7)} req/s p50 ${b.p50ms.toFixed(3)} p99 ${b.p99ms.toFixed(3)} ms | ratio ${ratio.toFixed(2)} | control ${(c.rps / b.rps).toFixed(2)}, agent/control ${(a.rps / c.rps).toFixed(2)}`,
        );
        const n = `${label} c=${connections}`;
        results.push({
          name: `${n} agent`,
          value: Math.round(a.rps),
          unit: 'req/s',
          note: `p50 ${r2(a.p50ms)} ms, p99 ${r2(a.p99ms)} ms`,
        });
        results.push({
          name: `${n} bare node:http`,
          value: Math.round(b.rps),
          unit: 'req/s',
          note: `p50 ${r2(b.p50ms)} ms, p99 ${r2(b.p99ms)} ms`,
        });
        results.push({
          name: `${n} ratio agent/bare`,
          value: r2(ratio),
          unit: 'x',
          note: 'for information: against a pristine process',
        });
        results.push({
          name: `${n} ratio control/bare`,
          value: r2(c.rps / b.rps),
          unit: 'x',
          note: `control: the bare server after ${downloads} upstream downloads through node:http, as the agent made`,
        });
        results.push({
          name: `${n} ratio agent/control`,
          value: r2(a.rps / c.rps),
          unit: 'x',
          note: 'target >= 0.85',
        });
      }
    }
    agent.send({ type: 'rss' });
    const after = await waitMessage<{
      rss: number;
      peak: number;
      heapKeeper: boolean;
      heapCollections: number;
    }>(agent, 'rss');
    bare.send({ type: 'rss' });
    const bareAfter = await waitMessage<{ rss: number }>(bare, 'rss');
    results.push({
      name: 'cold start to ready (fork to first sync done)',
      value: Math.round(forkToReady),
      unit: 'ms',
      note: 'includes Node start-up and one upstream round trip',
    });
    results.push({
      name: 'cold start to ready (in process)',
      value: Math.round(ready.readyMs),
      unit: 'ms',
      note: 'startAgent() to first sync done',
    });
    results.push({
      name: 'cold start to ready, agent CPU time (user + system)',
      value: Math.round(ready.readyCpuMs),
      unit: 'ms',
      note: 'what an uncontended core needs, besides waiting for the upstream',
    });
    results.push({
      name: `first sync of ${ready.count} secrets (bootstrap, download, decrypt all, precompute)`,
      value: Math.round(ready.firstSyncMs),
      unit: 'ms',
    });
    results.push({
      name: `re-sync of ${ready.count} secrets (download, unchanged ciphertext memoised)`,
      value: Math.round(Math.min(...ready.resyncMs)),
      unit: 'ms',
      note: `runs: ${ready.resyncMs.map((x) => Math.round(x)).join(', ')} ms`,
    });
    const keeper = after.heapKeeper
      ? `heap keeper on, ${after.heapCollections} collections`
      : 'heap keeper off (default)';
    const memory: Array<[string, number, string?]> = [
      ['the moment the first sync is done', ready.rssAtFirstSync],
      ['1 s after the first sync', ready.rss, 'target < 80 MB'],
      ['1 s after 3 forced full re-syncs', ready.rssAfterResync, 'target < 80 MB'],
      ['right after the load runs', after.rss, 'target < 80 MB'],
      ['peak over the whole run (sampled every 100 ms)', after.peak],
    ];
    for (const [when, bytes, target] of memory)
      results.push({
        name: `resident memory with ${ready.count} secrets, ${when}`,
        value: mb(bytes),
        unit: 'MB',
        note: [target, runtime, keeper].filter(Boolean).join('; '),
      });
    results.push({
      name: 'resident memory of the bare node:http baseline, right after the load runs',
      value: mb(bareAfter.rss),
      unit: 'MB',
      note: `same load, same bytes; ${runtime}`,
    });
    results.push({
      name: `V8 heap used with ${ready.count} secrets (after sync)`,
      value: r2(ready.heap / 1048576),
      unit: 'MB',
    });
    if (require.main === module) process.stdout.write(`${rows.join('\n')}\n`);
    agent.send({ type: 'stop' });
    return results;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone('agent', run, 70);
