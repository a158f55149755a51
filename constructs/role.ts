import { Construct } from 'constructs';
import { TerraformStack } from './cdktf';
import { dataPhaseRole, role as l1role } from './provider';
import { validate } from './validation';

export type PhaseAction = 'create' | 'read' | 'update' | 'delete';

/** Organisation-level resources of a role (Phase's permission classes). */
export interface PhaseOrgPermissions {
  readonly Organisation?: PhaseAction[];
  readonly Billing?: PhaseAction[];
  readonly Apps?: PhaseAction[];
  readonly Members?: PhaseAction[];
  readonly MemberPersonalAccessTokens?: PhaseAction[];
  readonly ServiceAccounts?: PhaseAction[];
  readonly ServiceAccountTokens?: PhaseAction[];
  readonly ExternalIdentities?: PhaseAction[];
  readonly Roles?: PhaseAction[];
  readonly IntegrationCredentials?: PhaseAction[];
  readonly NetworkAccessPolicies?: PhaseAction[];
  /** Only `read`. */
  readonly Logs?: Array<'read'>;
  readonly SSO?: PhaseAction[];
  readonly Teams?: PhaseAction[];
  readonly SCIM?: PhaseAction[];
  readonly LogStreams?: PhaseAction[];
}

/** App-level resources of a role, applied in the apps the holder has access to. */
export interface PhaseAppPermissions {
  readonly Environments?: PhaseAction[];
  readonly Secrets?: PhaseAction[];
  readonly DynamicSecretLeases?: PhaseAction[];
  readonly RotatingSecrets?: PhaseAction[];
  readonly Lockbox?: PhaseAction[];
  readonly Logs?: PhaseAction[];
  readonly Tokens?: PhaseAction[];
  readonly Members?: PhaseAction[];
  readonly ServiceAccounts?: PhaseAction[];
  readonly Integrations?: PhaseAction[];
  /** Only `read` and `update`. */
  readonly EncryptionMode?: Array<'read' | 'update'>;
  readonly Teams?: PhaseAction[];
}

/** Phase's managed roles. Owner and Admin have global access and cannot be given to service accounts. */
export type ManagedRoleName = 'Owner' | 'Admin' | 'Manager' | 'Developer' | 'Service';
export const GLOBAL_ROLES: readonly ManagedRoleName[] = ['Owner', 'Admin'];

export interface PhaseRoleProps {
  /** Role name, unique in the organisation (case-insensitive), at most 64 characters. */
  readonly name: string;
  /** @default no description */
  readonly description?: string;
  /** Hex colour shown in the console, e.g. `#3b82f6`. @default no colour */
  readonly color?: string;
  /** Organisation-level permissions. @default none */
  readonly permissions?: PhaseOrgPermissions;
  /** App-level permissions. @default none */
  readonly appPermissions?: PhaseAppPermissions;
}

/** Anything that names a role: a managed role's name or a custom `PhaseRole`. */
export type RoleRef = ManagedRoleName | PhaseRole;

/**
 * A custom role with typed permissions. A principal can only write permissions it holds itself (the subset rule),
 * so apply these with an Owner's or Admin's token.
 */
export class PhaseRole extends Construct {
  /** The level-1 `phase_role` resource. */
  readonly resource: l1role.Role;
  readonly roleName: string;

  constructor(scope: Construct, id: string, props: PhaseRoleProps) {
    super(scope, id);
    this.roleName = props.name;
    this.resource = new l1role.Role(this, 'role', {
      name: props.name,
      description: props.description,
      color: props.color,
      permissions: { ...(props.permissions ?? {}) } as Record<string, string[]>,
      appPermissions: { ...(props.appPermissions ?? {}) } as Record<string, string[]>,
    });
    validate(this, () => {
      const problems: string[] = [];
      if (props.name.length === 0 || props.name.length > 64)
        problems.push('name must be 1 to 64 characters.');
      if (props.color !== undefined && props.color.length > 7)
        problems.push(`color '${props.color}' is longer than 7 characters.`);
      return problems;
    });
  }

  /** The role id (a token until apply). */
  get id(): string {
    return this.resource.id;
  }
}

/**
 * The id of a managed role, looked up once per stack (`data "phase_role"`), or of a custom role.
 */
export function roleId(scope: Construct, role: RoleRef): string {
  if (role instanceof PhaseRole) return role.id;
  const stack = TerraformStack.of(scope);
  const id = `phase-role-${role.toLowerCase()}`;
  const existing = stack.node.tryFindChild(id);
  const lookup =
    existing instanceof dataPhaseRole.DataPhaseRole
      ? existing
      : new dataPhaseRole.DataPhaseRole(stack, id, { name: role });
  return lookup.id;
}
