/**
 * Server benchmark (issue 3, "Performance"): on SQLite and on PostgreSQL,
 * - authenticated `GET /service/secrets/` of an environment holding 1,000 secrets: p50, p99, requests/s;
 * - token authentication cost: an authenticated trivial request against `/health/` in the same run (ratio);
 * - 100 concurrent writers (`POST /v1/secrets/`, one secret per request): throughput, latency, errors;
 * - one request cannot stall the server (issue 11): `/health/` p99 while a Service-role account writes 1,000
 *   secrets in one `POST /v1/secrets/` and while it reads an environment of 6,000 secrets through `/v1/secrets/`
 *   (server-side encryption and decryption), as a ratio to idle `/health/` p99 in the same run.
 *
 * The server runs as its own process (`node bin/phase-bridge.js server start`, built code), the load loop here,
 * over loopback with keep-alive (global fetch). Everything is bounded in count and time.
 *
 *     npm run build && node dist/bench/server/index.js            # both stores
 *     node dist/bench/server/index.js sqlite                     # one store
 *     BENCH_SERVER_ONLY=bulk node dist/bench/server/index.js     # only the bulk-work section
 *
 * PostgreSQL: `PHASE_BRIDGE_TEST_PG_URL` if set, else a throw-away cluster (scripts/pg-cluster).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from '../../test/support/ports';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { startPostgres, type PostgresCluster } from '../../scripts/pg-cluster';

import { formatResult, type BenchResult } from '../report';

type Store = 'sqlite' | 'postgres';

const ROOT =
  [resolve(__dirname, '..', '..'), resolve(__dirname, '..', '..', '..')].find((d) =>
    existsSync(join(d, 'bin', 'phase-bridge.js')),
  ) ?? process.cwd();
const BIN = join(ROOT, 'bin', 'phase-bridge.js');

const SECRETS = 1000;
const READ_SAMPLES = 300;
const READ_CONCURRENCY = 8;
const V1_SAMPLES = 15;
const READ_THROUGHPUT_MS = 3000;
const AUTH_SAMPLES = 400;
const WRITERS = 100;
const WRITES_PER_WRITER = 10;
const WRITE_BUDGET_MS = 20_000;
/** Bulk section: entries per write (the server's cap), writes (they fill the read environment), reads. */
const BULK_ENTRIES = 1000;
const BULK_WRITES = 6;
const BULK_READS = 3;
const IDLE_HEALTH_SAMPLES = 1000;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;

async function req(
  url: string,
  method: string,
  auth: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  const h: Record<string, string> = { ...headers };
  if (auth) h.Authorization = auth;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(url, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, json };
}

async function must(url: string, method: string, auth: string, body: unknown, status: number): Promise<any> {
  const r = await req(url, method, auth, body);
  if (r.status !== status)
    throw new Error(
      `${method} ${url}: expected ${status}, got ${r.status} ${JSON.stringify(r.json)?.slice(0, 200)}`,
    );
  return r.json;
}

/** Sequential latencies (ms) of `n` calls to `fn`, which must succeed. */
async function latencies(n: number, fn: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const status = await fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (status !== 200) throw new Error(`unexpected HTTP ${status} during measurement`);
  }
  return out.sort((a, b) => a - b);
}

/**
 * `/health/` latencies (ms), probed back to back while `work` runs, and how long `work` took. The first probe starts
 * with the work and the last one may end after it.
 */
async function healthDuring(
  health: string,
  work: () => Promise<void>,
): Promise<{ lat: number[]; workMs: number }> {
  let done = false;
  const lat: number[] = [];
  const probes = (async () => {
    while (!done) {
      const t = process.hrtime.bigint();
      const r = await fetch(health);
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`/health/: ${r.status}`);
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  })();
  const t0 = process.hrtime.bigint();
  try {
    await work();
  } finally {
    done = true;
  }
  const workMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await probes;
  return { lat, workMs };
}

