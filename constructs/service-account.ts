import { Construct } from 'constructs';
import { ASYMMETRIC_ALGORITHMS } from '../core/identity';
import type { PhaseApp, PhaseEnvironmentRef } from './app';
import { Token } from './cdktf';
import {
  ephemeralPhaseServiceAccountToken,
  externalIdentity,
  serviceAccount,
  serviceAccountAccess,
  serviceAccountIdentity,
} from './provider';
import { GLOBAL_ROLES, PhaseRole, roleId, type RoleRef } from './role';
import { lifetimeSeconds, PhaseToken, type PhaseTokenProps } from './token';
import { address, idPart, validate } from './validation';

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

/** Lifetimes of the tokens a workload gets when it logs in with its platform identity. */
export interface PhaseTrustOptions {
  /**
   * Name of the external identity (at most 64 characters).
   * @default the account's name and what is trusted, e.g. `payments-api: kubernetes payments/api`
   */
  readonly name?: string;
  /**
   * Lifetime of a token minted at login when the login asks for none: seconds or a duration (`"15m"`).
   * @default 3600 (1 hour; the server's default)
   */
  readonly tokenTtl?: number | string;
  /**
   * The longest lifetime a login may ask for: seconds or a duration (`"12h"`), at most 30 days.
   * @default 86400 (24 hours; the server's default)
   */
  readonly maxTtl?: number | string;
}

export interface PhaseTrustKubernetesOptions extends PhaseTrustOptions {
  /**
   * The cluster's service-account token issuer, an https URL (`kubectl get --raw /.well-known/openid-configuration`
   * shows it; EKS: `https://oidc.eks.<region>.amazonaws.com/id/<id>`).
   */
  readonly issuer: string;
  /** The Kubernetes namespace of the pods. */
  readonly namespace: string;
  /** The Kubernetes service account the pods run as. */
  readonly serviceAccount: string;
  /** The audience of the projected token (`serviceAccountToken.audience` in the pod spec), e.g. `'phase'`. */
  readonly audience: string;
  /**
   * The issuer's key set URL, when it does not serve OIDC discovery.
   * @default discovered from `<issuer>/.well-known/openid-configuration`
   */
  readonly jwksUrl?: string;
}

export interface PhaseTrustOidcOptions extends PhaseTrustOptions {
  /** The token issuer, an https URL, e.g. `https://token.actions.githubusercontent.com`. */
  readonly issuer: string;
  /** The token's `aud` must contain one of these. */
  readonly audiences: string[];
  /** Glob patterns (`*`, `?`, `[...]`) for the token's `sub`, e.g. `['repo:acme/api:ref:refs/heads/main']`. */
  readonly subjects: string[];
  /**
   * Further claims the token must carry: claim name to glob pattern, e.g. `{ environment: 'production' }`.
   * @default none
   */
  readonly claims?: Record<string, string>;
  /**
   * The issuer's key set URL.
   * @default discovered from `<issuer>/.well-known/openid-configuration`
   */
  readonly jwksUrl?: string;
  /**
   * An inline JSON Web Key Set (an object or its JSON text) for an issuer the server cannot reach. Not with `jwksUrl`.
   * @default discovered from the issuer
   */
  readonly jwks?: string | Record<string, unknown>;
  /**
   * Accepted signature algorithms (asymmetric only).
   * @default ['RS256', 'ES256'] (the server's default)
   */
  readonly allowedAlgorithms?: string[];
}

export interface PhaseTrustAwsOptions extends PhaseTrustOptions {
  /**
   * The STS endpoint the workload signs its login for (the region's, e.g. `https://sts.eu-west-1.amazonaws.com`).
   * @default https://sts.amazonaws.com (the server's default)
   */
  readonly stsEndpoint?: string;
}

const KUBERNETES_LABELS = {
  namespace: "pods' namespace",
  serviceAccount: 'Kubernetes service account the pods run as',
  audience: "projected token's audience (e.g. 'phase')",
} as const;

/** The longest token lifetime the server lets an identity grant: 30 days. */
const MAX_IDENTITY_TTL_SECONDS = 30 * 86400;
/** The algorithms an identity may allow: core's list, the one the server enforces. */
const ASYMMETRIC: readonly string[] = ASYMMETRIC_ALGORITHMS;

/** A plain string that is known now (tokens resolve at apply time and are not checked). */
const known = (s: string | undefined): s is string => typeof s === 'string' && !Token.isUnresolved(s);

