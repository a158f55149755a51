/**
 * Push (issue 14): the agent subscribes to the server's change stream (`GET /service/secrets/events/`) and syncs a
 * changed scope at once, without waiting for its refresh interval; a dropped stream falls back to polling and
 * resubscribes (and its `hello` catches what changed meanwhile); an upstream without the stream (real Phase: 404) is
 * polled. `--render` files and `run` children follow. Real server, real agent, real HTTP; a small proxy in front of
 * the server cuts or refuses the stream on demand. No tight timing asserts: the refresh interval is 60 s, so a value
 * that arrives within a few seconds came through the stream.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type AgentHandle } from '../../agent/agent';
import { CallBudget } from '../../agent/budget';
import { SseParser } from '../../agent/change-stream';
import { runCommand } from '../../agent/run';
import type { Clock, ClockTimer } from '../../agent/clock';
import { Announcements, Scheduler, type CycleKind } from '../../agent/schedule';
import { ScopeState } from '../../agent/scope';
import { ViewCache } from '../../agent/cache';
import { buildView } from '../../agent/views';
import { newerThan } from '../../agent/sync';
import { createServer, type PhaseBridgeServer } from '../../server/app';
import { startTestServer } from '../support/server';
import { call, countingFactory, provision, silent, testConfig, until } from './helpers';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

let srv: TestServer;
const agents: AgentHandle[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  srv = await startTestServer();
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  for (const c of closers.splice(0)) await c();
});

afterAll(async () => {
  await srv?.close();
});

/** The refresh interval of these agents: anything arriving within seconds came through the stream. */
const SLOW = '60s';
const PUSH_WAIT = 8_000;

async function agentFor(
  host: string,
  values: Record<string, unknown>,
  factory?: ReturnType<typeof countingFactory>['factory'],
): Promise<AgentHandle> {
  const a = await startAgent(testConfig({ host, refreshInterval: SLOW, ...values }), {
    logger: silent,
    clientFactory: factory,
    stream: { minBackoffMs: 100, maxBackoffMs: 400 },
  });
  agents.push(a);
  await a.engine.firstSync;
  return a;
}

async function streamState(a: AgentHandle): Promise<Record<string, unknown>> {
  const r = await call(a, '/v1/status');
  return JSON.parse(r.body).upstream.changeStream;
}

const value = async (a: AgentHandle, key: string): Promise<string | undefined> => {
  const r = await call(a, `/v1/secrets/${key}`);
  return r.status === 200 ? r.body : undefined;
};

/** A proxy in front of the server that can refuse the change stream (503 or 404) and cut open streams. */
async function streamProxy(target: string): Promise<{
  url: string;
  mode: 'pass' | 'refuse' | 'missing';
  cut(): void;
  close(): Promise<void>;
}> {
  const t = new URL(target);
  const open = new Set<http.ServerResponse>();
  const state = { mode: 'pass' as 'pass' | 'refuse' | 'missing' };
  const server = http.createServer((req, res) => {
    const isStream = (req.url ?? '').startsWith('/service/secrets/events/');
    if (isStream && state.mode !== 'pass') {
      res.writeHead(state.mode === 'missing' ? 404 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: state.mode === 'missing' ? 'Not found.' : 'unavailable' }));
      return;
    }
    const up = http.request(
      { host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (isStream) {
          open.add(res);
          res.on('close', () => open.delete(res));
          res.flushHeaders();
        }
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const p = {
    url,
    get mode() {
      return state.mode;
    },
    set mode(m: 'pass' | 'refuse' | 'missing') {
      state.mode = m;
    },
    cut: () => {
      for (const s of open) s.destroy(); // the agent's side of the stream; the server's follows
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  closers.push(p.close);
  return p;
}

test('a write is visible at GET /v1/secrets/:key within seconds with a 60 s refresh, through one upstream call and no bootstrap', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'A', value: 'a1' }] });
  const counting = countingFactory(srv.url);
  // The default budget (1 call per minute, burst 4, push burst 10): pushes must fit in it.
  const a = await agentFor(
    srv.url,
    { token: p.token, scopes: [{ app: p.appName, env: 'Production' }], budgetPerMinute: 1, budgetBurst: 4 },
    counting.factory,
  );
  expect(await value(a, 'A')).toBe('a1');
  await until(async () => (await streamState(a)).state === 'connected');
  const before = { ...counting.calls };
  for (let i = 1; i <= 3; i++) {
    await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [
      { key: `PUSHED_${i}`, value: `v${i}` },
    ]);
    await until(async () => (await value(a, `PUSHED_${i}`)) === `v${i}`, PUSH_WAIT);
  }
  expect(counting.calls.bootstrap).toBe(before.bootstrap);
  expect(counting.calls.secrets - before.secrets).toBeGreaterThanOrEqual(3);
  expect(counting.calls.secrets - before.secrets).toBeLessThanOrEqual(4);
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.upstream.cycles.push).toBeGreaterThanOrEqual(3);
  expect(st.upstream.budget.pushCallsMade).toBeGreaterThanOrEqual(3);
  expect(st.upstream.changeStream).toMatchObject({ state: 'connected', connects: 1 });
  // A deletion arrives the same way.
  const list = await p.owner.listSecrets({ appId: p.appId, env: 'Production' });
  await p.owner.deleteSecrets(
    { appId: p.appId, env: 'Production' },
    list.filter((x) => x.key === 'PUSHED_1').map((x) => x.id),
  );
  await until(async () => (await call(a, '/v1/secrets/PUSHED_1')).status === 404, PUSH_WAIT);
});

