/**
 * The sync engine: bootstrap, compare each environment's `updated_at`, fetch only what changed, decrypt once,
 * resolve references, rebuild the precomputed views. Single-flight (one cycle at a time; concurrent callers share
 * it), background refresh with jitter, every upstream HTTP call charged to the call budget, 429 honoured, and
 * fail-closed when the upstream rejects the token.
 *
 * The engine runs the cycle and applies its outcome to the scopes through their named transitions
 * (agent/scope.ts); the parts with one job each are its collaborators:
 *
 *   agent/upstream.ts     fetch: the client, the call budget, the bootstrap held between cycles
 *   agent/materialise.ts  materialise: keys, decryption (memoised), references, the view
 *   agent/schedule.ts     schedule: the polling and push timers, what is wanted next, the stream's announcements
 *
 * Time comes from an injected clock (agent/clock.ts).
 */
import { EventEmitter } from 'node:events';
import { ApiError, NetworkError } from '../core/api-errors';
import type { BootstrapResponse, EncryptedSecret } from '../core/schemas';
import { CryptoError } from '../core/errors';
import type { PssToken } from '../core/token';
import type { CallBudget, CallKind } from './budget';
import type { ChangeStream, StreamEnv } from './change-stream';
import { systemClock, type Clock } from './clock';
import type { AgentConfig } from './config';
import { ScopeResolutionError } from './errors';
import type { Logger } from './logger';
import { Materialiser } from './materialise';
import type { AgentMetrics } from './metrics';
import { Announcements, Scheduler, newerThan, type CycleKind } from './schedule';
import { matchScope, ScopeState, type ScopeProblem } from './scope';
import type { TokenSource } from './token-source';
import { defaultClientFactory, Upstream, type ClientFactory } from './upstream';
import { buildView, diffViews, type View } from './views';
import { ViewCache } from './cache';
import { readSnapshot, writeSnapshot, removeSnapshot, type Snapshot } from './snapshot';

export { newerThan, type CycleKind } from './schedule';
export type { ClientFactory } from './upstream';

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

