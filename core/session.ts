/**
 * An end-to-end session, like the official SDKs (spec: phase-protocol.md §6.1): bootstrap once, rebuild the
 * account key from the token, unwrap each environment's seed and salt, then read and write ciphertext through
 * `/service/secrets/` and decrypt locally. The server never sees a plaintext key or value.
 *
 * Differences from `@phase.dev/phase-node` (deliberate): `update` keeps the stored comment and tags unless new
 * ones are given (the SDK clears both); environment names match case-insensitively everywhere; apps can be named;
 * errors are typed; references are resolved with cross-app and cross-environment lookups through this session.
 */
import { PhaseClient, type PhaseClientOptions } from './client';
import { type KeyPairHex, encryptAsymmetric, initCrypto, keyDigest } from './crypto';
import { nodeTransport } from './http';
import { canonicalSecretPath } from './secret-path';
import { DecryptPool } from './crypto-worker';
import {
  type DecryptedFields,
  type EnvironmentKeys,
  decryptSecret,
  decryptSecretList,
  openAccount,
  openEnvironment,
  wrappedEnvironmentKey,
} from './e2e-read';
import { CryptoError, PhaseBridgeError } from './errors';
import { type LocalSecret, ReferenceResolver, type ResolveMode } from './references';
import type {
  BootstrapApp,
  BootstrapEnvironmentKey,
  BootstrapResponse,
  EncryptedSecret,
  EncryptedSecretCreate,
  EncryptedSecretUpdate,
  SecretType,
} from './schemas';

// ---- errors ----

/** The session was used before `init()` resolved. */
export class SessionNotInitialisedError extends PhaseBridgeError {
  constructor() {
    super('session_not_initialised', 'call and await session.init() before using the session');
  }
}

/** The credential carries no key material (a bare `ServiceAccount <hex>` REST token cannot decrypt). */
export class MissingKeyMaterialError extends PhaseBridgeError {
  constructor() {
    super(
      'missing_key_material',
      'end-to-end access needs a full pss_service:/pss_user: token; a bare REST API token only works with the /v1 API',
    );
  }
}

/** No accessible app matches, or several apps share the name. */
export class AppNotFoundError extends PhaseBridgeError {
  constructor(message: string) {
    super('app_not_found', message);
  }
}

export class AmbiguousAppError extends PhaseBridgeError {
  readonly appIds: string[];
  constructor(name: string, appIds: string[]) {
    super(
      'app_ambiguous',
      `${appIds.length} accessible apps are named "${name}" (ids ${appIds.join(', ')}); select the app by id`,
    );
    this.appIds = appIds;
  }
}

export class EnvironmentNotFoundError extends PhaseBridgeError {
  constructor(message: string) {
    super('environment_not_found', message);
  }
}

export class SecretNotFoundError extends PhaseBridgeError {
  constructor(message: string) {
    super('secret_not_found', message);
  }
}

// ---- types ----

/** Select an app by id (exact) or by name (exact, case-insensitive). */
export type AppSelector = { appId: string; appName?: undefined } | { appName: string; appId?: undefined };

export type ScopeSelector = AppSelector & {
  /** Environment name (case-insensitive) or id. */
  env: string;
};

export interface SessionEnvironment {
  id: string;
  name: string;
  envType: string;
  /** Bumped by the server on every secret write: compare to detect change without fetching secrets. */
  updatedAt: string;
  /** The environment's public key (`identity_key`). */
  publicKey: string;
  /** Path restriction of the grant (phase-bridge extension), null when unrestricted. */
  paths: string[] | null;
}

export interface SessionApp {
  id: string;
  name: string;
  encryption: string;
  environments: SessionEnvironment[];
}

export interface DecryptedSecret {
  id: string;
  key: string;
  /** The effective value: the personal override's value when one is active. */
  value: string;
  comment: string;
  path: string;
  tags: string[];
  type: string;
  lifecycle: string;
  version: number;
  keyDigest: string;
  /** True when `value` comes from an active personal override (User tokens only). */
  overridden: boolean;
  createdAt?: string;
  updatedAt?: string;
  app: { id: string; name: string };
  environment: { id: string; name: string };
}

