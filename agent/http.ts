/**
 * The agent's HTTP surface (Express 5). Every secret response is a precomputed Buffer picked from the current
 * view; the handlers only choose headers. All endpoints are GET; see docs/agent.md for the contract.
 *
 *   GET /healthz                 process is up (no client token needed)
 *   GET /readyz                  every scope synced and within max-stale
 *   GET /v1/status               sync state, ages, upstream errors, budget and rate-limit state
 *   GET /metrics                 Prometheus
 *   GET /v1/secrets              {"KEY":"value",...}; ?metadata=true for full records; ?scope=<name>
 *   GET /v1/secrets/:key         the raw value as text/plain
 *   GET /v1/env?format=F         dotenv|json|yaml|shell|toml|csv
 *   GET /v1/watch                server-sent events on change (names only unless ?values=true)
 *   POST /v1/refresh             sync now (what SIGHUP does); answers when the sync is done
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { VERSION } from '../core/version';
import { RENDER_FORMATS, type AgentConfig, type RenderFormat } from './config';
import type { AgentMetrics } from './metrics';
import { readRequestHeaders, type RequestGuard } from './security';
import type { AuthStatus } from './token-source';
import type { ChangeEvent, SyncEngine } from './sync';
import type { Templates } from './templates';
import type { Body, View } from './views';

const JSON_TYPE = 'application/json; charset=utf-8';
const MAX_KEY = 256;
/** Open /v1/watch streams allowed at once (each holds a socket and a listener). */
const MAX_WATCHERS = 256;

const bool = z.enum(['true', 'false', '1', '0', '']).transform((v) => v === 'true' || v === '1');
const SecretsQuery = z.object({ scope: z.string().max(128).optional(), metadata: bool.optional() }).strict();
const KeyQuery = z.object({ scope: z.string().max(128).optional() }).strict();
const EnvQuery = z
  .object({ scope: z.string().max(128).optional(), format: z.enum(RENDER_FORMATS).default('dotenv') })
  .strict();
const WatchQuery = z.object({ scope: z.string().max(128).optional(), values: bool.optional() }).strict();
const NoQuery = z.object({}).strict();

type Query<T extends z.ZodTypeAny> = { ok: true; value: z.output<T> } | { ok: false; message: string };

/** Parses the query string strictly: unknown or repeated parameters are a 400, never ignored. */
function parseQuery<T extends z.ZodTypeAny>(url: string, schema: T): Query<T> {
  const q = url.indexOf('?');
  const obj: Record<string, string> = {};
  if (q >= 0) {
    let params: URLSearchParams;
    try {
      params = new URLSearchParams(url.slice(q + 1));
    } catch {
      return { ok: false, message: 'malformed query string' };
    }
    for (const [k, v] of params) {
      if (k in obj)
        return { ok: false, message: `query parameter ${JSON.stringify(k.slice(0, 64))} is repeated` };
      obj[k] = v;
    }
  }
  const r = schema.safeParse(obj);
  if (r.success) return { ok: true, value: r.data };
  const i = r.error.issues[0];
  if (i.code === 'unrecognized_keys')
    return {
      ok: false,
      message: `unknown query parameter(s): ${i.keys.map((k) => JSON.stringify(k.slice(0, 64))).join(', ')}`,
    };
  return { ok: false, message: `query parameter ${i.path.join('.')}: ${i.message}` };
}

/** The request's If-None-Match (the Express routes; the fast path reads it with the guard's headers). */
const inm = (req: IncomingMessage): string | undefined => {
  const v = req.headers['if-none-match'];
  return typeof v === 'string' ? v : undefined;
};

function sendJson(res: ServerResponse, status: number, obj: unknown, extra?: Record<string, string>): void {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'Content-Type': JSON_TYPE,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(body);
}

export interface HttpDeps {
  cfg: AgentConfig;
  engine: SyncEngine;
  guard: RequestGuard;
  metrics: AgentMetrics;
  startedAt: number;
  /** Open watch streams, closed on shutdown. */
  streams: Set<ServerResponse>;
  /** Rendered templates, for /v1/status. */
  templates?: Templates;
  /** How the agent authenticates, for /v1/status (a token, a token file, or a login and its state). */
  auth?: () => AuthStatus;
}

/** What a view request resolves to: a view with its cache state, or a reason it is unavailable. */
type Resolved =
  | { ok: true; view: View; stale: boolean; age: number }
  | { ok: false; status: number; message: string; scopes?: unknown };