test('a change to the target of a reference in another environment is pushed too', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Staging: [{ key: 'SHARED', value: 's1' }],
    Production: [{ key: 'REF', value: '${staging.SHARED}-x' }],
  });
  const a = await agentFor(srv.url, { token: p.token, scopes: [{ app: p.appName, env: 'Production' }] });
  expect(await value(a, 'REF')).toBe('s1-x');
  await until(async () => (await streamState(a)).state === 'connected');
  const [shared] = (await p.owner.listSecrets({ appId: p.appId, env: 'Staging' })).filter(
    (x) => x.key === 'SHARED',
  );
  await p.owner.updateSecrets({ appId: p.appId, env: 'Staging' }, [{ id: shared.id, value: 's2' }]);
  await until(async () => (await value(a, 'REF')) === 's2-x', PUSH_WAIT);
});

test('a dropped stream falls back to polling without a gap, and resubscribes', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'B', value: 'b1' }] });
  const proxy = await streamProxy(srv.url);
  const a = await agentFor(proxy.url, {
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    refreshInterval: '1s',
  });
  await until(async () => (await streamState(a)).state === 'connected');

  // Down: the stream is cut and refused. Polling (1 s here) keeps the values coming: no gap.
  proxy.mode = 'refuse';
  proxy.cut();
  await until(async () => (await streamState(a)).state === 'down');
  const polls = a.engine.kinds.poll;
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'WHILE_DOWN', value: 'd' }]);
  await until(async () => (await value(a, 'WHILE_DOWN')) === 'd', PUSH_WAIT);
  expect(a.engine.kinds.poll).toBeGreaterThan(polls);
  expect((await streamState(a)).lastError).toMatch(/503|ended|ECONN/);

  // Back: the agent resubscribes (jittered backoff) and pushes work again.
  proxy.mode = 'pass';
  await until(async () => (await streamState(a)).connects === 2, PUSH_WAIT);
  expect((await streamState(a)).state).toBe('connected');
});

test('the hello of a resubscribed stream syncs a change made while the stream was down (60 s refresh)', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'C', value: 'c1' }] });
  const proxy = await streamProxy(srv.url);
  const a = await agentFor(proxy.url, { token: p.token, scopes: [{ app: p.appName, env: 'Production' }] });
  await until(async () => (await streamState(a)).state === 'connected');
  proxy.mode = 'refuse';
  proxy.cut();
  await until(async () => (await streamState(a)).state === 'down');
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'MISSED', value: 'm' }]);
  await new Promise((r) => setTimeout(r, 300));
  expect(await value(a, 'MISSED')).toBeUndefined(); // no stream, no poll due for a minute
  proxy.mode = 'pass';
  await until(async () => (await value(a, 'MISSED')) === 'm', PUSH_WAIT);
  expect((await streamState(a)).connects).toBe(2);
});

