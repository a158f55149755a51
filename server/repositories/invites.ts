/** Invites: the pending ones (valid and not expired) of an organisation. */
import type { InviteTable } from '../db/schema';
import { nowIso } from '../http';
import type { Db } from '../keys';

/** The organisation's pending invites, newest first; only those for `email` when given. */
export async function pendingInvites(db: Db, orgId: string, email?: string): Promise<InviteTable[]> {
  let q = db
    .selectFrom('invites')
    .selectAll()
    .where((eb) => eb.and({ org_id: orgId, valid: 1 }))
    .where('expires_at', '>=', nowIso());
  if (email !== undefined) q = q.where('invitee_email', '=', email);
  return q.orderBy('created_at', 'desc').execute();
}
