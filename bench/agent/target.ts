/**
 * Benchmark child: runs one agent (no upstream server in this process, so its RSS is the agent's alone), reports
 * cold start, sync times and resident memory over IPC, and answers requests until told to stop.
 */
import { startAgent } from '../../agent/agent';
import { buildConfig } from '../../agent/config';
import { createLogger } from '../../agent/logger';

/** Pause before a "settled" reading: the keeper's collection and V8's page release happen just after a sync. */
const SETTLE_MS = Number(process.env.AGENT_BENCH_SETTLE_MS ?? 1000);

async function main(): Promise<void> {
  if (process.env.AGENT_BENCH_V8_RUNTIME)
    require('node:v8').setFlagsFromString(process.env.AGENT_BENCH_V8_RUNTIME);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const mem = (label: string): void => {
    if (process.env.AGENT_BENCH_MEM) {
      const m = process.memoryUsage();
      // RssAnon (heap, malloc, wasm memory) vs RssFile (the node binary and libraries as mapped).
      let proc = '';
      try {
        proc = require('node:fs')
          .readFileSync('/proc/self/status', 'utf8')
          .split('\n')
          .filter((l: string) => /^Rss(Anon|File)/.test(l))
          .map((l: string) => l.replace(/\s+/g, ' '))
          .join(' ');
      } catch {
        // not Linux
      }
      process.stderr.write(
        `${label}: ${Object.entries(m)
          .map(([k, v]) => `${k}=${Math.round(v / 1048576)}MB`)
          .join(' ')} ${proc}\n`,
      );
    }
  };
  // Peak resident memory over the child's whole life, sampled every 100 ms (what a pod's memory limit sees).
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
  sampler.unref();
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_MS));
  mem('start');
  const values = JSON.parse(process.argv[2]) as Record<string, unknown>;
  const cfg = buildConfig([{ values, source: {} }]);
  const agent = await startAgent(cfg, {
    logger: createLogger(process.env.AGENT_BENCH_MEM ? 'info' : 'silent'),
  });
  mem('started');
  await agent.engine.firstSync;
  const readyMs = performance.now() - t0;
  const readyAtEpochMs = performance.timeOrigin + performance.now();
  const cpu = process.cpuUsage(cpu0);
  const readyCpuMs = (cpu.user + cpu.system) / 1000;
  const firstSyncMs = agent.engine.lastFetchCycleMs;
  mem('first sync');
  const rssAtFirstSync = process.memoryUsage.rss();
  await settle();
  mem('first sync, settled');
  const rssAfterFirstSync = process.memoryUsage.rss();
  if (!agent.engine.ready()) throw new Error('agent not ready after the first sync');
  if (process.argv[3] === 'latency') {
    // The write-to-visible measurement (propagation.ts): an agent with the default settings, nothing forced.
    process.send?.({
      type: 'ready',
      port: agent.port,
      clientToken: agent.clientToken,
      rss: rssAfterFirstSync,
    });
    const stream = async (): Promise<void> => {
      for (let i = 0; i < 100 && agent.engine.stream?.state !== 'connected'; i++)
        await new Promise((r) => setTimeout(r, 50));
    };
    process.on('message', async (m: { type: string }) => {
      if (m.type === 'stream') {
        await stream();
        process.send?.({ type: 'stream', state: agent.engine.stream?.state ?? 'off' });
      }
      if (m.type === 'rss')
        process.send?.({
          type: 'rss',
          rss: process.memoryUsage.rss(),
          peak,
          kinds: agent.engine.kinds,
          budget: { used: agent.engine.budget.used, pushUsed: agent.engine.budget.pushUsed },
        });
      if (m.type === 'stop') {
        await agent.close();
        process.exit(0);
      }
    });
    return;
  }
  const key = [...(agent.engine.mergedView()?.byKey.keys() ?? [])][0];
  // Forced full re-syncs: drop the held ciphertext so the next cycle downloads, decrypts and precomputes again.
  // (Unchanged ciphertext is not decrypted again: these measure download, memoised decrypt and precompute.)
  const resync: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (const s of agent.engine.scopes) s.invalidated();
    const t = performance.now();
    await agent.engine.sync('bench');
    resync.push(performance.now() - t);
  }
  const view = agent.engine.mergedView();
  if (!view) throw new Error('no view');
  mem('resyncs');
  await settle();
  mem('resyncs, settled');
  const rssAfterResync = process.memoryUsage.rss();
  const secrets = view.secrets;
  const one = view.keys.get(key)!;
  const headersOf = (b: typeof secrets) => ({
    'Content-Type': b.contentType,
    ETag: b.etag,
    'X-Cache': 'HIT',
    Age: '0',
    'Cache-Control': 'no-store',
  });
  process.send?.({
    type: 'ready',
    port: agent.port,
    clientToken: agent.clientToken,
    key,
    readyMs,
    readyAtEpochMs,
    readyCpuMs,
    firstSyncMs,
    resyncMs: resync,
    rssAtFirstSync,
    rss: rssAfterFirstSync,
    rssAfterResync,
    heap: process.memoryUsage().heapUsed,
    count: view.count,
    routes: [
      { path: '/v1/secrets', body: secrets.body.toString('base64'), headers: headersOf(secrets) },
      { path: `/v1/secrets/${key}`, body: one.body.toString('base64'), headers: headersOf(one) },
    ],
  });
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'rss') {
      mem('after load');
      process.send?.({
        type: 'rss',
        rss: process.memoryUsage.rss(),
        peak,
        heapKeeper: agent.heap.enabled,
        heapCollections: agent.heap.collections,
      });
    }
    if (m.type === 'stop') {
      await agent.close();
      process.exit(0);
    }
  });
}

main().catch((err) => {
  process.send?.({ type: 'error', message: (err as Error).message });
  process.exit(1);
});
