/**
 * The baseline: a bare node:http server answering the same bytes (body and headers) the agent serves.
 * Started as a child process by the benchmark; receives the bodies over IPC.
 *
 * With `downloads`, it first makes the same upstream calls the agent's syncs made (bootstrap and the encrypted
 * secrets, through the agent's `node:http` transport) and only then serves: the control that separates what the
 * agent's own code costs from what being an HTTP client costs any Node process (see docs/performance.md).
 *
 * Both hold a `nextTick` entry as the agent does (core/tick-object.ts), so the ratios compare serving code, not
 * whether a full collection happened to drop V8's map for the entries. `PHASE_BRIDGE_TICK_SHAPE=off` in the
 * benchmark's environment turns that off in the agent and both baselines alike.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { PhaseClient } from '../../core/client';
import { nodeTransport } from '../../core/http';
import { keepTickObjectShape } from '../../core/tick-object';

keepTickObjectShape();

interface Fixed {
  path: string;
  body: string; // base64
  headers: Record<string, string>;
}

interface Downloads {
  host: string;
  token: string;
  envId: string;
  count: number;
  /** Download in a worker thread (its own V8 isolate) instead of the serving thread. */
  inWorker?: boolean;
}

async function download(d: Downloads): Promise<void> {
  const client = new PhaseClient({
    host: d.host,
    token: d.token,
    retries: 0,
    transport: nodeTransport({ rejectUnauthorized: true }),
  });
  for (let i = 0; i < d.count; i++) {
    await client.bootstrap();
    await client.listEncryptedSecrets(d.envId, {});
  }
}

async function downloadInWorker(d: Downloads): Promise<void> {
  const w = new Worker(__filename, { workerData: d });
  await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
}

if (!isMainThread) {
  void download(workerData as Downloads).then(() => parentPort?.postMessage('done'));
}

process.on('message', (msg: { routes?: Fixed[]; downloads?: Downloads; type?: string }) => {
  if (msg.type === 'rss') {
    process.send?.({ type: 'rss', rss: process.memoryUsage.rss() });
    return;
  }
  if (!msg.routes) return;
  const routes = new Map(
    msg.routes.map((r) => [r.path, { body: Buffer.from(r.body, 'base64'), headers: r.headers }]),
  );
  const server = http.createServer((req, res) => {
    const r = routes.get(req.url ?? '');
    if (!r) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { ...r.headers, 'Content-Length': r.body.length });
    res.end(r.body);
  });
  const d = msg.downloads;
  void (d ? (d.inWorker ? downloadInWorker(d) : download(d)) : Promise.resolve()).then(
    () =>
      server.listen(0, '127.0.0.1', () => {
        process.send?.({ port: (server.address() as AddressInfo).port });
      }),
    (err: Error) => process.send?.({ type: 'error', message: `baseline downloads failed: ${err.message}` }),
  );
});