/**
 * Issue 11: `/health/` p99 idle, during 1,000-entry writes and during 6,000-secret reads (`/v1/secrets/`, a
 * Service-role token, server-side encryption and decryption), in an app of its own.
 */
async function bulkSection(
  u: (p: string) => string,
  saAuth: string,
  appId: string,
  tag: string,
): Promise<BenchResult[]> {
  const health = u('/health/');
  const path = u(`/v1/secrets/?app_id=${appId}&env=Development`);
  const idle = await latencies(IDLE_HEALTH_SAMPLES, async () => {
    const r = await fetch(health);
    await r.arrayBuffer();
    return r.status;
  });
  const idleP99 = percentile(idle, 99);

  const duringWrites: number[] = [];
  const writeMs: number[] = [];
  for (let w = 0; w < BULK_WRITES; w++) {
    const payload = JSON.stringify({
      secrets: Array.from({ length: BULK_ENTRIES }, (_, i) => ({
        key: `BULK_${w}_${i}`,
        value: randomBytes(24).toString('base64'),
        comment: i % 3 === 0 ? 'a comment' : '',
        path: i % 5 === 0 ? '/nested/path' : '/',
      })),
    });
    let status = 0;
    const m = await healthDuring(health, async () => {
      const r = await fetch(path, {
        method: 'POST',
        headers: { Authorization: saAuth, 'Content-Type': 'application/json' },
        body: payload,
      });
      await r.arrayBuffer();
      status = r.status;
    });
    if (status !== 200) throw new Error(`bulk write: HTTP ${status}`);
    duringWrites.push(...m.lat);
    writeMs.push(m.workMs);
  }

  const duringReads: number[] = [];
  const readMs: number[] = [];
  for (let i = 0; i < BULK_READS; i++) {
    let text = '';
    const m = await healthDuring(health, async () => {
      const r = await fetch(path, { headers: { Authorization: saAuth } });
      text = await r.text();
      if (r.status !== 200) throw new Error(`bulk read: HTTP ${r.status}`);
    });
    const n = (JSON.parse(text) as unknown[]).length;
    if (n !== BULK_ENTRIES * BULK_WRITES) throw new Error(`bulk read: ${n} secrets`);
    duringReads.push(...m.lat);
    readMs.push(m.workMs);
  }
  [duringWrites, duringReads, writeMs, readMs].forEach((x) => x.sort((p, q) => p - q));
  const wP99 = percentile(duringWrites, 99);
  const rP99 = percentile(duringReads, 99);
  const total = BULK_ENTRIES * BULK_WRITES;
  return [
    {
      name: `${tag} GET /health/ p99, idle`,
      value: round(idleP99, 3),
      unit: 'ms',
      note: `${IDLE_HEALTH_SAMPLES} sequential requests; max ${round(idle[idle.length - 1])} ms`,
    },
    {
      name: `${tag} 1,000-entry POST /v1/secrets/ (Service role), p50`,
      value: round(percentile(writeMs, 50)),
      unit: 'ms',
      note: `${BULK_WRITES} writes, max ${round(writeMs[writeMs.length - 1])} ms`,
    },
    {
      name: `${tag} GET /health/ p99 during those writes`,
      value: round(wP99, 2),
      unit: 'ms',
      note: `${duringWrites.length} probes, max ${round(duringWrites[duringWrites.length - 1])} ms`,
    },
    {
      name: `${tag} health p99 during bulk write / idle`,
      value: round(wP99 / idleP99, 1),
      unit: 'x',
    },
    {
      name: `${tag} GET /v1/secrets/ of ${total.toLocaleString('en')} secrets, p50`,
      value: round(percentile(readMs, 50)),
      unit: 'ms',
      note: `${BULK_READS} reads, max ${round(readMs[readMs.length - 1])} ms`,
    },
    {
      name: `${tag} GET /health/ p99 during those reads`,
      value: round(rP99, 2),
      unit: 'ms',
      note: `${duringReads.length} probes, max ${round(duringReads[duringReads.length - 1])} ms`,
    },
    {
      name: `${tag} health p99 during bulk read / idle`,
      value: round(rP99 / idleP99, 1),
      unit: 'x',
    },
  ];
}