test('the server restarting on the same database: the agent resubscribes to the new process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-push-restart-'));
  const first = await startTestServer({ dataDir: dir });
  const port = Number(new URL(first.url).port);
  let current: { close(): Promise<void> } = first;
  closers.push(() => current.close());
  const p = await provision(first.url, first.ownerToken, { Production: [{ key: 'R', value: 'r1' }] });
  const a = await agentFor(first.url, { token: p.token, scopes: [{ app: p.appName, env: 'Production' }] });
  await until(async () => (await streamState(a)).state === 'connected');
  await first.close();
  await until(async () => (await streamState(a)).state === 'down');
  const second: PhaseBridgeServer = await createServer({
    database: first.database,
    serverSecret: first.serverSecret,
    logLevel: 'silent',
  });
  current = second;
  await second.listen(port, '127.0.0.1');
  await until(async () => (await streamState(a)).state === 'connected', PUSH_WAIT);
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'AFTER', value: 'x' }]);
  await until(async () => (await value(a, 'AFTER')) === 'x', PUSH_WAIT);
});

test('an upstream without a change stream (404, as real Phase) is polled, and the stream is not asked again soon', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'D', value: 'd1' }] });
  const proxy = await streamProxy(srv.url);
  proxy.mode = 'missing';
  const a = await agentFor(proxy.url, {
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    refreshInterval: '300ms',
  });
  await until(async () => (await streamState(a)).state === 'unsupported');
  const st = await streamState(a);
  expect(st.lastError).toMatch(/404/);
  expect(Date.parse(st.nextAttemptAt as string) - Date.now()).toBeGreaterThan(5 * 60_000);
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'POLLED', value: 'p' }]);
  await until(async () => (await value(a, 'POLLED')) === 'p', PUSH_WAIT);
  expect(a.engine.kinds.push).toBe(0);
});

test('--no-push: no subscription', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'E', value: 'e' }] });
  const a = await agentFor(srv.url, {
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    push: false,
  });
  expect(await streamState(a)).toEqual({ state: 'off' });
});

test('--render files follow a pushed change', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'F', value: 'f1' }] });
  const file = join(mkdtempSync(join(tmpdir(), 'agent-push-render-')), 'app.env');
  const a = await agentFor(srv.url, {
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    render: { file, format: 'dotenv' },
  });
  await until(() => {
    try {
      return readFileSync(file, 'utf8').includes('F=');
    } catch {
      return false;
    }
  });
  await until(async () => (await streamState(a)).state === 'connected');
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'G', value: 'g1' }]);
  await until(() => readFileSync(file, 'utf8').includes('G='), PUSH_WAIT);
});

test('run: the child is restarted with a pushed change within its debounce', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'V', value: 'v1' }] });
  const dir = mkdtempSync(join(tmpdir(), 'agent-push-run-'));
  const log = join(dir, 'log');
  const script = `
    const fs = require('fs');
    fs.appendFileSync(${JSON.stringify(log)}, 'start ' + process.env.V + '\\n');
    process.on('SIGTERM', () => process.exit(0));
    setInterval(() => {}, 1000);`;
  const cfg = testConfig({
    host: srv.url,
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    refreshInterval: SLOW,
  });
  const running = runCommand(
    cfg,
    [process.execPath, '-e', script],
    {
      onChange: 'restart',
      signal: 'SIGHUP',
      debounceMs: 200,
      killGraceMs: 2000,
      shell: false,
      out: () => undefined,
    },
    { logger: silent },
  );
  await until(() => {
    try {
      return readFileSync(log, 'utf8').includes('start v1');
    } catch {
      return false;
    }
  });
  // Whether the stream is open yet or not: a change event, or the hello when it opens, brings v2.
  const [v] = (await p.owner.listSecrets({ appId: p.appId, env: 'Production' })).filter((x) => x.key === 'V');
  await p.owner.updateSecrets({ appId: p.appId, env: 'Production' }, [{ id: v.id, value: 'v2' }]);
  await until(() => readFileSync(log, 'utf8').includes('start v2'), PUSH_WAIT);
  // End the run: the child exits 0 on SIGTERM, run resolves with that.
  process.emit('SIGTERM', 'SIGTERM');
  expect(await running).toBe(0);
});

