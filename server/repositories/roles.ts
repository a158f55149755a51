/** Roles: the role a member, service account or invite refers to, and the rows that still use a role. */
import type { RoleTable } from '../db/schema';
import { badRequest, notFound, nowIso } from '../http';
import type { Db } from '../keys';
import { findInOrg, rowById } from './rows';

/** `{id, name}` of a role by id (the `role` field of member, service-account and invite objects), or null. */
export async function roleRef(db: Db, roleId: string | null): Promise<{ id: string; name: string } | null> {
  const role = await roleById(db, roleId);
  return role ? { id: role.id, name: role.name } : null;
}

/** A role by id, whatever its organisation (the role of an account already read from one). */
export async function roleById(db: Db, roleId: string | null): Promise<RoleTable | undefined> {
  return roleId ? rowById(db, 'roles', roleId) : undefined;
}

/** The role a body's `role_id` names in the organisation: 400 when missing, 404 when not found. */
export async function roleFromBody(db: Db, orgId: string, roleId: unknown): Promise<RoleTable> {
  if (roleId === undefined || roleId === null || roleId === '')
    throw badRequest('Missing required field: role_id');
  const role = await findInOrg(db, 'roles', orgId, roleId);
  if (!role) throw notFound('Role not found.');
  return role;
}

/** Why a role cannot be deleted (members, service accounts or pending invites use it), or null. */
export async function roleInUse(db: Db, roleId: string): Promise<string | null> {
  for (const [table, what] of [
    ['members', 'members'],
    ['service_accounts', 'service accounts'],
  ] as const) {
    const row = await db
      .selectFrom(table)
      .select('id')
      .where('role_id', '=', roleId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (row) return `Cannot delete a role that has ${what} assigned to it.`;
  }
  const invite = await db
    .selectFrom('invites')
    .select('id')
    .where('role_id', '=', roleId)
    .where('valid', '=', 1)
    .where('expires_at', '>=', nowIso())
    .executeTakeFirst();
  return invite ? 'Cannot delete a role that has pending invites assigned to it.' : null;
}

/** Does another role of the organisation have this name (case-insensitive)? */
export async function roleNameTaken(
  db: Db,
  orgId: string,
  name: string,
  exceptId?: string,
): Promise<boolean> {
  const roles = await db.selectFrom('roles').select(['id', 'name']).where('org_id', '=', orgId).execute();
  return roles.some((x) => x.id !== exceptId && x.name.toLowerCase() === name.toLowerCase());
}
