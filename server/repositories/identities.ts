/** External identities: the service accounts each one may log in as (its attachments), and its removal. */
import { nowIso } from '../http';
import type { Db } from '../keys';
import { softDelete } from './rows';

/** The ids of the live service accounts the identity is attached to, in the order they were attached. */
export async function attachedAccountIds(db: Db, identityId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('external_identity_attachments as a')
    .innerJoin('service_accounts as s', 's.id', 'a.service_account_id')
    .select('a.service_account_id')
    .where('a.identity_id', '=', identityId)
    .where('s.deleted_at', 'is', null)
    .orderBy('a.created_at')
    .execute();
  return rows.map((r) => r.service_account_id);
}

/** Attaches the identity to a service account (idempotent: an existing attachment keeps its time). */
export async function attachIdentity(db: Db, identityId: string, saId: string): Promise<void> {
  await db
    .insertInto('external_identity_attachments')
    .values({ identity_id: identityId, service_account_id: saId, created_at: nowIso() })
    .onConflict((oc) => oc.columns(['identity_id', 'service_account_id']).doNothing())
    .execute();
}

/** Detaches the identity from a service account; false when it was not attached. */
export async function detachIdentity(db: Db, identityId: string, saId: string): Promise<boolean> {
  const gone = await db
    .deleteFrom('external_identity_attachments')
    .where('identity_id', '=', identityId)
    .where('service_account_id', '=', saId)
    .executeTakeFirst();
  return Number(gone.numDeletedRows) > 0;
}

/** Soft-deletes an identity; its attachments go at once, so nothing can log in through it. */
export async function deleteIdentity(db: Db, identityId: string): Promise<void> {
  await db.deleteFrom('external_identity_attachments').where('identity_id', '=', identityId).execute();
  await softDelete(db, 'external_identities', identityId);
}
