/** The audit log as read back (`GET /v1/audit-logs/`): an organisation's events, filtered and paged. */
import type { AuditEventTable } from '../db/schema';
import { isUuid } from '../http';
import type { Db } from '../keys';
import { environmentIdsNamed } from './apps';

/** What the events are filtered by; every filter given (non-empty) must hold. */
export interface AuditFilter {
  since?: string;
  until?: string;
  actorId?: string;
  appId?: string;
  /** An environment id, or a name (any case) of the organisation's environments (of `appId`, when given). */
  environment?: string;
  eventType?: string;
  resourceType?: string;
  /** 64 lowercase hex characters: events with this key digest, or naming it in their detail. */
  keyDigest?: string;
}

/** One page of the organisation's matching events, newest first, and how many match in all. */
export async function auditEventsPage(
  db: Db,
  orgId: string,
  f: AuditFilter,
  limit: number,
  offset: number,
): Promise<{ events: AuditEventTable[]; count: number }> {
  let base = db.selectFrom('audit_events').where('org_id', '=', orgId);
  if (f.since) base = base.where('timestamp', '>=', f.since);
  if (f.until) base = base.where('timestamp', '<=', f.until);
  if (f.actorId) base = base.where('actor_id', '=', f.actorId);
  if (f.appId) base = base.where('app_id', '=', f.appId);
  if (f.environment) {
    if (isUuid(f.environment)) base = base.where('environment_id', '=', f.environment);
    else {
      const ids = await environmentIdsNamed(db, orgId, f.environment, f.appId);
      // No environment of that name: an id no event has, so the page is empty (`in ()` is not valid SQL).
      base = base.where('environment_id', 'in', ids.length ? ids : ['-']);
    }
  }
  if (f.eventType) base = base.where('event_type', '=', f.eventType);
  if (f.resourceType) base = base.where('resource_type', '=', f.resourceType);
  const d = f.keyDigest;
  if (d) base = base.where((eb) => eb.or([eb('key_digest', '=', d), eb('detail', 'like', `%${d}%`)]));
  const count = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const events = await base
    .selectAll()
    .orderBy('timestamp', 'desc')
    .orderBy('id')
    .limit(limit)
    .offset(offset)
    .execute();
  return { events, count: Number(count?.n ?? 0) };
}
