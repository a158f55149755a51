/**
 * Phase secret references (spec: phase-protocol.md §5): `${KEY}`, `${env.KEY}`, `${env./path/KEY}`, `${/path/KEY}`,
 * `${app::env.KEY}`, `${app::env./path/KEY}`. Parsing follows the Go SDK (§5.2); resolution is independent of HTTP:
 * values come from an in-memory set of secrets first, then from a caller-supplied lookup callback.
 *
 * Errors name references (which are secret *names*), never secret values.
 */
import { PhaseBridgeError } from './errors';

/** A parsed reference. `app`/`env` are absent when the reference means "the current one". */
export interface SecretReference {
  app?: string;
  env?: string;
  /** Normalised: leading `/`, no trailing `/`, `/` for the root. */
  path: string;
  key: string;
}

/**
 * A reference with the current scope filled in: the exact secret to look up. `app` stays absent only when the
 * reference is local and the caller never said which app is current.
 */
export interface ReferenceTarget {
  app?: string;
  env: string;
  path: string;
  key: string;
}

/** Where a value lives. References without an app or environment are resolved against this scope. */
export interface ReferenceScope {
  /** Absent: the resolver's current app (`ResolverOptions.app`). */
  app?: string;
  env: string;
  /** The value's own path. Does not change where `${KEY}` points (always `/`, §5.1); identifies the origin. */
  path?: string;
  /** The value's own key; with it, a secret referring to itself is reported as a cycle straight away. */
  key?: string;
}

/** A decrypted secret held in memory (sidecar cache, server request batch). */
export interface LocalSecret {
  /** Absent: the resolver's current app (`ResolverOptions.app`). */
  app?: string;
  env: string;
  /** Defaults to `/`; normalised like reference paths. */
  path?: string;
  key: string;
  value: string;
}

/** What the lookup callback is told besides the target. */
export interface LookupContext {
  /** The reference text as written, e.g. `${staging.DEBUG}`. */
  reference: string;
  /** The scope of the value that contains the reference. */
  from: ReferenceScope;
  /** 1 for references in the value being resolved, 2 for references inside their values, and so on. */
  depth: number;
}

/**
 * Fetches a secret the in-memory set does not hold. Return the value (still unresolved: nested references are
 * resolved by the resolver), or `undefined`/`null` when the secret does not exist or is not accessible.
 * Must match app and environment names case-insensitively and keys case-sensitively.
 * Throwing counts as a failed lookup (`reason: 'lookup'`).
 */
export type ReferenceLookup = (
  target: ReferenceTarget,
  context: LookupContext,
) => string | undefined | null | Promise<string | undefined | null>;

/** `lenient`: broken references stay verbatim. `strict`: the first broken reference throws. */
export type ResolveMode = 'lenient' | 'strict';

/** Why a reference could not be resolved. */
export type ReferenceFailure = 'missing' | 'cycle' | 'depth' | 'invalid' | 'lookup' | 'too_long';

export interface ResolverOptions {
  /** The current app's name: the app of local secrets and scopes that do not name one. */
  app?: string;
  /** Secrets already in memory; consulted before `lookup`. */
  secrets?: Iterable<LocalSecret>;
  /** Fallback for secrets not in `secrets`. Without it, such references are `missing`. */
  lookup?: ReferenceLookup;
  /** Default `lenient` (the behaviour of Phase's server and SDKs unless asked otherwise). */
  mode?: ResolveMode;
  /** Maximum nesting of references; default 25 (the Phase server's limit). */
  maxDepth?: number;
  /** Maximum length (UTF-16 code units) of any resolved value; guards against exponential expansion. Default 1 MiB. */
  maxLength?: number;
  /** Lenient mode only: called for every reference left verbatim (for debug logging; holds no secret values). */
  onUnresolved?: (error: ReferenceResolutionError) => void;
}

export const DEFAULT_MAX_DEPTH = 25;
export const DEFAULT_MAX_LENGTH = 1024 * 1024;

