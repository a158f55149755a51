/**
 * The sync engine: bootstrap, compare each environment's `updated_at`, fetch only what changed, decrypt once,
 * resolve references, rebuild the precomputed views. Single-flight (one cycle at a time; concurrent callers share
 * it), background refresh with jitter, every upstream HTTP call charged to the call budget, 429 honoured, and
 * fail-closed when the upstream rejects the token.
 */
import { EventEmitter } from 'node:events';
import { ApiError, NetworkError } from '../core/api-errors';
import { PhaseClient } from '../core/client';
import { nodeTransport, type Transport } from '../core/http';
import type { BootstrapResponse, EncryptedSecret } from '../core/schemas';
import { CryptoError } from '../core/errors';
import {
  ReferenceResolver,
  type LocalSecret,
  type ReferenceTarget,
  type ReferenceResolutionError,
} from '../core/references';
import type { PssToken } from '../core/token';
import { CallBudget, type CallKind } from './budget';
import type { ChangeStream, StreamEnv } from './change-stream';
import { systemClock, type Clock, type ClockTimer } from './clock';
import type { AgentConfig } from './config';
import { KeyRing, decryptSecrets, type PlainMemo, type PlainSecret } from './decrypt';
import { ScopeResolutionError } from './errors';
import type { Logger } from './logger';
import type { AgentMetrics } from './metrics';
import { matchScope, ScopeState, type DependencyData, type ScopeProblem } from './scope';
import type { TokenSource } from './token-source';
import { buildView, diffViews, type View } from './views';
import { ViewCache } from './cache';
import { readSnapshot, writeSnapshot, removeSnapshot, type Snapshot } from './snapshot';
import { VERSION } from '../core/version';

/** What /v1/watch streams and `run` reacts to. Carries key names only. */
export interface ChangeEvent {
  scope: string;
  etag: string | null;
  kind: 'updated' | 'unavailable';
  added: string[];
  changed: string[];
  removed: string[];
  reason?: string;
  at: string;
}

export interface EngineEvents {
  change: [ChangeEvent];
  synced: [];
}

/** Builds the upstream client for a token; tests and benchmarks may count or slow calls through the transport. */
export type ClientFactory = (token: string, transport: Transport) => PhaseClient;

const defaultClientFactory =
  (cfg: AgentConfig): ClientFactory =>
  (token, transport) =>
    new PhaseClient({
      host: cfg.host,
      token,
      retries: 0, // the next cycle is the retry: every call stays inside the budget
      timeoutMs: cfg.upstreamTimeout,
      transport,
      userAgent: `phase-bridge-agent/${VERSION}`,
    });

/**
 * core's `node:http(s)` transport with certificate checks on, rather than global fetch: fetch loads Node's bundled
 * undici on first use, which alone costs the agent several MB of resident memory (its code and heap), for nothing
 * the agent needs (one request at a time, keep-alive comes with Node's global agent).
 */
const upstreamTransport = nodeTransport({ rejectUnauthorized: true });

/** Secrets decrypted between two yields to the event loop during a sync. */
const DECRYPT_CHUNK = 100;

/**
 * What started a cycle. `poll`: the refresh timer, start-up, a token rotation (a bootstrap, charged to the polling
 * budget). `push`: the change stream announced a newer `updated_at` (no bootstrap when one with the current token is
 * held: the announced time stands in for it, so one call per changed scope, charged to the push bucket first).
 * `forced`: SIGHUP, `POST /v1/refresh`, a revocation or removal the stream reported (a bootstrap, push bucket first).
 */
export type CycleKind = 'poll' | 'push' | 'forced';

/** Retries of a bootstrap that reports an environment older than the stream announced ("sync again shortly"). */
const CONFIRM_TRIES = 3;
const CONFIRM_BASE_MS = 250;

/** True when `updated_at` value a is strictly later than b (microsecond ISO times; '' is older than anything). */
export function newerThan(a: string, b: string | undefined): boolean {
  if (!b) return !!a;
  if (a === b) return false;
  const sec = (x: string): number => Math.floor(Date.parse(x) / 1000);
  const frac = (x: string): string => (/\.(\d+)/.exec(x)?.[1] ?? '').padEnd(9, '0');
  const sa = sec(a);
  const sb = sec(b);
  if (Number.isNaN(sa) || Number.isNaN(sb)) return a > b;
  return sa !== sb ? sa > sb : frac(a) > frac(b);
}

function problem(code: string, message: string): ScopeProblem {
  return { code, message, at: Date.now() };
}

