/** `/v1/members/` (phase-rest-api.md §9.6): list, detail, role changes, removal and declarative access. */
import type { RequestHandler, Router } from 'express';
import { isGlobal } from '../access';
import { audit, audited, resourceEvent } from '../audit';
import type { Principal, ServerContext } from '../context';
import type { MemberTable } from '../db/schema';
import { assertMayAssignRole, assertMayChangeAccessOf, assertMayChangeRoleOf } from '../grant-rule';
import { applyAccess, accessWire, removeAccountGrants, validateAccess } from '../grants';
import { HttpError, badRequest, forbidden, nowIso, objectBody } from '../http';
import type { Db } from '../keys';
import { hasGlobalAccess, roleHasPermission } from '../rbac';
import { softDeleteAccount } from '../repositories/accounts';
import { roleById, roleFromBody, roleRef } from '../repositories/roles';
import { foundInOrg, listInOrg, updateRow } from '../repositories/rows';
import { noContent, orgRoute, param, send, sendEach } from './util';

async function memberWire(db: Db, m: MemberTable) {
  return {
    id: m.id,
    username: m.username,
    full_name: m.full_name,
    email: m.email,
    role: await roleRef(db, m.role_id),
    created_at: m.created_at,
    updated_at: m.updated_at,
  };
}

const findMember = (ctx: ServerContext, p: Principal, id: string) =>
  foundInOrg(ctx.store.db, 'members', p.orgId, id, 'Member not found.');

export function registerMembers(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  orgRoute(r, '/v1/members/', auth, 'Members', {
    get: async (req, res, p) => {
      await sendEach(res, await listInOrg(db, 'members', p.orgId), (m) => memberWire(db, m));
    },
    post: async () => {
      throw new HttpError(405, 'Method "POST" not allowed.');
    },
  });

  orgRoute(r, '/v1/members/:member_id/', auth, 'Members', {
    get: async (req, res, p) => {
      send(res, 200, await memberWire(db, await findMember(ctx, p, param(req, 'member_id'))));
    },
    put: async (req, res, p) => {
      const target = await findMember(ctx, p, param(req, 'member_id'));
      const targetRole = await roleById(db, target.role_id);
      if (targetRole?.is_default && targetRole.name === 'Owner') {
        throw forbidden('The Owner role cannot be changed via the API. Use the ownership transfer flow.');
      }
      assertMayChangeRoleOf(p, { type: 'member', id: target.id });
      if (hasGlobalAccess(targetRole)) {
        if (p.kind === 'service_account')
          throw forbidden('Service accounts cannot modify members with global access.');
        if (!isGlobal(p)) throw forbidden('You cannot update the role of a member with global access.');
      }
      const role = await roleFromBody(db, p.orgId, objectBody(req).role_id);
      if (role.is_default && role.name === 'Owner') {
        throw forbidden('You cannot assign the Owner role directly. Use the ownership transfer flow.');
      }
      if (hasGlobalAccess(role) && !isGlobal(p))
        throw forbidden(`You cannot assign the '${role.name}' role.`);
      assertMayAssignRole(p, role, { type: 'member', id: target.id });
      if (
        !target.identity_key &&
        (hasGlobalAccess(role) || roleHasPermission(role, 'create', 'ServiceAccountTokens', false))
      ) {
        throw forbidden(`You cannot assign the '${role.name}' role to a member without an identity key.`);
      }
      const updated = { ...target, role_id: role.id, updated_at: nowIso() };
      await audited(db, p, resourceEvent('U', 'member', target.id, { role: role.name }), async (trx) => {
        await updateRow(trx, 'members', target.id, { role_id: role.id, updated_at: updated.updated_at });
      });
      send(res, 200, await memberWire(db, updated));
    },
    delete: async (req, res, p) => {
      const target = await findMember(ctx, p, param(req, 'member_id'));
      const targetRole = await roleById(db, target.role_id);
      if (targetRole?.is_default && targetRole.name === 'Owner') {
        throw forbidden('The Owner cannot be removed via the API. Use the ownership transfer flow.');
      }
      if (p.kind === 'member' && p.accountId === target.id)
        throw forbidden('You cannot remove yourself from the organisation.');
      if (hasGlobalAccess(targetRole) && !isGlobal(p)) {
        throw forbidden(
          p.kind === 'service_account'
            ? 'Service accounts cannot remove members with global access.'
            : 'You cannot remove a member with global access.',
        );
      }
      await audited(db, p, resourceEvent('D', 'member', target.id), async (trx) => {
        await softDeleteAccount(trx, 'member', target.id);
        await removeAccountGrants(trx, 'member', target.id);
      });
      noContent(res);
    },
  });

  orgRoute(r, '/v1/members/:member_id/access/', auth, 'Members', {
    get: async (req, res, p) => {
      const m = await findMember(ctx, p, param(req, 'member_id'));
      send(res, 200, { ...(await memberWire(db, m)), apps: await accessWire(db, 'member', m.id) });
    },
    put: async (req, res, p) => {
      const m = await findMember(ctx, p, param(req, 'member_id'));
      assertMayChangeAccessOf(p, { type: 'member', id: m.id });
      if (hasGlobalAccess(await roleById(db, m.role_id))) {
        throw forbidden('Access cannot be changed for members with a global access role.');
      }
      if (!m.identity_key) {
        throw badRequest(
          'Member has not set up their identity key yet. They must log in to the console first.',
        );
      }
      const entries = await validateAccess(ctx, p, { type: 'member', id: m.id }, objectBody(req));
      await db.transaction().execute(async (trx) => {
        await applyAccess(trx, ctx, { type: 'member', id: m.id, identityKey: m.identity_key }, entries);
        await audit(trx, p, {
          eventType: 'A',
          resourceType: 'member',
          resourceId: m.id,
          detail: { apps: entries.map((e) => ({ id: e.appId, environments: e.envIds, paths: e.paths })) },
        });
      });
      send(res, 200, { ...(await memberWire(db, m)), apps: await accessWire(db, 'member', m.id) });
    },
  });
}
