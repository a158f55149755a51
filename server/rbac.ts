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

const CRUD = (): string[] => ['create', 'read', 'update', 'delete'];

export const DEFAULT_ROLE_NAMES = ['Owner', 'Admin', 'Manager', 'Developer', 'Service'] as const;
export type DefaultRoleName = (typeof DEFAULT_ROLE_NAMES)[number];

/** Built-in maps in source order (phasehq/console `roles.py` `default_roles`). */
export const DEFAULT_ROLES: Record<DefaultRoleName, RoleMap> = {
  Owner: {
    meta: {
      version: 2,
      description:
        'The organisation owner, limited to a single user, with full access to all resources and actions.',
    },
    permissions: {
      Organisation: CRUD(),
      Billing: CRUD(),
      Apps: CRUD(),
      Members: CRUD(),
      MemberPersonalAccessTokens: CRUD(),
      ServiceAccounts: CRUD(),
      ServiceAccountTokens: CRUD(),
      ExternalIdentities: CRUD(),
      Roles: CRUD(),
      IntegrationCredentials: CRUD(),
      NetworkAccessPolicies: CRUD(),
      Logs: ['read'],
      SSO: CRUD(),
      Teams: CRUD(),
      SCIM: CRUD(),
      LogStreams: CRUD(),
    },
    app_permissions: {
      Environments: CRUD(),
      Secrets: CRUD(),
      DynamicSecretLeases: CRUD(),
      RotatingSecrets: CRUD(),
      Lockbox: CRUD(),
      Logs: CRUD(),
      Tokens: CRUD(),
      Members: CRUD(),
      ServiceAccounts: CRUD(),
      Integrations: CRUD(),
      EncryptionMode: ['read', 'update'],
      Teams: CRUD(),
    },
    global_access: true,
  },
  Admin: {
    meta: {
      version: 2,
      description:
        'Administrative users with broad access to resources and global access to all Apps and Environments.',
    },
    permissions: {
      Organisation: ['read', 'update'],
      Billing: CRUD(),
      Apps: CRUD(),
      Members: CRUD(),
      MemberPersonalAccessTokens: CRUD(),
      ServiceAccounts: CRUD(),
      ServiceAccountTokens: CRUD(),
      ExternalIdentities: CRUD(),
      Roles: CRUD(),
      IntegrationCredentials: CRUD(),
      NetworkAccessPolicies: CRUD(),
      Logs: ['read'],
      SSO: CRUD(),
      Teams: CRUD(),
      SCIM: CRUD(),
      LogStreams: CRUD(),
    },
    app_permissions: {
      Environments: CRUD(),
      Secrets: CRUD(),
      DynamicSecretLeases: CRUD(),
      RotatingSecrets: CRUD(),
      Lockbox: CRUD(),
      Logs: CRUD(),
      Tokens: CRUD(),
      Members: CRUD(),
      ServiceAccounts: CRUD(),
      Integrations: CRUD(),
      EncryptionMode: ['read', 'update'],
      Teams: CRUD(),
    },
    global_access: true,
  },
  Manager: {
    meta: {
      version: 2,
      description:
        'Management users with broad access to environments, secrets, and service accounts at the organisation level. Requires explicit access to Apps and Environments.',
    },
    permissions: {
      Organisation: ['read'],
      Billing: CRUD(),
      Apps: CRUD(),
      Members: CRUD(),
      ServiceAccounts: CRUD(),
      ServiceAccountTokens: CRUD(),
      ExternalIdentities: CRUD(),
      Roles: CRUD(),
      IntegrationCredentials: CRUD(),
      NetworkAccessPolicies: CRUD(),
      Logs: ['read'],
      SSO: [],
      Teams: CRUD(),
      SCIM: [],
      LogStreams: [],
    },
    app_permissions: {
      Environments: ['read', 'create', 'update'],
      Secrets: CRUD(),
      DynamicSecretLeases: CRUD(),
      RotatingSecrets: CRUD(),
      Lockbox: CRUD(),
      Logs: CRUD(),
      Tokens: CRUD(),
      Members: CRUD(),
      ServiceAccounts: CRUD(),
      Integrations: CRUD(),
      EncryptionMode: ['read', 'update'],
      Teams: CRUD(),
    },
    global_access: false,
  },
  Developer: {
    meta: {
      version: 1,
      description:
        'Development users with limited organisation-level permissions. Requires explicit access to Apps and Environments.',
    },
    permissions: {
      Organisation: [],
      Billing: [],
      Apps: ['read'],
      Members: ['read'],
      ServiceAccounts: [],
      ServiceAccountTokens: [],
      ExternalIdentities: [],
      Roles: ['read'],
      IntegrationCredentials: ['create', 'read', 'update'],
      NetworkAccessPolicies: ['read'],
      Logs: ['read'],
      SSO: [],
      Teams: ['read'],
      SCIM: [],
      LogStreams: [],
    },
    app_permissions: {
      Environments: ['read', 'create', 'update'],
      Secrets: CRUD(),
      DynamicSecretLeases: ['create', 'read'],
      RotatingSecrets: ['read'],
      Lockbox: CRUD(),
      Logs: ['read'],
      Tokens: ['read', 'create'],
      Members: ['read'],
      ServiceAccounts: ['create'],
      Integrations: CRUD(),
      EncryptionMode: ['read', 'update'],
      Teams: ['read'],
    },
    global_access: false,
  },
  Service: {
    meta: {
      version: 1,
      description:
        'Default role for Service Accounts, providing programmatic access to secrets without access to other organisation or app resources.',
    },
    permissions: {
      Organisation: [],
      Billing: [],
      Apps: ['create', 'read', 'update'],
      Members: ['read'],
      ServiceAccounts: ['read'],
      ServiceAccountTokens: ['read'],
      ExternalIdentities: ['read'],
      Roles: ['read'],
      IntegrationCredentials: ['read'],
      NetworkAccessPolicies: ['read'],
      Logs: [],
      SSO: [],
      Teams: [],
      SCIM: [],
      LogStreams: [],
    },
    app_permissions: {
      Environments: ['read', 'create', 'update', 'delete'],
      Secrets: CRUD(),
      DynamicSecretLeases: ['create', 'read'],
      RotatingSecrets: ['read'],
      Lockbox: [],
      Logs: [],
      Tokens: [],
      Members: ['read'],
      ServiceAccounts: ['read'],
      Integrations: ['read'],
      EncryptionMode: ['read'],
      Teams: ['read'],
    },
    global_access: false,
  },
};

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