export class SyncEngine extends EventEmitter<EngineEvents> {
  readonly scopes: ScopeState[];
  readonly budget: CallBudget;
  private client: PhaseClient;
  private readonly keyring = new KeyRing();
  /** Plaintext by ciphertext per scope/environment, from the latest sync (see PlainMemo). */
  private readonly memos = new Map<string, Map<string, string>>();
  /** Duration of the latest cycle that downloaded something, in ms (for /v1/status and the benchmark). */
  lastFetchCycleMs = 0;
  /** Phase timings of the latest sync work, in ms (logged with each synced scope). */
  readonly timings = { bootstrapMs: 0, fetchMs: 0, decryptOnlyMs: 0, decryptMs: 0, viewsMs: 0 };
  private inflight: Promise<void> | undefined;
  /** Set when the token rotated during a cycle: sync again as soon as the budget allows. */
  private rerun = false;
  private timer: ClockTimer | undefined;
  /** A push (or forced) cycle waiting for the budget, or for the cycle in flight. */
  private pushTimer: ClockTimer | undefined;
  private next: { push: boolean; forced: boolean } = { push: false, forced: false };
  /**
   * Newer `updated_at` values the change stream announced for environments held here (scopes and the targets of
   * their references), with when they arrived; dropped once the data held is at least as new.
   */
  private readonly announced = new Map<string, { updatedAt: string; at: number; tries: number }>();
  /** The upstream change stream, when subscribed (for /v1/status). */
  stream?: ChangeStream;
  /** Cycles by kind (for /v1/status). */
  readonly kinds = { poll: 0, push: 0, forced: 0 };
  /** The budget bucket the cycle in flight charges. */
  private bucket: CallKind = 'poll';
  private stopped = false;
  private lastBoot: { boot: BootstrapResponse; at: number; token: string } | undefined;
  /** node-cache holding every precomputed view (per scope, and the merge). */
  readonly cache = new ViewCache();
  private mergedDirty = true;
  /** Epoch ms of the last finished cycle, whatever its outcome. */
  lastCycleAt = 0;
  lastCycleError?: ScopeProblem;
  cycles = 0;
  /** Scope materialisations (decrypt + resolve + views) so far: what allocates, so what memory upkeep follows. */
  materialisations = 0;
  firstSync: Promise<void>;
  private resolveFirst!: () => void;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
    private readonly metrics: AgentMetrics,
    private readonly clientFactory: ClientFactory = defaultClientFactory(cfg),
    private readonly clock: Clock = systemClock,
  ) {
    super();
    this.setMaxListeners(0);
    this.scopes = cfg.scopes.map((s) => new ScopeState(s, this.cache));
    const n = this.scopes.length;
    this.budget = new CallBudget(
      cfg.budgetPerMinute * n,
      cfg.budgetBurst * n,
      () => this.clock.now(),
      cfg.budgetPushBurst * n, // pushed syncs and requested refreshes (also without push)
    );
    this.client = this.makeClient();
    this.firstSync = new Promise((r) => (this.resolveFirst = r));
    tokens.on('rotated', () => {
      this.client = this.makeClient();
      this.keyring.clear();
      this.lastBoot = undefined;
      // A forced cycle (the push bucket first, then the polling one): the new token is used at once, not when the
      // polling budget next allows (a second rotation within a minute used to wait for it). A cycle in flight still
      // runs with the old token: this one runs right after it.
      void this.sync('token rotated', 'forced');
    });
  }

  private makeClient(): PhaseClient {
    const transport: Transport = async (req, timeoutMs) => {
      const call = req.path.endsWith('/tokens/') ? 'bootstrap' : 'secrets';
      const end = this.metrics.upstreamLatency.startTimer({ call });
      try {
        const res = await upstreamTransport(req, timeoutMs);
        this.metrics.upstreamCalls.inc({ call, outcome: String(res.status) });
        return res;
      } catch (err) {
        this.metrics.upstreamCalls.inc({ call, outcome: 'network_error' });
        throw err;
      } finally {
        end();
      }
    };
    return this.clientFactory(this.tokens.raw, transport);
  }

  // ---- serving side ----

  scope(name: string): ScopeState | undefined {
    return this.scopes.find((s) => s.name === name);
  }

  /** The merged view over every scope, or undefined when any scope is not servable. */
  mergedView(now = Date.now()): View | undefined {
    if (!this.scopes.every((s) => s.servable(now, this.cfg.maxStale))) return undefined;
    if (this.scopes.length === 1) return this.scopes[0].view;
    let merged = this.cache.get('merged');
    if (this.mergedDirty || !merged) {
      merged = buildView(
        this.scopes.map((s) => ({
          scope: s.name,
          app: s.appName ?? '',
          environment: s.envName ?? '',
          secrets: s.secrets ?? [],
        })),
      );
      this.cache.set('merged', merged);
      this.mergedDirty = false;
    }
    return merged;
  }

  ready(now = Date.now()): boolean {
    return this.scopes.every((s) => s.servable(now, this.cfg.maxStale));
  }

  // ---- lifecycle ----

  /** Loads the snapshot (if any), then starts the refresh loop with an immediate first sync. */
  async start(): Promise<void> {
    if (this.cfg.snapshot) await this.loadSnapshot();
    void this.sync('start');
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    if (this.pushTimer) this.clock.clearTimeout(this.pushTimer);
    this.timer = undefined;
    this.pushTimer = undefined;
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    const base = this.cfg.refreshInterval;
    const jitter = base * this.cfg.jitter * (2 * Math.random() - 1);
    let wait = delayMs ?? base + jitter;
    // Never wake before the budget allows a call; a wake-up that cannot call would only burn a cycle.
    wait = Math.max(wait, this.budget.waitMs());
    this.timer = this.clock.setTimeout(() => void this.sync('refresh'), Math.max(10, Math.round(wait)));
  }

  /** Runs a push or forced cycle after `delayMs` (or the budget's wait, whichever is longer). */
  private schedulePush(delayMs = 0): void {
    if (this.stopped) return;
    if (this.pushTimer) this.clock.clearTimeout(this.pushTimer);
    const wait = Math.max(delayMs, this.budget.waitMs('push'));
    this.pushTimer = this.clock.setTimeout(() => {
      this.pushTimer = undefined;
      const forced = this.next.forced;
      const push = this.next.push;
      this.next = { push: false, forced: false };
      if (forced) void this.sync('confirm', 'forced');
      else if (push) void this.sync('change stream', 'push');
    }, Math.round(wait));
  }

  // ---- push: what the change stream reports ----

  /** Subscribes the engine to an upstream change stream (agent/change-stream.ts). */
  attachStream(stream: ChangeStream): void {
    this.stream = stream;
    stream.on('hello', (envs) => this.announce(envs));
    stream.on('change', (env) => this.announce([env]));
    stream.on('removed', ({ id }) => {
      if (this.heldUpdatedAt(id) !== undefined) this.requestCycle('forced');
    });
    stream.on('revoked', () => this.requestCycle('forced'));
  }

  /** The oldest `updated_at` held for an environment (a scope's, or a reference target's); undefined if none. */
  private heldUpdatedAt(envId: string): string | undefined {
    let held: string | undefined;
    const take = (v: string): void => {
      if (held === undefined || newerThan(held, v)) held = v;
    };
    for (const s of this.scopes) {
      if (!s.raw || s.failClosed) continue;
      if (s.raw.envId === envId) take(s.raw.envUpdatedAt);
      for (const d of s.raw.deps) if (d.envId === envId) take(d.updatedAt);
    }
    return held;
  }

  /**
   * The change stream reported environments' `updated_at` (all of them on (re)connect, one per change): those held
   * here with older data are synced at once, through the push budget.
   */
  announce(envs: StreamEnv[]): void {
    let stale = false;
    const now = this.clock.now();
    for (const e of envs) {
      const held = this.heldUpdatedAt(e.id);
      if (held === undefined || !newerThan(e.updatedAt, held)) continue;
      const prev = this.announced.get(e.id);
      if (!prev || newerThan(e.updatedAt, prev.updatedAt))
        this.announced.set(e.id, { updatedAt: e.updatedAt, at: now, tries: 0 });
      stale = true;
    }
    if (stale) this.requestCycle('push');
  }

  /** Starts a push or forced cycle now, or right after the one in flight. */
  private requestCycle(kind: 'push' | 'forced'): void {
    if (this.stopped) return;
    this.next[kind] = true;
    if (this.inflight || this.pushTimer) return; // picked up when the cycle in flight ends, or by the timer
    this.schedulePush(0);
  }

  /**
   * A sync now (SIGHUP, `POST /v1/refresh`): after the cycle in flight, if any, so it sees the upstream as it is
   * now. Charged to the push bucket first; when the budget is spent it waits for the next cycle, and says so.
   */
  async refresh(reason: string): Promise<{ ok: boolean; deferred: boolean; ms: number }> {
    const t0 = performance.now();
    this.log.info({ reason }, 'sync requested: syncing now');
    if (this.inflight) await this.inflight;
    const deferredBefore = this.budget.deferred;
    await this.sync(reason, 'forced');
    const deferred = this.budget.deferred > deferredBefore;
    const ok = !deferred && !this.lastCycleError && this.ready();
    const ms = Math.round(performance.now() - t0);
    this.log.info(
      { reason, ms, ok, deferred, waitMs: deferred ? this.budget.waitMs('push') : undefined },
      deferred ? 'requested sync deferred by the call budget' : 'requested sync done',
    );
    return { ok, deferred, ms };
  }

  /** Runs one cycle, or joins the one in flight (single-flight). */
  sync(reason = 'manual', kind: CycleKind = 'poll'): Promise<void> {
    if (this.inflight) {
      if (kind !== 'poll') this.next[kind] = true;
      return this.inflight;
    }
    this.inflight = (async () => {
      try {
        this.kinds[kind]++;
        await this.cycle(reason, kind);
      } catch (err) {
        // A bug must not kill the loop: record it and keep serving what we have.
        this.lastCycleError = problem('internal', (err as Error).message);
        this.log.error({ err: (err as Error).message }, 'sync cycle failed unexpectedly');
      } finally {
        this.inflight = undefined;
        // Precompute the merged view now, not on the first request after a change.
        if (this.scopes.length > 1) this.mergedView();
        this.lastCycleAt = this.clock.now();
        this.cycles++;
        this.updateGauges();
        const pending = this.scopes.some((s) => s.pendingFetch);
        const again = this.rerun;
        this.rerun = false;
        // A push cycle leaves the polling timer alone: polling goes on at its interval whatever the stream does.
        if (kind !== 'push' || again) this.schedule(pending || again ? this.budget.waitMs() : undefined);
        if (kind === 'push' && pending) this.next.push = true;
        if ((this.next.push || this.next.forced) && !this.pushTimer) this.schedulePush(0);
        this.resolveFirst();
        this.emit('synced');
      }
    })();
    return this.inflight;
  }

  private updateGauges(): void {
    const now = Date.now();
    for (const s of this.scopes) {
      this.metrics.secrets.set({ scope: s.name }, s.view?.count ?? 0);
      this.metrics.ageSeconds.set({ scope: s.name }, s.confirmedAt ? (now - s.confirmedAt) / 1000 : -1);
      this.metrics.serving.set({ scope: s.name }, s.servable(now, this.cfg.maxStale) ? 1 : 0);
    }
  }

  private takeCall(kind: CallKind): boolean {
    const ok = this.budget.tryTake(kind);
    if (!ok) this.metrics.budgetDeferred.inc();
    return ok;
  }

  // ---- the cycle ----

  private async cycle(reason: string, kind: CycleKind): Promise<void> {
    const started = performance.now();
    const token = this.tokens.token;
    const tokenId = token.bearer;
    const now = this.clock.now();
    const bucket: CallKind = kind === 'poll' ? 'poll' : 'push';
    this.bucket = bucket;
    let boot: BootstrapResponse;
    /** A bootstrap answered in this cycle (else the held one stands in, with the announced times). */
    let fresh = false;
    let bootAskedAt = now;
    const pending = this.scopes.some((s) => s.pendingFetch);
    const held = this.lastBoot && this.lastBoot.token === tokenId ? this.lastBoot : undefined;
    if (
      held &&
      ((kind === 'poll' && pending && now - held.at < this.cfg.refreshInterval) || kind === 'push')
    ) {
      // Finish the fetches the budget postponed, or follow a push, without a new bootstrap: the environment keys
      // have not changed (a change of access comes as `removed`, or with the next poll).
      boot = this.withAnnounced(held.boot);
    } else {
      if (!this.takeCall(bucket)) {
        this.log.debug(
          { reason, kind, waitMs: this.budget.waitMs(bucket) },
          'refresh deferred by the call budget',
        );
        if (kind !== 'poll') this.next[kind] = true;
        return;
      }
      try {
        const tb = performance.now();
        bootAskedAt = this.clock.now();
        boot = await this.client.bootstrap();
        this.timings.bootstrapMs = performance.now() - tb;
      } catch (err) {
        await this.recheckToken(err);
        this.upstreamFailure(err, this.scopes, 'bootstrap', tokenId);
        return;
      }
      this.lastBoot = { boot, at: this.clock.now(), token: tokenId };
      fresh = true;
    }
    if (fresh || kind === 'poll') this.lastCycleError = undefined;
    let account;
    try {
      account = this.keyring.accountKey(token, boot.wrapped_key_share);
    } catch (err) {
      // A /secrets/tokens/ answer that does not hold together (core's key checks) is refused like any failed
      // refresh: keep serving the last good values until max-stale, report why, try again next cycle.
      this.lastBoot = undefined;
      this.lastCycleError = this.refused(err, this.scopes);
      return;
    }
    let fetched = false;
    const resolved: ScopeState[] = [];
    for (const s of this.scopes) {
      // A push cycle without a bootstrap looks only at the scopes the stream named (or the budget postponed).
      if (!fresh && kind === 'push' && !s.pendingFetch && !this.announcedFor(s)) continue;
      let match;
      try {
        match = matchScope(boot, s.cfg);
      } catch (err) {
        if (err instanceof ScopeResolutionError) {
          this.closeScope(s, problem('no_access', err.message));
          continue;
        }
        throw err;
      }
      try {
        // Verified against the server's identity_key before anything of this environment is fetched or used.
        this.keyring.envKey(account, match.key, match.app.name);
      } catch (err) {
        this.refused(err, [s]);
        continue;
      }
      const env = match.key.environment;
      const changed =
        !s.raw ||
        !!s.failClosed ||
        s.raw.envId !== env.id ||
        s.raw.envUpdatedAt !== env.updated_at ||
        s.fetchedWithToken !== tokenId ||
        this.depsChanged(s, boot);
      s.appId = match.app.id;
      s.appName = match.app.name;
      s.envId = env.id;
      s.envName = env.name;
      if (!changed) {
        if (!fresh && kind === 'push') continue; // nothing was asked of the upstream about this scope
        s.confirmedAt = this.clock.now();
        s.lastSyncAt = s.confirmedAt;
        s.lastError = undefined;
        if (s.source === 'snapshot') s.source = 'upstream';
        continue;
      }
      if (!this.takeCall(bucket)) {
        s.pendingFetch = true;
        continue;
      }
      let list: EncryptedSecret[];
      try {
        const tf = performance.now();
        list = await this.client.listEncryptedSecrets(env.id, { path: s.cfg.path, tags: s.cfg.tags });
        this.timings.fetchMs = performance.now() - tf;
      } catch (err) {
        await this.recheckToken(err);
        this.upstreamFailure(err, [s], 'secrets', tokenId);
        if (err instanceof ApiError && err.status === 429) break;
        continue;
      }
      s.pendingFetch = false;
      const prevDeps = s.raw?.deps ?? [];
      s.raw = { envId: env.id, envUpdatedAt: env.updated_at, secrets: list, deps: prevDeps };
      s.fetchedWithToken = tokenId;
      s.fetchedAt = this.clock.now();
      s.source = 'upstream';
      s.failClosed = undefined;
      resolved.push(s);
      fetched = true;
    }
    // Decrypt and resolve after every fetch, so references between scopes see this cycle's data.
    for (const s of resolved) {
      // Confirmed before the view changes, so listeners of the change event already see a servable scope.
      s.confirmedAt = this.clock.now();
      s.lastSyncAt = s.confirmedAt;
      s.lastError = undefined;
      await this.materialise(s, boot, account, true);
    }
    if (fetched) {
      this.lastFetchCycleMs = performance.now() - started;
      await this.persist(boot);
    }
    this.settleAnnounced(fresh ? bootAskedAt : undefined);
  }

  /** Whether the stream announced a newer time for the scope's environment or one of its reference targets. */
  private announcedFor(s: ScopeState): boolean {
    if (s.envId && this.announced.has(s.envId)) return true;
    return !!s.raw?.deps.some((d) => this.announced.has(d.envId));
  }

  /** The held bootstrap with each environment's `updated_at` raised to what the stream announced since. */
  private withAnnounced(boot: BootstrapResponse): BootstrapResponse {
    if (this.announced.size === 0) return boot;
    return {
      ...boot,
      apps: boot.apps.map((a) => ({
        ...a,
        environment_keys: a.environment_keys.map((k) => {
          const ann = this.announced.get(k.environment.id);
          return ann && newerThan(ann.updatedAt, k.environment.updated_at)
            ? { ...k, environment: { ...k.environment, updated_at: ann.updatedAt } }
            : k;
        }),
      })),
    };
  }

  /**
   * After a cycle: forget announcements the data held now covers. One a bootstrap asked after it arrived still
   * reports as older (a server that announced before it could answer it) means "sync again shortly": a forced cycle
   * after 250 ms, 500 ms, 1 s; then the announcement is dropped (the polls go on).
   */
  private settleAnnounced(bootAskedAt: number | undefined): void {
    let confirm = 0;
    for (const [id, a] of this.announced) {
      const held = this.heldUpdatedAt(id);
      if (held === undefined || !newerThan(a.updatedAt, held)) {
        this.announced.delete(id);
        continue;
      }
      // A push cycle follows an announcement the bootstrap could not have seen, or a fetch the budget postponed.
      if (bootAskedAt === undefined || a.at > bootAskedAt || this.scopes.some((s) => s.pendingFetch))
        continue;
      a.tries++;
      if (a.tries > CONFIRM_TRIES) {
        this.announced.delete(id);
        this.log.warn(
          { environment: id, announced: a.updatedAt, held },
          'the upstream announced a change its answers do not show yet; leaving it to the next refresh',
        );
        continue;
      }
      confirm = Math.max(confirm, CONFIRM_BASE_MS * 2 ** (a.tries - 1));
    }
    if (confirm > 0 && !this.stopped) {
      this.next.forced = true;
      this.schedulePush(confirm);
    }
  }

  private depsChanged(s: ScopeState, boot: BootstrapResponse): boolean {
    for (const d of s.raw?.deps ?? []) {
      const key = boot.apps.flatMap((a) => a.environment_keys).find((k) => k.environment.id === d.envId);
      if (!key || key.environment.updated_at !== d.updatedAt) return true;
    }
    return false;
  }

  /** Decrypts a scope's ciphertext, resolves references and rebuilds its view; emits a change when it differs. */
  private async materialise(
    s: ScopeState,
    boot: BootstrapResponse,
    account: { publicKey: string; privateKey: string },
    online: boolean,
  ): Promise<void> {
    const raw = s.raw;
    if (!raw) return;
    this.materialisations++;
    const end = this.metrics.decryptSeconds.startTimer();
    const td = performance.now();
    const match = matchScope(boot, s.cfg);
    const envKey = this.keyring.envKey(account, match.key, match.app.name);
    const plain = await this.decryptList(s, raw.secrets, envKey, s.cfg.tags);
    this.timings.decryptOnlyMs = performance.now() - td;
    let secrets = plain;
    // Building the resolver costs more than decrypting: only when some value may hold a reference.
    if (this.cfg.resolveReferences && plain.some((x) => x.value.includes('${'))) {
      const deps = new Map<string, DependencyData>();
      const byDep = new Map<string, DependencyData>(raw.deps.map((d) => [`${d.envId}|${d.path}`, d]));
      const local: LocalSecret[] = [];
      for (const other of this.scopes) {
        const list = other === s ? plain : other.secrets;
        if (!list || !other.appName || !other.envName) continue;
        for (const x of list)
          local.push({ app: other.appName, env: other.envName, path: x.path, key: x.key, value: x.value });
      }
      const lookup = async (t: ReferenceTarget): Promise<string | undefined> => {
        const appName = t.app ?? match.app.name;
        const app = boot.apps.find((a) => a.name.toLowerCase() === appName.toLowerCase());
        const key = app?.environment_keys.find(
          (k) => k.environment.name.toLowerCase() === t.env.toLowerCase(),
        );
        if (!key) return undefined;
        const id = `${key.environment.id}|${t.path}`;
        let dep = deps.get(id);
        if (!dep) {
          const old = byDep.get(id);
          if (old && (!online || old.updatedAt === key.environment.updated_at)) dep = old;
          else if (online && this.takeCall(this.bucket)) {
            let list: EncryptedSecret[] = [];
            let updatedAt = key.environment.updated_at;
            try {
              list = await this.client.listEncryptedSecrets(key.environment.id, { path: t.path });
            } catch (err) {
              updatedAt = ''; // refetch next cycle
              this.log.warn({ scope: s.name, err: (err as Error).message }, 'reference lookup failed');
            }
            dep = { envId: key.environment.id, path: t.path, updatedAt, secrets: list };
          } else if (old) dep = { ...old, updatedAt: '' };
          else return undefined;
          deps.set(id, dep);
        }
        const envKey2 = this.keyring.envKey(account, key, app?.name); // throws: a failed lookup
        const found = (await this.decryptList(s, dep.secrets, envKey2, undefined, `dep:${id}`)).find(
          (x) => x.key === t.key,
        );
        return found?.value;
      };
      const resolver = new ReferenceResolver({
        app: match.app.name,
        secrets: local,
        lookup,
        mode: this.cfg.strictReferences ? 'strict' : 'lenient',
        onUnresolved: (e: ReferenceResolutionError) =>
          this.log.debug(
            { scope: s.name, reference: e.reference, reason: e.reason },
            'reference left unresolved',
          ),
      });
      secrets = [];
      try {
        for (const x of plain) {
          if (!x.value.includes('${')) {
            secrets.push(x);
            continue;
          }
          secrets.push({
            ...x,
            value: await resolver.resolve(x.value, {
              app: match.app.name,
              env: match.key.environment.name,
              path: x.path,
              key: x.key,
            }),
          });
        }
      } catch (err) {
        // strict mode: keep the last good view and report the broken reference (names only).
        s.lastError = problem('reference', (err as Error).message);
        this.metrics.syncErrors.inc({ scope: s.name, code: 'reference' });
        end();
        return;
      }
      raw.deps = [...deps.values()];
    }
    end();
    this.timings.decryptMs = performance.now() - td;
    const tv = performance.now();
    const prev = s.view;
    s.secrets = secrets;
    s.view = buildView([
      { scope: s.name, app: match.app.name, environment: match.key.environment.name, secrets },
    ]);
    this.timings.viewsMs = performance.now() - tv;
    this.mergedDirty = true;
    if (!prev || prev.etag !== s.view.etag) {
      s.changes++;
      const d = diffViews(prev, s.view);
      this.log.info(
        {
          scope: s.name,
          source: online ? 'upstream' : 'snapshot',
          secrets: s.view.count,
          added: d.added.length,
          changed: d.changed.length,
          removed: d.removed.length,
          ms: Object.fromEntries(Object.entries(this.timings).map(([k, v]) => [k, Math.round(v)])),
        },
        'scope synced',
      );
      this.emitChange(s, prev, s.view, 'updated');
    }
  }

  /**
   * Decrypts in chunks, yielding to the event loop between them, so a large sync never stalls requests (they keep
   * being served from the previous view meanwhile).
   */
  private async decryptList(
    s: ScopeState,
    list: EncryptedSecret[],
    envKey: Parameters<typeof decryptSecrets>[1],
    tags?: string[],
    memoKey?: string,
  ): Promise<PlainSecret[]> {
    const id = `${memoKey ?? s.name}|${envKey.publicKey}`;
    const memo: PlainMemo = { prev: this.memos.get(id), next: new Map() };
    this.memos.set(id, memo.next); // only what this sync saw survives to the next one
    const out: PlainSecret[] = [];
    for (let i = 0; i < list.length; i += DECRYPT_CHUNK) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      const chunk = list.slice(i, i + DECRYPT_CHUNK);
      try {
        out.push(...decryptSecrets(chunk, envKey, tags, memo));
      } catch {
        // One bad item must not hide the others: decrypt one by one and skip the failures (as the Go SDK does).
        for (const item of chunk) {
          try {
            out.push(...decryptSecrets([item], envKey, tags, memo));
          } catch {
            this.metrics.decryptErrors.inc({ scope: s.name });
            this.log.warn({ scope: s.name, secretId: item.id }, 'secret did not decrypt; skipped');
          }
        }
      }
    }
    return out;
  }

  private emitChange(
    s: ScopeState,
    prev: View | undefined,
    next: View | undefined,
    kind: ChangeEvent['kind'],
    reason?: string,
  ): void {
    const d = diffViews(prev, next);
    this.emit('change', {
      scope: s.name,
      etag: next?.etag ?? null,
      kind,
      ...d,
      reason,
      at: new Date().toISOString(),
    });
  }

  /** Stops serving a scope and forgets its data (token rejected, access removed). */
  private closeScope(s: ScopeState, p: ScopeProblem): void {
    const had = !!s.view;
    const prev = s.view;
    const first = !s.failClosed;
    s.wipe(p);
    this.cache.set('merged', undefined);
    this.memos.clear(); // plaintext memos and unwrapped keys go with the data
    this.keyring.clear();
    this.mergedDirty = true;
    this.metrics.syncErrors.inc({ scope: s.name, code: p.code });
    if (first)
      this.log.error(
        { scope: s.name, code: p.code, reason: p.message },
        'scope stopped serving (fail closed)',
      );
    if (had) this.emitChange(s, prev, undefined, 'unavailable', p.message);
  }

  /** Before treating a 401/403 as revocation, look at the token file: a rotation may already be waiting there. */
  private async recheckToken(err: unknown): Promise<void> {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) await this.tokens.check();
  }

  private upstreamFailure(
    err: unknown,
    scopes: ScopeState[],
    call: 'bootstrap' | 'secrets',
    tokenUsed: string,
  ): void {
    if (err instanceof ApiError) {
      const rejected = err.status === 401 || (call === 'bootstrap' && err.status === 403);
      if (rejected && this.tokens.token.bearer !== tokenUsed) {
        // The old token was revoked while a rotation was already under way: not a reason to stop serving.
        const p = problem(
          'token_rotating',
          'the previous token was rejected; retrying with the rotated token',
        );
        for (const s of scopes) this.markError(s, p);
        this.rerun = true;
        return;
      }
      if (err.status === 429) {
        this.budget.rateLimited(err.retryAfterMs);
        const p = problem(
          'rate_limited',
          `upstream rate limit (429); next call after ${new Date(this.budget.rateLimitedUntil).toISOString()}`,
        );
        for (const s of scopes) this.markError(s, p);
        this.lastCycleError = p;
        return;
      }
      const tokenRejected =
        (call === 'bootstrap' && (err.status === 403 || err.status === 401)) ||
        (call === 'secrets' && err.status === 401);
      if (tokenRejected) {
        const p = problem(
          'token_rejected',
          `the upstream rejected the service token (HTTP ${err.status} from ${err.path}: ${err.phaseError || 'no detail'}); it is revoked, expired or wrong`,
        );
        for (const s of scopes) this.closeScope(s, p);
        this.lastCycleError = p;
        if (this.scopes.every((x) => x.failClosed)) void removeSnapshot(this.cfg.snapshotFile);
        return;
      }
      if (call === 'secrets' && err.status === 403) {
        for (const s of scopes)
          this.closeScope(
            s,
            problem(
              'access_denied',
              `the upstream denied access to the scope's secrets (HTTP 403: ${err.phaseError || 'no detail'})`,
            ),
          );
        return;
      }
      const p = problem(`http_${err.status}`, err.message);
      for (const s of scopes) this.markError(s, p);
      this.lastCycleError = p;
      return;
    }
    const code = err instanceof NetworkError ? err.code : err instanceof CryptoError ? 'crypto' : 'error';
    const p = problem(code, (err as Error).message);
    for (const s of scopes) this.markError(s, p);
    this.lastCycleError = p;
  }

  /** The upstream's answer failed an end-to-end key check (core/e2e-read.ts): stale, not closed. */
  private refused(err: unknown, scopes: ScopeState[]): ScopeProblem {
    if (!(err instanceof CryptoError)) throw err;
    const p = problem(err.code, `refused the upstream's /secrets/tokens/ answer: ${err.message}`);
    for (const s of scopes) this.markError(s, p);
    return p;
  }

  private markError(s: ScopeState, p: ScopeProblem): void {
    const first = !s.lastError;
    s.lastError = p;
    this.metrics.syncErrors.inc({ scope: s.name, code: p.code });
    if (first)
      this.log.warn(
        { scope: s.name, code: p.code, reason: p.message },
        'refresh failed; serving last known good values',
      );
  }

  // ---- snapshot ----

  private async persist(boot: BootstrapResponse): Promise<void> {
    if (!this.cfg.snapshot) return;
    const snap: Snapshot = {
      format: 'phase-bridge-agent-snapshot/1',
      savedAt: new Date().toISOString(),
      host: this.cfg.host,
      bootstrap: boot,
      scopes: {},
    };
    for (const s of this.scopes) {
      if (!s.raw || s.failClosed) continue;
      snap.scopes[s.name] = { ...s.raw, confirmedAt: s.confirmedAt, fetchedAt: s.fetchedAt };
    }
    try {
      await writeSnapshot(this.cfg.snapshotFile, snap);
    } catch (err) {
      this.log.warn(
        { file: this.cfg.snapshotFile, err: (err as Error).message },
        'could not write the offline snapshot',
      );
    }
  }

  /** Serves from the snapshot until the upstream answers: ciphertext decrypted with the current token. */
  private async loadSnapshot(): Promise<void> {
    let snap: Snapshot | undefined;
    try {
      snap = await readSnapshot(this.cfg.snapshotFile);
    } catch (err) {
      this.log.warn(
        { file: this.cfg.snapshotFile, err: (err as Error).message },
        'ignoring the offline snapshot',
      );
      return;
    }
    if (!snap) return;
    if (snap.host !== this.cfg.host) {
      this.log.warn(
        { file: this.cfg.snapshotFile },
        'ignoring the offline snapshot: it was taken from another host',
      );
      return;
    }
    let account;
    try {
      account = this.keyring.accountKey(this.tokens.token, snap.bootstrap.wrapped_key_share);
    } catch {
      this.log.warn(
        { file: this.cfg.snapshotFile },
        'ignoring the offline snapshot: the current token cannot open it',
      );
      return;
    }
    for (const s of this.scopes) {
      const data = snap.scopes[s.name];
      if (!data) continue;
      try {
        const m = matchScope(snap.bootstrap, s.cfg);
        s.appId = m.app.id;
        s.appName = m.app.name;
        s.envId = m.key.environment.id;
        s.envName = m.key.environment.name;
        s.raw = {
          envId: data.envId,
          envUpdatedAt: data.envUpdatedAt,
          secrets: data.secrets,
          deps: data.deps,
        };
        s.confirmedAt = data.confirmedAt;
        s.fetchedAt = data.fetchedAt;
        s.source = 'snapshot';
        s.fetchedWithToken = this.tokens.token.bearer;
      } catch (err) {
        this.log.warn({ scope: s.name, err: (err as Error).message }, 'snapshot entry skipped');
      }
    }
    for (const s of this.scopes) {
      if (s.source !== 'snapshot') continue;
      try {
        await this.materialise(s, snap.bootstrap, account, false);
      } catch (err) {
        s.raw = undefined;
        s.source = 'none';
        this.log.warn(
          { scope: s.name, err: (err as Error).message },
          'snapshot entry did not decrypt; skipped',
        );
      }
    }
    this.lastBoot = undefined;
    if (this.scopes.length > 1) this.mergedView();
    const loaded = this.scopes.filter((s) => s.source === 'snapshot').map((s) => s.name);
    if (loaded.length)
      this.log.info({ scopes: loaded, savedAt: snap.savedAt }, 'loaded the offline snapshot');
  }

  /** The token in use (for status): kind and public key only. */
  tokenInfo(): Pick<PssToken, 'authType' | 'publicKey'> {
    const t = this.tokens.token;
    return { authType: t.authType, publicKey: t.publicKey };
  }
}
