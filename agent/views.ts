/**
 * Response bodies, built from one sync's secrets and kept until the next: the request hot path only picks a Buffer
 * and writes it. A view is one scope's secrets or the merge of all scopes (later scopes win on a key clash).
 *
 * `GET /v1/secrets` (the flat object) is built with the view; every other body (one per key, each export format, the
 * metadata listing) is built on its first request and kept: a sync then allocates a fraction of what it did when
 * every body was prebuilt, which kept a pushed-to agent 6 MB under its former peak (docs/performance.md).
 */
import { createHash, type Hash } from 'node:crypto';
import type { PlainSecret } from './decrypt';
import { renderFormat } from './formats';
import type { RenderFormat } from './config';

export interface Body {
  status: number;
  body: Buffer;
  etag: string;
  contentType: string;
}

export interface ViewSecret extends PlainSecret {
  scope: string;
  app: string;
  environment: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const CONTENT_TYPES: Record<RenderFormat, string> = {
  dotenv: TEXT_TYPE,
  json: JSON_TYPE,
  yaml: 'application/yaml; charset=utf-8',
  shell: TEXT_TYPE,
  toml: 'application/toml; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

const etagOfHash = (h: Hash): string => `"${h.digest('base64url').slice(0, 27)}"`;

function body(buf: Buffer, contentType: string, status = 200): Body {
  return { status, body: buf, etag: etagOfHash(createHash('sha256').update(buf)), contentType };
}

/** One entry of `GET /v1/secrets?metadata=true`, as JSON text. */
function metaEntry(s: ViewSecret): string {
  return JSON.stringify({
    key: s.key,
    value: s.value,
    comment: s.comment,
    path: s.path,
    tags: s.tags,
    type: s.type,
    version: s.version,
    updatedAt: s.updatedAt ?? null,
    overridden: s.overridden,
    app: s.app,
    environment: s.environment,
    scope: s.scope,
  });
}

const META_OPEN = '{"secrets":[';
const META_CLOSE = ']}';

/** The raw value of each key as `text/plain`, built on first request. */
export class KeyBodies {
  private readonly built = new Map<string, Body>();

  constructor(private readonly byKey: ReadonlyMap<string, ViewSecret>) {}

  get(key: string): Body | undefined {
    const b = this.built.get(key);
    if (b) return b;
    const s = this.byKey.get(key);
    if (!s) return undefined;
    const made = body(Buffer.from(s.value), TEXT_TYPE);
    this.built.set(key, made);
    return made;
  }
}

export class View {
  /** Strong ETag of the whole view (also what /v1/watch reports as the version): that of `secretsMeta`. */
  readonly etag: string;
  /** `GET /v1/secrets`: `{"KEY":"value",...}`. */
  readonly secrets: Body;
  readonly keys: KeyBodies;
  readonly count: number;
  private meta: Body | undefined;
  private readonly formats = new Map<RenderFormat, Body>();

  constructor(
    /** Winner per key (first by path within a scope; later scopes win across scopes). */
    readonly byKey: ReadonlyMap<string, ViewSecret>,
    /** Every secret of every scope, in order (the metadata listing). */
    private readonly all: readonly ViewSecret[],
  ) {
    const flat: Record<string, string> = {};
    for (const [k, v] of byKey) flat[k] = v.value;
    this.secrets = body(Buffer.from(JSON.stringify(flat)), JSON_TYPE);
    this.keys = new KeyBodies(byKey);
    this.count = byKey.size;
    // The metadata listing's hash, fed piece by piece: the same bytes as its body, without building it.
    const h = createHash('sha256').update(META_OPEN);
    all.forEach((s, i) => h.update(i === 0 ? metaEntry(s) : `,${metaEntry(s)}`));
    this.etag = etagOfHash(h.update(META_CLOSE));
  }

  /** `GET /v1/secrets?metadata=true`: every secret with its metadata. */
  get secretsMeta(): Body {
    // Its ETag is the view's, already hashed from the same bytes.
    this.meta ??= {
      status: 200,
      body: Buffer.from(META_OPEN + this.all.map(metaEntry).join(',') + META_CLOSE),
      etag: this.etag,
      contentType: JSON_TYPE,
    };
    return this.meta;
  }

  /** The secrets in an export format (`GET /v1/env`, `--render`, template helpers); 422 when they cannot be. */
  env(format: RenderFormat): Body {
    let b = this.formats.get(format);
    if (!b) {
      const r = renderFormat(
        format,
        [...this.byKey.values()].map((s) => ({ key: s.key, value: s.value })),
      );
      b = r.ok
        ? body(Buffer.from(r.text), CONTENT_TYPES[format])
        : body(
            Buffer.from(JSON.stringify({ error: `cannot render as ${format}: ${r.message}` })),
            JSON_TYPE,
            422,
          );
      this.formats.set(format, b);
    }
    return b;
  }
}

/** Orders a scope's secrets so the root path comes first, then paths and keys alphabetically. */
export function orderSecrets<T extends PlainSecret>(list: T[]): T[] {
  return [...list].sort((a, b) =>
    a.path === b.path
      ? a.key < b.key
        ? -1
        : a.key > b.key
          ? 1
          : 0
      : a.path === '/'
        ? -1
        : b.path === '/'
          ? 1
          : a.path < b.path
            ? -1
            : 1,
  );
}

/** Builds a view from scopes in configuration order. */
export function buildView(
  parts: Array<{ scope: string; app: string; environment: string; secrets: PlainSecret[] }>,
): View {
  const byKey = new Map<string, ViewSecret>();
  const all: ViewSecret[] = [];
  for (const p of parts) {
    const local = new Map<string, ViewSecret>();
    for (const s of orderSecrets(p.secrets)) {
      const v: ViewSecret = { ...s, scope: p.scope, app: p.app, environment: p.environment };
      all.push(v);
      if (!local.has(s.key)) local.set(s.key, v);
    }
    for (const [k, v] of local) {
      byKey.delete(k); // re-insert so iteration order follows the winning scope
      byKey.set(k, v);
    }
  }
  return new View(byKey, all);
}

/** Keys added, changed (value differs) and removed between two views. Names only, never values. */
export function diffViews(
  prev: View | undefined,
  next: View | undefined,
): { added: string[]; changed: string[]; removed: string[] } {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  const a = prev?.byKey ?? new Map<string, ViewSecret>();
  const b = next?.byKey ?? new Map<string, ViewSecret>();
  for (const [k, v] of b) {
    const old = a.get(k);
    if (!old) added.push(k);
    else if (old.value !== v.value) changed.push(k);
  }
  for (const k of a.keys()) if (!b.has(k)) removed.push(k);
  return { added, changed, removed };
}
