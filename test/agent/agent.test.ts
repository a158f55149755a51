/**
 * The agent against the real phase-bridge server on loopback: sync, serving, caching headers, references, watch,
 * budget and single-flight, revocation, rotation, outages and the snapshot.
 */
import { readFileSync, statSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { startAgent, type AgentHandle } from '../../agent/agent';
import type { ChangeEvent } from '../../agent/sync';
import { startTestServer } from '../support/server';
import { call, countingFactory, provision, silent, testConfig, until } from './helpers';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

let srv: TestServer;
const agents: AgentHandle[] = [];

beforeAll(async () => {
  srv = await startTestServer();
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await srv?.close();
});

async function agentFor(
  values: Record<string, unknown>,
  factory?: ReturnType<typeof countingFactory>['factory'],
): Promise<AgentHandle> {
  const a = await startAgent(testConfig({ host: srv.url, ...values }), {
    logger: silent,
    clientFactory: factory,
  });
  agents.push(a);
  return a;
}

test('serves decrypted secrets with ETag/304, X-Cache and Age; raw values; formats; metadata', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Production: [
      { key: 'DB_USER', value: 'app' },
      { key: 'DB_URL', value: 'postgres://${DB_USER}@db:5432/x' },
      { key: 'MULTI', value: 'line one\nline "two" $HOME' },
      { key: 'NESTED', value: 'n', path: '/backend' },
    ],
    Staging: [{ key: 'SHARED', value: 'from-staging' }],
  });
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [
    { key: 'CROSS', value: '${staging.SHARED}!' },
  ]);
  const a = await agentFor({
    token: p.token,
    scopes: [{ app: p.appName, env: 'production' }],
    heapHeadroom: 8, // the opt-in heap keeper, checked in /metrics below
  });

  const r = await call(a, '/v1/secrets');
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/application\/json/);
  const body = JSON.parse(r.body);
  expect(body).toEqual({
    DB_USER: 'app',
    DB_URL: 'postgres://app@db:5432/x',
    MULTI: 'line one\nline "two" $HOME',
    CROSS: 'from-staging!',
    NESTED: 'n',
  });
  expect(r.headers['x-cache']).toBe('HIT');
  expect(Number(r.headers.age)).toBeGreaterThanOrEqual(0);
  const etag = r.headers.etag as string;
  expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
  expect(r.headers['cache-control']).toBe('no-store');

  const nm = await call(a, '/v1/secrets', { 'If-None-Match': etag });
  expect(nm.status).toBe(304);
  expect(nm.body).toBe('');
  expect(nm.headers.etag).toBe(etag);
  expect((await call(a, '/v1/secrets', { 'If-None-Match': '"other"' })).status).toBe(200);

  const raw = await call(a, '/v1/secrets/MULTI');
  expect(raw.status).toBe(200);
  expect(raw.headers['content-type']).toMatch(/text\/plain/);
  expect(raw.body).toBe('line one\nline "two" $HOME');
  expect((await call(a, '/v1/secrets/db_user')).body).toBe('app');
  const missing = await call(a, '/v1/secrets/NOPE');
  expect(missing.status).toBe(404);
  expect(JSON.parse(missing.body).error).toMatch(/NOPE/);

  const dotenv = await call(a, '/v1/env?format=dotenv');
  expect(dotenv.status).toBe(200);
  expect(dotenv.body).toMatch(/^DB_USER=/m);
  const shell = await call(a, '/v1/env?format=shell');
  expect(shell.body).toMatch(/^export DB_URL=/m);
  const json = await call(a, '/v1/env?format=json');
  expect(JSON.parse(json.body).CROSS).toBe('from-staging!');
  const yaml = await call(a, '/v1/env?format=yaml');
  expect(yaml.body).toMatch(/^DB_USER: /m);
  expect((await call(a, '/v1/env?format=xml')).status).toBe(400);

  const meta = JSON.parse((await call(a, '/v1/secrets?metadata=true')).body);
  const nested = meta.secrets.find((s: { key: string }) => s.key === 'NESTED');
  expect(nested).toMatchObject({
    path: '/backend',
    app: p.appName,
    environment: 'Production',
    type: 'secret',
    version: 1,
  });

  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.ready).toBe(true);
  expect(st.scopes[0]).toMatchObject({
    serving: true,
    cache: 'HIT',
    source: 'upstream',
    secrets: 5,
    failClosed: null,
  });
  expect(st.scopes[0].environmentUpdatedAt).toMatch(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/);
  expect(JSON.stringify(st)).not.toContain('from-staging');
  expect(JSON.stringify(st)).not.toContain(p.token.split(':')[2]);

  const ready = await call(a, '/readyz');
  expect(ready.status).toBe(200);
  const metrics = await call(a, '/metrics');
  expect(metrics.body).toMatch(/phase_agent_requests_total\{route="secrets",cache="hit"\} [1-9]/);
  expect(metrics.body).toMatch(/phase_agent_upstream_latency_seconds_count\{call="bootstrap"\}/);
  expect(metrics.body).toMatch(/phase_agent_decrypt_seconds_count [1-9]/);
  // The sync decrypted: the opt-in heap keeper collected its garbage right after it.
  expect(metrics.body).toMatch(/phase_agent_heap_collection_seconds_count\{reason="sync"\} [1-9]/);
  // The process metrics, read at scrape time, with values that describe this process.
  const value = (name: string): number => {
    const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(metrics.body);
    expect(m).not.toBeNull();
    return Number(m![1]);
  };
  expect(value('phase_agent_process_resident_memory_bytes')).toBeGreaterThan(10 * 1048576);
  expect(value('phase_agent_process_cpu_seconds_total')).toBeGreaterThan(0);
  expect(value('phase_agent_nodejs_heap_size_used_bytes')).toBeGreaterThan(1048576);
  expect(
    Math.abs(value('phase_agent_process_start_time_seconds') - (Date.now() / 1000 - process.uptime())),
  ).toBeLessThan(5);
  expect(value('phase_agent_nodejs_eventloop_lag_seconds\\{quantile="0.99"\\}')).toBeGreaterThanOrEqual(0);
  expect(metrics.body).toContain(`phase_agent_nodejs_version_info{version="${process.version}"} 1`);
  expect(metrics.body).not.toMatch(/nodejs_gc_duration_seconds/);
});

