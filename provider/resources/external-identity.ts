/**
 * `phase_external_identity` and `phase_service_account_identity` (phase-bridge extension, docs/identity.md): an
 * identity a workload proves with its platform's credential (a Kubernetes, GitHub Actions or GitLab CI OIDC token, or
 * AWS IAM credentials) to log in as the service accounts it is attached to, for a short-lived token.
 */
import { error, type Diagnostic } from '../framework/diagnostics';
import type { ResourceDef } from '../framework/provider';
import type { Validator } from '../framework/schema';
import { isObjectValue, isUnknown, type TfObject, type TfValue } from '../framework/types';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, updatedAt, type Client } from '../phase/common';
import {
  maxLength,
  need,
  notBlank,
  num,
  oneOf,
  positiveInteger,
  splitImportId,
  stableList,
  str,
  strList,
  textOrNull,
} from '../phase/values';
import type { ExternalIdentityChanges, ExternalIdentityInput } from '../../core/client';
import {
  ASYMMETRIC_ALGORITHMS,
  DEFAULT_ALGORITHMS,
  DEFAULT_SIGNATURE_TTL_SECONDS,
  DEFAULT_STS_ENDPOINT,
} from '../../core/identity';
import {
  EXTERNAL_IDENTITY_PROVIDERS,
  type AwsIamIdentityConfig,
  type ExternalIdentity,
  type OidcIdentityConfig,
} from '../../core/schemas';

/** The algorithms an identity may allow (core/identity): asymmetric only. */
const ALLOWED: readonly string[] = ASYMMETRIC_ALGORITHMS;

// ---- validators ----

/** A pattern list (or map of patterns) must not hold a bare `*`: it would trust anyone. */
export const noBareWildcard: Validator = (v, path) => {
  const values = Array.isArray(v) ? v : isObjectValue(v) ? Object.values(v) : [v];
  return values.some((x) => typeof x === 'string' && x.trim() === '*')
    ? [
        error(
          'Pattern trusts anyone',
          "A bare '*' is not allowed: it would let any subject or principal log in. Narrow it, for example " +
            '"system:serviceaccount:<namespace>:<name>", "repo:<org>/<repo>:*" or "arn:aws:iam::<account>:role/<name>".',
          path,
        ),
      ]
    : [];
};

/** Lists that must hold at least one non-blank entry. */
const nonEmptyList: Validator = (v, path) =>
  Array.isArray(v) && (v.length === 0 || v.some((x) => typeof x === 'string' && x.trim() === ''))
    ? [error('Invalid value', 'List at least one entry, and no empty ones.', path)]
    : [];

/** An absolute http(s) URL (the server allows plain http only on loopback, behind a test setting). */
const httpUrl: Validator = (v, path) => {
  if (typeof v !== 'string') return [];
  let ok = false;
  try {
    const u = new URL(v);
    ok = u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    ok = false;
  }
  return ok
    ? []
    : [
        error(
          'Invalid URL',
          `"${v}" is not an absolute https:// URL, such as "https://issuer.example.com".`,
          path,
        ),
      ];
};

/** An inline JWKS as a JSON string: an object with a non-empty `keys` list (write it with `jsonencode`). */
const jwksJson: Validator = (v, path) => {
  if (typeof v !== 'string') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    parsed = undefined;
  }
  const keys = (parsed as { keys?: unknown } | undefined)?.keys;
  return parsed &&
    typeof parsed === 'object' &&
    !Array.isArray(parsed) &&
    Array.isArray(keys) &&
    keys.length > 0
    ? []
    : [
        error(
          'Invalid JWKS',
          'jwks must be a JSON Web Key Set with at least one key, e.g. jsonencode({ keys = [ ... ] }) or file("jwks.json").',
          path,
        ),
      ];
};

const algorithms: Validator = (v, path) => {
  const bad = (Array.isArray(v) ? v : []).filter(
    (x): x is string => typeof x === 'string' && !ALLOWED.includes(x),
  );
  return bad.length > 0
    ? [
        error(
          'Algorithm not allowed',
          `${bad.map((b) => `"${b}"`).join(', ')}: only ${ASYMMETRIC_ALGORITHMS.join(', ')} are allowed ('none' and HMAC are refused).`,
          path,
        ),
      ]
    : [];
};