export interface GetOptions {
  /** Exact path; absent → every path. */
  path?: string;
  /** One key (case-insensitive: keys are stored uppercase). */
  key?: string;
  /** Keep secrets having any of these tags. */
  tags?: string[];
  /** Default `lenient`; `false` returns values with references verbatim. */
  resolveReferences?: ResolveMode | false;
}

export interface SecretInput {
  key: string;
  value: string;
  comment?: string;
  path?: string;
  tags?: string[];
  type?: SecretType;
  /** Personal override (User tokens only; always active on create). */
  override?: { value: string; isActive?: boolean };
}

/**
 * One update. With `id`, `key` renames the secret and `path` moves it. Without `id`, the secret is found by
 * `key` at `path` (default `/`) and neither changes. Omitted fields keep their stored values, tags included.
 */
export interface SecretUpdate {
  id?: string;
  key?: string;
  value?: string;
  comment?: string;
  path?: string;
  tags?: string[];
  type?: SecretType;
  override?: { value: string; isActive: boolean };
}

export interface DeleteOptions {
  ids?: string[];
  /** Keys to delete at `path` (default `/`). */
  keys?: string[];
  path?: string;
}

interface EnvKeyState {
  app: BootstrapApp;
  env: SessionEnvironment;
  /** Wrapped seed and salt the cached key pair came from (re-unwrapped only when they change). */
  wrappedSeed: string;
  wrappedSalt: string;
  keys?: EnvironmentKeys;
  error?: CryptoError;
}

export interface PhaseSessionOptions extends PhaseClientOptions {
  /** Use this client instead of building one from the other options. */
  client?: PhaseClient;
  /**
   * Worker threads that share the decryption of large reads (core/crypto-worker.ts), started by `init()` and
   * ended after 10 s without work. Default: `PHASE_BRIDGE_DECRYPT_THREADS` (a number, or `auto`), else `auto`:
   * cores − 1, at most 3. `0` keeps all decryption in the calling thread.
   */
  decryptThreads?: number;
}

/** Secret paths in core's one canonical form (a dot segment is refused before anything is sent). */
const normalisePath = (p: string | undefined): string => canonicalSecretPath(p);

function toPaths(p: string[] | string | null | undefined): string[] | null {
  if (p === null || p === undefined) return null;
  return Array.isArray(p) ? p : [p];
}

export class PhaseSession {
  readonly client: PhaseClient;
  private data?: BootstrapResponse;
  private account?: KeyPairHex;
  private envKeys = new Map<string, EnvKeyState>();
  private readonly pool: DecryptPool;

  constructor(opts: PhaseSessionOptions) {
    // node:http rather than the client's default global fetch: a cold process then never loads undici, which
    // alone cost ~100 ms of CPU in a cold init + get of 1,000 secrets (bench/read; the agent does the same).
    this.client =
      opts.client ??
      new PhaseClient({
        ...opts,
        transport: opts.transport ?? nodeTransport({ rejectUnauthorized: !opts.skipTlsVerification }),
      });
    if (!this.client.credential.pss) throw new MissingKeyMaterialError();
    this.pool = new DecryptPool({ threads: opts.decryptThreads });
  }

  /** Builds and initialises a session. */
  static async create(opts: PhaseSessionOptions): Promise<PhaseSession> {
    return new PhaseSession(opts).init();
  }

  /**
   * Bootstraps and unwraps every environment key. A key that fails to unwrap (or whose derived public key differs
   * from the server's `identity_key`) does not fail init: using that environment throws the recorded CryptoError.
   */
  async init(): Promise<this> {
    await initCrypto();
    this.pool.warm(); // the workers start while the bootstrap is on the wire
    await this.refresh();
    return this;
  }

