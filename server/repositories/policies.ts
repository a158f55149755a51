/** Network access policies and their attachments to accounts. */
import type { AccountType } from '../db/schema';
import type { Db } from '../keys';

/** A policy's attachments, by account type and id. */
export async function policyAttachments(db: Db, policyId: string) {
  return db
    .selectFrom('network_policy_attachments')
    .select(['account_type', 'account_id'])
    .where('policy_id', '=', policyId)
    .orderBy('account_type')
    .orderBy('account_id')
    .execute();
}

/** Attaches a policy to an account (idempotent). */
export async function attachPolicy(
  db: Db,
  policyId: string,
  type: AccountType,
  accountId: string,
): Promise<void> {
  await db
    .insertInto('network_policy_attachments')
    .values({ policy_id: policyId, account_type: type, account_id: accountId })
    .onConflict((oc) => oc.columns(['policy_id', 'account_type', 'account_id']).doNothing())
    .execute();
}

/** An attachment of the policy to this account id (of this type, when given). */
function attachmentOf(policyId: string, accountId: string, type?: AccountType) {
  return type
    ? { policy_id: policyId, account_id: accountId, account_type: type }
    : { policy_id: policyId, account_id: accountId };
}

export async function isAttached(
  db: Db,
  policyId: string,
  accountId: string,
  type?: AccountType,
): Promise<boolean> {
  const row = await db
    .selectFrom('network_policy_attachments')
    .select('account_id')
    .where((eb) => eb.and(attachmentOf(policyId, accountId, type)))
    .executeTakeFirst();
  return row !== undefined;
}

export async function detachPolicy(
  db: Db,
  policyId: string,
  accountId: string,
  type?: AccountType,
): Promise<void> {
  await db
    .deleteFrom('network_policy_attachments')
    .where((eb) => eb.and(attachmentOf(policyId, accountId, type)))
    .execute();
}

/** Deletes a policy and its attachments. */
export async function deletePolicy(db: Db, policyId: string): Promise<void> {
  await db.deleteFrom('network_policy_attachments').where('policy_id', '=', policyId).execute();
  await db.deleteFrom('network_policies').where('id', '=', policyId).execute();
}
