/**
 * Role-based access control exactly as Phase evaluates it (phase-rest-api.md §5): the five default role maps
 * (stored JSON ignored for default roles) and `role_has_permission`.
 */

export type Action = 'create' | 'read' | 'update' | 'delete';
export type PermissionMap = Record<string, string[]>;

export interface RoleMap {
  meta: { version: number; description: string };
  permissions: PermissionMap;
  app_permissions: PermissionMap;
  global_access: boolean;
}

export const DEFAULT_ROLE_NAMES = ['Owner', 'Admin', 'Manager', 'Developer', 'Service'] as const;
export type DefaultRoleName = (typeof DEFAULT_ROLE_NAMES)[number];

/**
 * The default roles' permissions, one row per permission class: organisation classes (`permissions`) first, then,
 * after `app:`, app classes (`app_permissions`), in source order. A cell lists a role's actions by letter in the
 * order they appear in the map (c create, r read, u update, d delete; `crud` = all four); `-` is no action, `x` a
 * class missing from that role's map. The maps below are generated from this table.
 */
const TABLE = `
  class                        Owner  Admin  Manager  Developer  Service
  Organisation                 crud   ru     r        -          -
  Billing                      crud   crud   crud     -          -
  Apps                         crud   crud   crud     r          cru
  Members                      crud   crud   crud     r          r
  MemberPersonalAccessTokens   crud   crud   x        x          x
  ServiceAccounts              crud   crud   crud     -          r
  ServiceAccountTokens         crud   crud   crud     -          r
  ExternalIdentities           crud   crud   crud     -          r
  Roles                        crud   crud   crud     r          r
  IntegrationCredentials       crud   crud   crud     cru        r
  NetworkAccessPolicies        crud   crud   crud     r          r
  Logs                         r      r      r        r          -
  SSO                          crud   crud   -        -          -
  Teams                        crud   crud   crud     r          -
  SCIM                         crud   crud   -        -          -
  LogStreams                   crud   crud   -        -          -
  app:
  Environments                 crud   crud   rcu      rcu        rcud
  Secrets                      crud   crud   crud     crud       crud
  DynamicSecretLeases          crud   crud   crud     cr         cr
  RotatingSecrets              crud   crud   crud     r          r
  Lockbox                      crud   crud   crud     crud       -
  Logs                         crud   crud   crud     r          -
  Tokens                       crud   crud   crud     rc         -
  Members                      crud   crud   crud     r          r
  ServiceAccounts              crud   crud   crud     c          r
  Integrations                 crud   crud   crud     crud       r
  EncryptionMode               ru     ru     ru       ru         r
  Teams                        crud   crud   crud     r          r
`;

const [HEADER, ...CLASS_ROWS] = TABLE.trim()
  .split('\n')
  .map((line) => line.trim().split(/\s+/));
const APP_START = CLASS_ROWS.findIndex((row) => row[0] === 'app:');

const ROLE_META: Record<DefaultRoleName, { version: number; description: string; global_access: boolean }> = {
  Owner: {
    version: 2,
    description:
      'The organisation owner, limited to a single user, with full access to all resources and actions.',
    global_access: true,
  },
  Admin: {
    version: 2,
    description:
      'Administrative users with broad access to resources and global access to all Apps and Environments.',
    global_access: true,
  },
  Manager: {
    version: 2,
    description:
      'Management users with broad access to environments, secrets, and service accounts at the organisation level. Requires explicit access to Apps and Environments.',
    global_access: false,
  },
  Developer: {
    version: 1,
    description:
      'Development users with limited organisation-level permissions. Requires explicit access to Apps and Environments.',
    global_access: false,
  },
  Service: {
    version: 1,
    description:
      'Default role for Service Accounts, providing programmatic access to secrets without access to other organisation or app resources.',
    global_access: false,
  },
};

const ACTION_LETTERS: Record<string, Action> = { c: 'create', r: 'read', u: 'update', d: 'delete' };

/** One role's column of the table's rows as a permission map. */
function column(rows: string[][], role: DefaultRoleName): PermissionMap {
  const out: PermissionMap = {};
  const at = HEADER.indexOf(role);
  for (const row of rows) {
    const [resource, cell] = [row[0], row[at]];
    if (cell === 'x') continue;
    out[resource] = cell === '-' ? [] : [...cell].map((l) => ACTION_LETTERS[l]);
  }
  return out;
}

/** Built-in maps in source order (phasehq/console `roles.py` `default_roles`). */
export const DEFAULT_ROLES = Object.fromEntries(
  DEFAULT_ROLE_NAMES.map((name) => {
    const { version, description, global_access } = ROLE_META[name];
    const map: RoleMap = {
      meta: { version, description },
      permissions: column(CLASS_ROWS.slice(0, APP_START), name),
      app_permissions: column(CLASS_ROWS.slice(APP_START + 1), name),
      global_access,
    };
    return [name, map];
  }),
) as Record<DefaultRoleName, RoleMap>;

/** The fields of a role row RBAC needs. */
export interface RoleLike {
  name: string;
  is_default: number | boolean;
  permissions: string;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

/** The effective map: built-in for default roles (looked up by `name.capitalize()`), else the stored JSON. */
export function effectiveMap(role: RoleLike): {
  permissions?: PermissionMap;
  app_permissions?: PermissionMap;
  global_access?: boolean;
} {
  if (role.is_default) {
    const builtin = DEFAULT_ROLES[capitalize(role.name) as DefaultRoleName];
    if (builtin) return builtin;
  }
  try {
    const parsed = JSON.parse(role.permissions) as Record<string, unknown>;
    return parsed as {
      permissions?: PermissionMap;
      app_permissions?: PermissionMap;
      global_access?: boolean;
    };
  } catch {
    return {};
  }
}

/** `role_has_permission(role, action, resource, is_app_resource)`. */
export function roleHasPermission(
  role: RoleLike | null | undefined,
  action: Action,
  resource: string,
  isAppResource: boolean,
): boolean {
  if (!role) return false;
  const map = effectiveMap(role);
  const section = isAppResource ? map.app_permissions : map.permissions;
  const actions = section?.[resource];
  return Array.isArray(actions) && actions.includes(action);
}

export function hasGlobalAccess(role: RoleLike | null | undefined): boolean {
  if (!role) return false;
  return effectiveMap(role).global_access === true;
}

/** GET → read, POST → create, PUT → update, DELETE → delete. */
export function actionFor(method: string): Action {
  switch (method) {
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'DELETE':
      return 'delete';
    default:
      return 'read';
  }
}
