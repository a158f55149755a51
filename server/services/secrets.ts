/**
 * The one secret service: list, create, update and delete secrets of one environment, for both wire shapes. The
 * E2E `/secrets/` routes (ciphertext from the client) and `/v1/secrets/` (plaintext, encrypted by the server) are
 * adapters around it: they parse their bodies, turn each entry into the stored form and shape the response; the
 * rules (paths, duplicates, check-and-set, sealed secrets, tags, overrides, the environment's `updated_at`, audit,
 * pacing) live here. Storage helpers are in ../secrets.ts.
 */
import type { Request } from 'express';
import { pathAllowed, type SecretsContext } from '../access';
import { audit, type AuditInput } from '../audit';
import type { Principal, ServerContext } from '../context';
import type { SecretTable } from '../db/schema';
import { isUniqueViolation } from '../db/store';
import type { Pacer } from '../deadline';
import { badRequest, body, conflict, forbidden, notFound, nowIso } from '../http';
import {
  FolderIds,
  TagIds,
  addTags,
  auditPaced,
  bumpEnvironment,
  checkExpectedVersion,
  insertSecrets,
  isDuplicate,
  liveKeys,
  loadSecrets,
  lockSecrets,
  setTags,
  upsertOverride,
  type LoadedSecret,
  type SecretFilter,
} from '../secrets';

/** The raw JSON body of a secrets view, with Phase's messages for missing or non-object bodies. */
export function secretsBody(req: Request): Record<string, unknown> {
  const b = body(req);
  if (b === undefined) throw badRequest('Request body is required.');
  if (b === null || typeof b !== 'object' || Array.isArray(b))
    throw badRequest('Request body must be a JSON object.');
  return b as Record<string, unknown>;
}

/** Path restriction (extension): 403 for a path outside the caller's paths. */
export function requirePath(c: SecretsContext, path: string): void {
  if (!pathAllowed(c.membership.paths, path)) {
    throw forbidden(`Access denied: path '${path}' is outside the paths this account may access.`);
  }
}

function secretEvents(
  type: 'C' | 'U' | 'D',
  c: SecretsContext,
  items: Array<{ id: string; key_digest: string; path: string }>,
): AuditInput[] {
  return items.map((s) => ({
    eventType: type,
    resourceType: 'secret',
    resourceId: s.id,
    appId: c.app.id,
    environmentId: c.env.id,
    keyDigest: s.key_digest,
    path: s.path,
  }));
}

/** One audit event for a list read: the digests read, never keys or values. */
export function readEvent(
  c: SecretsContext,
  items: Array<{ key_digest: string; path: string }>,
  via: string,
): AuditInput {
  return {
    eventType: 'R',
    resourceType: 'secret',
    appId: c.app.id,
    environmentId: c.env.id,
    keyDigest: items.length === 1 ? items[0].key_digest : null,
    path: items.length === 1 ? items[0].path : null,
    detail: { via, count: items.length, key_digests: items.map((s) => s.key_digest) },
  };
}

/**
 * The secrets of the context's environment the caller may see, matching the filter (paced on large reads).
 * `leaseTtl` (a header on E2E, a query parameter on `/v1`) must be an integer when given.
 */
export async function listSecrets(
  ctx: ServerContext,
  p: Principal,
  c: SecretsContext,
  leaseTtl: string | undefined,
  /** Read after the `leaseTtl` check. */
  filter: () => Omit<SecretFilter, 'allowedPaths' | 'ids'>,
  work: Pacer,
): Promise<LoadedSecret[]> {
  if (leaseTtl !== undefined && !/^-?\d+$/.test(leaseTtl.trim())) {
    throw badRequest('lease_ttl must be a valid integer (seconds)');
  }
  return loadSecrets(ctx.store.db, c.env.id, { ...filter(), allowedPaths: c.membership.paths }, p, {
    pacer: work,
    kind: ctx.store.kind,
  });
}

/** Records a list read; from here on the read is answered whatever the time. */
export async function auditRead(
  ctx: ServerContext,
  p: Principal,
  c: SecretsContext,
  items: LoadedSecret[],
  via: 'e2e' | 'sse',
  work: Pacer,
): Promise<void> {
  work.commit();
  await audit(ctx.store.db, p, readEvent(c, items, via));
}

/** A secret to create, in stored form; `folder_id` is filled in here. */
export interface NewSecret {
  row: SecretTable;
  tags?: string[] | null;
  /** The caller's personal override (stored form); applied for members only. */
  override?: string;
}

/** Creates secrets (all or none): 409 when one exists already at its path and key or is listed twice. */
export async function createSecrets(
  ctx: ServerContext,
  p: Principal,
  c: SecretsContext,
  items: NewSecret[],
  work: Pacer,
): Promise<void> {
  const rows = items.map((i) => i.row);
  await ctx.store.db.transaction().execute(async (trx) => {
    const live = await liveKeys(
      trx,
      c.env.id,
      rows.map((r) => r.key_digest),
    );
    const seen = new Set<string>();
    for (const r of rows) {
      const k = `${r.path}\u0000${r.key_digest}`;
      if (live.has(k) || seen.has(k)) throw conflict('Duplicate secret found');
      seen.add(k);
    }
    const folders = new FolderIds(trx, c.env.id);
    for (const r of rows) r.folder_id = await folders.of(r.path);
    await insertSecrets(trx, rows, work);
    const tagged = items.flatMap((i) => (i.tags ? [{ secretId: i.row.id, names: i.tags }] : []));
    await addTags(trx, new TagIds(trx, p.orgId), tagged, work);
    if (p.kind === 'member') {
      for (const i of items) {
        if (i.override === undefined) continue;
        await upsertOverride(trx, i.row.id, p.accountId, i.override, true);
        await work.tick();
      }
    }
    await bumpEnvironment(trx, c.env.id, ctx.store.kind);
    await auditPaced(trx, p, secretEvents('C', c, rows), work);
    work.commit();
  });
}

