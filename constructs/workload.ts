import { Construct } from 'constructs';
import { TerraformDataSource, TerraformOutput, type TerraformResourceLifecycle } from './cdktf';
import { PhaseApp } from './app';
import { PhaseServiceAccount, PhaseServiceAccountAccess } from './service-account';
import { PhaseServiceAccountToken } from './token';

/** `data "phase_role"`: a role looked up by name (e.g. the managed `Service` role). */
export class PhaseRoleLookup extends TerraformDataSource {
  static readonly tfResourceType = 'phase_role';

  constructor(
    scope: Construct,
    id: string,
    private readonly roleName: string,
  ) {
    super(scope, id, { terraformResourceType: PhaseRoleLookup.tfResourceType });
  }

  get id(): string {
    return this.getStringAttribute('id');
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return { name: this.roleName };
  }
}

/** Access of a workload to one app: environments by name when `app` is a construct, by id otherwise. */
export interface WorkloadAppAccess {
  readonly app: PhaseApp | string;
  readonly environments: string[];
  readonly paths?: string[];
}

export interface WorkloadIdentityProps {
  /** Service account name. */
  readonly name: string;
  /** Role name (looked up) or `{ id }`; default the managed `Service` role. */
  readonly role?: string | { id: string };
  readonly access: WorkloadAppAccess[];
  readonly token?: {
    readonly name?: string;
    readonly expiresIn?: number;
    /** Rotate (create before destroy) once the token is older than this, e.g. `"720h"`. */
    readonly rotateAfter?: string;
  };
  /** Emit the token as a sensitive stack output named `<id>_token`. Default false. */
  readonly outputToken?: boolean;
}

/**
 * A workload's identity in one construct: a service account with a role, its app and environment access, and a
 * rotating token that is replaced before the old one is revoked.
 */
export class WorkloadIdentity extends Construct {
  readonly serviceAccount: PhaseServiceAccount;
  readonly access: PhaseServiceAccountAccess;
  readonly token: PhaseServiceAccountToken;

  constructor(scope: Construct, id: string, props: WorkloadIdentityProps) {
    super(scope, id);
    const role = props.role ?? 'Service';
    const roleId = typeof role === 'string' ? new PhaseRoleLookup(this, 'role', role).id : role.id;
    this.serviceAccount = new PhaseServiceAccount(this, 'service-account', { name: props.name, roleId });
    this.access = new PhaseServiceAccountAccess(this, 'access', {
      serviceAccountId: this.serviceAccount.id,
      apps: props.access.map((a) => ({
        appId: typeof a.app === 'string' ? a.app : a.app.id,
        environments: a.environments.map((e) => (typeof a.app === 'string' ? e : a.app.environmentId(e))),
        paths: a.paths,
      })),
    });
    const lifecycle: TerraformResourceLifecycle | undefined = props.token?.rotateAfter
      ? { createBeforeDestroy: true }
      : undefined;
    this.token = new PhaseServiceAccountToken(this, 'token', {
      serviceAccountId: this.serviceAccount.id,
      name: props.token?.name ?? 'default',
      expiresIn: props.token?.expiresIn,
      rotateAfter: props.token?.rotateAfter,
      lifecycle,
      // The token is only useful once the account can read something.
      dependsOn: [this.access],
    });
    if (props.outputToken) {
      new TerraformOutput(this, 'token-output', {
        value: this.token.token,
        sensitive: true,
      }).overrideLogicalId(`${id.replace(/[^A-Za-z0-9_]/g, '_')}_token`);
    }
  }
}