/** A reference's inner text does not follow the syntax (§5.1/§5.2). */
export class ReferenceSyntaxError extends PhaseBridgeError {
  constructor(message: string) {
    super('reference_syntax', message);
  }
}

/** A reference could not be resolved (strict mode throws it; lenient mode hands it to `onUnresolved`). */
export class ReferenceResolutionError extends PhaseBridgeError {
  readonly reason: ReferenceFailure;
  /** The broken reference as written, e.g. `${staging.DEBUG}`. */
  readonly reference: string;
  /** The secret the reference points to, when it parsed. */
  readonly target?: ReferenceTarget;
  /** References followed from the resolved value down to (and including) the broken one. */
  readonly chain: readonly string[];

  constructor(
    reason: ReferenceFailure,
    reference: string,
    detail: string,
    extra: { target?: ReferenceTarget; chain: readonly string[]; cause?: unknown },
  ) {
    const via = extra.chain.length > 1 ? ` (via ${extra.chain.join(' -> ')})` : '';
    super(`reference_${reason}`, `cannot resolve ${reference}: ${detail}${via}`, { cause: extra.cause });
    this.reason = reason;
    this.reference = reference;
    this.target = extra.target;
    this.chain = extra.chain;
  }
}

/**
 * Matches `${...}` but not `${{...}}` (Railway/GitHub syntax, §5.1). Braces are not allowed inside, like the
 * server's regexes; the Go SDK's `[^}]+` would also accept a `{` inside, which no valid reference contains.
 */
