/**
 * Server-side secret reference resolution for `/v1/secrets/` GET, with the Phase server's semantics
 * (phase-protocol.md §5.4), which differ from the SDKs' parser in `core/references.ts`: three regexes applied in
 * order (cross-app, cross-env, local; a local reference cannot contain `.`), the referenced key digested without
 * uppercasing, access checked per referenced environment (no access → the partially resolved value is returned),
 * depth ≤ 25, cycles left literal, nothing fails the request.
 */
import { decryptAsymmetric, digest } from '../core/crypto';
import { normalizeReferencePath } from '../core/references';
import type { Principal, ServerContext } from './context';
import type { EnvironmentTable } from './db/schema';
import { holdsEnvKey, membershipOf, pathAllowed } from './access';

const CROSS_APP = /\$\{(?!\{)([^{}]+?)::([^{}]+?)\.([^{}]+?)\}/g;
const CROSS_ENV = /\$\{(?!\{)(?![^{}]*::)([^{}.]+?)\.([^{}]+?)\}/g;
const LOCAL = /\$\{(?!\{)([^{}.]+?)\}/g;
const MAX_DEPTH = 25;

interface Scope {
  appId: string;
  env: EnvironmentTable;
}

/** Resolves references in values for one request; caches lookups and access checks. */
export class ServerReferenceResolver {
  private readonly envAccess = new Map<string, boolean>();
  private readonly envsByApp = new Map<string, EnvironmentTable[]>();
  private readonly values = new Map<string, string | null>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly p: Principal,
  ) {}

  async resolve(value: string, scope: Scope): Promise<string> {
    if (!value.includes('${')) return value;
    const out = await this.resolveInner(value, scope, 0, new Set());
    return out.value;
  }

  private async resolveInner(
    value: string,
    scope: Scope,
    depth: number,
    visiting: Set<string>,
  ): Promise<{ value: string; stop: boolean }> {
    let current = value;
    const passes: Array<
      [RegExp, (m: RegExpExecArray) => Promise<{ app?: string; env?: string; rest: string }>]
    > = [
      [CROSS_APP, async (m) => ({ app: m[1], env: m[2], rest: m[3] })],
      [CROSS_ENV, async (m) => ({ env: m[1], rest: m[2] })],
      [LOCAL, async (m) => ({ rest: m[1] })],
    ];
    for (const [re, parts] of passes) {
      const matches = [...current.matchAll(new RegExp(re.source, 'g'))];
      for (const m of matches) {
        const { app, env, rest } = await parts(m as RegExpExecArray);
        const slash = rest.lastIndexOf('/');
        const path = normalizeReferencePath(slash >= 0 ? rest.slice(0, slash) : '/');
        const key = slash >= 0 ? rest.slice(slash + 1) : rest;
        const target = await this.targetEnv(scope, app, env);
        if (!target) continue;
        // Path restrictions (extension) apply to referenced secrets too, so a reference cannot leak a hidden path.
        if (!(await this.canAccess(target.env.id)) || !(await this.pathOk(target.appId, path))) {
          return { value: current, stop: true };
        }
        const material = await this.ctx.envKeys.get(this.ctx.store.db, target.env.id);
        if (!material) continue;
        const d = digest(key, material.salt);
        const id = `${target.env.id}|${path}|${d}`;
        if (visiting.has(id) || depth + 1 > MAX_DEPTH) continue;
        let raw = this.values.get(id);
        if (raw === undefined) {
          const row = await this.ctx.store.db
            .selectFrom('secrets')
            .select('value')
            .where('environment_id', '=', target.env.id)
            .where('path', '=', path)
            .where('key_digest', '=', d)
            .where('deleted_at', 'is', null)
            .executeTakeFirst();
          try {
            raw = row ? decryptAsymmetric(row.value, material.privateKey, material.publicKey) : null;
          } catch {
            raw = null; // undecryptable (client-written garbage): treated as missing
          }
          this.values.set(id, raw);
        }
        if (raw === null) continue;
        visiting.add(id);
        const nested = await this.resolveInner(raw, target, depth + 1, visiting);
        visiting.delete(id);
        current = current.split(m[0]).join(nested.value);
        if (nested.stop) return { value: current, stop: true };
      }
    }
    return { value: current, stop: false };
  }

  private async targetEnv(scope: Scope, appName?: string, envName?: string): Promise<Scope | undefined> {
    let appId = scope.appId;
    if (appName !== undefined) {
      const apps = await this.ctx.store.db
        .selectFrom('apps')
        .select(['id', 'sse_enabled', 'name'])
        .where('org_id', '=', this.p.orgId)
        .execute();
      const hits = apps.filter((a) => a.name.toLowerCase() === appName.toLowerCase());
      if (hits.length !== 1 || !hits[0].sse_enabled) return undefined;
      appId = hits[0].id;
    }
    if (envName === undefined) return { appId, env: scope.env };
    let envs = this.envsByApp.get(appId);
    if (!envs) {
      envs = await this.ctx.store.db
        .selectFrom('environments')
        .selectAll()
        .where('app_id', '=', appId)
        .execute();
      this.envsByApp.set(appId, envs);
    }
    const env = envs.find((e) => e.name.toLowerCase() === envName.toLowerCase());
    return env ? { appId, env } : undefined;
  }

  private readonly appPaths = new Map<string, string[] | null>();

  private async pathOk(appId: string, path: string): Promise<boolean> {
    let paths = this.appPaths.get(appId);
    if (paths === undefined) {
      paths = (await membershipOf(this.ctx.store.db, appId, this.p))?.paths ?? null;
      this.appPaths.set(appId, paths);
    }
    return pathAllowed(paths, path);
  }

  private async canAccess(envId: string): Promise<boolean> {
    let ok = this.envAccess.get(envId);
    if (ok === undefined) {
      ok = await holdsEnvKey(this.ctx.store.db, envId, this.p);
      this.envAccess.set(envId, ok);
    }
    return ok;
  }
}
