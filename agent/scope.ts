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

export class ScopeState {
  appId?: string;
  appName?: string;
  envId?: string;
  envName?: string;
  raw?: ScopeRaw;
  secrets?: PlainSecret[];
  /** When the upstream last confirmed (or delivered) this data: the base of `Age` and max-stale. */
  confirmedAt = 0;
  fetchedAt = 0;
  source: 'none' | 'upstream' | 'snapshot' = 'none';
  /** The latest refresh failed; serving continues as STALE until max-stale. */
  lastError?: ScopeProblem;
  /** Not serving, on purpose: token revoked/expired or access lost. */
  failClosed?: ScopeProblem;
  pendingFetch = false;
  /** Bootstrap identity of the token the data was fetched with (refetch after rotation). */
  fetchedWithToken?: string;
  lastSyncAt = 0;
  changes = 0;

  constructor(
    readonly cfg: ScopeConfig,
    private readonly cache: ViewCache,
  ) {}

  /** The precomputed view, held in the shared node-cache. */
  get view(): View | undefined {
    return this.cache.get(`scope:${this.cfg.name}`);
  }

  set view(v: View | undefined) {
    this.cache.set(`scope:${this.cfg.name}`, v);
  }

  get name(): string {
    return this.cfg.name;
  }

  /** Drops every decrypted value and ciphertext (fail closed). */
  wipe(problem: ScopeProblem): void {
    this.failClosed = problem;
    this.raw = undefined;
    this.secrets = undefined;
    this.view = undefined;
    this.source = 'none';
    this.pendingFetch = false;
  }

  /** Servable when not failed closed, holding data, and not older than max-stale. */
  servable(now: number, maxStaleMs: number): boolean {
    return !this.failClosed && !!this.view && now - this.confirmedAt <= maxStaleMs;
  }

  /** STALE when the data was not confirmed by the latest refresh (upstream failing, or loaded from the snapshot). */
  stale(): boolean {
    return !!this.lastError || this.source === 'snapshot';
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
