/**
 * `/v1/members/invites/` (phase-rest-api.md §9.7). phase-bridge sends no email and has no sign-up: an invite is
 * recorded (and blocks a second invite or deleting its role), and `phase-bridge server add-member` turns the person
 * into a member, which consumes their pending invite.
 */
import type { RequestHandler, Router } from 'express';
import { audited, resourceEvent } from '../audit';
import type { ServerContext } from '../context';
import type { InviteTable } from '../db/schema';
import { badRequest, conflict, microsToIso, newId, notFound, nowIso, objectBody } from '../http';
import type { Db } from '../keys';
import { assertMayAssignRole } from '../grant-rule';
import { hasGlobalAccess, roleHasPermission } from '../rbac';
import { liveMemberByEmail } from '../repositories/accounts';
import { roleFromBody, roleRef } from '../repositories/roles';
import { findInOrg, hardDelete, insertRow, rowById } from '../repositories/rows';
import { pendingInvites } from '../repositories/invites';
import { noContent, orgRoute, param, send, sendEach } from './util';

const INVITE_DAYS = 14;
const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

async function inviteWire(db: Db, i: InviteTable) {
  let invitedBy: Record<string, string> | null = null;
  if (i.invited_by_member) {
    const m = await rowById(db, 'members', i.invited_by_member);
    invitedBy = m ? { type: 'member', email: m.email } : null;
  } else if (i.invited_by_sa) {
    const sa = await rowById(db, 'service_accounts', i.invited_by_sa);
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

  orgRoute(r, '/v1/members/invites/', auth, 'Members', {
    get: async (req, res, p) => {
      await sendEach(res, await pendingInvites(db, p.orgId), (i) => inviteWire(db, i));
    },
    post: async (req, res, p) => {
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
      const member = await liveMemberByEmail(db, p.orgId, email);
      if (member) throw conflict(`'${email}' is already a member of this organisation.`);
      const [active] = await pendingInvites(db, p.orgId, email);
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
      await audited(db, p, resourceEvent('C', 'invite', row.id, { role: role.name }), async (trx) => {
        await insertRow(trx, 'invites', row);
      });
      send(res, 201, await inviteWire(db, row));
    },
  });

  orgRoute(r, '/v1/members/invites/:invite_id/', auth, 'Members', {
    delete: async (req, res, p) => {
      const id = param(req, 'invite_id');
      const row = await findInOrg(db, 'invites', p.orgId, id);
      if (!row) throw notFound('Invite not found.');
      await audited(db, p, resourceEvent('D', 'invite', row.id), async (trx) => {
        await hardDelete(trx, 'invites', row.id);
      });
      noContent(res);
    },
  });
}