/** The shared serving logic: view resolution, cache headers and counters (used by Express and the fast path). */
function makeServing(d: HttpDeps) {
  const { cfg, engine, metrics } = d;
  const hit = {
    secrets: metrics.requestCounter('secrets', 'hit'),
    secretsStale: metrics.requestCounter('secrets', 'stale'),
    key: metrics.requestCounter('key', 'hit'),
    keyStale: metrics.requestCounter('key', 'stale'),
    env: metrics.requestCounter('env', 'hit'),
    envStale: metrics.requestCounter('env', 'stale'),
    notModified: metrics.requestCounter('any', 'not_modified'),
    unavailable: metrics.requestCounter('any', 'unavailable'),
    miss: metrics.requestCounter('key', 'miss'),
  };

  const waitFirst = async (): Promise<void> => {
    if (engine.cycles > 0 || cfg.firstSyncWait === 0) return;
    // Concurrent requests before the first sync all wait on the same cycle (single-flight).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      engine.firstSync,
      new Promise<void>((r) => (timer = setTimeout(r, cfg.firstSyncWait))),
    ]);
    if (timer) clearTimeout(timer);
  };

  const resolve = (scopeName: string | undefined): Resolved => {
    const now = Date.now();
    if (scopeName !== undefined) {
      const s = engine.scope(scopeName);
      if (!s)
        return {
          ok: false,
          status: 404,
          message: `no scope named ${JSON.stringify(scopeName)}; see /v1/status`,
        };
      const view = s.servableView(now, cfg.maxStale);
      if (!view) return { ok: false, status: 503, message: unavailableReason(s, now), scopes: [scopeName] };
      return {
        ok: true,
        view,
        stale: s.stale(),
        age: Math.floor((now - s.confirmedAt) / 1000),
      };
    }
    const view = engine.mergedView(now);
    if (!view) {
      const down = engine.scopes.filter((s) => !s.servable(now, cfg.maxStale));
      return {
        ok: false,
        status: 503,
        message: down.map((s) => `${s.name}: ${unavailableReason(s, now)}`).join('; '),
        scopes: down.map((s) => s.name),
      };
    }
    let stale = false;
    let oldest = now;
    for (const s of engine.scopes) {
      stale ||= s.stale();
      oldest = Math.min(oldest, s.confirmedAt);
    }
    return { ok: true, view, stale, age: Math.floor((now - oldest) / 1000) };
  };

  const unavailableReason = (
    s: {
      failClosed?: { message: string };
      view?: View;
      confirmedAt: number;
      lastError?: { message: string };
    },
    now: number,
  ): string => {
    if (s.failClosed) return `not serving: ${s.failClosed.message}`;
    if (!s.view) return s.lastError ? `not synced yet: ${s.lastError.message}` : 'not synced yet';
    return `data is ${Math.floor((now - s.confirmedAt) / 1000)} s old, beyond max-stale (${Math.floor(cfg.maxStale / 1000)} s)${s.lastError ? `; last error: ${s.lastError.message}` : ''}`;
  };

  /** Writes a precomputed body with ETag/304, X-Cache and Age. */
  const sendBody = (
    ifNoneMatch: string | undefined,
    res: ServerResponse,
    b: Body,
    r: { stale: boolean; age: number },
    counter: { inc(): void },
  ): void => {
    const cache = r.stale ? 'STALE' : 'HIT';
    if (b.status === 200 && ifNoneMatch === b.etag) {
      hit.notModified.inc();
      res.writeHead(304, { ETag: b.etag, 'X-Cache': cache, Age: String(r.age), 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    counter.inc();
    res.writeHead(b.status, {
      'Content-Type': b.contentType,
      'Content-Length': b.body.length,
      ETag: b.etag,
      'X-Cache': cache,
      Age: String(r.age),
      'Cache-Control': 'no-store',
    });
    res.end(b.body);
  };

  const unavailable = (res: ServerResponse, r: Extract<Resolved, { ok: false }>): void => {
    hit.unavailable.inc();
    sendJson(
      res,
      r.status,
      { error: r.message, ...(r.scopes ? { scopes: r.scopes } : {}) },
      r.status === 503
        ? { 'Retry-After': String(Math.max(1, Math.ceil(cfg.refreshInterval / 1000))) }
        : undefined,
    );
  };

  return { hit, waitFirst, resolve, sendBody, unavailable, unavailableReason };
}

export function buildApp(d: HttpDeps, serving = makeServing(d)): Express {
  const { cfg, engine, guard, metrics } = d;
  const { hit, waitFirst, resolve, sendBody, unavailable, unavailableReason } = serving;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  // Security first: nothing, not even a 404, is answered to a refused request.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const url = req.url;
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    const refusal = guard.check(req, path);
    if (refusal) return guard.refuse(res, refusal);
    next();
  });

  app.get('/healthz', (_req, res) => sendJson(res, 200, { status: 'ok', version: VERSION }));

  app.get('/readyz', async (req, res) => {
    const q = parseQuery(req.url, NoQuery);
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    await waitFirst();
    const now = Date.now();
    const down = engine.scopes.filter((s) => !s.servable(now, cfg.maxStale));
    if (down.length === 0) return sendJson(res, 200, { status: 'ready' });
    sendJson(res, 503, {
      status: 'not_ready',
      scopes: down.map((s) => ({ name: s.name, reason: unavailableReason(s, now) })),
    });
  });

  app.get('/v1/status', (req, res) => {
    const q = parseQuery(req.url, NoQuery);
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    sendJson(res, 200, status(d));
  });

  app.get('/metrics', async (req, res) => {
    const q = parseQuery(req.url, NoQuery);
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store' });
    res.end(text);
  });

  app.get('/v1/secrets', async (req, res) => {
    const q: Query<typeof SecretsQuery> =
      req.url.length > 11 ? parseQuery(req.url, SecretsQuery) : { ok: true, value: {} };
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    let r = resolve(q.value.scope);
    if (!r.ok && r.status === 503 && engine.cycles === 0) {
      await waitFirst();
      r = resolve(q.value.scope);
    }
    if (!r.ok) return unavailable(res, r);
    sendBody(
      inm(req),
      res,
      q.value.metadata ? r.view.secretsMeta : r.view.secrets,
      r,
      r.stale ? hit.secretsStale : hit.secrets,
    );
  });

  app.get('/v1/secrets/:key', async (req, res) => {
    const key = req.params.key;
    const q: Query<typeof KeyQuery> =
      req.url.indexOf('?') >= 0 ? parseQuery(req.url, KeyQuery) : { ok: true, value: {} };
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    if (key.length === 0 || key.length > MAX_KEY)
      return sendJson(res, 400, { error: `a key is 1-${MAX_KEY} characters` });
    let r = resolve(q.value.scope);
    if (!r.ok && r.status === 503 && engine.cycles === 0) {
      await waitFirst();
      r = resolve(q.value.scope);
    }
    if (!r.ok) return unavailable(res, r);
    const b = r.view.keys.get(key) ?? r.view.keys.get(key.toUpperCase());
    if (!b) {
      hit.miss.inc();
      return sendJson(
        res,
        404,
        {
          error: `no secret named ${JSON.stringify(key)} in ${q.value.scope ? `scope ${q.value.scope}` : 'any scope'}`,
        },
        { 'X-Cache': r.stale ? 'STALE' : 'HIT', Age: String(r.age) },
      );
    }
    sendBody(inm(req), res, b, r, r.stale ? hit.keyStale : hit.key);
  });

  app.get('/v1/env', async (req, res) => {
    const q = parseQuery(req.url, EnvQuery);
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    let r = resolve(q.value.scope);
    if (!r.ok && r.status === 503 && engine.cycles === 0) {
      await waitFirst();
      r = resolve(q.value.scope);
    }
    if (!r.ok) return unavailable(res, r);
    sendBody(inm(req), res, r.view.env(q.value.format as RenderFormat), r, r.stale ? hit.envStale : hit.env);
  });

  app.get('/v1/watch', (req, res) => {
    const q = parseQuery(req.url, WatchQuery);
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    const scopeName = q.value.scope;
    if (scopeName !== undefined && !engine.scope(scopeName))
      return sendJson(res, 404, { error: `no scope named ${JSON.stringify(scopeName)}; see /v1/status` });
    if (d.streams.size >= MAX_WATCHERS)
      return sendJson(
        res,
        503,
        { error: `too many open watch streams (${MAX_WATCHERS}); close some or poll with If-None-Match` },
        { 'Retry-After': '5' },
      );
    const withValues = q.value.values === true;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    let seq = 0;
    // A stream ended by shutdown or closed by the client is never written again (a write after end would be an
    // unhandled 'error' event).
    const open = (): boolean => !res.writableEnded && !res.destroyed;
    res.on('error', () => undefined);
    const write = (event: string, data: unknown): void => {
      if (open()) res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const now = Date.now();
    write('hello', {
      scopes: engine.scopes
        .filter((s) => !scopeName || s.name === scopeName)
        .map((s) => ({ scope: s.name, etag: s.view?.etag ?? null, serving: s.servable(now, cfg.maxStale) })),
    });
    const onChange = (e: ChangeEvent): void => {
      if (scopeName && e.scope !== scopeName) return;
      if (withValues && e.kind === 'updated') {
        const s = engine.scope(e.scope);
        const values: Record<string, string> = {};
        for (const k of [...e.added, ...e.changed]) {
          const v = s?.view?.byKey.get(k);
          if (v) values[k] = v.value;
        }
        write('change', { ...e, values });
      } else write('change', e);
    };
    engine.on('change', onChange);
    const beat = setInterval(() => {
      if (open()) res.write(': keep-alive\n\n');
    }, 15_000);
    beat.unref();
    d.streams.add(res);
    metrics.watchers.inc();
    const done = (): void => {
      clearInterval(beat);
      engine.off('change', onChange);
      if (d.streams.delete(res)) metrics.watchers.dec();
    };
    res.on('close', done);
    req.on('close', done);
  });

  app.post('/v1/refresh', async (req, res) => {
    const q = parseQuery(req.url, NoQuery);
    if (!q.ok) return sendJson(res, 400, { error: q.message });
    const r = await engine.refresh('POST /v1/refresh');
    const now = Date.now();
    const body = {
      status: r.ok ? 'synced' : r.deferred ? 'deferred' : 'failed',
      ms: r.ms,
      ...(r.deferred ? { retryAfterSeconds: Math.ceil(engine.budget.waitMs('push') / 1000) } : {}),
      scopes: engine.scopes.map((s) => ({
        name: s.name,
        serving: s.servable(now, cfg.maxStale),
        etag: s.view?.etag ?? null,
        error: s.failClosed?.message ?? s.lastError?.message ?? null,
      })),
      ...(engine.lastCycleError ? { error: engine.lastCycleError.message } : {}),
    };
    sendJson(
      res,
      r.ok ? 200 : 503,
      body,
      r.deferred ? { 'Retry-After': String(Math.max(1, body.retryAfterSeconds ?? 1)) } : undefined,
    );
  });

  app.use((req: Request, res: Response) => {
    sendJson(res, 404, { error: `no such endpoint: ${req.path.slice(0, 128)}; see docs/agent.md` });
  });

  // Nothing reaches a client as a 500 with internals: malformed input surfaces here as a 4xx.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status =
      (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (status && status >= 400 && status < 500) return sendJson(res, status, { error: 'malformed request' });
    sendJson(res, 500, { error: 'internal error' });
  });

  return app;
}

