import { Construct } from 'constructs';
import type { PhaseApp } from './app';
import type { RoleRef } from './role';
import { PhaseServiceAccount } from './service-account';
import type { PhaseToken, PhaseTokenProps } from './token';

/** Access of a workload to one app. */
export interface WorkloadAppAccess {
  readonly app: PhaseApp;
  /** Environment names. */
  readonly environments: string[];
  /** @default every path */
  readonly paths?: string[];
}

export interface WorkloadIdentityProps {
  /** Service account name. */
  readonly name: string;
  /** @default 'Service' */
  readonly role?: RoleRef;
  readonly access: WorkloadAppAccess[];
  /**
   * The workload's token.
   * @default a token named 'default' that never expires and does not rotate
   */
  readonly token?: PhaseTokenProps;
  /**
   * Emit the token as a sensitive stack output named `<id>_token`.
   * @default false
   */
  readonly outputToken?: boolean;
}

/**
 * A workload's identity in one construct: a service account with a role, its access, and a token (rotated
 * create-before-destroy when `rotateAfter` is set).
 */
export class WorkloadIdentity extends Construct {
  readonly serviceAccount: PhaseServiceAccount;
  readonly token: PhaseToken;

  constructor(scope: Construct, id: string, props: WorkloadIdentityProps) {
    super(scope, id);
    this.serviceAccount = new PhaseServiceAccount(this, 'service-account', {
      name: props.name,
      role: props.role,
    });
    for (const a of props.access) this.serviceAccount.grant(a.app, a.environments, { paths: a.paths });
    this.token = this.serviceAccount.addToken('token', { name: 'default', ...props.token });
    if (props.outputToken) this.token.toOutput(`${id.replace(/[^A-Za-z0-9_]/g, '_')}_token`);
  }
}