// ---- state mapping ----

/** The first object of a `max 1` block list, or null. */
function firstBlock(v: TfValue | undefined): TfObject | null {
  return Array.isArray(v) && v.length > 0 && isObjectValue(v[0]) ? v[0] : null;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

/** Keys in a stable order, so equal JSON values compare equal as text. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/**
 * The JWKS as text: the prior spelling when it is the same JSON, so formatting never plans a change; otherwise (an
 * import) compact with sorted keys, exactly what Terraform's `jsonencode` writes.
 */
function jwksText(server: unknown, prior: TfValue | undefined): string | null {
  if (server === undefined || server === null) return null;
  const text = JSON.stringify(canonical(server));
  if (typeof prior === 'string') {
    try {
      if (JSON.stringify(canonical(JSON.parse(prior))) === text) return prior;
    } catch {
      // the prior text is not JSON: report the server's
    }
  }
  return text;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

/** A set the configuration left out reads back null when the server reports its default (or nothing). */
function optionalSet(server: unknown, prior: TfValue | undefined, dflt: string[] = []): string[] | null {
  const list = strings(server);
  if ((prior === null || prior === undefined) && (list.length === 0 || sameSet(list, dflt))) return null;
  return stableList(list, prior ?? null);
}

function oidcBlock(config: Record<string, unknown>, prior: TfObject | null): TfObject {
  const p = prior ?? {};
  const claims = config.boundClaims;
  const claimMap =
    claims && typeof claims === 'object' && !Array.isArray(claims)
      ? Object.fromEntries(
          Object.entries(claims as Record<string, unknown>).filter(
            (e): e is [string, string] => typeof e[1] === 'string',
          ),
        )
      : {};
  return {
    issuer: typeof config.issuer === 'string' ? config.issuer : null,
    audiences: stableList(strings(config.audiences), p.audiences ?? null),
    jwks_url: typeof config.jwksUrl === 'string' ? config.jwksUrl : null,
    jwks: jwksText(config.jwks, p.jwks),
    allowed_algorithms: optionalSet(config.allowedAlgorithms, p.allowed_algorithms, DEFAULT_ALGORITHMS),
    bound_subjects: stableList(strings(config.boundSubjects), p.bound_subjects ?? null),
    bound_claims:
      Object.keys(claimMap).length === 0 && (p.bound_claims === null || p.bound_claims === undefined)
        ? null
        : claimMap,
  };
}

function awsIamBlock(config: Record<string, unknown>, prior: TfObject | null): TfObject {
  const p = prior ?? {};
  // Phase also stores a legacy comma-separated string.
  const principals =
    typeof config.trustedPrincipals === 'string'
      ? config.trustedPrincipals.split(',').map((x) => x.trim())
      : strings(config.trustedPrincipals);
  const sts = typeof config.stsEndpoint === 'string' ? config.stsEndpoint : null;
  const ttl = typeof config.signatureTtlSeconds === 'number' ? config.signatureTtlSeconds : null;
  const unset = (v: TfValue | undefined): boolean => v === null || v === undefined;
  return {
    trusted_principals: stableList(principals, p.trusted_principals ?? null),
    sts_endpoint: unset(p.sts_endpoint) && (sts === null || sts === DEFAULT_STS_ENDPOINT) ? null : sts,
    signature_ttl_seconds:
      unset(p.signature_ttl_seconds) && (ttl === null || ttl === DEFAULT_SIGNATURE_TTL_SECONDS) ? null : ttl,
  };
}

/** State from the server's record; absent blocks are empty lists, as Terraform represents them. */
export function identityState(i: ExternalIdentity, prior: TfObject): TfObject {
  return {
    ...prior,
    id: i.id,
    name: i.name,
    description: textOrNull(i.description, prior.description ?? null),
    provider_type: i.provider,
    token_name_pattern: textOrNull(i.tokenNamePattern, prior.token_name_pattern ?? null),
    default_ttl_seconds: i.defaultTtlSeconds,
    max_ttl_seconds: i.maxTtlSeconds,
    oidc: i.provider === 'oidc' ? [oidcBlock(i.config, firstBlock(prior.oidc))] : [],
    aws_iam: i.provider === 'aws_iam' ? [awsIamBlock(i.config, firstBlock(prior.aws_iam))] : [],
    created_at: i.createdAt ?? null,
    updated_at: i.updatedAt ?? null,
  };
}

/** The camelCase `config` of docs/identity.md from the planned block. */
export function oidcConfig(b: TfObject): OidcIdentityConfig {
  const claims = isObjectValue(b.bound_claims)
    ? Object.fromEntries(
        Object.entries(b.bound_claims).filter((e): e is [string, string] => typeof e[1] === 'string'),
      )
    : undefined;
  const jwks = str(b, 'jwks');
  const algs = strList(b, 'allowed_algorithms');
  return {
    issuer: need(b, 'issuer'),
    audiences: strList(b, 'audiences') ?? [],
    ...(str(b, 'jwks_url') ? { jwksUrl: str(b, 'jwks_url') } : {}),
    ...(jwks ? { jwks: JSON.parse(jwks) as Record<string, unknown> } : {}),
    ...(algs && algs.length > 0 ? { allowedAlgorithms: algs } : {}),
    boundSubjects: strList(b, 'bound_subjects') ?? [],
    ...(claims && Object.keys(claims).length > 0 ? { boundClaims: claims } : {}),
  };
}

export function awsIamConfig(b: TfObject): AwsIamIdentityConfig {
  const ttl = num(b, 'signature_ttl_seconds');
  return {
    trustedPrincipals: strList(b, 'trusted_principals') ?? [],
    ...(str(b, 'sts_endpoint') ? { stsEndpoint: str(b, 'sts_endpoint') } : {}),
    ...(ttl !== undefined ? { signatureTtlSeconds: ttl } : {}),
  };
}

function configFrom(planned: TfObject): ExternalIdentityInput['config'] {
  const provider = need(planned, 'provider_type');
  const block = firstBlock(provider === 'oidc' ? planned.oidc : planned.aws_iam);
  if (!block) throw new Error(`provider_type "${provider}" needs its "${provider}" block`);
  return provider === 'oidc' ? oidcConfig(block) : awsIamConfig(block);
}

function fieldsFrom(planned: TfObject): Omit<ExternalIdentityChanges, 'config'> {
  const dflt = num(planned, 'default_ttl_seconds');
  const max = num(planned, 'max_ttl_seconds');
  return {
    name: need(planned, 'name'),
    description: str(planned, 'description') ?? null,
    tokenNamePattern: str(planned, 'token_name_pattern') ?? null,
    ...(dflt !== undefined ? { defaultTtlSeconds: dflt } : {}),
    ...(max !== undefined ? { maxTtlSeconds: max } : {}),
  };
}

/** How many blocks a block list holds, or undefined while it is unknown (dynamic blocks during validation). */
function blockCount(v: TfValue | undefined): number | undefined {
  if (isUnknown(v)) return undefined;
  if (Array.isArray(v)) return v.some(isUnknown) ? undefined : v.length;
  return 0;
}

const PROVIDERS = EXTERNAL_IDENTITY_PROVIDERS;
const BLOCK_HINT: Record<string, string> = {
  oidc: 'oidc { issuer = ..., audiences = [...], bound_subjects = [...] }',
  aws_iam: 'aws_iam { trusted_principals = ["arn:aws:iam::<account>:role/<name>"] }',
};

export const externalIdentityResource: ResourceDef<Client> = {
  typeName: 'phase_external_identity',
  importIdFormat: '<identity_id>',
  schema: {
    version: 0,
    block: {
      description:
        'An external identity (phase-bridge extension): a workload proves it with its platform credential (an OIDC ' +
        'token from Kubernetes, GitHub Actions or GitLab CI, or AWS IAM credentials) and logs in as every service ' +
        'account it is attached to (`phase_service_account_identity`), for a short-lived token. Give the one block ' +
        'that matches `provider_type`. Everything but `provider_type` updates in place.',
      attributes: {
        id: idAttr('external identity'),
        name: {
          type: 'string',
          required: true,
          description: 'Name (at most 64 characters).',
          validators: [notBlank, maxLength(64)],
        },
        description: {
          type: 'string',
          optional: true,
          description: 'Description (at most 500 characters).',
          validators: [maxLength(500)],
        },
        provider_type: {
          type: 'string',
          required: true,
          description:
            'The identity provider: `oidc` (Kubernetes, GitHub Actions, GitLab CI, any OIDC issuer) or `aws_iam`. ' +
            'The API calls it `provider` (a name Terraform reserves). Changing it replaces the identity.',
          validators: [oneOf(...PROVIDERS)],
          planModifiers: ['requiresReplace'],
        },
        token_name_pattern: {
          type: 'string',
          optional: true,
          description: 'Name given to the tokens minted at login. Default: the provider, e.g. `aws-iam`.',
          validators: [notBlank, maxLength(64)],
        },
        default_ttl_seconds: {
          type: 'number',
          optional: true,
          computed: true,
          description: 'Lifetime of a minted token when the login asks for none. Server default 3600.',
          validators: [positiveInteger],
          planModifiers: ['useStateForUnknown'],
        },
        max_ttl_seconds: {
          type: 'number',
          optional: true,
          computed: true,
          description: 'Longest lifetime a login may ask for. Server default 86400.',
          validators: [positiveInteger],
          planModifiers: ['useStateForUnknown'],
        },
        created_at: createdAt,
        updated_at: updatedAt,
      },
      blocks: {
        oidc: {
          nesting: 'LIST',
          maxItems: 1,
          block: {
            description: 'How an OIDC token is verified (with `provider_type = "oidc"`).',
            attributes: {
              issuer: {
                type: 'string',
                required: true,
                description:
                  'Exact `iss` of the tokens, an https URL (e.g. `https://token.actions.githubusercontent.com`).',
                validators: [httpUrl],
              },
              audiences: {
                type: ['set', 'string'],
                required: true,
                description: "The token's `aud` must contain one of these.",
                validators: [nonEmptyList],
              },
              jwks_url: {
                type: 'string',
                optional: true,
                description:
                  "The issuer's key set URL. Leave it and `jwks` out to discover it from `<issuer>/.well-known/openid-configuration`.",
                validators: [httpUrl],
              },
              jwks: {
                type: 'string',
                optional: true,
                description:
                  'An inline JSON Web Key Set (JSON text, e.g. `jsonencode(...)` or `file("jwks.json")`), for issuers the ' +
                  'server cannot reach (a private Kubernetes API server). Not together with `jwks_url`.',
                validators: [jwksJson],
              },
              allowed_algorithms: {
                type: ['set', 'string'],
                optional: true,
                description:
                  'Accepted signature algorithms. Server default `["RS256", "ES256"]`; `none` and HMAC are refused.',
                validators: [nonEmptyList, algorithms],
              },
              bound_subjects: {
                type: ['set', 'string'],
                required: true,
                description:
                  "Glob patterns (`*`, `?`, `[...]`) the token's `sub` must match; a bare `*` is refused. Kubernetes: `system:serviceaccount:<namespace>:<name>`.",
                validators: [nonEmptyList, noBareWildcard],
              },
              bound_claims: {
                type: ['map', 'string'],
                optional: true,
                description:
                  'Further claims the token must carry: claim name to glob pattern (string claims only), e.g. `{ ref = "refs/heads/main" }`.',
                validators: [noBareWildcard],
              },
            },
          },
        },
        aws_iam: {
          nesting: 'LIST',
          maxItems: 1,
          block: {
            description:
              'Which AWS principals may log in (with `provider_type = "aws_iam"`), wire-compatible with Phase.',
            attributes: {
              trusted_principals: {
                type: ['set', 'string'],
                required: true,
                description:
                  'ARN glob patterns of the trusted callers, e.g. `arn:aws:sts::123456789012:assumed-role/api/*`; a bare `*` is refused.',
                validators: [nonEmptyList, noBareWildcard],
              },
              sts_endpoint: {
                type: 'string',
                optional: true,
                description:
                  'The STS endpoint the login is signed for and checked against. Server default `https://sts.amazonaws.com`.',
                validators: [httpUrl],
              },
              signature_ttl_seconds: {
                type: 'number',
                optional: true,
                description:
                  'Allowed age (clock skew) of the signed request, 1 to 900 seconds. Server default 60.',
                validators: [positiveInteger],
              },
            },
          },
        },
      },
    },
  },

  validate(config, diags: Diagnostic[]) {
    const provider = str(config, 'provider_type');
    if (provider && (PROVIDERS as readonly string[]).includes(provider)) {
      for (const p of PROVIDERS) {
        const n = blockCount(config[p]);
        if (n === undefined) continue;
        if (p === provider && n === 0) {
          diags.push(
            error(
              `Missing ${p} block`,
              `provider_type = "${provider}" needs one ${p} block: add ${BLOCK_HINT[p]}.`,
              ['provider_type'],
            ),
          );
        } else if (p !== provider && n > 0) {
          diags.push(
            error(
              `Unexpected ${p} block`,
              `provider_type is "${provider}", so the ${p} block has no effect: remove it, or set provider_type = "${p}" and remove the ${provider} block.`,
              [p],
            ),
          );
        }
      }
    }
    const oidc = firstBlock(config.oidc);
    if (
      oidc &&
      oidc.jwks !== null &&
      oidc.jwks_url !== null &&
      !isUnknown(oidc.jwks) &&
      !isUnknown(oidc.jwks_url)
    ) {
      diags.push(error('Conflicting arguments', 'Give jwks_url or jwks, not both.', ['oidc', 0, 'jwks']));
    }
    const dflt = num(config, 'default_ttl_seconds');
    const max = num(config, 'max_ttl_seconds');
    if (dflt !== undefined && max !== undefined && dflt > max) {
      diags.push(
        error(
          'Default TTL above the maximum',
          `default_ttl_seconds (${dflt}) must not exceed max_ttl_seconds (${max}).`,
          ['default_ttl_seconds'],
        ),
      );
    }
  },

  async create(client, planned) {
    const provider = need(planned, 'provider_type');
    const i = await client.createExternalIdentity({
      ...fieldsFrom(planned),
      name: need(planned, 'name'),
      provider,
      config: configFrom(planned),
    } as ExternalIdentityInput);
    return identityState(i, planned);
  },

  async read(client, state) {
    const i = await orNullIfGone(() => client.getExternalIdentity(need(state, 'id')));
    return i ? identityState(i, state) : null;
  },

  async update(client, prior, planned) {
    const i = await client.updateExternalIdentity(need(prior, 'id'), {
      ...fieldsFrom(planned),
      config: configFrom(planned),
    });
    return identityState(i, planned);
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteExternalIdentity(need(state, 'id')));
  },

  importState(id) {
    return { id };
  },
};

export const serviceAccountIdentityResource: ResourceDef<Client> = {
  typeName: 'phase_service_account_identity',
  importIdFormat: '<identity_id>:<service_account_id>',
  schema: {
    version: 0,
    block: {
      description:
        'Attaches an external identity to a service account: whoever holds a credential the identity trusts can log ' +
        'in as the account. Only the account itself or a member with global access (Owner, Admin) may attach. Every ' +
        'change re-creates the attachment.',
      attributes: {
        id: {
          type: 'string',
          computed: true,
          description: '`<identity_id>:<service_account_id>`.',
          planModifiers: ['useStateForUnknown'],
        },
        identity_id: {
          type: 'string',
          required: true,
          description: 'The external identity.',
          planModifiers: ['requiresReplace'],
        },
        service_account_id: {
          type: 'string',
          required: true,
          description: 'The service account.',
          planModifiers: ['requiresReplace'],
        },
      },
    },
  },

  async create(client, planned) {
    const identityId = need(planned, 'identity_id');
    const saId = need(planned, 'service_account_id');
    await client.attachExternalIdentity(identityId, saId);
    return { ...planned, id: `${identityId}:${saId}` };
  },

  async read(client, state) {
    const identityId = need(state, 'identity_id');
    const saId = need(state, 'service_account_id');
    const i = await orNullIfGone(() => client.getExternalIdentity(identityId));
    if (!i?.serviceAccounts.includes(saId)) return null;
    return { ...state, id: `${identityId}:${saId}` };
  },

  async update(_client, _prior, planned) {
    return planned;
  },

  async delete(client, state) {
    await deleteIgnoringGone(() =>
      client.detachExternalIdentity(need(state, 'identity_id'), need(state, 'service_account_id')),
    );
  },

  importState(id) {
    const [identityId, saId] = splitImportId(id, ['identity_id', 'service_account_id'], '3b7c…:6a1f…');
    return { id, identity_id: identityId, service_account_id: saId };
  },
};
