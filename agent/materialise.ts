/**
 * The sync's materialise part: from a scope's ciphertext to its precomputed view. Unwraps and verifies the keys
 * (memoised), decrypts in chunks (a ciphertext unchanged since the previous sync is not decrypted again), resolves
 * references (fetching targets outside the configured scopes through the caller, within the budget), and builds the
 * view. It changes no scope state: it returns what to apply (agent/sync.ts does, through the scope's transitions).
 */
import type { BootstrapEnvironmentKey, BootstrapResponse, EncryptedSecret } from '../core/schemas';
import {
  ReferenceResolver,
  type LocalSecret,
  type ReferenceResolutionError,
  type ReferenceTarget,
} from '../core/references';
import type { PssToken } from '../core/token';
import type { AgentConfig } from './config';
import { KeyRing, decryptSecrets, type PlainMemo, type PlainSecret } from './decrypt';
import type { Logger } from './logger';
import type { AgentMetrics } from './metrics';
import { matchScope, type DependencyData, type ScopeProblem, type ScopeState } from './scope';
import { buildView, type View } from './views';

/** Secrets decrypted between two yields to the event loop during a sync. */
const DECRYPT_CHUNK = 100;

type KeyPair = ReturnType<KeyRing['accountKey']>;
type EnvKeys = ReturnType<KeyRing['envKey']>;

export interface MaterialiseInput {
  scope: ScopeState;
  boot: BootstrapResponse;
  account: KeyPair;
  /** Every configured scope (references between them resolve locally). */
  scopes: readonly ScopeState[];
  /**
   * Online: fetches a reference target's ciphertext (undefined when the budget allows no call now; throws when the
   * call fails). Absent offline (the snapshot): only the targets held are used.
   */
  fetchDependency?: (envId: string, path: string) => Promise<EncryptedSecret[] | undefined>;
}

export type MaterialiseResult =
  | { ok: true; secrets: PlainSecret[]; view: View; deps?: DependencyData[] }
  | { ok: false; problem: ScopeProblem };

export class Materialiser {
  private readonly keyring = new KeyRing();
  /** Plaintext by ciphertext per scope/environment, from the latest sync (see PlainMemo). */
  private readonly memos = new Map<string, Map<string, string>>();
  /** Materialisations so far: what allocates, so what memory upkeep follows. */
  count = 0;
  /** Phase timings of the latest materialisation, in ms. */
  readonly timings = { decryptOnlyMs: 0, decryptMs: 0, viewsMs: 0 };

  constructor(
    private readonly cfg: Pick<AgentConfig, 'resolveReferences' | 'strictReferences'>,
    private readonly log: Logger,
    private readonly metrics: AgentMetrics,
    private readonly now: () => number,
  ) {}

  /** The account key pair from the token and the server's wrapped key share (core's checks; throws CryptoError). */
  accountKey(token: PssToken, wrappedKeyShare: string): KeyPair {
    return this.keyring.accountKey(token, wrappedKeyShare);
  }

  /** An environment's keys, verified against the server's identity key (throws CryptoError). */
  envKey(account: KeyPair, key: BootstrapEnvironmentKey, appName?: string): EnvKeys {
    return this.keyring.envKey(account, key, appName);
  }

  /** Forgets every plaintext memo and unwrapped key (fail closed, token rotation). */
  forget(): void {
    this.memos.clear();
    this.keyring.clear();
  }

  /** Forgets the unwrapped keys only (a new token). */
  forgetKeys(): void {
    this.keyring.clear();
  }

  async materialise(input: MaterialiseInput): Promise<MaterialiseResult> {
    const { scope: s, boot, account } = input;
    const raw = s.raw;
    if (!raw) throw new Error(`scope ${s.name} holds no ciphertext`);
    this.count++;
    const end = this.metrics.decryptSeconds.startTimer();
    const td = performance.now();
    try {
      const match = matchScope(boot, s.cfg);
      const envKey = this.keyring.envKey(account, match.key, match.app.name);
      const plain = await this.decryptList(s.name, raw.secrets, envKey, s.cfg.tags);
      this.timings.decryptOnlyMs = performance.now() - td;
      let secrets = plain;
      let deps: DependencyData[] | undefined;
      // Building the resolver costs more than decrypting: only when some value may hold a reference.
      if (this.cfg.resolveReferences && plain.some((x) => x.value.includes('${'))) {
        const r = await this.resolve(input, plain, match);
        if (!r.ok) return r;
        secrets = r.secrets;
        deps = r.deps;
      }
      this.timings.decryptMs = performance.now() - td;
      const tv = performance.now();
      const view = buildView([
        { scope: s.name, app: match.app.name, environment: match.key.environment.name, secrets },
      ]);
      this.timings.viewsMs = performance.now() - tv;
      return { ok: true, secrets, view, deps };
    } finally {
      end();
    }
  }