  /** Ends the decryption worker threads now (they also end by themselves when idle, and never hold the process). */
  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * Re-reads `/service/secrets/tokens/` (access list and per-environment `updated_at`). Keys are re-unwrapped only
   * for environments that are new or whose wrapped seed changed. Returns the environments whose `updated_at` moved
   * (new environments included) since the previous bootstrap.
   */
  async refresh(): Promise<SessionEnvironment[]> {
    await initCrypto();
    const pss = this.client.credential.pss;
    if (!pss) throw new MissingKeyMaterialError();
    const data = await this.client.bootstrap();
    if (!this.account || this.data?.wrapped_key_share !== data.wrapped_key_share) {
      // Verified against the token's public key; a KeyVerificationError (a CryptoError) fails init.
      this.account = openAccount(pss, data.wrapped_key_share);
    }
    const changed: SessionEnvironment[] = [];
    const next = new Map<string, EnvKeyState>();
    for (const app of data.apps) {
      for (const ek of app.environment_keys) {
        const env: SessionEnvironment = {
          id: ek.environment.id,
          name: ek.environment.name,
          envType: ek.environment.env_type,
          updatedAt: ek.environment.updated_at,
          publicKey: ek.identity_key,
          paths: toPaths(ek.paths),
        };
        const prev = this.envKeys.get(env.id);
        if (!prev || prev.env.updatedAt !== env.updatedAt) changed.push(env);
        const state: EnvKeyState =
          prev &&
          prev.wrappedSeed === ek.wrapped_seed &&
          prev.wrappedSalt === ek.wrapped_salt &&
          prev.env.publicKey === env.publicKey
            ? { ...prev, app, env }
            : this.unwrap(app, env, ek);
        next.set(env.id, state);
      }
    }
    this.data = data;
    this.envKeys = next;
    return changed;
  }

  /** Opens and verifies an environment key; a failure is recorded and thrown when the environment is used. */
  private unwrap(app: BootstrapApp, env: SessionEnvironment, ek: BootstrapEnvironmentKey): EnvKeyState {
    const base = { app, env, wrappedSeed: ek.wrapped_seed, wrappedSalt: ek.wrapped_salt };
    try {
      return { ...base, keys: openEnvironment(this.account!, wrappedEnvironmentKey(ek, app.name)) };
    } catch (err) {
      if (err instanceof CryptoError) return { ...base, error: err };
      throw err;
    }
  }

  private get bootstrapData(): BootstrapResponse {
    if (!this.data) throw new SessionNotInitialisedError();
    return this.data;
  }

  /** The raw bootstrap response of the last `init()`/`refresh()` (ciphertext only). */
  get bootstrapResponse(): BootstrapResponse {
    return this.bootstrapData;
  }

  /** Service-account id (SA tokens) or organisation-member id (PATs). */
  get accountId(): string | undefined {
    return this.bootstrapData.account_id ?? this.bootstrapData.user_id;
  }

  get organisation(): { id: string; name: string } {
    return this.bootstrapData.organisation;
  }

  /** The access list: apps and the environments this token holds keys for. */
  apps(): SessionApp[] {
    const data = this.bootstrapData;
    return data.apps.map((a) => ({
      id: a.id,
      name: a.name,
      encryption: a.encryption,
      environments: a.environment_keys.map((ek) => this.envKeys.get(ek.environment.id)!.env),
    }));
  }

  /** `environment id → updated_at` from the last bootstrap (the sidecar's cheap change detector). */
  environmentVersions(): Map<string, string> {
    if (!this.data) throw new SessionNotInitialisedError();
    return new Map([...this.envKeys.values()].map((s) => [s.env.id, s.env.updatedAt]));
  }