test('several scopes: ?scope= selects one, the merge lets later scopes win; unknown scope is 404', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Development: [
      { key: 'A', value: 'dev-a' },
      { key: 'ONLY_DEV', value: 'd' },
    ],
    Production: [{ key: 'A', value: 'prod-a' }],
  });
  const a = await agentFor({
    token: p.token,
    scopes: [
      { app: p.appName, env: 'Development', name: 'dev' },
      { appId: p.appId, env: 'Production', name: 'prod' },
    ],
  });
  expect(JSON.parse((await call(a, '/v1/secrets')).body)).toEqual({ A: 'prod-a', ONLY_DEV: 'd' });
  expect(JSON.parse((await call(a, '/v1/secrets?scope=dev')).body)).toEqual({ A: 'dev-a', ONLY_DEV: 'd' });
  expect((await call(a, '/v1/secrets/A?scope=dev')).body).toBe('dev-a');
  expect((await call(a, '/v1/secrets?scope=nope')).status).toBe(404);
});

test('revalidation is cheap: steady state costs one bootstrap per refresh; a change refetches only its scope', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Development: [{ key: 'X', value: '1' }],
    Production: [{ key: 'Y', value: '1' }],
  });
  const { factory, calls } = countingFactory(srv.url);
  const a = await agentFor(
    {
      token: p.token,
      scopes: [
        { app: p.appName, env: 'Development' },
        { app: p.appName, env: 'Production' },
      ],
    },
    factory,
  );
  await a.engine.firstSync;
  expect(calls).toEqual({ bootstrap: 1, secrets: 2 });
  await until(() => calls.bootstrap >= 4);
  expect(calls.secrets).toBe(2); // nothing changed: no downloads
  const before = calls.secrets;
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'Z', value: 'new' }]);
  await until(async () => (await call(a, '/v1/secrets/Z')).status === 200);
  expect(calls.secrets).toBe(before + 1); // only Production was downloaded again
  expect((await call(a, '/v1/secrets/Z')).body).toBe('new');
});

