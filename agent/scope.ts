/**
 * One configured scope's state: what it resolved to, the last known good data, and why it may not be serving.
 */
import type {
  EncryptedSecret,
  BootstrapApp,
  BootstrapEnvironmentKey,
  BootstrapResponse,
} from '../core/schemas';
import type { ScopeConfig } from './config';
import type { PlainSecret } from './decrypt';
import { ScopeResolutionError } from './errors';
import type { View } from './views';
import type { ViewCache } from './cache';

/** Ciphertext of an environment a reference pointed into, kept so a snapshot can resolve offline. */
export interface DependencyData {
  envId: string;
  path: string;
  updatedAt: string;
  secrets: EncryptedSecret[];
}

export interface ScopeRaw {
  envId: string;
  envUpdatedAt: string;
  secrets: EncryptedSecret[];
  deps: DependencyData[];
}

export interface ScopeProblem {
  code: string;
  message: string;
  at: number;
}

/** Where the data held came from. */
export type ScopeSource = 'none' | 'upstream' | 'snapshot';

/**
 * One scope's state. Read-only from outside: it changes only through the named transitions below (resolved,
 * confirmed, deferred, fetched, materialised, failed, closed, restored, dropped, invalidated), each of
 * which leaves it consistent (a fetched scope is no longer failed closed, a closed one holds nothing, ...).
 */
export class ScopeState {
  private st: {
    appId?: string;
    appName?: string;
    envId?: string;
    envName?: string;
    raw?: ScopeRaw;
    secrets?: PlainSecret[];
    confirmedAt: number;
    fetchedAt: number;
    source: ScopeSource;
    lastError?: ScopeProblem;
    failClosed?: ScopeProblem;
    pendingFetch: boolean;
    fetchedWithToken?: string;
    lastSyncAt: number;
    changes: number;
  } = { confirmedAt: 0, fetchedAt: 0, source: 'none', pendingFetch: false, lastSyncAt: 0, changes: 0 };

  /** The view's key in the cache, built once: every served request reads the view. */
  private readonly viewKey: string;

  constructor(
    readonly cfg: ScopeConfig,
    private readonly cache: ViewCache,
  ) {
    this.viewKey = `scope:${cfg.name}`;
  }

  get name(): string {
    return this.cfg.name;
  }
  get appId(): string | undefined {
    return this.st.appId;
  }
  get appName(): string | undefined {
    return this.st.appName;
  }
  get envId(): string | undefined {
    return this.st.envId;
  }
  get envName(): string | undefined {
    return this.st.envName;
  }
  /** The ciphertext held (and the reference targets' ciphertext). */
  get raw(): Readonly<ScopeRaw> | undefined {
    return this.st.raw;
  }
  /** The decrypted, resolved secrets of the current view. */
  get secrets(): PlainSecret[] | undefined {
    return this.st.secrets;
  }
  /** When the upstream last confirmed (or delivered) this data: the base of `Age` and max-stale. */
  get confirmedAt(): number {
    return this.st.confirmedAt;
  }
  get fetchedAt(): number {
    return this.st.fetchedAt;
  }
  get source(): ScopeSource {
    return this.st.source;
  }
  /** The latest refresh failed; serving continues as STALE until max-stale. */
  get lastError(): ScopeProblem | undefined {
    return this.st.lastError;
  }
  /** Not serving, on purpose: token revoked/expired or access lost. */
  get failClosed(): ScopeProblem | undefined {
    return this.st.failClosed;
  }
  /** The budget postponed this scope's fetch. */
  get pendingFetch(): boolean {
    return this.st.pendingFetch;
  }
  /** Bootstrap identity of the token the data was fetched with (refetch after rotation). */
  get fetchedWithToken(): string | undefined {
    return this.st.fetchedWithToken;
  }
  get lastSyncAt(): number {
    return this.st.lastSyncAt;
  }
  /** Views built that differed from the previous one. */
  get changes(): number {
    return this.st.changes;
  }

  /** The precomputed view, held in the shared node-cache. */
  get view(): View | undefined {
    return this.cache.get(this.viewKey);
  }

  private setView(v: View | undefined): void {
    this.cache.set(this.viewKey, v);
  }

  // ---- transitions ----

  /** The bootstrap (or the snapshot's) matched the scope to this app and environment. */
  resolved(app: { id: string; name: string }, env: { id: string; name: string }): void {
    this.st.appId = app.id;
    this.st.appName = app.name;
    this.st.envId = env.id;
    this.st.envName = env.name;
  }

  /** The upstream confirmed the data held (unchanged, or just delivered): fresh, no error, from the upstream. */
  confirmed(now: number): void {
    this.st.confirmedAt = now;
    this.st.lastSyncAt = now;
    this.st.lastError = undefined;
    if (this.st.source === 'snapshot') this.st.source = 'upstream';
  }