interface ServerProc {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startServerProc(database: string, secret: string): Promise<ServerProc> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [BIN, 'server', 'start', '--database', database, '--port', String(port), '--log-level', 'warn'],
    {
      cwd: ROOT,
      env: { ...process.env, PHASE_BRIDGE_SERVER_SECRET: secret },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${err}`);
    try {
      if ((await fetch(`${url}/health/`)).status === 200) break;
    } catch {
      /* starting */
    }
    if (Date.now() > deadline) throw new Error(`server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

async function benchStore(store: Store, database: string, dir: string): Promise<BenchResult[]> {
  const secret = randomBytes(32).toString('hex');
  const tokenFile = join(dir, `owner-${store}.token`);
  const init = spawnSync(
    process.execPath,
    [BIN, 'server', 'init', '--database', database, '--token-file', tokenFile],
    {
      cwd: ROOT,
      env: { ...process.env, PHASE_BRIDGE_SERVER_SECRET: secret },
      encoding: 'utf8',
    },
  );
  if (init.status !== 0) throw new Error(`server init failed: ${init.stderr}`);
  const ownerPss = readFileSync(tokenFile, 'utf8').trim();
  const owner = `Bearer User ${ownerPss.split(':')[2]}`;
  const srv = await startServerProc(database, secret);
  const results: BenchResult[] = [];
  const tag = `[${store}]`;
  try {
    const u = (p: string): string => srv.url + p;
    const roles = await must(u('/v1/roles/'), 'GET', owner, undefined, 200);
    const serviceRole = (roles.data as Array<{ id: string; name: string }>).find(
      (r) => r.name === 'Service',
    )!.id;
    const app = await must(u('/v1/apps/'), 'POST', owner, { name: `bench-${store}` }, 201);
    const bulkApp = await must(u('/v1/apps/'), 'POST', owner, { name: `bench-bulk-${store}` }, 201);
    const bulkEnvId = (bulkApp.environments as Array<{ id: string; name: string }>).find(
      (e) => e.name === 'Development',
    )!.id;
    const envId = (app.environments as Array<{ id: string; name: string }>).find(
      (e) => e.name === 'Development',
    )!.id;
    const sa = await must(
      u('/v1/service-accounts/'),
      'POST',
      owner,
      { name: 'bench', role_id: serviceRole },
      201,
    );
    await must(
      u(`/v1/service-accounts/${sa.id}/access/`),
      'PUT',
      owner,
      {
        apps: [
          { id: app.id, environments: [envId] },
          { id: bulkApp.id, environments: [bulkEnvId] },
        ],
      },
      200,
    );
    const saAuth = `Bearer ${sa.initialToken.bearerToken}`;
    if (process.env.BENCH_SERVER_ONLY === 'bulk') {
      results.push(...(await bulkSection(u, saAuth, bulkApp.id, tag)));
      return results;
    }
    const secretsPath = u(`/v1/secrets/?app_id=${app.id}&env=Development`);
    for (let b = 0; b < SECRETS / 100; b++) {
      const batch = Array.from({ length: 100 }, (_, i) => ({
        key: `BENCH_${b}_${i}`,
        value: randomBytes(24).toString('base64'),
        comment: i % 3 === 0 ? 'a comment' : '',
        path: i % 5 === 0 ? '/nested/path' : '/',
      }));
      await must(secretsPath, 'POST', owner, { secrets: batch }, 200);
    }

    // 1. GET /service/secrets/ of the 1,000-secret environment.
    const e2e = u('/service/secrets/');
    const getAll = async (): Promise<number> => {
      const r = await fetch(e2e, { headers: { Authorization: saAuth, Environment: envId } });
      const body = (await r.json()) as unknown[];
      if (r.status === 200 && body.length !== SECRETS)
        throw new Error(`expected ${SECRETS} secrets, got ${body.length}`);
      return r.status;
    };
    await latencies(20, getAll); // warm-up
    const lat = await latencies(READ_SAMPLES, getAll);
    results.push({
      name: `${tag} GET /service/secrets/ (1,000 secrets) p50`,
      value: round(percentile(lat, 50)),
      unit: 'ms',
      note: `${READ_SAMPLES} sequential requests`,
    });
    results.push({
      name: `${tag} GET /service/secrets/ (1,000 secrets) p99`,
      value: round(percentile(lat, 99)),
      unit: 'ms',
    });
    let done = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: READ_CONCURRENCY }, async () => {
        while (Date.now() - t0 < READ_THROUGHPUT_MS) {
          if ((await getAll()) !== 200) throw new Error('read failed under load');
          done++;
        }
      }),
    );
    results.push({
      name: `${tag} GET /service/secrets/ (1,000 secrets) throughput`,
      value: round(done / ((Date.now() - t0) / 1000), 1),
      unit: 'req/s',
      note: `${READ_CONCURRENCY} concurrent clients, ${READ_THROUGHPUT_MS / 1000} s`,
    });
    const camelLat = await latencies(100, async () => {
      const r = await fetch(e2e, {
        headers: { Authorization: saAuth, Environment: envId, 'X-Use-Camel-Case': 'true' },
      });
      await r.arrayBuffer();
      return r.status;
    });
    results.push({
      name: `${tag} same with X-Use-Camel-Case: true (Node SDK) p50`,
      value: round(percentile(camelLat, 50)),
      unit: 'ms',
      note: '100 sequential requests',
    });
    const v1 = await latencies(
      V1_SAMPLES,
      async () =>
        (
          await fetch(secretsPath, { headers: { Authorization: saAuth } }).then(
            async (r) => (await r.arrayBuffer(), r),
          )
        ).status,
    );
    results.push({
      name: `${tag} GET /v1/secrets/ (1,000 secrets, server decrypts) p50`,
      value: round(percentile(v1, 50)),
      unit: 'ms',
      note: `${V1_SAMPLES} sequential requests`,
    });