test('single-flight and budget: concurrent early requests cause one sync; calls never exceed the budget', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'K', value: 'v' }] });
  const { factory, calls } = countingFactory(srv.url);
  // Budget: 2 calls burst, then 60/minute (one per second); refresh every 100 ms wants far more.
  const a = await agentFor(
    {
      token: p.token,
      scopes: [{ app: p.appName, env: 'Development' }],
      refreshInterval: '100ms',
      budgetPerMinute: 60,
      budgetBurst: 2,
    },
    factory,
  );
  const replies = await Promise.all(Array.from({ length: 25 }, () => call(a, '/v1/secrets/K')));
  expect(replies.every((r) => r.status === 200 && r.body === 'v')).toBe(true);
  expect(calls).toEqual({ bootstrap: 1, secrets: 1 });
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 2500));
  const elapsedMin = (Date.now() - t0) / 60_000;
  const total = calls.bootstrap + calls.secrets;
  // 2 burst + 60/min refill over the whole run (plus one token of slack for timer rounding).
  expect(total).toBeLessThanOrEqual(2 + Math.ceil(60 * (elapsedMin + 0.01)) + 1);
  expect(calls.bootstrap).toBeGreaterThanOrEqual(2); // it does keep refreshing within the budget
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.upstream.budget.callsDeferred).toBeGreaterThanOrEqual(0);
  expect(st.upstream.budget.callsMade).toBe(total);
});

test('watch stream: change events carry names only, values only when asked', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'W', value: 'one' }] });
  const a = await agentFor({ token: p.token, scopes: [{ app: p.appName, env: 'Development', name: 'dev' }] });
  await a.engine.firstSync;

  type Sse = { event: string; data: ChangeEvent & { values?: Record<string, string> } };
  const open = (path: string): { events: Sse[]; close: () => void } => {
    const events: Sse[] = [];
    const req = request(
      { host: '127.0.0.1', port: a.port, path, headers: { 'x-phase-agent-token': a.clientToken } },
      (res) => {
        expect(res.headers['content-type']).toMatch(/text\/event-stream/);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
          }
        });
      },
    );
    req.on('error', () => undefined);
    req.end();
    return { events, close: () => req.destroy() };
  };
  const plain = open('/v1/watch');
  const withValues = open('/v1/watch?scope=dev&values=true');
  await until(() => plain.events.length > 0 && withValues.events.length > 0);
  expect(plain.events[0].event).toBe('hello');
  const list = await p.owner.listSecrets({ appId: p.appId, env: 'Development' });
  await p.owner.updateSecrets({ appId: p.appId, env: 'Development' }, [
    { id: list[0].id, value: 'second-value' },
  ]);
  await p.owner.createSecrets({ appId: p.appId, env: 'Development' }, [{ key: 'W2', value: 'w2-value' }]);
  const changes = await until(() => {
    const c = plain.events.filter((e) => e.event === 'change');
    const seen = new Set(c.flatMap((e) => [...e.data.changed, ...e.data.added]));
    return seen.has('W') && seen.has('W2') ? c : undefined;
  });
  for (const c of changes) {
    expect(c.data.values).toBeUndefined();
    expect(JSON.stringify(c.data)).not.toContain('second-value');
    expect(JSON.stringify(c.data)).not.toContain('w2-value');
    expect(c.data.scope).toBe('dev');
  }
  const valued = await until(() => {
    const merged = Object.assign(
      {},
      ...withValues.events.filter((e) => e.event === 'change').map((e) => e.data.values),
    );
    return merged.W === 'second-value' && merged.W2 === 'w2-value' ? merged : undefined;
  });
  expect(valued.W).toBe('second-value');
  plain.close();
  withValues.close();
  await until(() => a.metrics.watchers.get().then((m) => m.values[0]?.value === 0));
});

