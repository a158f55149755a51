/**
 * A minimal keep-alive HTTP/1.1 load generator on raw sockets: N connections, each sending one request at a time
 * and reading the response by Content-Length. Lighter than http.request, so the server under test, not the
 * client, is the bottleneck. Loopback only; bounded by a duration.
 */
import { connect, type Socket } from 'node:net';

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  statuses: Record<string, number>;
  /** Sorted latencies in ms. */
  latencies: Float64Array;
  seconds: number;
}

/** Merges slices of the same measurement (alternating slices spread a noisy machine's swings over both sides). */
export function merge(parts: LoadResult[]): LoadResult {
  const all = new Float64Array(parts.reduce((n, p) => n + p.latencies.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p.latencies, o);
    o += p.latencies.length;
  }
  all.sort();
  const seconds = parts.reduce((n, p) => n + p.seconds, 0);
  const statuses: Record<string, number> = {};
  for (const p of parts)
    for (const [k, v] of Object.entries(p.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    requests: all.length,
    errors: parts.reduce((n, p) => n + p.errors, 0),
    rps: all.length / seconds,
    p50ms: percentile(all, 50),
    p99ms: percentile(all, 99),
    statuses,
    latencies: all,
    seconds,
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export async function load(opts: {
  port: number;
  path: string;
  headers: Record<string, string>;
  connections: number;
  durationMs: number;
  warmupMs?: number;
}): Promise<LoadResult> {
  const head =
    `GET ${opts.path} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\n` +
    Object.entries(opts.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n';
  const req = Buffer.from(head);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let measuring = false;
  let stop = false;

  const runConn = (): Promise<void> =>
    new Promise((resolve) => {
      const sock: Socket = connect(opts.port, '127.0.0.1');
      sock.setNoDelay(true);
      let buf: Buffer = Buffer.alloc(0);
      let t0 = 0n;
      const send = (): void => {
        if (stop) {
          sock.end();
          return;
        }
        t0 = process.hrtime.bigint();
        sock.write(req);
      };
      sock.on('connect', send);
      sock.on('data', (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const headers = buf.subarray(0, end).toString('latin1');
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
          const len = m ? Number(m[1]) : 0;
          if (buf.length < end + 4 + len) return;
          buf = buf.subarray(end + 4 + len);
          const status = headers.slice(9, 12);
          if (measuring) {
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            statuses[status] = (statuses[status] ?? 0) + 1;
          }
          send();
        }
      });
      sock.on('error', () => {
        errors++;
        resolve();
      });
      sock.on('close', () => resolve());
    });

  const conns = Array.from({ length: opts.connections }, runConn);
  await new Promise((r) => setTimeout(r, opts.warmupMs ?? 100));
  measuring = true;
  const start = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, opts.durationMs));
  measuring = false;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  stop = true;
  await Promise.all(conns);
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / elapsed,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    statuses,
    latencies: sorted,
    seconds: elapsed,
  };
}
