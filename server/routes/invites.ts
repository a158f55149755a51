/**
 * `/v1/members/invites/` (phase-rest-api.md §9.7). phase-bridge sends no email and has no sign-up: an invite is
 * recorded (and blocks a second invite or deleting its role), and `phase-bridge server add-member` turns the person
 * into a member, which consumes their pending invite.
 */
import type { RequestHandler, Router } from 'express';
import { requireOrgPermission } from '../access';
import { audit } from '../audit';
import { principal, type ServerContext } from '../context';
import type { InviteTable } from '../db/schema';
import { badRequest, conflict, microsToIso, newId, notFound, nowIso, objectBody } from '../http';
import type { Db } from '../keys';
import { assertMayAssignRole } from '../grant-rule';
import { hasGlobalAccess, roleHasPermission } from '../rbac';
import { roleFromBody, roleRef } from '../repositories/roles';
import { findInOrg } from '../repositories/rows';
import { noContent, param, route, send } from './util';

const INVITE_DAYS = 14;
const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

async function inviteWire(db: Db, i: InviteTable) {
  let invitedBy: Record<string, string> | null = null;
  if (i.invited_by_member) {
    const m = await db
      .selectFrom('members')
      .select('email')
      .where('id', '=', i.invited_by_member)
      .executeTakeFirst();
    invitedBy = m ? { type: 'member', email: m.email } : null;
  } else if (i.invited_by_sa) {
    const sa = await db
      .selectFrom('service_accounts')
      .select('name')
      .where('id', '=', i.invited_by_sa)
      .executeTakeFirst();
    invitedBy = sa ? { type: 'service_account', name: sa.name } : null;
  }
  return {
    id: i.id,
    invitee_email: i.invitee_email,
    role: await roleRef(db, i.role_id),
    invited_by: invitedBy,
    created_at: i.created_at,
    expires_at: i.expires_at,
    valid: i.valid === 1,
  };
}

/** Registered before `/v1/members/:member_id/` so `invites` is not taken for a member id. */
export function registerInvites(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  route(r, '/v1/members/invites/', auth, {
    get: async (req, res) => {
      const p = principal(req);
      requireOrgPermission(p, 'read', 'Members');
      const rows = await db
        .selectFrom('invites')
        .selectAll()
        .where('org_id', '=', p.orgId)
        .where('valid', '=', 1)
        .where('expires_at', '>=', nowIso())
        .orderBy('created_at', 'desc')
        .execute();
      const out = [];
      for (const i of rows) out.push(await inviteWire(db, i));
      send(res, 200, { data: out });
    },
    post: async (req, res) => {
      const p = principal(req);
      requireOrgPermission(p, 'create', 'Members');
      const b = objectBody(req);
      const email = typeof b.email === 'string' ? b.email.trim().toLowerCase() : '';
      if (!EMAIL.test(email) || email.length > 254) {
        throw badRequest(
          `'${typeof b.email === 'string' ? b.email.slice(0, 254) : ''}' is not a valid email address.`,
        );
      }
      const role = await roleFromBody(db, p.orgId, b.role_id);
      if (hasGlobalAccess(role)) throw badRequest(`Members cannot be invited with the '${role.name}' role.`);
      if (roleHasPermission(role, 'create', 'ServiceAccountTokens', false)) {
        throw badRequest(
          'Members cannot be invited with a role that allows creating service account tokens.',
        );
      }
      assertMayAssignRole(p, role);
      const member = await db
        .selectFrom('members')
        .select('id')
        .where('org_id', '=', p.orgId)
        .where('email', '=', email)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (member) throw conflict(`'${email}' is already a member of this organisation.`);
      const active = await db
        .selectFrom('invites')
        .select('id')
        .where('org_id', '=', p.orgId)
        .where('invitee_email', '=', email)
        .where('valid', '=', 1)
        .where('expires_at', '>=', nowIso())
        .executeTakeFirst();
      if (active) throw conflict(`An active invite already exists for '${email}'.`);
      if ('apps' in b) throw badRequest("Unknown field 'apps': grant access after the member joins.");
      const now = nowIso();
      const row: InviteTable = {
        id: newId(),
        org_id: p.orgId,
        invitee_email: email,
        role_id: role.id,
        invited_by_member: p.kind === 'member' ? p.accountId : null,
        invited_by_sa: p.kind === 'service_account' ? p.accountId : null,
        valid: 1,
        created_at: now,
        expires_at: microsToIso((Date.now() + INVITE_DAYS * 86_400_000) * 1000),
      };
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('invites').values(row).execute();
        await audit(trx, p, {
          eventType: 'C',
          resourceType: 'invite',
          resourceId: row.id,
          detail: { role: role.name },
        });
      });
      send(res, 201, await inviteWire(db, row));
    },
  });

  route(r, '/v1/members/invites/:invite_id/', auth, {
    delete: async (req, res) => {
      const p = principal(req);
      requireOrgPermission(p, 'delete', 'Members');
      const id = param(req, 'invite_id');
      const row = await findInOrg(db, 'invites', p.orgId, id);
      if (!row) throw notFound('Invite not found.');
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('invites').where('id', '=', row.id).execute();
        await audit(trx, p, { eventType: 'D', resourceType: 'invite', resourceId: row.id });
      });
      noContent(res);
    },
  });
}