test('token revoked: the scope stops serving within one refresh and /v1/status says why', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'R', value: 'secret-r' }] });
  const a = await agentFor({
    token: p.token,
    scopes: [{ app: p.appName, env: 'Development' }],
    refreshInterval: '200ms',
  });
  expect((await call(a, '/v1/secrets/R')).status).toBe(200);
  const snapFile = a.engine['cfg'].snapshotFile as string;
  await until(() => existsSync(snapFile));
  await p.owner.deleteServiceAccountToken(p.saId, p.tokenId);
  const revokedAt = Date.now();
  await until(async () => (await call(a, '/v1/secrets/R')).status === 503, 5000, 20);
  // One refresh (200 ms) plus the request round trips; generous bound for a loaded CI machine.
  expect(Date.now() - revokedAt).toBeLessThan(2000);
  const r = await call(a, '/v1/secrets');
  expect(r.status).toBe(503);
  expect(r.body).not.toContain('secret-r');
  expect((await call(a, '/readyz')).status).toBe(503);
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.ready).toBe(false);
  expect(st.scopes[0].serving).toBe(false);
  expect(st.scopes[0].failClosed.code).toBe('token_rejected');
  expect(st.scopes[0].failClosed.message).toMatch(/HTTP 403.*revoked, expired or wrong/);
  expect(st.scopes[0].secrets).toBe(0);
  // The snapshot goes too: a restart with the dead token cannot serve from disk.
  await until(() => !existsSync(snapFile));
});