describe('units', () => {
  test('SSE parser: CRLF, LF and CR line ends, split chunks, comments, multi-line data, events without data', () => {
    const got: Array<[string, string]> = [];
    const p = new SseParser((e, d) => got.push([e, d]));
    p.push('retry: 2000\n\nevent: hello\r\ndata: {"environments":[]}\r');
    p.push('\n\r\n: ping\n\nevent: cha');
    p.push('nge\ndata: {"id":"x",\ndata:"updatedAt":"t"}\n\nevent: revoked\n\r');
    p.push('data: plain\n\n');
    expect(got).toEqual([
      ['hello', '{"environments":[]}'],
      ['change', '{"id":"x",\n"updatedAt":"t"}'],
      ['revoked', ''],
      ['message', 'plain'],
    ]);
    expect(p.retryMs).toBe(2000);
  });

  test('newerThan compares microsecond ISO times', () => {
    expect(newerThan('2026-01-01T00:00:00.000002Z', '2026-01-01T00:00:00.000001Z')).toBe(true);
    expect(newerThan('2026-01-01T00:00:00.000001Z', '2026-01-01T00:00:00.000001Z')).toBe(false);
    expect(newerThan('2026-01-01T00:00:01Z', '2026-01-01T00:00:00.999999Z')).toBe(true);
    expect(newerThan('2026-01-01T00:00:00.5Z', '2026-01-01T00:00:00.499999Z')).toBe(true);
    expect(newerThan('x', '')).toBe(true);
  });

  test('budget: pushes draw from their own burst first, then the polling bucket; both refill at perMinute', () => {
    let now = 0;
    const b = new CallBudget(1, 2, () => now, 3);
    expect([b.tryTake('push'), b.tryTake('push'), b.tryTake('push')]).toEqual([true, true, true]);
    expect(b.available()).toBe(2); // polling untouched
    expect(b.tryTake('push')).toBe(true); // then the polling bucket
    expect(b.tryTake('push')).toBe(true);
    expect(b.tryTake('push')).toBe(false);
    expect(b.waitMs('push')).toBe(60_000);
    now += 60_000;
    expect(b.pushAvailable()).toBe(1);
    expect(b.available()).toBe(1);
    expect(b.tryTake('poll')).toBe(true);
    expect(b.tryTake('poll')).toBe(false);
    expect(b.tryTake('push')).toBe(true);
    expect(b.pushUsed).toBe(4);
  });

  /** A clock the test moves by hand. */
  class FakeClock implements Clock {
    t = 1_000_000;
    private timers: Array<{ at: number; fn: () => void; id: object }> = [];
    now = (): number => this.t;
    setTimeout = (fn: () => void, ms: number): ClockTimer => {
      const id = {};
      this.timers.push({ at: this.t + ms, fn, id });
      return id as ClockTimer;
    };
    clearTimeout = (id: ClockTimer): void => {
      this.timers = this.timers.filter((x) => x.id !== id);
    };
    pending(): number[] {
      return this.timers.map((x) => x.at - this.t).sort((a, b) => a - b);
    }
    advance(ms: number): void {
      const end = this.t + ms;
      for (;;) {
        const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        this.timers = this.timers.filter((x) => x !== due);
        this.t = due.at;
        due.fn();
      }
      this.t = end;
    }
  }

  test('schedule, with an injected clock: polls at the interval, pushes at once or after the cycle in flight, a push cycle leaves the poll alone', () => {
    const clock = new FakeClock();
    const budget = new CallBudget(60, 4, clock.now, 10);
    const runs: Array<[CycleKind, string, number]> = [];
    const s = new Scheduler({
      refreshInterval: 60_000,
      jitter: 0,
      budget,
      clock,
      run: (kind, reason) => runs.push([kind, reason, clock.now()]),
    });
    const t0 = clock.now();
    s.poll();
    expect(clock.pending()).toEqual([60_000]);
    s.want('push', false); // idle: right away
    clock.advance(0);
    expect(runs).toEqual([['push', 'change stream', t0]]);
    s.afterCycle('push', { pending: false, again: false });
    expect(clock.pending()).toEqual([60_000]); // the poll timer was left as it was
    s.want('push', true); // busy: nothing yet...
    clock.advance(1000);
    expect(runs).toHaveLength(1);
    s.afterCycle('push', { pending: false, again: false }); // ...then right after the cycle in flight
    clock.advance(0);
    expect(runs[1][0]).toBe('push');
    clock.advance(60_000);
    expect(runs.map((r) => r[0])).toEqual(['push', 'push', 'poll']);
    s.afterCycle('forced', { pending: false, again: false });
    expect(clock.pending()).toEqual([60_000]); // a full cycle resets the poll
    // The push budget spent: a wanted push waits for it.
    while (budget.tryTake('push'));
    s.want('push', false);
    expect(clock.pending()[0]).toBe(budget.waitMs('push'));
    expect(budget.waitMs('push')).toBeGreaterThan(0);
    s.stop();
    expect(clock.pending()).toEqual([]);
  });

  test('announcements: newer than held only, patched into a held bootstrap, settled (confirm shortly, then give up)', () => {
    const clock = new FakeClock();
    let held: string | undefined = '2026-01-01T00:00:00.000001Z';
    const a = new Announcements(clock, (id) => (id === 'env' ? held : undefined));
    expect(a.announce([{ id: 'other', updatedAt: '2027-01-01T00:00:00Z' }])).toBe(false);
    expect(a.announce([{ id: 'env', updatedAt: held! }])).toBe(false);
    expect(a.announce([{ id: 'env', updatedAt: '2026-01-01T00:00:00.000002Z' }])).toBe(true);
    const boot = {
      apps: [{ environment_keys: [{ environment: { id: 'env', updated_at: held! } }] }],
    };
    expect(a.patch(boot).apps[0].environment_keys[0].environment.updated_at).toBe(
      '2026-01-01T00:00:00.000002Z',
    );
    expect(boot.apps[0].environment_keys[0].environment.updated_at).toBe(held); // not mutated
    // A bootstrap asked after the announcement still shows the older time: confirm after 250, 500, 1000 ms.
    const gaveUp: string[] = [];
    clock.advance(10);
    const asked = clock.now();
    expect([1, 2, 3].map(() => a.settle(asked, false, (id) => gaveUp.push(id)))).toEqual([250, 500, 1000]);
    expect(a.settle(asked, false, (id) => gaveUp.push(id))).toBe(0);
    expect(gaveUp).toEqual(['env']);
    // Once the data held is as new, the announcement is forgotten.
    a.announce([{ id: 'env', updatedAt: '2026-01-01T00:00:00.000003Z' }]);
    held = '2026-01-01T00:00:00.000003Z';
    expect(a.settle(undefined, false, () => undefined)).toBe(0);
    expect(a.has('env')).toBe(false);
  });

  test('scope state: named transitions keep it consistent', () => {
    const s = new ScopeState({ name: 's', app: 'a', env: 'e' } as never, new ViewCache());
    const view = buildView([{ scope: 's', app: 'a', environment: 'e', secrets: [] }]);
    s.resolved({ id: 'app1', name: 'a' }, { id: 'env1', name: 'e' });
    s.deferred();
    expect(s.pendingFetch).toBe(true);
    s.fetched({ id: 'env1', updatedAt: 't1' }, [], 'tok', 5);
    expect([s.pendingFetch, s.source, s.fetchedAt, s.raw?.envUpdatedAt]).toEqual([
      false,
      'upstream',
      5,
      't1',
    ]);
    s.confirmed(6);
    expect(s.materialised([], view)).toBeUndefined();
    expect(s.servable(6, 1000)).toBe(true);
    expect(s.changes).toBe(1);
    expect(s.failed({ code: 'x', message: 'down', at: 7 })).toBe(true);
    expect(s.failed({ code: 'x', message: 'down', at: 8 })).toBe(false);
    expect(s.stale()).toBe(true);
    s.confirmed(9);
    expect([s.stale(), s.lastError]).toEqual([false, undefined]);
    expect(s.closed({ code: 'token_rejected', message: 'revoked', at: 10 })).toBe(true);
    expect([s.raw, s.secrets, s.view, s.source, s.servable(10, 1000)]).toEqual([
      undefined,
      undefined,
      undefined,
      'none',
      false,
    ]);
    expect(s.closed({ code: 'login_failed', message: 'why', at: 10 })).toBe(false); // closed again: the latest reason
    expect(s.failClosed?.code).toBe('login_failed');
    s.fetched({ id: 'env1', updatedAt: 't2' }, [], 'tok2', 11);
    expect(s.failClosed).toBeUndefined(); // a new fetch reopens it
    s.restored(
      { envId: 'env1', envUpdatedAt: 't0', secrets: [], deps: [] },
      { confirmedAt: 1, fetchedAt: 1 },
      't',
    );
    expect(s.source).toBe('snapshot');
    s.dropped();
    expect([s.raw, s.source]).toEqual([undefined, 'none']);
  });
});