export class SyncEngine extends EventEmitter<EngineEvents> {
  readonly scopes: ScopeState[];
  private readonly upstream: Upstream;
  private readonly materialiser: Materialiser;
  private readonly scheduler: Scheduler;
  private readonly announced: Announcements;
  /** Duration of the latest cycle that downloaded something, in ms (for /v1/status and the benchmark). */
  lastFetchCycleMs = 0;
  private inflight: Promise<void> | undefined;
  /** Set when a cycle must follow at once (the old token was rejected while a rotation was under way). */
  private rerun = false;
  /** The upstream change stream, when subscribed (for /v1/status). */
  stream?: ChangeStream;
  /** Cycles by kind (for /v1/status). */
  readonly kinds = { poll: 0, push: 0, forced: 0 };
  /** The budget bucket the cycle in flight charges. */
  private bucket: CallKind = 'poll';
  /** node-cache holding every precomputed view (per scope, and the merge). */
  readonly cache = new ViewCache();
  private mergedDirty = true;
  /** Epoch ms of the last finished cycle, whatever its outcome. */
  lastCycleAt = 0;
  lastCycleError?: ScopeProblem;
  cycles = 0;
  firstSync: Promise<void>;
  private resolveFirst!: () => void;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
    private readonly metrics: AgentMetrics,
    clientFactory: ClientFactory = defaultClientFactory(cfg),
    private readonly clock: Clock = systemClock,
  ) {
    super();
    this.setMaxListeners(0);
    this.scopes = cfg.scopes.map((s) => new ScopeState(s, this.cache));
    this.upstream = new Upstream(cfg, this.scopes.length, tokens, metrics, clientFactory, clock);
    this.materialiser = new Materialiser(cfg, log, metrics, () => clock.now());
    this.scheduler = new Scheduler({
      refreshInterval: cfg.refreshInterval,
      jitter: cfg.jitter,
      budget: this.upstream.budget,
      clock,
      run: (kind, reason) => void this.sync(reason, kind),
    });
    this.announced = new Announcements(clock, (id) => this.heldUpdatedAt(id));
    this.firstSync = new Promise((r) => (this.resolveFirst = r));
    tokens.on('rotated', () => {
      this.upstream.rotated();
      this.materialiser.forgetKeys();
      // A forced cycle (the push bucket first, then the polling one): the new token is used at once, not when the
      // polling budget next allows (a second rotation within a minute used to wait for it). A cycle in flight still
      // runs with the old token: this one runs right after it.
      void this.sync('token rotated', 'forced');
    });
  }

  /** The upstream call budget (for /v1/status). */
  get budget(): CallBudget {
    return this.upstream.budget;
  }

  /** Scope materialisations (decrypt + resolve + views) so far: what allocates, so what memory upkeep follows. */
  get materialisations(): number {
    return this.materialiser.count;
  }

  /** Phase timings of the latest sync work, in ms (logged with each synced scope). */
  get timings(): Record<string, number> {
    return { ...this.upstream.timings, ...this.materialiser.timings };
  }

  private problem(code: string, message: string): ScopeProblem {
    return { code, message, at: this.clock.now() };
  }

  // ---- serving side ----

  scope(name: string): ScopeState | undefined {
    return this.scopes.find((s) => s.name === name);
  }

  /** The merged view over every scope, or undefined when any scope is not servable. */
  mergedView(now = this.clock.now()): View | undefined {
    // Runs on every served request: one scope is answered with one view read.
    if (this.scopes.length === 1) return this.scopes[0].servableView(now, this.cfg.maxStale);
    if (!this.scopes.every((s) => s.servable(now, this.cfg.maxStale))) return undefined;
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

  ready(now = this.clock.now()): boolean {
    return this.scopes.every((s) => s.servable(now, this.cfg.maxStale));
  }

  // ---- lifecycle ----

  /** Loads the snapshot (if any), then starts the refresh loop with an immediate first sync. */
  async start(): Promise<void> {
    if (this.cfg.snapshot) await this.loadSnapshot();
    void this.sync('start');
  }

  stop(): void {
    this.scheduler.stop();
  }

  // ---- push: what the change stream reports ----

  /** Subscribes the engine to an upstream change stream (agent/change-stream.ts). */
  attachStream(stream: ChangeStream): void {
    this.stream = stream;
    stream.on('hello', (envs) => this.announce(envs));
    stream.on('change', (env) => this.announce([env]));
    stream.on('removed', ({ id }) => {
      if (this.heldUpdatedAt(id) !== undefined) this.scheduler.want('forced', !!this.inflight);
    });
    stream.on('revoked', () => this.scheduler.want('forced', !!this.inflight));
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
    if (this.announced.announce(envs)) this.scheduler.want('push', !!this.inflight);
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
      if (kind !== 'poll') this.scheduler.want(kind, true);
      return this.inflight;
    }
    this.inflight = (async () => {
      try {
        this.kinds[kind]++;
        await this.cycle(reason, kind);
      } catch (err) {
        // A bug must not kill the loop: record it and keep serving what we have.
        this.lastCycleError = this.problem('internal', (err as Error).message);
        this.log.error({ err: (err as Error).message }, 'sync cycle failed unexpectedly');
      } finally {
        this.inflight = undefined;
        // Precompute the merged view now, not on the first request after a change.
        if (this.scopes.length > 1) this.mergedView();
        this.lastCycleAt = this.clock.now();
        this.cycles++;
        this.updateGauges();
        const again = this.rerun;
        this.rerun = false;
        this.scheduler.afterCycle(kind, { pending: this.scopes.some((s) => s.pendingFetch), again });
        this.resolveFirst();
        this.emit('synced');
      }
    })();
    return this.inflight;
  }

  private updateGauges(): void {
    const now = this.clock.now();
    for (const s of this.scopes) {
      this.metrics.secrets.set({ scope: s.name }, s.view?.count ?? 0);
      this.metrics.ageSeconds.set({ scope: s.name }, s.confirmedAt ? (now - s.confirmedAt) / 1000 : -1);
      this.metrics.serving.set({ scope: s.name }, s.servable(now, this.cfg.maxStale) ? 1 : 0);
    }
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
    const held = this.upstream.heldBootstrap(tokenId);
    if (
      held &&
      ((kind === 'poll' && pending && now - held.at < this.cfg.refreshInterval) || kind === 'push')
    ) {
      // Finish the fetches the budget postponed, or follow a push, without a new bootstrap: the environment keys
      // have not changed (a change of access comes as `removed`, or with the next poll).
      boot = this.announced.patch(held.boot);
    } else {
      // A login that holds no usable token sends nothing (its gate answers for the upstream), so there is no call to
      // charge; waiting for the budget would keep serving after the token expired.
      if (!this.tokens.blocked() && !this.upstream.take(bucket)) {
        this.log.debug(
          { reason, kind, waitMs: this.budget.waitMs(bucket) },
          'refresh deferred by the call budget',
        );
        if (kind !== 'poll') this.scheduler.want(kind, true);
        return;
      }
      try {
        bootAskedAt = this.clock.now();
        boot = await this.upstream.bootstrap(tokenId);
      } catch (err) {
        await this.recheckToken(err);
        this.upstreamFailure(err, this.scopes, 'bootstrap', tokenId);
        return;
      }
      fresh = true;
    }
    if (fresh || kind === 'poll') this.lastCycleError = undefined;
    let account;
    try {
      account = this.materialiser.accountKey(token, boot.wrapped_key_share);
    } catch (err) {
      // A /secrets/tokens/ answer that does not hold together (core's key checks) is refused like any failed
      // refresh: keep serving the last good values until max-stale, report why, try again next cycle.
      this.upstream.forgetBootstrap();
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
          this.closeScope(s, this.problem('no_access', err.message));
          continue;
        }
        throw err;
      }
      try {
        // Verified against the server's identity_key before anything of this environment is fetched or used.
        this.materialiser.envKey(account, match.key, match.app.name);
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
      s.resolved(match.app, env);
      if (!changed) {
        if (!fresh && kind === 'push') continue; // nothing was asked of the upstream about this scope
        s.confirmed(this.clock.now());
        continue;
      }
      if (!this.upstream.take(bucket)) {
        s.deferred();
        continue;
      }
      let list: EncryptedSecret[];
      try {
        list = await this.upstream.secrets(env.id, { path: s.cfg.path, tags: s.cfg.tags });
      } catch (err) {
        await this.recheckToken(err);
        this.upstreamFailure(err, [s], 'secrets', tokenId);
        if (err instanceof ApiError && err.status === 429) break;
        continue;
      }
      s.fetched({ id: env.id, updatedAt: env.updated_at }, list, tokenId, this.clock.now());
      resolved.push(s);
      fetched = true;
    }
    // Decrypt and resolve after every fetch, so references between scopes see this cycle's data.
    for (const s of resolved) {
      // Confirmed before the view changes, so listeners of the change event already see a servable scope.
      s.confirmed(this.clock.now());
      await this.materialise(s, boot, account, true);
    }
    if (fetched) {
      this.lastFetchCycleMs = performance.now() - started;
      await this.persist(boot);
    }
    const confirm = this.announced.settle(
      fresh ? bootAskedAt : undefined,
      this.scopes.some((s) => s.pendingFetch),
      (environment, announced, heldAt) =>
        this.log.warn(
          { environment, announced, held: heldAt },
          'the upstream announced a change its answers do not show yet; leaving it to the next refresh',
        ),
    );
    if (confirm > 0) {
      this.scheduler.want('forced', true);
      this.scheduler.soon(confirm);
    }
  }

  /** Whether the stream announced a newer time for the scope's environment or one of its reference targets. */
  private announcedFor(s: ScopeState): boolean {
    return this.announced.has(s.envId) || !!s.raw?.deps.some((d) => this.announced.has(d.envId));
  }

  private depsChanged(s: ScopeState, boot: BootstrapResponse): boolean {
    for (const d of s.raw?.deps ?? []) {
      const key = boot.apps.flatMap((a) => a.environment_keys).find((k) => k.environment.id === d.envId);
      if (!key || key.environment.updated_at !== d.updatedAt) return true;
    }
    return false;
  }

  /** Rebuilds a scope's view from its ciphertext (materialise.ts) and applies it; emits a change when it differs. */
  private async materialise(
    s: ScopeState,
    boot: BootstrapResponse,
    account: ReturnType<Materialiser['accountKey']>,
    online: boolean,
  ): Promise<void> {
    if (!s.raw) return;
    const r = await this.materialiser.materialise({
      scope: s,
      boot,
      account,
      scopes: this.scopes,
      fetchDependency: online
        ? (envId, path) => this.upstream.dependency(envId, path, this.bucket)
        : undefined,
    });
    if (!r.ok) {
      s.failed(r.problem); // strict references: the last good view stays, the broken reference is reported
      return;
    }
    const prev = s.materialised(r.secrets, r.view, r.deps);
    this.mergedDirty = true;
    if (!prev || prev.etag !== r.view.etag) {
      const d = diffViews(prev, r.view);
      this.log.info(
        {
          scope: s.name,
          source: online ? 'upstream' : 'snapshot',
          secrets: r.view.count,
          added: d.added.length,
          changed: d.changed.length,
          removed: d.removed.length,
          ms: Object.fromEntries(Object.entries(this.timings).map(([k, v]) => [k, Math.round(v)])),
        },
        'scope synced',
      );
      this.emitChange(s, prev, r.view, 'updated', undefined, d);
    }
  }

  /** Emits a change event; `d` is the diff of `prev` and `next` when the caller has it already. */
  private emitChange(
    s: ScopeState,
    prev: View | undefined,
    next: View | undefined,
    kind: ChangeEvent['kind'],
    reason?: string,
    d = diffViews(prev, next),
  ): void {
    this.emit('change', {
      scope: s.name,
      etag: next?.etag ?? null,
      kind,
      ...d,
      reason,
      at: new Date(this.clock.now()).toISOString(),
    });
  }

  /** Stops serving a scope and forgets its data (token rejected, access removed). */
  private closeScope(s: ScopeState, p: ScopeProblem): void {
    const prev = s.view;
    const first = s.closed(p);
    this.cache.set('merged', undefined);
    this.materialiser.forget(); // plaintext memos and unwrapped keys go with the data
    this.mergedDirty = true;
    this.metrics.syncErrors.inc({ scope: s.name, code: p.code });
    if (first)
      this.log.error(
        { scope: s.name, code: p.code, reason: p.message },
        'scope stopped serving (fail closed)',
      );
    if (prev) this.emitChange(s, prev, undefined, 'unavailable', p.message);
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
        const p = this.problem(
          'token_rotating',
          'the previous token was rejected; retrying with the rotated token',
        );
        for (const s of scopes) this.markError(s, p);
        this.rerun = true;
        return;
      }
      if (err.status === 429) {
        this.budget.rateLimited(err.retryAfterMs);
        const p = this.problem(
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
        // A workload login that cannot give a valid token says why in its own words (refused, and since when).
        const loginReason = this.tokens.failClosedReason();
        const p = loginReason
          ? this.problem('login_failed', loginReason)
          : this.problem(
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
            this.problem(
              'access_denied',
              `the upstream denied access to the scope's secrets (HTTP 403: ${err.phaseError || 'no detail'})`,
            ),
          );
        return;
      }
      const p = this.problem(`http_${err.status}`, err.message);
      for (const s of scopes) this.markError(s, p);
      this.lastCycleError = p;
      return;
    }
    const code = err instanceof NetworkError ? err.code : err instanceof CryptoError ? 'crypto' : 'error';
    const p = this.problem(code, (err as Error).message);
    for (const s of scopes) this.markError(s, p);
    this.lastCycleError = p;
  }

  /** The upstream's answer failed an end-to-end key check (core/e2e-read.ts): stale, not closed. */
  private refused(err: unknown, scopes: ScopeState[]): ScopeProblem {
    if (!(err instanceof CryptoError)) throw err;
    const p = this.problem(err.code, `refused the upstream's /secrets/tokens/ answer: ${err.message}`);
    for (const s of scopes) this.markError(s, p);
    return p;
  }

  private markError(s: ScopeState, p: ScopeProblem): void {
    const first = s.failed(p);
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
      savedAt: new Date(this.clock.now()).toISOString(),
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
      account = this.materialiser.accountKey(this.tokens.token, snap.bootstrap.wrapped_key_share);
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
        s.resolved(m.app, m.key.environment);
        s.restored(
          { envId: data.envId, envUpdatedAt: data.envUpdatedAt, secrets: data.secrets, deps: data.deps },
          { confirmedAt: data.confirmedAt, fetchedAt: data.fetchedAt },
          this.tokens.token.bearer,
        );
      } catch (err) {
        this.log.warn({ scope: s.name, err: (err as Error).message }, 'snapshot entry skipped');
      }
    }
    for (const s of this.scopes) {
      if (s.source !== 'snapshot') continue;
      try {
        await this.materialise(s, snap.bootstrap, account, false);
      } catch (err) {
        s.dropped();
        this.log.warn(
          { scope: s.name, err: (err as Error).message },
          'snapshot entry did not decrypt; skipped',
        );
      }
    }
    this.upstream.forgetBootstrap();
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