  /** Resolves an app by id or exact case-insensitive name, and an environment by name (case-insensitive) or id. */
  resolveScope(sel: ScopeSelector): { app: SessionApp; env: SessionEnvironment } {
    const apps = this.apps();
    let app: SessionApp | undefined;
    if (sel.appId !== undefined) {
      app = apps.find((a) => a.id === sel.appId);
      if (!app) throw new AppNotFoundError(`no accessible app with id ${sel.appId}`);
    } else {
      const want = sel.appName.toLowerCase();
      const matches = apps.filter((a) => a.name.toLowerCase() === want);
      if (matches.length > 1)
        throw new AmbiguousAppError(
          sel.appName,
          matches.map((a) => a.id),
        );
      app = matches[0];
      if (!app) throw new AppNotFoundError(`no accessible app named "${sel.appName}"`);
    }
    const wantEnv = sel.env.toLowerCase();
    const env =
      app.environments.find((e) => e.name.toLowerCase() === wantEnv) ??
      app.environments.find((e) => e.id === sel.env);
    if (!env) {
      const names = app.environments.map((e) => e.name).join(', ') || 'none';
      throw new EnvironmentNotFoundError(
        `app "${app.name}" has no accessible environment "${sel.env}" (accessible: ${names})`,
      );
    }
    return { app, env };
  }

  private keysFor(envId: string): EnvironmentKeys {
    const state = this.envKeys.get(envId);
    if (!state) throw new EnvironmentNotFoundError(`no key for environment ${envId}`);
    if (state.error) throw state.error;
    return state.keys!;
  }

  /** The key digest Phase stores for `key` in an environment (uppercased, salted BLAKE2b). */
  digestFor(sel: ScopeSelector, key: string): string {
    const { env } = this.resolveScope(sel);
    return keyDigest(key, this.keysFor(env.id).salt);
  }

  private decryptOne(s: EncryptedSecret, app: SessionApp, env: SessionEnvironment): DecryptedSecret {
    return this.toDecrypted(s, decryptSecret(this.keysFor(env.id), s), app, env);
  }

  private toDecrypted(
    s: EncryptedSecret,
    { key, value, comment, overridden }: DecryptedFields,
    app: SessionApp,
    env: SessionEnvironment,
  ): DecryptedSecret {
    return {
      id: s.id,
      key,
      value,
      comment,
      path: s.path,
      tags: s.tags,
      type: s.type,
      lifecycle: s.lifecycle,
      version: s.version,
      keyDigest: s.keyDigest,
      overridden,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      app: { id: app.id, name: app.name },
      environment: { id: env.id, name: env.name },
    };
  }

  /**
   * Fetches and decrypts one scope, without reference resolution (the building block for caches). Filters:
   * exact `path`, one `key`, any of `tags`.
   */
  async fetchScope(
    sel: ScopeSelector,
    opts: Omit<GetOptions, 'resolveReferences'> = {},
  ): Promise<DecryptedSecret[]> {
    const { app, env } = this.resolveScope(sel);
    const k = this.keysFor(env.id);
    const enc = await this.client.listEncryptedSecrets(env.id, {
      path: opts.path !== undefined ? normalisePath(opts.path) : undefined,
      keyDigest: opts.key !== undefined ? keyDigest(opts.key, k.salt) : undefined,
      tags: opts.tags,
    });
    const seen = new Set<string>();
    const wantPath = opts.path !== undefined ? normalisePath(opts.path) : undefined;
    const wantKey = opts.key?.toUpperCase();
    const rows: EncryptedSecret[] = [];
    for (const s of enc) {
      if (seen.has(s.id)) continue; // the server's tag join can repeat rows
      seen.add(s.id);
      if (wantPath !== undefined && normalisePath(s.path) !== wantPath) continue;
      if (opts.tags && opts.tags.length > 0 && !s.tags.some((t) => opts.tags!.includes(t))) continue;
      rows.push(s);
    }
    const fields = await decryptSecretList(k, rows, this.pool);
    const out: DecryptedSecret[] = [];
    rows.forEach((s, i) => {
      const f = fields[i];
      if (f instanceof CryptoError) throw f;
      if (wantKey !== undefined && f.key.toUpperCase() !== wantKey) return;
      out.push(this.toDecrypted(s, f, app, env));
    });
    return out;
  }

