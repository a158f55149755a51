/**
 * Write-to-visible latency (issue 14): how long after a secret is written through the server's `/v1/secrets` the
 * agent serves the new value at `GET /v1/secrets/:key`. The agent runs with the default settings (60 s refresh,
 * 1 call per minute, burst 4, push burst 10, push on) in a child process of its own, against the benchmark's server
 * and its 1,000-secret environment; the bench process writes, then polls the agent every 2 ms. Each sample is timed
 * from just before the write request is sent and, separately, from the moment its answer arrived (the write
 * committed). Writes are spaced so that each is a separate push.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import { join } from 'node:path';
import type { PhaseClient } from '../../core/client';

export interface PropagationResult {
  /** From just before the write was sent, ms, sorted. */
  fromSend: number[];
  /** From the write's answer (committed), ms, sorted. */
  fromCommit: number[];
  /** The agent's resident memory after the writes, and its peak. */
  rss: number;
  peak: number;
  streamState: string;
  cycles: { poll: number; push: number; forced: number };
  calls: { used: number; pushUsed: number };
}

function waitMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type?: string; message?: string }): void => {
      if (m.type === type) {
        child.off('message', onMsg);
        resolve(m as T);
      } else if (m.type === 'error') reject(new Error(m.message));
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`latency agent exited with ${code}`)));
  });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

export async function measurePropagation(o: {
  owner: PhaseClient;
  appId: string;
  env: string;
  /** The agent's config (host, token, scopes, port 0, dataDir, logLevel): nothing else, so the defaults apply. */
  agentConfig: Record<string, unknown>;
  execArgv: string[];
  childEnv: NodeJS.ProcessEnv;
  writes: number;
  /** Gap between writes. */
  gapMs: number;
}): Promise<PropagationResult> {
  const child = fork(join(__dirname, 'target.js'), [JSON.stringify(o.agentConfig), 'latency'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: o.execArgv,
    env: o.childEnv,
  });
  try {
    const ready = await waitMessage<{ port: number; clientToken: string }>(child, 'ready');
    child.send({ type: 'stream' });
    const { state } = await waitMessage<{ state: string }>(child, 'stream');
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (key: string): Promise<string | undefined> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: ready.port,
            path: `/v1/secrets/${key}`,
            headers: { 'X-Phase-Agent-Token': ready.clientToken },
            agent: keepAlive,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const [target] = (await o.owner.listSecrets({ appId: o.appId, env: o.env })).filter(
      (s) => s.key === 'SECRET_0000',
    );
    if (!target) throw new Error('no SECRET_0000 to write');
    const fromSend: number[] = [];
    const fromCommit: number[] = [];
    for (let i = 0; i < o.writes; i++) {
      const value = `propagation-${i}-${Date.now()}`;
      const t0 = performance.now();
      await o.owner.updateSecrets({ appId: o.appId, env: o.env }, [{ id: target.id, value }]);
      const t1 = performance.now();
      const deadline = t0 + 10_000;
      for (;;) {
        if ((await get(target.key)) === value) break;
        if (performance.now() > deadline)
          throw new Error(`write ${i + 1} not visible at the agent within 10 s (stream: ${state})`);
        await pause(2);
      }
      const t2 = performance.now();
      fromSend.push(t2 - t0);
      fromCommit.push(t2 - t1);
      await pause(o.gapMs);
    }
    keepAlive.destroy();
    child.send({ type: 'rss' });
    const m = await waitMessage<{
      rss: number;
      peak: number;
      kinds: PropagationResult['cycles'];
      budget: PropagationResult['calls'];
    }>(child, 'rss');
    child.send({ type: 'stop' });
    return {
      fromSend: fromSend.sort((a, b) => a - b),
      fromCommit: fromCommit.sort((a, b) => a - b),
      rss: m.rss,
      peak: m.peak,
      streamState: state,
      cycles: m.kinds,
      calls: m.budget,
    };
  } finally {
    setTimeout(() => {
      if (child.exitCode === null) child.kill('SIGTERM');
    }, 2000).unref();
  }
}