/** One update; fields left undefined keep their stored value. */
export interface SecretUpdate {
  id: string;
  /** Check-and-set (extension): the version the client read. */
  expectedVersion?: number;
  /** Normalised. */
  path?: string;
  /** The new key (stored form) and its digest, given the stored secret; may refuse the entry by throwing. */
  key?: (cur: LoadedSecret) => { key: string; keyDigest: string } | undefined;
  /** Ignored for a sealed secret (Phase). */
  value?: string;
  comment?: string;
  type?: string;
  /** Replaces the secret's tags; undefined leaves them. */
  tags?: string[];
  /** The caller's personal override (stored form); applied for members only. */
  override?: { value: string; isActive: boolean };
}

/**
 * Updates secrets in one transaction, in request order (an entry naming a secret an earlier entry changed sees
 * that change). Returns the ids updated.
 */
export async function updateSecrets(
  ctx: ServerContext,
  p: Principal,
  c: SecretsContext,
  entries: SecretUpdate[],
  work: Pacer,
): Promise<string[]> {
  return ctx.store.db.transaction().execute(async (trx) => {
    const updated: Array<{ id: string; key_digest: string; path: string }> = [];
    const wanted = entries.map((e) => e.id);
    await lockSecrets(trx, ctx.store.kind, wanted);
    const current = new Map(
      (await loadSecrets(trx, c.env.id, { ids: wanted, allowedPaths: c.membership.paths }, p)).map((s) => [
        s.id,
        s,
      ]),
    );
    const folders = new FolderIds(trx, c.env.id);
    const tags = new TagIds(trx, p.orgId);
    for (const e of entries) {
      const cur = current.get(e.id);
      if (!cur) throw notFound(`Secret not found: ${e.id}`);
      checkExpectedVersion(cur, e.expectedVersion);
      const path = e.path ?? cur.path;
      requirePath(c, path);
      const key = e.key?.(cur) ?? { key: cur.key, keyDigest: cur.key_digest };
      if (
        (path !== cur.path || key.keyDigest !== cur.key_digest) &&
        (await isDuplicate(trx, c.env.id, path, key.keyDigest, cur.id))
      ) {
        throw conflict('Duplicate secret found');
      }
      if (cur.type === 'sealed' && e.type !== undefined && e.type !== 'sealed') {
        throw badRequest('Sealed secrets cannot be unsealed. Delete and recreate the secret instead.');
      }
      const next = {
        key: key.key,
        key_digest: key.keyDigest,
        value: e.value !== undefined && cur.type !== 'sealed' ? e.value : cur.value,
        comment: e.comment ?? cur.comment,
        path,
        folder_id: await folders.of(path),
        type: e.type ?? cur.type,
        version: cur.version + 1,
        updated_at: nowIso(),
      };
      try {
        await trx.updateTable('secrets').set(next).where('id', '=', cur.id).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('Duplicate secret found');
        throw err;
      }
      Object.assign(cur, next);
      if (e.tags !== undefined) await setTags(trx, p.orgId, cur.id, e.tags, tags);
      if (e.override && p.kind === 'member') {
        await upsertOverride(trx, cur.id, p.accountId, e.override.value, e.override.isActive);
      }
      updated.push({ id: cur.id, key_digest: key.keyDigest, path });
      await work.tick();
    }
    await bumpEnvironment(trx, c.env.id, ctx.store.kind);
    await auditPaced(trx, p, secretEvents('U', c, updated), work);
    work.commit();
    return updated.map((u) => u.id);
  });
}

/**
 * Soft-deletes the listed secrets of the environment the caller may see; `onMissing` may refuse ids not found.
 * Returns how many were deleted.
 */
export async function deleteSecrets(
  ctx: ServerContext,
  p: Principal,
  c: SecretsContext,
  ids: string[],
  onMissing?: (missing: string[]) => void,
): Promise<number> {
  return ctx.store.db.transaction().execute(async (trx) => {
    // Scoped to the context's environment (upstream is not) and to the caller's paths.
    const found = await loadSecrets(trx, c.env.id, { ids, allowedPaths: c.membership.paths }, null);
    const foundIds = new Set(found.map((f) => f.id));
    onMissing?.(ids.filter((id) => !foundIds.has(id)));
    if (found.length) {
      await trx
        .updateTable('secrets')
        .set({ deleted_at: nowIso() })
        .where(
          'id',
          'in',
          found.map((s) => s.id),
        )
        .execute();
    }
    await bumpEnvironment(trx, c.env.id, ctx.store.kind);
    await audit(trx, p, secretEvents('D', c, found));
    return found.length;
  });
}