  /** Decrypted secrets of a scope, with references resolved (lenient by default). */
  async get(sel: ScopeSelector & GetOptions): Promise<DecryptedSecret[]> {
    const secrets = await this.fetchScope(sel, { path: sel.path, key: sel.key, tags: sel.tags });
    const mode = sel.resolveReferences ?? 'lenient';
    if (mode === false) return secrets;
    return this.resolveAll(secrets, sel, mode);
  }

  /**
   * Resolves references in already decrypted secrets of one scope. Other scopes (`${staging.KEY}`,
   * `${app::env.KEY}`, `${/path/KEY}`) are fetched through this session, once per scope.
   */
  async resolveAll(
    secrets: DecryptedSecret[],
    sel: ScopeSelector,
    mode: ResolveMode,
  ): Promise<DecryptedSecret[]> {
    const { app, env } = this.resolveScope(sel);
    if (!secrets.some((s) => s.value.includes('${'))) return secrets; // nothing to resolve: skip the resolver
    const scopes = new Map<string, Promise<DecryptedSecret[]>>();
    const scopeSecrets = (appName: string, envName: string): Promise<DecryptedSecret[]> => {
      const id = `${appName.toLowerCase()}\u0000${envName.toLowerCase()}`;
      let p = scopes.get(id);
      if (!p) {
        p = Promise.resolve().then(() => {
          const target =
            appName.toLowerCase() === app.name.toLowerCase() ? { appId: app.id } : { appName: appName };
          return this.fetchScope({ ...target, env: envName });
        });
        scopes.set(id, p);
      }
      return p;
    };
    const local: LocalSecret[] = secrets.map((s) => ({
      app: app.name,
      env: env.name,
      path: s.path,
      key: s.key,
      value: s.value,
    }));
    const resolver = new ReferenceResolver({
      app: app.name,
      secrets: local,
      mode,
      lookup: async (target) => {
        const list = await scopeSecrets(target.app ?? app.name, target.env);
        const hit = list.find((s) => s.key === target.key && normalisePath(s.path) === target.path);
        return hit?.value;
      },
    });
    const out: DecryptedSecret[] = [];
    for (const s of secrets) {
      const value = await resolver.resolve(s.value, {
        app: app.name,
        env: env.name,
        path: s.path,
        key: s.key,
      });
      out.push({ ...s, value });
    }
    return out;
  }

  /** Creates secrets (keys uppercased) and returns them as stored. A duplicate (path, key) is a ConflictError. */
  async create(sel: ScopeSelector & { secrets: SecretInput[] }): Promise<DecryptedSecret[]> {
    const { env } = this.resolveScope(sel);
    const k = this.keysFor(env.id);
    const enc = (v: string): string => encryptAsymmetric(v, k.publicKey);
    const items: EncryptedSecretCreate[] = sel.secrets.map((s) => {
      const key = s.key.toUpperCase();
      const item: EncryptedSecretCreate = {
        key: enc(key),
        keyDigest: keyDigest(key, k.salt),
        value: enc(s.value),
        comment: s.comment ? enc(s.comment) : '',
        path: normalisePath(s.path),
        tags: s.tags ?? [],
      };
      if (s.type) item.type = s.type;
      if (s.override) item.override = { value: enc(s.override.value), isActive: s.override.isActive ?? true };
      return item;
    });
    if (items.length === 0) return [];
    await this.client.createEncryptedSecrets(env.id, items);
    const wanted = new Set(items.map((i) => `${i.path}\u0000${i.keyDigest}`));
    return this.readBack(sel, (s) => wanted.has(`${normalisePath(s.path)}\u0000${s.keyDigest}`));
  }

