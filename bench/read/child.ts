/**
 * Benchmark child for bench/read: one cold read in a fresh process. Loads one client (`ours`: core's
 * PhaseSession; `sdk`: the official @phase.dev/phase-node), then init + get of one environment, and reports the
 * phase times and a digest of what it read over IPC (the parent checks both clients read the same secrets).
 */
import { createHash } from 'node:crypto';

interface Job {
  who: 'ours' | 'sdk';
  host: string;
  token: string;
  appId: string;
  env: string;
}

interface Secret {
  key: string;
  value: string;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const t0 = performance.now();
  let init: () => Promise<void>;
  let get: () => Promise<Secret[]>;
  let backend = '';
  let threads = 0;
  if (job.who === 'ours') {
    const { PhaseSession } = require('../../core/session') as typeof import('../../core/session');
    const { cryptoBackendName } = require('../../core/crypto') as typeof import('../../core/crypto');
    let session: InstanceType<typeof PhaseSession>;
    init = async () => {
      session = await PhaseSession.create({ host: job.host, token: job.token, retries: 0 });
      backend = cryptoBackendName() ?? '';
      threads = (
        require('../../core/crypto-worker') as typeof import('../../core/crypto-worker')
      ).defaultDecryptThreads();
    };
    get = () => session.get({ appId: job.appId, env: job.env });
  } else {
    const Phase = require('@phase.dev/phase-node') as new (
      token: string,
      host: string,
    ) => { init(): Promise<void>; get(o: { appId: string; envName: string }): Promise<Secret[]> };
    const sdk = new Phase(job.token, job.host);
    init = () => sdk.init();
    get = () => sdk.get({ appId: job.appId, envName: job.env });
    backend = 'wasm (libsodium-wrappers)';
  }
  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  await init();
  const t2 = performance.now();
  const secrets = await get();
  const t3 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const digest = createHash('sha256')
    .update(
      secrets
        .map((s) => `${s.key}=${s.value}`)
        .sort()
        .join('\n'),
    )
    .digest('hex');
  process.send?.({
    type: 'result',
    loadMs: t1 - t0,
    initMs: t2 - t1,
    getMs: t3 - t2,
    cpuMs: (cpu.user + cpu.system) / 1000,
    count: secrets.length,
    digest,
    backend,
    threads,
    rss: process.memoryUsage.rss(),
  });
}

main().catch((err) => {
  process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
});