/** Problems with an issuer or endpoint URL: https, except plain http on loopback (tests). */
function urlProblems(what: string, v: string | undefined): string[] {
  if (!known(v)) return [];
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return [`${what} '${v}' is not a URL; give an https:// URL.`];
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (u.protocol === 'https:' || (u.protocol === 'http:' && loopback)) return [];
  return [
    `${what} '${v}' must be an https:// URL (plain http is allowed only for 127.0.0.1 and localhost, in tests).`,
  ];
}

/** Problems with a list of glob patterns: empty, blank entries, a bare `*`. */
function patternProblems(what: string, list: string[], example: string): string[] {
  if (list.length === 0) return [`'${what}' is empty; list at least one pattern, e.g. '${example}'.`];
  const out: string[] = [];
  for (const p of list.filter(known)) {
    if (p.trim() === '') out.push(`'${what}' has an empty pattern; remove it or name what to trust.`);
    else if (p.trim() === '*')
      out.push(`'${what}' has the pattern '*', which would trust anyone; narrow it, e.g. '${example}'.`);
  }
  return out;
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
  private readonly accountName: string;

  constructor(scope: Construct, id: string, props: PhaseServiceAccountProps) {
    super(scope, id);
    this.accountName = props.name;
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

  /**
   * Lets pods running as a Kubernetes service account log in as this account with their projected token (no stored
   * token in the cluster): an OIDC identity bound to `system:serviceaccount:<namespace>:<serviceAccount>` and
   * `audience`, attached to this account. Returns the level-1 `phase_external_identity`.
   *
   * ```ts
   * api.trustKubernetes({ issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE', namespace: 'payments',
   *   serviceAccount: 'api', audience: 'phase', tokenTtl: '1h' });
   * ```
   */
  trustKubernetes(options: PhaseTrustKubernetesOptions): externalIdentity.ExternalIdentity {
    const { namespace: ns, serviceAccount: name } = options;
    const identity = this.addIdentity(
      'trustKubernetes',
      `k8s-${idPart(ns)}-${idPart(name)}`,
      `kubernetes ${ns}/${name}`,
      options,
      'oidc',
      {
        oidc: [
          {
            issuer: options.issuer,
            audiences: [options.audience],
            jwksUrl: options.jwksUrl,
            boundSubjects: [`system:serviceaccount:${ns}:${name}`],
          },
        ],
      },
    );
    this.check('trustKubernetes', () => [
      ...urlProblems('issuer', options.issuer),
      ...urlProblems('jwksUrl', options.jwksUrl),
      ...(['namespace', 'serviceAccount', 'audience'] as const)
        .filter((k) => known(options[k]) && options[k].trim() === '')
        .map((k) => `'${k}' is empty; name the ${KUBERNETES_LABELS[k]}.`),
      ...[ns, name]
        .filter((x) => known(x) && /[*?[\]]/.test(x))
        .map(
          (x) =>
            `'${x}' holds a pattern character; trustKubernetes binds one exact namespace and service account (use trustOidc for patterns).`,
        ),
    ]);
    return identity;
  }

  /**
   * Lets a workload holding an OIDC token from `issuer` (GitHub Actions, GitLab CI, any OIDC provider) log in as this
   * account when the token's `sub` matches one of `subjects` and its claims match `claims`. Returns the level-1
   * `phase_external_identity`.
   *
   * ```ts
   * deploy.trustOidc({ issuer: 'https://token.actions.githubusercontent.com', audiences: ['https://github.com/acme'],
   *   subjects: ['repo:acme/payments:environment:production'] });
   * ```
   */
  trustOidc(options: PhaseTrustOidcOptions): externalIdentity.ExternalIdentity {
    const host = known(options.issuer) ? (safeHost(options.issuer) ?? 'issuer') : 'issuer';
    const jwks =
      options.jwks === undefined || typeof options.jwks === 'string'
        ? options.jwks
        : JSON.stringify(options.jwks);
    const identity = this.addIdentity('trustOidc', `oidc-${idPart(host)}`, `oidc ${host}`, options, 'oidc', {
      oidc: [
        {
          issuer: options.issuer,
          audiences: options.audiences,
          jwksUrl: options.jwksUrl,
          jwks,
          allowedAlgorithms: options.allowedAlgorithms,
          boundSubjects: options.subjects,
          boundClaims: options.claims,
        },
      ],
    });
    this.check('trustOidc', () => {
      const problems = [
        ...urlProblems('issuer', options.issuer),
        ...urlProblems('jwksUrl', options.jwksUrl),
        ...patternProblems('subjects', options.subjects, 'repo:acme/api:ref:refs/heads/main'),
      ];
      if (options.audiences.length === 0 || options.audiences.some((a) => known(a) && a.trim() === ''))
        problems.push("'audiences' must list at least one audience, and no empty ones.");
      for (const [claim, pattern] of Object.entries(options.claims ?? {})) {
        if (known(pattern) && (pattern.trim() === '' || pattern.trim() === '*'))
          problems.push(
            `claim '${claim}' has the pattern '${pattern}', which matches anything; give a value or remove it.`,
          );
      }
      if (options.jwks !== undefined && options.jwksUrl !== undefined)
        problems.push("give 'jwksUrl' or 'jwks', not both.");
      for (const a of (options.allowedAlgorithms ?? []).filter(known)) {
        if (!ASYMMETRIC.includes(a))
          problems.push(`algorithm '${a}' is not allowed; use asymmetric ones (${ASYMMETRIC.join(', ')}).`);
      }
      return problems;
    });
    return identity;
  }

  /**
   * Lets AWS principals whose ARN matches `arnPattern` (e.g. `arn:aws:sts::123456789012:assumed-role/api/*`) log in
   * as this account with their IAM credentials (`phase auth --mode aws-iam`, wire-compatible with Phase). Returns the
   * level-1 `phase_external_identity`.
   */
  trustAwsPrincipal(
    arnPattern: string | string[],
    options: PhaseTrustAwsOptions = {},
  ): externalIdentity.ExternalIdentity {
    const patterns = Array.isArray(arnPattern) ? arnPattern : [arnPattern];
    const identity = this.addIdentity('trustAwsPrincipal', 'aws-iam', 'aws iam', options, 'aws_iam', {
      awsIam: [{ trustedPrincipals: patterns, stsEndpoint: options.stsEndpoint }],
    });
    this.check('trustAwsPrincipal', () => [
      ...patternProblems('arnPattern', patterns, 'arn:aws:sts::123456789012:assumed-role/api/*'),
      ...urlProblems('stsEndpoint', options.stsEndpoint),
    ]);
    return identity;
  }

  /** A synth-time check whose problems name the method they come from. */
  private check(method: string, fn: () => string[]): void {
    validate(this, () => fn().map((m) => `${method}: ${m}`));
  }

  /** One external identity and its attachment to this account; TTL checks shared by the trust methods. */
  private addIdentity(
    method: string,
    baseId: string,
    what: string,
    options: PhaseTrustOptions,
    providerType: 'oidc' | 'aws_iam',
    block: Pick<externalIdentity.ExternalIdentityConfig, 'oidc' | 'awsIam'>,
  ): externalIdentity.ExternalIdentity {
    let id = baseId;
    for (let n = 2; this.node.tryFindChild(id); n++) id = `${baseId}-${n}`;
    const tokenTtl = lifetimeSeconds(options.tokenTtl);
    const maxTtl = lifetimeSeconds(options.maxTtl);
    const identity = new externalIdentity.ExternalIdentity(this, id, {
      name: options.name ?? `${this.accountName}: ${what}`.slice(0, 64),
      providerType,
      defaultTtlSeconds: tokenTtl,
      maxTtlSeconds: maxTtl,
      ...block,
    });
    new serviceAccountIdentity.ServiceAccountIdentity(this, `${id}-attachment`, {
      identityId: identity.id,
      serviceAccountId: this.id,
    });
    this.check(method, () => {
      const problems: string[] = [];
      for (const [k, raw, secs] of [
        ['tokenTtl', options.tokenTtl, tokenTtl],
        ['maxTtl', options.maxTtl, maxTtl],
      ] as const) {
        if (raw === undefined) continue;
        if (secs === undefined)
          problems.push(`${k} '${String(raw)}' is not a positive number of seconds or a duration like "1h".`);
        else if (secs > MAX_IDENTITY_TTL_SECONDS)
          problems.push(`${k} '${String(raw)}' is longer than 30 days.`);
      }
      const effectiveMax = maxTtl ?? 86400;
      if (tokenTtl !== undefined && tokenTtl > effectiveMax)
        problems.push(
          `tokenTtl (${tokenTtl}s) is longer than maxTtl (${effectiveMax}s${maxTtl === undefined ? ', the default' : ''}); raise maxTtl or shorten tokenTtl.`,
        );
      if (options.name !== undefined && (options.name.trim() === '' || options.name.length > 64))
        problems.push('name must be 1 to 64 characters.');
      return problems;
    });
    return identity;
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

function safeHost(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}
