import type { Construct } from 'constructs';
import type { TerraformMetaArguments } from './cdktf';
import { PhaseResource } from './resource';

export interface PhaseServiceAccountConfig extends TerraformMetaArguments {
  readonly name: string;
  /** A role id (`phase_role` or the `phase_role` data source). Global-access roles are refused by the server. */
  readonly roleId: string;
}

/** `phase_service_account`: a machine identity with server-managed keys. */
export class PhaseServiceAccount extends PhaseResource<PhaseServiceAccountConfig> {
  static readonly tfResourceType = 'phase_service_account';

  constructor(scope: Construct, id: string, config: PhaseServiceAccountConfig) {
    super(scope, id, PhaseServiceAccount.tfResourceType, config);
  }

  protected attributes(): Record<string, unknown> {
    return { name: this.config.name, role_id: this.config.roleId };
  }
}

/** One app a service account may use. */
export interface AppAccess {
  readonly appId: string;
  /** Environment ids in that app (at least one). */
  readonly environments: string[];
  /** Restrict the account to secrets under these paths (phase-bridge extension). */
  readonly paths?: string[];
}

export interface PhaseServiceAccountAccessConfig extends TerraformMetaArguments {
  readonly serviceAccountId: string;
  readonly apps: AppAccess[];
}

/** `phase_service_account_access`: the complete, declarative set of apps and environments of one account. */
export class PhaseServiceAccountAccess extends PhaseResource<PhaseServiceAccountAccessConfig> {
  static readonly tfResourceType = 'phase_service_account_access';

  constructor(scope: Construct, id: string, config: PhaseServiceAccountAccessConfig) {
    super(scope, id, PhaseServiceAccountAccess.tfResourceType, config);
  }

  protected attributes(): Record<string, unknown> {
    return {
      service_account_id: this.config.serviceAccountId,
      app: this.config.apps.map((a) => ({ app_id: a.appId, environments: a.environments, paths: a.paths })),
    };
  }
}