const REFERENCE_PATTERN = /\$\{(?!\{)([^{}]+)\}/g;

/** `""` → `/`, leading `/` added, trailing `/` stripped (§5.2). */
export function normalizeReferencePath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/**
 * Parses a reference's inner text (`staging./api/KEY`), or the whole `${...}`. Go SDK rules (§5.2): split once at
 * `::` for the app, then at the first `.` for the environment, then at the last `/` for path and key.
 * Stricter than Go where Go would silently look up an empty name: an empty app, environment or key is an error.
 */
export function parseReference(input: string): SecretReference {
  if (typeof input !== 'string') throw new ReferenceSyntaxError('a reference must be a string');
  let body = input.startsWith('${') && input.endsWith('}') ? input.slice(2, -1) : input;
  const shown = `\${${body}}`;
  if (body === '') throw new ReferenceSyntaxError(`invalid reference ${shown}: it is empty`);
  if (/[{}]/.test(body))
    throw new ReferenceSyntaxError(`invalid reference ${shown}: braces are not allowed inside`);

  const out: Partial<SecretReference> = {};
  const appSep = body.indexOf('::');
  const crossApp = appSep !== -1;
  if (crossApp) {
    out.app = body.slice(0, appSep);
    body = body.slice(appSep + 2);
    if (out.app === '')
      throw new ReferenceSyntaxError(`invalid reference ${shown}: the app name before '::' is empty`);
  }
  const envSep = body.indexOf('.');
  if (envSep !== -1) {
    out.env = body.slice(0, envSep);
    body = body.slice(envSep + 1);
    if (out.env === '') {
      throw new ReferenceSyntaxError(`invalid reference ${shown}: the environment name before '.' is empty`);
    }
  } else if (crossApp) {
    throw new ReferenceSyntaxError(
      `invalid reference ${shown}: cross-app references must name an environment (app::env.KEY)`,
    );
  }
  const slash = body.lastIndexOf('/');
  out.path = slash === -1 ? '/' : normalizeReferencePath(body.slice(0, slash));
  out.key = slash === -1 ? body : body.slice(slash + 1);
  if (out.key === '') throw new ReferenceSyntaxError(`invalid reference ${shown}: the key is empty`);
  return out as SecretReference;
}

/** The canonical `${...}` text for a reference (root path omitted). */
export function formatReference(ref: SecretReference): string {
  const app = ref.app !== undefined ? `${ref.app}::` : '';
  const env = ref.env !== undefined ? `${ref.env}.` : '';
  const path = normalizeReferencePath(ref.path);
  return `\${${app}${env}${path === '/' ? '' : `${path}/`}${ref.key}}`;
}

/** One `${...}` occurrence in a value. */
export type ReferenceMatch = {
  /** The full text, e.g. `${staging.DEBUG}`. */
  text: string;
  /** Offsets in the value: `value.slice(start, end) === text`. */
  start: number;
  end: number;
} & ({ valid: true; reference: SecretReference } | { valid: false; error: ReferenceSyntaxError });

/** Every `${...}` in a value, in order, parsed (invalid ones included, with their syntax error). */
export function extractReferences(value: string): ReferenceMatch[] {
  if (typeof value !== 'string' || !value.includes('${')) return [];
  const out: ReferenceMatch[] = [];
  for (const m of value.matchAll(REFERENCE_PATTERN)) {
    const base = { text: m[0], start: m.index, end: m.index + m[0].length };
    try {
      out.push({ ...base, valid: true, reference: parseReference(m[1]) });
    } catch (error) {
      if (!(error instanceof ReferenceSyntaxError)) throw error;
      out.push({ ...base, valid: false, error });
    }
  }
  return out;
}

/** Whether a value contains anything that looks like a reference (valid or not). */
export function hasReferences(value: string): boolean {
  return extractReferences(value).length > 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution. The algorithm is written once as a generator that yields lookup requests; a synchronous and an
// asynchronous driver answer them, so both variants behave identically.

type LookupOutcome = { ok: true; value: string | undefined } | { ok: false; error: unknown };
interface LookupRequest {
  target: ReferenceTarget;
  context: LookupContext;
}
interface Resolved {
  value: string;
  /** The result depended on the path taken (a cycle or the depth limit was hit), so it must not be memoised. */
  pathDependent: boolean;
  /** Levels of references below this value (0: none were substituted). */
  height: number;
}
type Resolution = Generator<LookupRequest, Resolved, LookupOutcome>;

const lower = (s: string | undefined): string | undefined => s?.toLowerCase();

/** A local secret with its path normalised. */
type LocalEntry = LocalSecret & { path: string };

/**
 * Resolves references against a fixed snapshot of secrets. Lookup results and resolved values are memoised for the
 * resolver's lifetime: create one per snapshot (per fetch, per request), not one per process.
 */
export class ReferenceResolver {
  private readonly currentApp?: string;
  private readonly secrets: readonly LocalSecret[];
  /** The local secrets by identity, built on the first reference that needs it (most values have none). */
  private localIndex?: Map<string, LocalEntry[]>;
  private localEntries?: LocalEntry[];
  private readonly lookupFn?: ReferenceLookup;
  private readonly mode: ResolveMode;
  private readonly maxDepth: number;
  private readonly maxLength: number;
  private readonly onUnresolved?: (error: ReferenceResolutionError) => void;
  private readonly lookups = new Map<string, LookupOutcome>();
  private readonly memo = new Map<string, { value: string; height: number }>();

  constructor(options: ResolverOptions = {}) {
    this.currentApp = options.app;
    this.lookupFn = options.lookup;
    this.mode = options.mode ?? 'lenient';
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
    this.onUnresolved = options.onUnresolved;
    this.secrets = Array.from(options.secrets ?? []); // a one-shot iterable is read now, as before
  }

  /** The local secrets with normalised paths, in the order given. */
  private get localList(): LocalEntry[] {
    this.localEntries ??= this.secrets.map((secret) => ({
      ...secret,
      path: normalizeReferencePath(secret.path ?? '/'),
    }));
    return this.localEntries;
  }

  private get local(): Map<string, LocalEntry[]> {
    if (this.localIndex) return this.localIndex;
    const index = new Map<string, LocalEntry[]>();
    for (const entry of this.localList) {
      const id = this.identity({ app: entry.app, env: entry.env, path: entry.path, key: entry.key });
      const bucket = index.get(id);
      if (bucket) bucket.push(entry);
      else index.set(id, [entry]);
    }
    this.localIndex = index;
    return index;
  }

  /** Resolves every reference in `value`, which lives in `scope`. The lookup callback may be async. */
  async resolve(value: string, scope: ReferenceScope): Promise<string> {
    const gen = this.resolveRoot(value, scope);
    let step = gen.next();
    while (!step.done) {
      let outcome: LookupOutcome;
      try {
        outcome = this.checkResult(await this.callLookup(step.value));
      } catch (error) {
        outcome = { ok: false, error };
      }
      step = gen.next(outcome);
    }
    return step.value.value;
  }

  /** Like `resolve`, for synchronous lookups (or none). A lookup returning a Promise counts as a failed lookup. */
  resolveSync(value: string, scope: ReferenceScope): string {
    const gen = this.resolveRoot(value, scope);
    let step = gen.next();
    while (!step.done) {
      let outcome: LookupOutcome;
      try {
        const result = this.callLookup(step.value);
        if (isThenable(result)) {
          Promise.resolve(result).catch(() => undefined); // nobody awaits it: keep it from surfacing as unhandled
          outcome = {
            ok: false,
            error: new TypeError('the lookup returned a Promise; use the async resolve()'),
          };
        } else {
          outcome = this.checkResult(result);
        }
      } catch (error) {
        outcome = { ok: false, error };
      }
      step = gen.next(outcome);
    }
    return step.value.value;
  }

  /** Every in-memory secret with its value resolved in its own scope, in input order. */
  async resolveAll(): Promise<LocalSecret[]> {
    const out: LocalSecret[] = [];
    for (const s of this.localList) out.push({ ...s, value: await this.resolve(s.value, this.scopeOf(s)) });
    return out;
  }

  /** Synchronous `resolveAll`. */
  resolveAllSync(): LocalSecret[] {
    return this.localList.map((s) => ({ ...s, value: this.resolveSync(s.value, this.scopeOf(s)) }));
  }

  private scopeOf(s: LocalSecret): ReferenceScope {
    return { app: s.app, env: s.env, path: s.path, key: s.key };
  }

  private callLookup(req: LookupRequest): ReturnType<ReferenceLookup> {
    if (!this.lookupFn) return undefined;
    return this.lookupFn({ ...req.target }, req.context);
  }

  private checkResult(result: unknown): LookupOutcome {
    if (result === undefined || result === null) return { ok: true, value: undefined };
    if (typeof result === 'string') return { ok: true, value: result };
    return {
      ok: false,
      error: new TypeError(`the lookup returned ${typeof result}, expected a string or undefined`),
    };
  }

  /** Case-insensitive app/env, exact path/key: the identity used for the visited set and the caches. */
  private identity(t: { app?: string; env: string; path: string; key: string }): string {
    return JSON.stringify([lower(t.app ?? this.currentApp) ?? null, t.env.toLowerCase(), t.path, t.key]);
  }

  private findLocal(target: ReferenceTarget): LocalSecret | undefined {
    const bucket = this.local.get(this.identity(target));
    if (!bucket) return undefined;
    // Environment (and app) matched exactly first, then case-insensitively (§5.2).
    const wantApp = target.app ?? this.currentApp;
    return bucket.find((s) => s.env === target.env && (s.app ?? this.currentApp) === wantApp) ?? bucket[0];
  }

  private *resolveRoot(value: string, scope: ReferenceScope): Resolution {
    if (typeof value !== 'string') throw new TypeError('value must be a string');
    if (typeof scope?.env !== 'string') throw new TypeError('scope.env must be a string');
    const visited = new Set<string>();
    if (scope.key !== undefined) {
      visited.add(
        this.identity({
          app: scope.app,
          env: scope.env,
          path: normalizeReferencePath(scope.path ?? '/'),
          key: scope.key,
        }),
      );
    }
    return yield* this.resolveValue(value, scope, visited, [], 1);
  }

  private *resolveValue(
    value: string,
    scope: ReferenceScope,
    visited: ReadonlySet<string>,
    chain: readonly string[],
    depth: number,
  ): Resolution {
    if (!value.includes('${')) return { value, pathDependent: false, height: 0 };
    let out = '';
    let last = 0;
    let pathDependent = false;
    let height = 0;
    for (const m of value.matchAll(REFERENCE_PATTERN)) {
      const text = m[0];
      out += value.slice(last, m.index);
      last = m.index + text.length;
      const here = [...chain, text];
      const fail = (
        reason: ReferenceFailure,
        detail: string,
        target?: ReferenceTarget,
        cause?: unknown,
      ): void => {
        const error = new ReferenceResolutionError(reason, text, detail, { target, chain: here, cause });
        if (this.mode === 'strict') throw error;
        this.onUnresolved?.(error);
        out += text;
      };

      let ref: SecretReference;
      try {
        ref = parseReference(m[1]);
      } catch (error) {
        fail('invalid', error instanceof Error ? error.message : 'invalid syntax', undefined, error);
        continue;
      }
      const target: ReferenceTarget = {
        app: ref.app ?? scope.app ?? this.currentApp,
        env: ref.env ?? scope.env,
        path: ref.path,
        key: ref.key,
      };
      if (target.app === undefined) delete target.app;
      const id = this.identity(target);
      if (visited.has(id)) {
        pathDependent = true;
        fail('cycle', 'circular reference detected', target);
        continue;
      }
      if (depth > this.maxDepth) {
        pathDependent = true;
        fail('depth', `references are nested more than ${this.maxDepth} levels deep`, target);
        continue;
      }

      const found = this.findLocal(target);
      // Keyed on the exact entry found, so the exact-case environment match is never shadowed by another spelling.
      const memoKey = found
        ? `local:${JSON.stringify([found.app ?? null, found.env, found.path, found.key])}`
        : id;
      // A memoised expansion is reused only where it fits under the depth limit, so results never depend on order.
      let resolved = this.memo.get(memoKey);
      if (resolved !== undefined && depth + resolved.height > this.maxDepth) resolved = undefined;
      if (resolved === undefined) {
        let raw: string | undefined;
        let nextScope: ReferenceScope;
        if (found) {
          raw = found.value;
          nextScope = { app: found.app, env: found.env, path: found.path, key: found.key };
        } else {
          let outcome = this.lookups.get(id);
          if (!outcome) {
            outcome = yield {
              target: { ...target },
              context: { reference: text, from: { ...scope }, depth },
            };
            this.lookups.set(id, outcome);
          }
          if (!outcome.ok) {
            const why = outcome.error instanceof Error ? outcome.error.message : 'unknown error';
            fail('lookup', `looking up ${describe(target)} failed: ${why}`, target, outcome.error);
            continue;
          }
          raw = outcome.value;
          nextScope = { app: target.app, env: target.env, path: target.path, key: target.key };
        }
        if (raw === undefined) {
          fail('missing', `no secret ${describe(target)}`, target);
          continue;
        }
        const nested = yield* this.resolveValue(raw, nextScope, new Set(visited).add(id), here, depth + 1);
        resolved = { value: nested.value, height: nested.height };
        if (nested.pathDependent) pathDependent = true;
        else this.memo.set(memoKey, resolved);
      }
      if (out.length + resolved.value.length > this.maxLength) {
        fail('too_long', `the resolved value would exceed ${this.maxLength} characters`, target);
        continue;
      }
      out += resolved.value;
      height = Math.max(height, resolved.height + 1);
    }
    out += value.slice(last);
    return { value: out, pathDependent, height };
  }
}

function describe(t: ReferenceTarget): string {
  const app = t.app !== undefined ? ` of app ${t.app}` : '';
  return `${t.key} at path ${t.path} in environment ${t.env}${app}`;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

/** Options for the one-shot helpers: the resolver's options plus the scope of the value. */
export interface ResolveOptions extends ResolverOptions {
  scope: ReferenceScope;
}

/** Resolves the references in one value (async lookups allowed). */
export function resolveReferences(value: string, options: ResolveOptions): Promise<string> {
  return new ReferenceResolver(options).resolve(value, options.scope);
}

/** Resolves the references in one value with a synchronous lookup (or none). */
export function resolveReferencesSync(value: string, options: ResolveOptions): string {
  return new ReferenceResolver(options).resolveSync(value, options.scope);
}
