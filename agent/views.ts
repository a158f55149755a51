/**
 * Response bodies precomputed once per sync, so the request hot path only picks a Buffer and writes it.
 * A view is one scope's secrets or the merge of all scopes (later scopes win on a key clash).
 */
import { createHash } from 'node:crypto';
import type { PlainSecret } from './decrypt';
import { renderFormat } from './formats';
import { RENDER_FORMATS, type RenderFormat } from './config';

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

export interface View {
  /** Strong ETag of the whole view (also what /v1/watch reports as the version). */
  etag: string;
  /** Winner per key (first by path within a scope; later scopes win across scopes). */
  byKey: Map<string, ViewSecret>;
  secrets: Body;
  secretsMeta: Body;
  keys: Map<string, Body>;
  env: Record<RenderFormat, Body>;
  count: number;
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

function etagOf(buf: Buffer | string): string {
  return `"${createHash('sha256').update(buf).digest('base64url').slice(0, 27)}"`;
}

function body(buf: Buffer, contentType: string, status = 200): Body {
  return { status, body: buf, etag: etagOf(buf), contentType };
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
  const flat: Record<string, string> = {};
  for (const [k, v] of byKey) flat[k] = v.value;
  const secrets = body(Buffer.from(JSON.stringify(flat)), JSON_TYPE);
  const secretsMeta = body(
    Buffer.from(
      JSON.stringify({
        secrets: all.map((s) => ({
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
        })),
      }),
    ),
    JSON_TYPE,
  );
  const keys = new Map<string, Body>();
  for (const [k, v] of byKey) keys.set(k, body(Buffer.from(v.value), TEXT_TYPE));
  const pairs = [...byKey.values()].map((s) => ({ key: s.key, value: s.value }));
  const env = {} as Record<RenderFormat, Body>;
  for (const f of RENDER_FORMATS) {
    const r = renderFormat(f, pairs);
    env[f] = r.ok
      ? body(Buffer.from(r.text), CONTENT_TYPES[f])
      : body(Buffer.from(JSON.stringify({ error: `cannot render as ${f}: ${r.message}` })), JSON_TYPE, 422);
  }
  return { etag: secretsMeta.etag, byKey, secrets, secretsMeta, keys, env, count: byKey.size };
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
