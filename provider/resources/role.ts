/** `phase_role`: a custom role (paid plans upstream). Default roles cannot be managed, only read (data source). */
import type { ResourceDef } from '../framework/provider';
import type { TfObject, TfValue } from '../framework/types';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, type Client } from '../phase/common';
import { maxLength, need, notBlank, stableList, str, textOrNull } from '../phase/values';
import type { AttributeDef } from '../framework/schema';
import type { Role } from '../../core/schemas';

const permMap = (section: string): AttributeDef => ({
  type: ['map', ['list', 'string']],
  optional: true,
  computed: true,
  description: `${section} permissions: resource name to allowed actions, e.g. \`{ Secrets = ["read"] }\`.`,
});

/** Converts a map of action lists to plain JSON. */
function toPermJson(v: TfValue | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, list] of Object.entries(v as Record<string, TfValue>)) {
      out[k] = Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
    }
  }
  return out;
}

/** Reads one section of a role's permission JSON, keeping prior list order where the set is unchanged. */
function fromPermJson(json: unknown, prior: TfValue | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const priorMap =
    prior && typeof prior === 'object' && !Array.isArray(prior) ? (prior as Record<string, TfValue>) : {};
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    for (const [k, list] of Object.entries(json as Record<string, unknown>)) {
      if (Array.isArray(list)) out[k] = stableList(list.map(String), priorMap[k] ?? null);
    }
  }
  return out;
}

/** Role state from the API object (permission JSON keys arrive camelCased). */
export function roleState(role: Role, prior: TfObject): TfObject {
  const perms = (role.permissions ?? {}) as Record<string, unknown>;
  return {
    ...prior,
    id: role.id,
    name: role.name,
    description: textOrNull(role.description, prior.description ?? null),
    color: textOrNull(role.color, prior.color ?? null),
    permissions: fromPermJson(perms.permissions, prior.permissions),
    app_permissions: fromPermJson(perms.appPermissions ?? perms.app_permissions, prior.app_permissions),
    is_default: role.isDefault,
    created_at: role.createdAt ?? null,
  };
}

export const roleResource: ResourceDef<Client> = {
  typeName: 'phase_role',
  importIdFormat: '<role_id>',
  schema: {
    version: 0,
    block: {
      description: 'A custom role: organisation-level `permissions` and per-app `app_permissions`.',
      attributes: {
        id: idAttr('role'),
        name: {
          type: 'string',
          required: true,
          description: 'Role name, unique in the organisation.',
          validators: [notBlank, maxLength(64)],
        },
        description: {
          type: 'string',
          optional: true,
          description: 'Description (at most 500 characters).',
          validators: [maxLength(500)],
        },
        color: {
          type: 'string',
          optional: true,
          description: 'Display colour such as `#3b82f6`.',
          validators: [maxLength(7)],
        },
        permissions: permMap('Organisation-level'),
        app_permissions: permMap('App-level'),
        is_default: {
          type: 'bool',
          computed: true,
          description: 'Always false for roles managed here.',
          planModifiers: ['useStateForUnknown'],
        },
        created_at: createdAt,
      },
    },
  },

  async create(client, planned) {
    const role = await client.createRole({
      name: need(planned, 'name'),
      description: str(planned, 'description'),
      color: str(planned, 'color'),
      permissions: {
        permissions: toPermJson(planned.permissions),
        app_permissions: toPermJson(planned.app_permissions),
      },
    });
    return roleState(role, planned);
  },

  async read(client, state) {
    const role = await orNullIfGone(() => client.getRole(need(state, 'id')));
    return role ? roleState(role, state) : null;
  },

  async update(client, prior, planned) {
    const role = await client.updateRole(need(prior, 'id'), {
      name: need(planned, 'name'),
      description: str(planned, 'description') ?? '',
      color: str(planned, 'color') ?? '',
      permissions: {
        permissions: toPermJson(planned.permissions),
        app_permissions: toPermJson(planned.app_permissions),
      },
    });
    return roleState(role, planned);
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteRole(need(state, 'id')));
  },

  importState(id) {
    return { id };
  },
};