/** The upstream change stream's state: `off` (push disabled), `connected`, `down` or `unsupported` (no stream upstream). */
function changeStreamStatus(engine: SyncEngine, iso: (t: number) => string | null): Record<string, unknown> {
  const st = engine.stream;
  if (!st) return { state: 'off' };
  return {
    state: st.state,
    connects: st.connects,
    events: st.events,
    lastEventAt: iso(st.lastEventAt),
    lastError: st.lastError ?? null,
    nextAttemptAt: st.state === 'connected' ? null : iso(st.nextAttemptAt),
  };
}

/**
 * `auth` in /v1/status: the method, `state` (`ok`, `pending`, `refused`, `error`), the latest failure's `reason`, when
 * the token expires, whether a valid one is held; for logins also the account, the number of logins, the last one
 * and the next attempt. Never a token, a JWT or a credential.
 */
function authStatus(a: AuthStatus, iso: (t: number) => string | null): Record<string, unknown> {
  return {
    method: a.method,
    state: a.state,
    reason: a.reason,
    expiresAt: a.expiresAt === null ? null : iso(a.expiresAt),
    validToken: a.validToken,
    ...(a.accountId !== undefined
      ? {
          accountId: a.accountId,
          logins: a.logins ?? 0,
          lastLoginAt: a.lastLoginAt ? iso(a.lastLoginAt) : null,
          nextLoginAt: a.nextLoginAt ? iso(a.nextLoginAt) : null,
        }
      : {}),
    ...(a.jwtFile !== undefined ? { jwtFile: a.jwtFile } : {}),
    ...(a.credentials !== undefined ? { credentials: a.credentials } : {}),
  };
}