  private async resolve(
    input: MaterialiseInput,
    plain: PlainSecret[],
    match: ReturnType<typeof matchScope>,
  ): Promise<
    { ok: true; secrets: PlainSecret[]; deps: DependencyData[] } | { ok: false; problem: ScopeProblem }
  > {
    const { scope: s, boot, account, fetchDependency } = input;
    const online = fetchDependency !== undefined;
    const raw = s.raw!;
    const deps = new Map<string, DependencyData>();
    const depValues = new Map<string, Promise<Map<string, string>>>();
    const byDep = new Map<string, DependencyData>(raw.deps.map((d) => [`${d.envId}|${d.path}`, d]));
    const local: LocalSecret[] = [];
    for (const other of input.scopes) {
      const list = other === s ? plain : other.secrets;
      if (!list || !other.appName || !other.envName) continue;
      for (const x of list)
        local.push({ app: other.appName, env: other.envName, path: x.path, key: x.key, value: x.value });
    }
    const lookup = async (t: ReferenceTarget): Promise<string | undefined> => {
      const appName = t.app ?? match.app.name;
      const app = boot.apps.find((a) => a.name.toLowerCase() === appName.toLowerCase());
      const key = app?.environment_keys.find((k) => k.environment.name.toLowerCase() === t.env.toLowerCase());
      if (!key) return undefined;
      const id = `${key.environment.id}|${t.path}`;
      let dep = deps.get(id);
      if (!dep) {
        const old = byDep.get(id);
        if (old && (!online || old.updatedAt === key.environment.updated_at)) dep = old;
        else {
          let list: EncryptedSecret[] | undefined;
          let updatedAt = key.environment.updated_at;
          if (fetchDependency) {
            try {
              list = await fetchDependency(key.environment.id, t.path);
            } catch (err) {
              list = [];
              updatedAt = ''; // refetch next cycle
              this.log.warn({ scope: s.name, err: (err as Error).message }, 'reference lookup failed');
            }
          }
          if (list) dep = { envId: key.environment.id, path: t.path, updatedAt, secrets: list };
          else if (old) dep = { ...old, updatedAt: '' };
          else return undefined;
        }
        deps.set(id, dep);
      }
      // Each target list is decrypted once per resolution, however many of its keys are referenced.
      let values = depValues.get(id);
      if (!values) {
        const envKey2 = this.keyring.envKey(account, key, app?.name); // throws: a failed lookup
        const d = dep;
        values = this.decryptList(s.name, d.secrets, envKey2, undefined, `dep:${id}`).then((list) => {
          const byKey = new Map<string, string>();
          for (const x of list) if (!byKey.has(x.key)) byKey.set(x.key, x.value);
          return byKey;
        });
        depValues.set(id, values);
      }
      return (await values).get(t.key);
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
    const secrets: PlainSecret[] = [];
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
      this.metrics.syncErrors.inc({ scope: s.name, code: 'reference' });
      return { ok: false, problem: { code: 'reference', message: (err as Error).message, at: this.now() } };
    }
    return { ok: true, secrets, deps: [...deps.values()] };
  }

  /**
   * Decrypts in chunks, yielding to the event loop between them, so a large sync never stalls requests (they keep
   * being served from the previous view meanwhile).
   */
  private async decryptList(
    scope: string,
    list: EncryptedSecret[],
    envKey: EnvKeys,
    tags?: string[],
    memoKey?: string,
  ): Promise<PlainSecret[]> {
    const id = `${memoKey ?? scope}|${envKey.publicKey}`;
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
            this.metrics.decryptErrors.inc({ scope });
            this.log.warn({ scope, secretId: item.id }, 'secret did not decrypt; skipped');
          }
        }
      }
    }
    return out;
  }
}
