/** `/v1/roles/` (phase-rest-api.md §9.5): the five default roles and custom roles. */
import type { RequestHandler, Router } from 'express';
import { audited, resourceEvent } from '../audit';
import type { Principal, ServerContext } from '../context';
import type { RoleTable } from '../db/schema';
import { badRequest, conflict, forbidden, nowIso, objectBody, textField } from '../http';
import { assertMayEditRole, assertMayWriteRole } from '../grant-rule';
import { DEFAULT_ROLES, effectiveMap, type PermissionMap } from '../rbac';
import { roleInUse, roleNameTaken } from '../repositories/roles';
import { foundInOrg, hardDelete, insertRow, listInOrg, newRecord, updateRow } from '../repositories/rows';
import { noContent, orgRoute, param, send, sendEach } from './util';

const findRole = (ctx: ServerContext, p: Principal, id: string) =>
  foundInOrg(ctx.store.db, 'roles', p.orgId, id, 'Role not found.');

function roleWire(r: RoleTable) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    color: r.color,
    is_default: r.is_default === 1,
    created_at: r.created_at,
  };
}

function roleDetail(r: RoleTable) {
  let permissions: unknown;
  if (r.is_default) {
    const m = effectiveMap(r);
    permissions = {
      permissions: m.permissions,
      app_permissions: m.app_permissions,
      global_access: m.global_access,
    };
  } else {
    try {
      permissions = JSON.parse(r.permissions);
    } catch {
      permissions = {};
    }
  }
  return { ...roleWire(r), permissions };
}

/** Validates a custom role's permission JSON against Owner's classes and actions (§5.2). */
function validatePermissions(raw: unknown): { permissions: PermissionMap; app_permissions: PermissionMap } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw badRequest('Missing required field: permissions (must be a JSON object)');
  }
  const obj = { ...(raw as Record<string, unknown>) };
  if ('appPermissions' in obj && !('app_permissions' in obj)) {
    obj.app_permissions = obj.appPermissions;
    delete obj.appPermissions;
  }
  const allowed = ['permissions', 'app_permissions'];
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (unknown.length) throw badRequest(`Unknown top-level keys: ${unknown.join(', ')}`);
  const missing = allowed.filter((k) => !(k in obj));
  if (missing.length) throw badRequest(`Missing required keys: ${missing.join(', ')}`);
  const owner = DEFAULT_ROLES.Owner;
  const out: { permissions: PermissionMap; app_permissions: PermissionMap } = {
    permissions: {},
    app_permissions: {},
  };
  for (const section of allowed as Array<'permissions' | 'app_permissions'>) {
    const v = obj[section];
    if (v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v))
      throw badRequest(`'${section}' must be an object or null.`);
    const valid = owner[section];
    for (const [resource, actions] of Object.entries(v as Record<string, unknown>)) {
      if (!(resource in valid)) {
        throw badRequest(
          `Unknown permission class '${resource}' in '${section}'. Valid classes: ${Object.keys(valid).join(', ')}.`,
        );
      }
      if (
        !Array.isArray(actions) ||
        actions.some((a) => typeof a !== 'string' || !valid[resource].includes(a))
      ) {
        throw badRequest(
          `Invalid actions for '${resource}' in '${section}'. Valid actions: ${valid[resource].join(', ')}.`,
        );
      }
      out[section][resource] = [...new Set(actions as string[])];
    }
  }
  return out;
}

export function registerRoles(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  orgRoute(r, '/v1/roles/', auth, 'Roles', {
    get: async (req, res, p) => {
      await sendEach(res, await listInOrg(db, 'roles', p.orgId), roleWire);
    },
    post: async (req, res, p) => {
      const b = objectBody(req);
      const name = textField(b, 'name', { required: true, max: 64 }) as string;
      if (await roleNameTaken(db, p.orgId, name)) throw conflict('A role with this name already exists.');
      const permissions = validatePermissions(b.permissions);
      assertMayWriteRole(p, name, permissions);
      const description = textField(b, 'description', { required: false, max: 500 }) ?? null;
      const color = b.color === undefined || b.color === null ? '' : b.color;
      if (typeof color !== 'string') throw badRequest("'color' must be a string.");
      if (color.length > 7) throw badRequest('Role color cannot exceed 7 characters.');
      const role: RoleTable = {
        ...newRecord(),
        org_id: p.orgId,
        name,
        description,
        color,
        permissions: JSON.stringify(permissions),
        is_default: 0,
      };
      await audited(db, p, resourceEvent('C', 'role', role.id, { name }), async (trx) => {
        await insertRow(trx, 'roles', role);
      });
      send(res, 201, roleDetail(role));
    },
  });

  orgRoute(r, '/v1/roles/:role_id/', auth, 'Roles', {
    get: async (req, res, p) => {
      send(res, 200, roleDetail(await findRole(ctx, p, param(req, 'role_id'))));
    },
    put: async (req, res, p) => {
      const role = await findRole(ctx, p, param(req, 'role_id'));
      if (role.is_default) throw forbidden('Default roles cannot be modified.');
      assertMayEditRole(p, role);
      const b = objectBody(req);
      const patch: Partial<RoleTable> = {};
      const name = textField(b, 'name', { required: false, max: 64 });
      if (name !== undefined) {
        if (await roleNameTaken(db, p.orgId, name, role.id)) {
          throw conflict('A role with this name already exists.');
        }
        patch.name = name;
      }
      const description = textField(b, 'description', { required: false, max: 500 });
      if (description !== undefined) patch.description = description;
      if (b.color !== undefined && b.color !== null) {
        if (typeof b.color !== 'string') throw badRequest("'color' must be a string.");
        if (b.color.length > 7) throw badRequest('Role color cannot exceed 7 characters.');
        patch.color = b.color;
      }
      if (b.permissions !== undefined) {
        const permissions = validatePermissions(b.permissions);
        assertMayWriteRole(p, patch.name ?? role.name, permissions);
        patch.permissions = JSON.stringify(permissions);
      }
      if (Object.keys(patch).length === 0) throw badRequest('At least one field must be provided.');
      patch.updated_at = nowIso();
      await audited(db, p, resourceEvent('U', 'role', role.id), async (trx) => {
        await updateRow(trx, 'roles', role.id, patch);
      });
      send(res, 200, roleDetail({ ...role, ...patch }));
    },
    delete: async (req, res, p) => {
      const role = await findRole(ctx, p, param(req, 'role_id'));
      if (role.is_default) throw forbidden('Default roles cannot be deleted.');
      const inUse = await roleInUse(db, role.id);
      if (inUse) throw conflict(inUse);
      await audited(db, p, resourceEvent('D', 'role', role.id, { name: role.name }), async (trx) => {
        await hardDelete(trx, 'roles', role.id);
      });
      noContent(res);
    },
  });
}