/** The /v1/status document: no values, no tokens. */
export function status(d: HttpDeps): Record<string, unknown> {
  const { cfg, engine } = d;
  const now = Date.now();
  const iso = (t: number): string | null => (t ? new Date(t).toISOString() : null);
  const auth = d.auth?.();
  const b = engine.budget;
  return {
    version: VERSION,
    ready: engine.ready(now),
    uptimeSeconds: Math.floor((now - d.startedAt) / 1000),
    // No token yet (a login that has not succeeded): nothing to describe.
    token:
      auth && auth.method !== 'token' && auth.method !== 'token-file' && auth.expiresAt === null
        ? null
        : engine.tokenInfo(),
    auth: auth ? authStatus(auth, iso) : null,
    upstream: {
      host: cfg.host,
      lastCycleAt: iso(engine.lastCycleAt),
      lastError: engine.lastCycleError
        ? {
            code: engine.lastCycleError.code,
            message: engine.lastCycleError.message,
            at: iso(engine.lastCycleError.at),
          }
        : null,
      refreshIntervalSeconds: cfg.refreshInterval / 1000,
      maxStaleSeconds: cfg.maxStale / 1000,
      budget: {
        perMinute: b.perMinute,
        burst: b.burst,
        available: Math.floor(b.available() * 100) / 100,
        callsMade: b.used,
        callsDeferred: b.deferred,
        pushBurst: b.pushBurst,
        pushAvailable: Math.floor(b.pushAvailable() * 100) / 100,
        pushCallsMade: b.pushUsed,
      },
      changeStream: changeStreamStatus(engine, iso),
      cycles: { ...engine.kinds },
      rateLimit: {
        limited: b.rateLimitedUntil > now,
        until: b.rateLimitedUntil > now ? iso(b.rateLimitedUntil) : null,
      },
      lastFetchCycleMs: Math.round(engine.lastFetchCycleMs),
    },
    cache: engine.cache.stats(),
    templates: d.templates?.statuses() ?? [],
    ...(d.templates?.execRuns || d.templates?.lastExec
      ? { execOnChange: { runs: d.templates.execRuns, last: d.templates.lastExec ?? null } }
      : {}),
    scopes: engine.scopes.map((s) => {
      const serving = s.servable(now, cfg.maxStale);
      return {
        name: s.name,
        app: s.appName ?? s.cfg.app ?? null,
        appId: s.appId ?? s.cfg.appId ?? null,
        env: s.envName ?? s.cfg.env,
        envId: s.envId ?? null,
        path: s.cfg.path ?? null,
        tags: s.cfg.tags ?? [],
        serving,
        cache: serving ? (s.stale() ? 'STALE' : 'HIT') : 'UNAVAILABLE',
        source: s.source,
        secrets: s.view?.count ?? 0,
        etag: s.view?.etag ?? null,
        ageSeconds: s.confirmedAt ? Math.floor((now - s.confirmedAt) / 1000) : null,
        lastSyncAt: iso(s.lastSyncAt),
        fetchedAt: iso(s.fetchedAt),
        environmentUpdatedAt: s.raw?.envUpdatedAt ?? null,
        changes: s.changes,
        lastError: s.lastError
          ? { code: s.lastError.code, message: s.lastError.message, at: iso(s.lastError.at) }
          : null,
        failClosed: s.failClosed
          ? { code: s.failClosed.code, message: s.failClosed.message, at: iso(s.failClosed.at) }
          : null,
      };
    }),
  };
}