    // 2. Token authentication cost: trivial authenticated request vs /health/ (no auth), interleaved.
    const health = u('/health/');
    const trivial = u(`/v1/service-accounts/${sa.id}/`);
    const h: number[] = [];
    const a: number[] = [];
    const bad: number[] = [];
    const badAuth = `Bearer ServiceAccount ${randomBytes(32).toString('hex')}`;
    for (let i = 0; i < AUTH_SAMPLES; i++) {
      let t = process.hrtime.bigint();
      let r = await fetch(health);
      await r.arrayBuffer();
      h.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      r = await fetch(trivial, { headers: { Authorization: owner } });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`trivial request: ${r.status}`);
      a.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      r = await fetch(trivial, { headers: { Authorization: badAuth } });
      await r.arrayBuffer();
      if (r.status !== 401) throw new Error(`unknown token: ${r.status}`);
      bad.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    [h, a, bad].forEach((x) => x.sort((p, q) => p - q));
    const hp50 = percentile(h, 50);
    const ap50 = percentile(a, 50);
    results.push({
      name: `${tag} GET /health/ p50 (baseline, no auth)`,
      value: round(hp50, 3),
      unit: 'ms',
      note: `${AUTH_SAMPLES} requests`,
    });
    results.push({
      name: `${tag} GET /v1/service-accounts/:id/ p50 (PAT auth + RBAC + 1 row)`,
      value: round(ap50, 3),
      unit: 'ms',
    });
    results.push({
      name: `${tag} unknown token → 401 p50 (hash lookup miss)`,
      value: round(percentile(bad, 50), 3),
      unit: 'ms',
    });
    results.push({
      name: `${tag} authenticated / baseline p50 ratio`,
      value: round(ap50 / hp50, 2),
      unit: 'x',
      note: `auth + handler ≈ ${round(ap50 - hp50, 3)} ms over baseline`,
    });