  /**
   * Updates secrets, keeping comment and tags unless new ones are given (Phase's E2E PUT clears omitted tags, so
   * the stored ones are resent). Returns the updated secrets as stored.
   */
  async update(sel: ScopeSelector & { secrets: SecretUpdate[] }): Promise<DecryptedSecret[]> {
    const { env } = this.resolveScope(sel);
    const k = this.keysFor(env.id);
    const enc = (v: string): string => encryptAsymmetric(v, k.publicKey);
    const current = await this.client.listEncryptedSecrets(env.id);
    const byId = new Map(current.map((s) => [s.id, s]));
    const items: EncryptedSecretUpdate[] = [];
    for (const u of sel.secrets) {
      let existing: EncryptedSecret | undefined;
      let renameTo: string | undefined;
      let moveTo: string | undefined;
      if (u.id !== undefined) {
        existing = byId.get(u.id);
        if (!existing)
          throw new SecretNotFoundError(`no secret with id ${u.id} in environment "${env.name}"`);
        renameTo = u.key;
        moveTo = u.path;
      } else {
        if (u.key === undefined) throw new SecretNotFoundError('an update needs an id or a key');
        const digest = keyDigest(u.key, k.salt);
        const path = normalisePath(u.path);
        existing = current.find((s) => s.keyDigest === digest && normalisePath(s.path) === path);
        if (!existing) {
          throw new SecretNotFoundError(
            `no secret ${u.key.toUpperCase()} at path ${path} in environment "${env.name}"`,
          );
        }
      }
      const item: EncryptedSecretUpdate = { id: existing.id, tags: u.tags ?? existing.tags };
      if (renameTo !== undefined) {
        const key = renameTo.toUpperCase();
        item.key = enc(key);
        item.keyDigest = keyDigest(key, k.salt);
      }
      if (u.value !== undefined) item.value = enc(u.value);
      if (u.comment !== undefined) item.comment = u.comment === '' ? '' : enc(u.comment);
      if (moveTo !== undefined) item.path = normalisePath(moveTo);
      if (u.type !== undefined) item.type = u.type;
      if (u.override !== undefined)
        item.override = { value: enc(u.override.value), isActive: u.override.isActive };
      items.push(item);
    }
    if (items.length === 0) return [];
    await this.client.updateEncryptedSecrets(env.id, items);
    const ids = new Set(items.map((i) => i.id));
    return this.readBack(sel, (s) => ids.has(s.id));
  }

  /** Re-reads the environment after a write and decrypts only the rows written (cheap in large environments). */
  private async readBack(
    sel: ScopeSelector,
    pick: (s: EncryptedSecret) => boolean,
  ): Promise<DecryptedSecret[]> {
    const { app, env } = this.resolveScope(sel);
    const rows = await this.client.listEncryptedSecrets(env.id);
    const seen = new Set<string>();
    const out: DecryptedSecret[] = [];
    for (const row of rows) {
      if (seen.has(row.id) || !pick(row)) continue;
      seen.add(row.id);
      out.push(this.decryptOne(row, app, env));
    }
    return out;
  }

  /** Deletes by id and/or by key at a path. Returns the deleted ids and the keys that were not found. */
  async delete(sel: ScopeSelector & DeleteOptions): Promise<{ deleted: string[]; keysNotFound: string[] }> {
    const { env } = this.resolveScope(sel);
    const ids = new Set(sel.ids ?? []);
    const keysNotFound: string[] = [];
    if (sel.keys && sel.keys.length > 0) {
      const k = this.keysFor(env.id);
      const path = normalisePath(sel.path);
      const current = await this.client.listEncryptedSecrets(env.id, { path });
      for (const key of sel.keys) {
        const digest = keyDigest(key, k.salt);
        const hit = current.find((s) => s.keyDigest === digest && normalisePath(s.path) === path);
        if (hit) ids.add(hit.id);
        else keysNotFound.push(key.toUpperCase());
      }
    }
    const deleted = [...ids];
    if (deleted.length > 0) await this.client.deleteEncryptedSecrets(env.id, deleted);
    return { deleted, keysNotFound };
  }

  toJSON(): Record<string, unknown> {
    return { client: this.client.toJSON(), initialised: this.data !== undefined };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `PhaseSession { initialised: ${this.data !== undefined} }`;
  }
}