test('token file rotated under a request loop: no failed request, and the new token is the one in use', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'ROT', value: 'r' }] });
  const dir = testConfig({ token: p.token, scopes: [{ app: 'x', env: 'y' }] }).dataDir;
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${p.token}\n`, { mode: 0o600 });
  const a = await agentFor({ tokenFile, scopes: [{ app: p.appName, env: 'Development' }] });
  expect((await call(a, '/v1/secrets/ROT')).status).toBe(200);

  let stop = false;
  const failures: number[] = [];
  let requests = 0;
  const loop = (async () => {
    while (!stop) {
      const r = await call(a, '/v1/secrets/ROT');
      requests++;
      if (r.status !== 200 || r.body !== 'r') failures.push(r.status);
    }
  })();
  const minted = await p.owner.createServiceAccountToken(p.saId, { name: 'rotated' });
  // The kubelet way: write a new file and rename it over the old one.
  writeFileSync(`${tokenFile}.new`, minted.token, { mode: 0o600 });
  renameSync(`${tokenFile}.new`, tokenFile);
  // Wait until the agent has synced with the new token, then revoke the old one.
  await until(() => a.engine['tokens'].token.bearer === minted.token.split(':')[2]);
  await until(() => a.engine.lastCycleAt > Date.now() - 100 && !a.engine.lastCycleError);
  await p.owner.deleteServiceAccountToken(p.saId, p.tokenId);
  await new Promise((r) => setTimeout(r, 800)); // several refreshes with only the new token valid
  // A half-written file is ignored: the agent keeps the valid token.
  writeFileSync(tokenFile, 'pss_service:v2:trunc');
  await new Promise((r) => setTimeout(r, 400));
  stop = true;
  await loop;
  expect(requests).toBeGreaterThan(20);
  expect(failures).toEqual([]);
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.scopes[0].serving).toBe(true);
  expect(st.scopes[0].failClosed).toBeNull();
  expect(st.upstream.lastError).toBeNull();
});

test('upstream killed mid-run: values still served as STALE, readyz stays up until max-stale; restart serves from the snapshot', async () => {
  const own = await startTestServer();
  let closed = false;
  try {
    const p = await provision(own.url, own.ownerToken, { Development: [{ key: 'S', value: 'kept' }] });
    const cfgValues = {
      host: own.url,
      token: p.token,
      scopes: [{ app: p.appName, env: 'Development' }],
      maxStale: '1h',
    };
    const first = await startAgent(testConfig(cfgValues), { logger: silent });
    agents.push(first);
    const dataDir = first.engine['cfg'].dataDir as string;
    expect((await call(first, '/v1/secrets/S')).headers['x-cache']).toBe('HIT');
    const snap = join(dataDir, 'snapshot.json');
    await until(() => existsSync(snap));
    expect(statSync(snap).mode & 0o777).toBe(0o600);
    const snapText = readFileSync(snap, 'utf8');
    expect(snapText).not.toContain('kept'); // ciphertext only
    expect(snapText).not.toContain(p.token.split(':')[2]);
    expect(snapText).not.toContain(p.token.split(':')[4]); // no key share
    expect(snapText).not.toContain(p.token.split(':')[5]); // no wrap key

    await own.close();
    closed = true;
    const stale = await until(async () => {
      const r = await call(first, '/v1/secrets/S');
      return r.headers['x-cache'] === 'STALE' ? r : undefined;
    });
    expect(stale.status).toBe(200);
    expect(stale.body).toBe('kept');
    expect((await call(first, '/readyz')).status).toBe(200);
    const st = JSON.parse((await call(first, '/v1/status')).body);
    expect(st.scopes[0].cache).toBe('STALE');
    expect(st.scopes[0].lastError.code).toMatch(/^network_/);
    await first.close();

    // Restart while the upstream is still down: served from the snapshot.
    const second = await startAgent(testConfig({ ...cfgValues, dataDir }), { logger: silent });
    agents.push(second);
    const r = await call(second, '/v1/secrets/S');
    expect(r.status).toBe(200);
    expect(r.body).toBe('kept');
    expect(r.headers['x-cache']).toBe('STALE');
    expect((await call(second, '/readyz')).status).toBe(200);
    expect(JSON.parse((await call(second, '/v1/status')).body).scopes[0].source).toBe('snapshot');

    // A stolen snapshot is useless without the token: another token (same shape) cannot open it.
    const other = await startAgent(
      testConfig({
        ...cfgValues,
        dataDir,
        token: `pss_service:v2:${'1'.repeat(64)}:${p.token.split(':')[3]}:${'2'.repeat(64)}:${'3'.repeat(64)}`,
        firstSyncWait: '300ms',
      }),
      { logger: silent },
    );
    agents.push(other);
    expect((await call(other, '/v1/secrets/S')).status).toBe(503);
  } finally {
    if (!closed) await own.close();
  }
});

test('max-stale: beyond it the agent stops serving and readyz fails', async () => {
  const own = await startTestServer();
  let closed = false;
  try {
    const p = await provision(own.url, own.ownerToken, { Development: [{ key: 'M', value: 'm' }] });
    const a = await agentFor({
      host: own.url,
      token: p.token,
      scopes: [{ app: p.appName, env: 'Development' }],
      maxStale: '600ms',
    });
    expect((await call(a, '/v1/secrets/M')).status).toBe(200);
    await own.close();
    closed = true;
    const r = await until(async () => {
      const x = await call(a, '/v1/secrets/M');
      return x.status === 503 ? x : undefined;
    });
    expect(JSON.parse(r.body).error).toMatch(/beyond max-stale/);
    expect((await call(a, '/readyz')).status).toBe(503);
  } finally {
    if (!closed) await own.close();
  }
});

test('429 from the upstream: no call before Retry-After, values served STALE, rate-limit state in /v1/status', async () => {
  const own = await startTestServer({ rateLimit: '12/m' });
  try {
    const p = await provision(own.url, own.ownerToken, { Development: [{ key: 'L', value: 'limited' }] });
    const { factory, calls } = countingFactory(own.url);
    const a = await startAgent(
      testConfig({
        host: own.url,
        token: p.token,
        scopes: [{ app: p.appName, env: 'Development' }],
        refreshInterval: '50ms',
      }),
      { logger: silent, clientFactory: factory },
    );
    agents.push(a);
    const limited = await until(async () => {
      const st = JSON.parse((await call(a, '/v1/status')).body);
      return st.upstream.rateLimit.limited ? st : undefined;
    });
    expect(limited.upstream.lastError.code).toBe('rate_limited');
    expect(Date.parse(limited.upstream.rateLimit.until)).toBeGreaterThan(Date.now());
    const frozen = calls.bootstrap + calls.secrets;
    await new Promise((r) => setTimeout(r, 1000)); // 20 refresh intervals
    expect(calls.bootstrap + calls.secrets).toBe(frozen);
    const r = await call(a, '/v1/secrets/L');
    expect(r.status).toBe(200);
    expect(r.body).toBe('limited');
    expect(r.headers['x-cache']).toBe('STALE');
    const m = (await call(a, '/metrics')).body;
    expect(m).toMatch(/phase_agent_upstream_calls_total\{call="bootstrap",outcome="429"\} 1/);
  } finally {
    await own.close();
  }
});

test('bad upstream configuration: unknown app or environment fails closed with a message naming what exists', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'A', value: 'a' }] });
  const a = await agentFor({
    token: p.token,
    scopes: [{ app: 'no-such-app', env: 'Development' }],
    firstSyncWait: '2s',
  });
  const r = await call(a, '/v1/secrets');
  expect(r.status).toBe(503);
  expect(JSON.parse(r.body).error).toMatch(/no access to an app named no-such-app \(it can see: .*agent-/);
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.scopes[0].failClosed.code).toBe('no_access');
});

test('shutdown: a request in flight is answered before close() (what SIGTERM calls) resolves', async () => {
  // An upstream that accepts connections and never answers keeps the first sync, and so /readyz, in flight.
  const { createServer } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const hole = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const port = (hole.address() as import('node:net').AddressInfo).port;
  try {
    const p = await provision(srv.url, srv.ownerToken, {});
    const a = await startAgent(
      testConfig({
        host: `http://127.0.0.1:${port}`,
        token: p.token,
        scopes: [{ app: p.appName, env: 'Development' }],
        upstreamTimeout: '1500ms',
        firstSyncWait: '10s',
      }),
      { logger: silent },
    );
    const pending = call(a, '/readyz');
    await new Promise((r) => setTimeout(r, 300));
    let closed = false;
    const closing = a.close().then(() => (closed = true));
    const reply = await pending;
    expect(reply.status).toBe(503);
    expect(JSON.parse(reply.body).status).toBe('not_ready');
    await closing;
    expect(closed).toBe(true);
    const after = await call(a, '/healthz').then(
      (r) => `status ${r.status}`,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(after).toBe('ECONNREFUSED'); // no longer accepting
  } finally {
    for (const s of sockets) s.destroy();
    hole.close();
  }
});