  /** The call budget postponed the fetch: done first at the next cycle the budget allows. */
  deferred(): void {
    this.st.pendingFetch = true;
  }

  /** New ciphertext from the upstream (reference targets are kept until the views are rebuilt). */
  fetched(
    env: { id: string; updatedAt: string },
    secrets: EncryptedSecret[],
    token: string,
    now: number,
  ): void {
    this.st.raw = { envId: env.id, envUpdatedAt: env.updatedAt, secrets, deps: this.st.raw?.deps ?? [] };
    this.st.fetchedWithToken = token;
    this.st.fetchedAt = now;
    this.st.source = 'upstream';
    this.st.failClosed = undefined;
    this.st.pendingFetch = false;
  }

  /** Decrypted and resolved: the new view replaces the old one. Returns the previous view. */
  materialised(secrets: PlainSecret[], view: View, deps?: DependencyData[]): View | undefined {
    const prev = this.view;
    if (deps && this.st.raw) this.st.raw = { ...this.st.raw, deps };
    this.st.secrets = secrets;
    this.setView(view);
    if (!prev || prev.etag !== view.etag) this.st.changes++;
    return prev;
  }

  /** A refresh failed: serve the last good values (STALE) until max-stale. True when it is the first failure. */
  failed(problem: ScopeProblem): boolean {
    const first = !this.st.lastError;
    this.st.lastError = problem;
    return first;
  }

  /** Fail closed: drop every decrypted value and ciphertext. True when the scope was not closed already. */
  closed(problem: ScopeProblem): boolean {
    const first = !this.st.failClosed;
    this.st.failClosed = problem;
    this.st.raw = undefined;
    this.st.secrets = undefined;
    this.setView(undefined);
    this.st.source = 'none';
    this.st.pendingFetch = false;
    return first;
  }

  /** Loaded from the offline snapshot: served as STALE until the upstream confirms it. */
  restored(raw: ScopeRaw, times: { confirmedAt: number; fetchedAt: number }, token: string): void {
    this.st.raw = raw;
    this.st.confirmedAt = times.confirmedAt;
    this.st.fetchedAt = times.fetchedAt;
    this.st.source = 'snapshot';
    this.st.fetchedWithToken = token;
  }

  /** A restored entry that did not decrypt: forgotten. */
  dropped(): void {
    this.st.raw = undefined;
    this.st.source = 'none';
  }

  /** Forget the ciphertext held so the next cycle downloads, decrypts and rebuilds in full (the view stays). */
  invalidated(): void {
    this.st.raw = undefined;
  }

  // ---- reading ----

  /** Servable when not failed closed, holding data, and not older than max-stale. */
  servable(now: number, maxStaleMs: number): boolean {
    return this.servableView(now, maxStaleMs) !== undefined;
  }

  /** The view when the scope serves (`servable`), with one read of the cache. */
  servableView(now: number, maxStaleMs: number): View | undefined {
    if (this.st.failClosed || now - this.st.confirmedAt > maxStaleMs) return undefined;
    return this.view;
  }

  /** STALE when the data was not confirmed by the latest refresh (upstream failing, or loaded from the snapshot). */
  stale(): boolean {
    return !!this.st.lastError || this.st.source === 'snapshot';
  }
}

/** Finds a scope's app and environment in the bootstrap response (the token's access list). */
export function matchScope(
  boot: BootstrapResponse,
  cfg: ScopeConfig,
): { app: BootstrapApp; key: BootstrapEnvironmentKey } {
  let app: BootstrapApp | undefined;
  if (cfg.appId) {
    app = boot.apps.find((a) => a.id === cfg.appId);
    if (!app)
      throw new ScopeResolutionError(
        `scope ${cfg.name}: the token has no access to an app with id ${cfg.appId}`,
      );
  } else {
    const want = (cfg.app as string).toLowerCase();
    const hits = boot.apps.filter((a) => a.name.toLowerCase() === want);
    if (hits.length > 1)
      throw new ScopeResolutionError(
        `scope ${cfg.name}: app name ${cfg.app} is ambiguous; use appId (${hits.map((h) => h.id).join(', ')})`,
      );
    app = hits[0];
    if (!app)
      throw new ScopeResolutionError(
        `scope ${cfg.name}: the token has no access to an app named ${cfg.app} (it can see: ${boot.apps.map((a) => a.name).join(', ') || 'no apps'})`,
      );
  }
  const want = cfg.env.toLowerCase();
  const keys = app.environment_keys;
  let key = keys.find((k) => k.environment.name.toLowerCase() === want);
  if (!key) {
    const partial = keys.filter((k) => k.environment.name.toLowerCase().includes(want));
    if (partial.length === 1) key = partial[0];
  }
  if (!key)
    throw new ScopeResolutionError(
      `scope ${cfg.name}: the token has no access to environment ${cfg.env} of app ${app.name} (it can see: ${keys.map((k) => k.environment.name).join(', ') || 'none'})`,
    );
  return { app, key };
}
