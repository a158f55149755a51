/**
 * The change stream (issue 14, extension `GET /service/secrets/events/`): Server-Sent Events that carry only ids and
 * `updated_at` of environments the token can read, across server processes on PostgreSQL (LISTEN/NOTIFY) and within
 * one on SQLite; heartbeats re-check the token and the access. Real servers, real HTTP streams.
 */
import { authorizationHeader } from '../../core/token';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, type Call } from './helpers';

interface Sse {
  events: Array<{ event: string; data: any }>;
  /** Resolves with the first event (after `from`) that matches. */
  next(
    match: (e: { event: string; data: any }) => boolean,
    ms?: number,
    from?: number,
  ): Promise<{ event: string; data: any }>;
  close(): void;
  raw(): string;
}

async function openStream(url: string, token: string): Promise<Sse> {
  const ac = new AbortController();
  const res = await fetch(`${url}/service/secrets/events/`, {
    headers: { Authorization: authorizationHeader(token) },
    signal: ac.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const events: Array<{ event: string; data: any }> = [];
  let text = '';
  let buf = '';
  const waiters: Array<() => void> = [];
  void (async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = dec.decode(value, { stream: true });
        text += chunk;
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (ev) events.push({ event: ev, data: data ? JSON.parse(data) : undefined });
          waiters.splice(0).forEach((w) => w());
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    raw: () => text,
    close: () => ac.abort(),
    next: (match, ms = 10_000, from = 0) =>
      new Promise((resolve, reject) => {
        const deadline = setTimeout(
          () => reject(new Error(`no matching event within ${ms} ms: ${JSON.stringify(events)}`)),
          ms,
        );
        const check = () => {
          const hit = events.slice(from).find(match);
          if (hit) {
            clearTimeout(deadline);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      }),
  };
}

describe.each(STORES)('change stream (%s)', (store) => {
  // `srv` heartbeats once a minute, so a change it announces within the test came through the notice path; `beat`
  // (same database) heartbeats every 300 ms, for what only heartbeats report (access changes, revoked tokens).
  let srv: TestServer;
  let beat: TestServer;
  let owner: Call;
  let app: { id: string };
  let envs: Record<string, { id: string }>;
  let sa: { id: string; token: string };
  const streams: Sse[] = [];

  beforeAll(async () => {
    srv = await startTestServer({ store, changeStreamHeartbeatMs: 60_000 });
    beat = await startTestServer({
      store,
      database: srv.database,
      serverSecret: srv.serverSecret,
      ownerToken: srv.ownerToken,
      changeStreamHeartbeatMs: 300,
    });
    owner = caller(srv, srv.ownerToken);
    ({ app, envs } = await createApp(owner));
    sa = await createSa(owner, 'watcher');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id] }],
    });
  });

  afterAll(async () => {
    streams.forEach((s) => s.close());
    await beat?.close();
    await srv?.close();
  });

  test('hello lists only the environments the token can read; a write is announced with ids and times only', async () => {
    const s = await openStream(srv.url, sa.token);
    streams.push(s);
    const hello = await s.next((e) => e.event === 'hello');
    expect(hello.data.environments.map((e: { id: string }) => e.id)).toEqual([envs.Development.id]);
    const before = hello.data.environments[0].updatedAt as string;

    const mark = s.events.length;
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Production`, {
      secrets: [{ key: 'HIDDEN', value: 'x' }],
    });
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
      secrets: [{ key: 'SEEN', value: 'v' }],
    });
    const change = await s.next((e) => e.event === 'change', 10_000, mark);
    expect(change.data).toEqual({ id: envs.Development.id, updatedAt: expect.any(String) });
    expect(change.data.updatedAt > before).toBe(true);
    // What the stream carried never names a secret, a value, or an environment the token cannot read.
    expect(s.raw()).not.toContain('SEEN');
    expect(s.raw()).not.toContain(envs.Production.id);
    const seen = await caller(srv, sa.token)('GET', `/v1/secrets/?app_id=${app.id}&env=Development`);
    expect(seen.body.map((x: { key: string }) => x.key)).toContain('SEEN');
  });

  test('access granted later is announced on the next heartbeat; revoked access is "removed"', async () => {
    const s = await openStream(beat.url, sa.token);
    streams.push(s);
    await s.next((e) => e.event === 'hello');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id, envs.Staging.id] }],
    });
    await s.next((e) => e.event === 'change' && e.data.id === envs.Staging.id);
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id] }],
    });
    await s.next((e) => e.event === 'removed' && e.data.id === envs.Staging.id);
  });

  test('a revoked token ends its stream', async () => {
    const t = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'short' });
    const s = await openStream(beat.url, t.body.token);
    streams.push(s);
    await s.next((e) => e.event === 'hello');
    await owner('DELETE', `/v1/service-accounts/${sa.id}/tokens/${t.body.id}/`);
    await s.next((e) => e.event === 'revoked');
  });

  test('bad credentials get the E2E answers, never a stream', async () => {
    const r = await fetch(`${srv.url}/service/secrets/events/`);
    expect(r.status).toBe(401);
    const bad = await fetch(`${srv.url}/service/secrets/events/`, {
      headers: { Authorization: `Bearer ServiceAccount ${'0'.repeat(64)}` },
    });
    expect(bad.status).toBe(401);
  });

  if (store === 'postgres') {
    test('a write through one server process is announced by another (LISTEN/NOTIFY)', async () => {
      const other = await startTestServer({
        store,
        database: srv.database,
        serverSecret: srv.serverSecret,
        ownerToken: srv.ownerToken,
      });
      try {
        const s = await openStream(other.url, sa.token);
        streams.push(s);
        await s.next((e) => e.event === 'hello');
        const mark = s.events.length;
        await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
          secrets: [{ key: 'CROSS', value: '1' }],
        });
        const change = await s.next((e) => e.event === 'change', 10_000, mark);
        expect(change.data.id).toBe(envs.Development.id);
        s.close();
      } finally {
        await other.close();
      }
    });
  }
});