test('path and tag scopes; references into paths and environments outside the scope follow their changes', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Production: [
      { key: 'ROOT_ONLY', value: 'root' },
      { key: 'API_KEY', value: 'k1', path: '/backend', tags: ['api'] },
      { key: 'API_URL', value: 'https://${ROOT_ONLY}.example/${/shared/SUFFIX}', path: '/backend' },
      { key: 'UNTAGGED', value: 'u', path: '/backend' },
      { key: 'SUFFIX', value: 'v1', path: '/shared' },
    ],
    Staging: [{ key: 'UPSTREAM', value: 'stage-1' }],
  });
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [
    { key: 'FROM_STAGING', value: '${staging.UPSTREAM}', path: '/backend' },
  ]);
  const a = await agentFor({
    token: p.token,
    scopes: [
      { app: p.appName, env: 'Production', path: '/backend', name: 'backend' },
      { app: p.appName, env: 'Production', path: '/backend', tags: ['api'], name: 'api-only' },
    ],
  });
  expect(JSON.parse((await call(a, '/v1/secrets?scope=backend')).body)).toEqual({
    API_KEY: 'k1',
    API_URL: 'https://root.example/v1',
    UNTAGGED: 'u',
    FROM_STAGING: 'stage-1',
  });
  expect(JSON.parse((await call(a, '/v1/secrets?scope=api-only')).body)).toEqual({ API_KEY: 'k1' });
  // A change in Staging (not a configured scope) reaches the referencing value at the next refresh.
  const [up] = await p.owner.listSecrets({ appId: p.appId, env: 'Staging' });
  await p.owner.updateSecrets({ appId: p.appId, env: 'Staging' }, [{ id: up.id, value: 'stage-2' }]);
  await until(async () => (await call(a, '/v1/secrets/FROM_STAGING?scope=backend')).body === 'stage-2');
});

