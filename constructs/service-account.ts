import { Construct } from 'constructs';
import type { PhaseApp, PhaseEnvironmentRef } from './app';
import { ephemeralPhaseServiceAccountToken, serviceAccount, serviceAccountAccess } from './provider';
import { GLOBAL_ROLES, PhaseRole, roleId, type RoleRef } from './role';
import { PhaseToken, type PhaseTokenProps } from './token';
import { address, validate } from './validation';

export interface PhaseServiceAccountProps {
  /** Account name, at most 64 characters. */
  readonly name: string;
  /**
   * A managed role's name or a custom `PhaseRole`. Roles with global access (Owner, Admin) cannot be held by
   * service accounts.
   * @default 'Service'
   */
  readonly role?: RoleRef;
}

export interface PhaseGrantOptions {
  /**
   * Restrict the grant to secrets under these paths (phase-bridge extension), e.g. `['/api']`.
   * @default every path
   */
  readonly paths?: string[];
}

interface Grant {
  app: PhaseApp;
  environments: PhaseEnvironmentRef[];
  /** undefined = every path */
  paths?: Set<string>;
}

/**
 * A machine identity with its own key pair (managed by the server), a role, and access to environments of several
 * apps. Every `grant` goes into the account's one `phase_service_account_access` resource, which is declarative:
 * what is not granted here is revoked on apply.
 *
 * ```ts
 * const api = new PhaseServiceAccount(stack, 'api', { name: 'payments-api' });
 * api.grant(app, ['Production'], { paths: ['/api'] });
 * const token = api.addToken('deploy', { expiresIn: '90d', rotateAfter: '30d' });
 * ```
 */
export class PhaseServiceAccount extends Construct {
  /** The level-1 `phase_service_account` resource. */
  readonly resource: serviceAccount.ServiceAccount;
  /** The level-1 access resource, once something is granted. */
  private accessResource?: serviceAccountAccess.ServiceAccountAccess;
  private readonly grants: Grant[] = [];
  private readonly tokens: PhaseToken[] = [];
  private readonly accessEntries: serviceAccountAccess.ServiceAccountAccessConfigApp[] = [];

  constructor(scope: Construct, id: string, props: PhaseServiceAccountProps) {
    super(scope, id);
    const role = props.role ?? 'Service';
    this.resource = new serviceAccount.ServiceAccount(this, 'account', {
      name: props.name,
      roleId: roleId(this, role),
    });
    validate(this, () => {
      const problems: string[] = [];
      if (props.name.length === 0 || props.name.length > 64)
        problems.push('name must be 1 to 64 characters.');
      if (!(role instanceof PhaseRole) && GLOBAL_ROLES.includes(role)) {
        problems.push(
          `the '${role}' role has global access, which service accounts cannot hold; use 'Service', 'Developer', 'Manager' or a custom PhaseRole.`,
        );
      }
      return problems;
    });
  }

  /** The account id (a token until apply). */
  get id(): string {
    return this.resource.id;
  }

  /** The level-1 access resource, or undefined when nothing is granted. */
  get access(): serviceAccountAccess.ServiceAccountAccess | undefined {
    return this.accessResource;
  }

  /**
   * Grants environments of an app, by name. Grants accumulate: several grants on one app add environments, and
   * paths (a grant without paths gives every path).
   */
  grant(app: PhaseApp, environments: string[], options: PhaseGrantOptions = {}): this {
    let g = this.grants.find((x) => x.app === app);
    if (!g) {
      g = { app, environments: [], paths: options.paths ? new Set() : undefined };
      this.grants.push(g);
    }
    for (const name of environments) {
      if (!g.environments.some((e) => e.name.toLowerCase() === name.toLowerCase())) {
        g.environments.push(app.environment(name));
      }
    }
    if (!options.paths) g.paths = undefined;
    else if (g.paths) for (const p of options.paths) g.paths.add(p);
    const grant = g;
    validate(this, () =>
      environments.length === 0
        ? [`a grant on app '${app.node.id}' lists no environments; name at least one (e.g. ['Development']).`]
        : grant.paths && grant.paths.size === 0
          ? [
              `a grant on app '${app.node.id}' has an empty 'paths' list; leave 'paths' out to grant every path.`,
            ]
          : [],
    );
    this.syncAccess();
    return this;
  }

  /** Adds a token for this account; it is created after the account's access, so it can read at once. */
  addToken(id: string, props: PhaseTokenProps = {}): PhaseToken {
    const t = new PhaseToken(this, id, this, props);
    this.tokens.push(t);
    this.syncAccess();
    return t;
  }

  /**
   * An ephemeral token (Terraform >= 1.10): minted when Terraform opens it and deleted when it closes it, never in
   * state. Use its `token` only in provider configuration, write-only attributes or other ephemeral values.
   */
  addEphemeralToken(
    id: string,
    props: { name?: string; expiresIn?: number } = {},
  ): ephemeralPhaseServiceAccountToken.EphemeralPhaseServiceAccountToken {
    return new ephemeralPhaseServiceAccountToken.EphemeralPhaseServiceAccountToken(this, id, {
      serviceAccountId: this.id,
      name: props.name,
      expiresIn: props.expiresIn,
    });
  }

  /** Rebuilds the access entries (the level-1 config holds this array) and the tokens' dependency on them. */
  private syncAccess(): void {
    if (this.grants.length === 0) return;
    if (!this.accessResource) {
      this.accessResource = new serviceAccountAccess.ServiceAccountAccess(this, 'access', {
        serviceAccountId: this.id,
        app: this.accessEntries,
      });
    }
    this.accessEntries.splice(
      0,
      this.accessEntries.length,
      ...this.grants.map((g) => ({
        appId: g.app.id,
        environments: g.environments.map((e) => e.id),
        paths: g.paths ? [...g.paths] : undefined,
      })),
    );
    // Custom environments are resources of their own: access waits for them, and tokens wait for access.
    const access = this.accessResource;
    access.dependsOn = [
      ...new Set(this.grants.flatMap((g) => g.environments.map((e) => address(e.dependable)))),
    ];
    for (const t of this.tokens) t.resource.dependsOn = [address(access)];
  }
}
