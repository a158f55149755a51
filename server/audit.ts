/**
 * Audit events (extension `GET /v1/audit-logs/`): who read or wrote what, when, from where. Secret events carry the
 * key digest and path, never a key name or value.
 */
import type { Principal } from './context';
import type { Kysely, Transaction } from 'kysely';
import type { AuditEventTable, DB } from './db/schema';
import type { Db } from './keys';
import { newId, nowIso } from './http';

export type AuditEventType = 'C' | 'R' | 'U' | 'D' | 'A';

export interface AuditInput {
  eventType: AuditEventType;
  resourceType: string;
  resourceId?: string | null;
  appId?: string | null;
  environmentId?: string | null;
  keyDigest?: string | null;
  path?: string | null;
  /** Non-secret details (names, counts, digests). */
  detail?: Record<string, unknown> | null;
}

export function auditRow(p: Principal, e: AuditInput): AuditEventTable {
  return {
    id: newId(),
    org_id: p.orgId,
    timestamp: nowIso(),
    event_type: e.eventType,
    resource_type: e.resourceType,
    resource_id: e.resourceId ?? null,
    actor_type: p.kind,
    actor_id: p.accountId,
    token_id: p.tokenId,
    app_id: e.appId ?? null,
    environment_id: e.environmentId ?? null,
    key_digest: e.keyDigest ?? null,
    path: e.path ?? null,
    detail: e.detail ? JSON.stringify(e.detail) : null,
    ip_address: p.ip || null,
    user_agent: p.userAgent ? p.userAgent.slice(0, 512) : null,
  };
}

/** Writes audit events (in the caller's transaction when given one). */
export async function audit(db: Db, p: Principal, events: AuditInput | AuditInput[]): Promise<void> {
  const list = Array.isArray(events) ? events : [events];
  if (list.length === 0) return;
  const rows = list.map((e) => auditRow(p, e));
  // Chunked: SQLite limits bound parameters per statement.
  for (let i = 0; i < rows.length; i += 50) {
    await db
      .insertInto('audit_events')
      .values(rows.slice(i, i + 50))
      .execute();
  }
}

/**
 * An event about one resource, as most writes record it: `resourceEvent('U', 'role', role.id)`, with non-secret
 * details and the app and environment it belongs to when there are any.
 */
export function resourceEvent(
  eventType: AuditEventType,
  resourceType: string,
  resourceId: string,
  detail?: Record<string, unknown>,
  scope: { appId?: string; environmentId?: string } = {},
): AuditInput {
  return { eventType, resourceType, resourceId, ...scope, detail };
}

/** Runs a write and records its audit event in one transaction. */
export async function audited<T>(
  db: Kysely<DB>,
  p: Principal,
  event: AuditInput,
  write: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const result = await write(trx);
    await audit(trx, p, event);
    return result;
  });
}