test('rotation with the old token revoked right away: still no failed request', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'ROT2', value: 'r2' }] });
  const dir = testConfig({ token: p.token, scopes: [{ app: 'x', env: 'y' }] }).dataDir;
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, p.token, { mode: 0o600 });
  const a = await agentFor({
    tokenFile,
    scopes: [{ app: p.appName, env: 'Development' }],
    refreshInterval: '50ms',
    tokenPollInterval: '5s',
  });
  expect((await call(a, '/v1/secrets/ROT2')).status).toBe(200);
  let stop = false;
  const failures: number[] = [];
  const loop = (async () => {
    while (!stop) {
      const r = await call(a, '/v1/secrets/ROT2');
      if (r.status !== 200) failures.push(r.status);
    }
  })();
  for (let round = 0; round < 3; round++) {
    const minted = await p.owner.createServiceAccountToken(p.saId, { name: `r${round}` });
    writeFileSync(`${tokenFile}.new`, minted.token, { mode: 0o600 });
    renameSync(`${tokenFile}.new`, tokenFile);
    // Revoke every other token at once, without waiting for the agent to notice the file.
    const detail = await p.owner.getServiceAccount(p.saId);
    for (const t of detail.tokens)
      if (t.id !== minted.id) await p.owner.deleteServiceAccountToken(p.saId, t.id);
    await new Promise((r) => setTimeout(r, 400));
  }
  stop = true;
  await loop;
  expect(failures).toEqual([]);
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.scopes[0].serving).toBe(true);
  expect(st.scopes[0].failClosed).toBeNull();
});

test('watch streams ended by shutdown are never written again (no crash on a late change)', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'LATE', value: 'l' }] });
  const a = await startAgent(
    testConfig({ host: srv.url, token: p.token, scopes: [{ app: p.appName, env: 'Development' }] }),
    { logger: silent },
  );
  await a.engine.firstSync;
  const ended = new Promise<string>((resolveEnd) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: a.port,
        path: '/v1/watch',
        headers: { 'x-phase-agent-token': a.clientToken },
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolveEnd(body));
        res.on('error', () => resolveEnd(body));
      },
    );
    req.end();
  });
  await until(() => a.metrics.watchers.get().then((m) => m.values[0]?.value === 1));
  const closing = a.close();
  // A change arriving while streams are being ended must not throw or emit an unhandled error.
  a.engine.emit('change', {
    scope: a.engine.scopes[0].name,
    etag: null,
    kind: 'updated',
    added: ['X'],
    changed: [],
    removed: [],
    at: new Date().toISOString(),
  });
  await closing;
  a.engine.emit('change', {
    scope: a.engine.scopes[0].name,
    etag: null,
    kind: 'updated',
    added: ['Y'],
    changed: [],
    removed: [],
    at: new Date().toISOString(),
  });
  expect(await ended).toMatch(/event: hello/);
});