/**
 * The request listener: the two hottest reads (`GET /v1/secrets` and `GET /v1/secrets/:key` without a query
 * string) are answered before Express's router, with the same security checks and the same serving code; every
 * other request, and anything unusual about these two, goes through the Express app.
 */
export function createRequestHandler(d: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const serving = makeServing(d);
  const app = buildApp(d, serving);
  const { guard, engine } = d;
  const { hit, resolve, sendBody } = serving;
  return (req, res) => {
    const url = req.url ?? '/';
    if (
      req.method !== 'GET' ||
      engine.cycles === 0 ||
      url.indexOf('?') >= 0 ||
      !url.startsWith('/v1/secrets')
    ) {
      app(req, res);
      return;
    }
    let key: string | undefined;
    if (url.length === 11) key = undefined;
    else if (
      url.charCodeAt(11) === 47 /* / */ &&
      url.length > 12 &&
      url.length <= 12 + MAX_KEY &&
      url.indexOf('/', 12) < 0 &&
      url.indexOf('%') < 0
    )
      key = url.slice(12);
    else {
      app(req, res);
      return;
    }
    const h = readRequestHeaders(req.rawHeaders);
    const refusal = guard.check(req, url, h);
    if (refusal) return guard.refuse(res, refusal);
    const r = resolve(undefined);
    if (!r.ok) {
      app(req, res); // the Express route formats the 503 (and re-checks, harmlessly)
      return;
    }
    if (key === undefined)
      return sendBody(h.ifNoneMatch, res, r.view.secrets, r, r.stale ? hit.secretsStale : hit.secrets);
    const b = r.view.keys.get(key) ?? r.view.keys.get(key.toUpperCase());
    if (!b) {
      app(req, res);
      return;
    }
    sendBody(h.ifNoneMatch, res, b, r, r.stale ? hit.keyStale : hit.key);
  };
}