    // 3. 100 concurrent writers, one secret per request.
    const wl: number[] = [];
    let errors = 0;
    let written = 0;
    const w0 = Date.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; i < WRITES_PER_WRITER && Date.now() - w0 < WRITE_BUDGET_MS; i++) {
          const t = process.hrtime.bigint();
          try {
            const r = await fetch(secretsPath, {
              method: 'POST',
              headers: { Authorization: saAuth, 'Content-Type': 'application/json' },
              body: JSON.stringify({
                secrets: [{ key: `W_${w}_${i}`, value: randomBytes(16).toString('hex') }],
              }),
            });
            await r.arrayBuffer();
            if (r.status === 200) written++;
            else errors++;
          } catch {
            errors++;
          }
          wl.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
      }),
    );
    const wElapsed = (Date.now() - w0) / 1000;
    wl.sort((p, q) => p - q);
    results.push({
      name: `${tag} 100 concurrent writers: throughput`,
      value: round(written / wElapsed, 1),
      unit: 'writes/s',
      note: `${written} acknowledged in ${round(wElapsed, 2)} s`,
    });
    results.push({
      name: `${tag} 100 concurrent writers: p50 latency`,
      value: round(percentile(wl, 50)),
      unit: 'ms',
    });
    results.push({
      name: `${tag} 100 concurrent writers: p99 latency`,
      value: round(percentile(wl, 99)),
      unit: 'ms',
    });
    results.push({
      name: `${tag} 100 concurrent writers: errors`,
      value: errors,
      unit: 'requests',
      note: `of ${WRITERS * WRITES_PER_WRITER}`,
    });
    const check = await req(secretsPath, 'GET', owner);
    const stored = (check.json as Array<{ key: string }>).filter((s) => s.key.startsWith('W_')).length;
    if (stored !== written) throw new Error(`${written} writes acknowledged but ${stored} stored`);

    // 4. One request cannot stall the server (issue 11).
    results.push(...(await bulkSection(u, saAuth, bulkApp.id, tag)));
  } finally {
    await srv.stop();
  }
  return results;
}

export async function run(stores: Store[] = ['sqlite', 'postgres']): Promise<BenchResult[]> {
  if (!existsSync(join(ROOT, 'dist', 'server', 'cli.js')))
    throw new Error('dist/ has no server: run `npm run build` first');
  const dir = mkdtempSync(join(tmpdir(), 'pb-bench-'));
  const out: BenchResult[] = [];
  let cluster: PostgresCluster | undefined;
  try {
    for (const store of stores) {
      if (store === 'sqlite') {
        out.push(...(await benchStore('sqlite', `sqlite:${join(dir, 'bench.db')}`, dir)));
      } else {
        let base = process.env.PHASE_BRIDGE_TEST_PG_URL;
        if (!base) {
          cluster = await startPostgres();
          base = cluster.url;
        }
        const name = `pb_bench_${randomBytes(6).toString('hex')}`;
        const admin = new Client({ connectionString: base });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${name}`);
        await admin.end();
        const u = new URL(base);
        u.pathname = `/${name}`;
        try {
          out.push(...(await benchStore('postgres', u.toString(), dir)));
        } finally {
          const c = new Client({ connectionString: base });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await c.end();
        }
      }
    }
  } finally {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

if (require.main === module) {
  const wanted = process.argv.slice(2).filter((a): a is Store => a === 'sqlite' || a === 'postgres');
  run(wanted.length ? wanted : undefined).then(
    (rs) => {
      for (const r of rs) process.stdout.write(`${formatResult(r)}\n`);
    },
    (err) => {
      process.stderr.write(`bench/server failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
