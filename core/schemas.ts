/**
 * zod schemas for what Phase (and phase-bridge's server) returns and accepts (spec: phase-protocol.md §3,
 * phase-rest-api.md §9, §11). Unknown extra fields from a server are stripped; the fields we use are checked.
 * `/secrets/tokens/` is snake_case; `/v1` is camelCase; E2E `/secrets/` is snake_case unless camelCase was asked
 * for, so its secret objects are accepted in both spellings and normalised to one internal type.
 */
import { z } from 'zod';

const str = z.string();
const nullableStr = z.string().nullable();
/** Optional nullable text the client reads but can live without (servers differ on presence). */
const optText = z.string().nullable().optional();

// ---- /service/secrets/tokens/ (bootstrap), always snake_case ----

export const BootstrapEnvironmentSchema = z.object({
  id: str,
  name: str,
  /** `dev|staging|prod|custom` (REST) or `DEV|STAGING|PROD` (GraphQL-created): compare case-insensitively. */
  env_type: str,
  index: z.number().int().optional(),
  created_at: str.optional(),
  /** Bumped on every secret write in the environment: the cheap change detector. */
  updated_at: str,
});

export const BootstrapEnvironmentKeySchema = z.object({
  id: str,
  environment: BootstrapEnvironmentSchema,
  /** The environment's X25519 public key. */
  identity_key: str,
  wrapped_seed: str,
  wrapped_salt: str,
  /** Reserved upstream (always null); phase-bridge's path-restricted grants may fill it. */
  paths: z
    .union([z.array(str), str])
    .nullable()
    .optional(),
  created_at: str.optional(),
  updated_at: str.optional(),
  deleted_at: nullableStr.optional(),
  user: nullableStr.optional(),
  service_account: nullableStr.optional(),
});

export const BootstrapAppSchema = z.object({
  id: str,
  name: str,
  encryption: str,
  environment_keys: z.array(BootstrapEnvironmentKeySchema),
});

export const BootstrapResponseSchema = z.object({
  wrapped_key_share: str,
  /** Present for `User` tokens (OrganisationMember id). */
  user_id: str.optional(),
  /** Present for `ServiceAccount` tokens. Legacy service tokens carry neither id. */
  account_id: str.optional(),
  offline_enabled: z.boolean().optional(),
  organisation: z.object({ id: str, name: str }),
  apps: z.array(BootstrapAppSchema),
});

export type BootstrapEnvironment = z.infer<typeof BootstrapEnvironmentSchema>;
export type BootstrapEnvironmentKey = z.infer<typeof BootstrapEnvironmentKeySchema>;
export type BootstrapApp = z.infer<typeof BootstrapAppSchema>;
export type BootstrapResponse = z.infer<typeof BootstrapResponseSchema>;

// ---- E2E /service/secrets/ secret objects (ciphertext), snake_case or camelCase ----

/** A personal override as Phase sends it, in either casing (what `OverrideRawSchema` and `readOverride` accept). */
interface OverrideIn {
  id?: string;
  value: string;
  is_active?: boolean;
  isActive?: boolean;
  created_at?: string;
  createdAt?: string;
  updated_at?: string;
  updatedAt?: string;
}

/** The override normalised to camelCase: the one mapping behind the zod schema and the plain-code reader. */
function toOverride(o: OverrideIn) {
  return {
    id: o.id,
    value: o.value,
    isActive: o.isActive ?? o.is_active ?? false,
    createdAt: o.createdAt ?? o.created_at,
    updatedAt: o.updatedAt ?? o.updated_at,
  };
}

/** A secret's scalar fields as Phase sends them, in either casing (tags and override are read separately). */
interface EncryptedSecretIn {
  id: string;
  key: string;
  value: string;
  comment?: string | null;
  type?: string;
  lifecycle?: string;
  path?: string;
  key_digest?: string;
  keyDigest?: string;
  version?: number;
  created_at?: string;
  createdAt?: string;
  updated_at?: string;
  updatedAt?: string;
  environment?: string;
  folder?: string | null;
}

/** The secret normalised to camelCase with Phase's defaults: the one mapping behind the schema and the reader. */
function toEncryptedSecret(
  s: EncryptedSecretIn,
  tags: string[],
  override: ReturnType<typeof toOverride> | null,
) {
  return {
    id: s.id,
    key: s.key,
    value: s.value,
    comment: s.comment ?? '',
    tags,
    override,
    type: s.type || 'secret',
    lifecycle: s.lifecycle || 'static',
    path: s.path || '/',
    keyDigest: s.keyDigest ?? s.key_digest ?? '',
    version: s.version ?? 1,
    createdAt: s.createdAt ?? s.created_at,
    updatedAt: s.updatedAt ?? s.updated_at,
    environment: s.environment,
    folder: s.folder ?? null,
  };
}

const OverrideRawSchema = z
  .object({
    id: str.optional(),
    value: str,
    is_active: z.boolean().optional(),
    isActive: z.boolean().optional(),
    created_at: str.optional(),
    createdAt: str.optional(),
    updated_at: str.optional(),
    updatedAt: str.optional(),
  })
  .transform(toOverride);

/** An encrypted secret from E2E `/secrets/` GET, in either casing, normalised to camelCase. */
export const EncryptedSecretSchema = z
  .object({
    id: str,
    key: str,
    value: str,
    comment: nullableStr.optional(),
    tags: z.array(str).nullable().optional(),
    override: OverrideRawSchema.nullable().optional(),
    type: str.optional(),
    lifecycle: str.optional(),
    path: str.optional(),
    key_digest: str.optional(),
    keyDigest: str.optional(),
    version: z.number().int().optional(),
    created_at: str.optional(),
    createdAt: str.optional(),
    updated_at: str.optional(),
    updatedAt: str.optional(),
    environment: str.optional(),
    folder: nullableStr.optional(),
  })
  .transform((s) => toEncryptedSecret(s, s.tags ?? [], s.override ?? null));

export type EncryptedSecret = z.output<typeof EncryptedSecretSchema>;

/**
 * The E2E list: an array whose dynamic-secret entries (`type: "dynamic"`, no key/value) are dropped here;
 * phase-bridge does not implement dynamic secrets.
 *
 * `EncryptedSecretSchema` defines each item. A 1,000-secret list through zod's object parser costs 25–50 ms in a
 * cold process (a third of a cold read), so items are first read by `readEncryptedSecret`, a plain-code reader
 * of the same schema; any item it refuses goes through zod, whose issues (with the item's index) are the error.
 * test/core/secret-list-reader.test.ts holds the two to the same answers.
 */
export const EncryptedSecretListSchema = z.unknown().transform((items, ctx) => {
  // The array check by hand too: z.array visits every item with zod's machinery before the transform runs.
  if (!Array.isArray(items)) {
    ctx.addIssue({ code: z.ZodIssueCode.invalid_type, expected: 'array', received: z.getParsedType(items) });
    return z.NEVER;
  }
  const out: EncryptedSecret[] = [];
  for (const item of items) {
    if (typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'dynamic')
      continue;
    const fast = readEncryptedSecret(item);
    if (fast) {
      out.push(fast);
      continue;
    }
    const parsed = EncryptedSecretSchema.safeParse(item);
    if (parsed.success) {
      out.push(parsed.data);
      continue;
    }
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [out.length, ...issue.path] });
    return z.NEVER;
  }
  return out;
});

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `str.optional()`: absent or text. */
const optStr = (v: unknown): v is string | undefined => v === undefined || typeof v === 'string';
/** `nullableStr.optional()`: absent, null or text. */
const optNullStr = (v: unknown): v is string | null | undefined => v === null || optStr(v);
const optBool = (v: unknown): v is boolean | undefined => v === undefined || typeof v === 'boolean';

function readOverride(o: unknown): NonNullable<EncryptedSecret['override']> | undefined {
  if (!isObj(o)) return undefined;
  const { id, value, is_active, isActive, created_at, createdAt, updated_at, updatedAt } = o;
  if (typeof value !== 'string' || !optStr(id) || !optBool(is_active) || !optBool(isActive)) return undefined;
  if (!optStr(created_at) || !optStr(createdAt) || !optStr(updated_at) || !optStr(updatedAt))
    return undefined;
  return toOverride({ id, value, is_active, isActive, created_at, createdAt, updated_at, updatedAt });
}

/** The fields of a secret that are absent or text (`str.optional()` in `EncryptedSecretSchema`). */
const OPTIONAL_TEXT_FIELDS = [
  'type',
  'lifecycle',
  'path',
  'key_digest',
  'keyDigest',
  'created_at',
  'createdAt',
  'updated_at',
  'updatedAt',
  'environment',
] as const;

/**
 * `EncryptedSecretSchema` in plain code: the same checks and the same output, or undefined where zod would report
 * an issue (the caller then asks zod, for the message).
 */
export function readEncryptedSecret(raw: unknown): EncryptedSecret | undefined {
  if (!isObj(raw)) return undefined;
  const s = raw;
  if (typeof s.id !== 'string' || typeof s.key !== 'string' || typeof s.value !== 'string') return undefined;
  if (!optNullStr(s.comment) || !optNullStr(s.folder)) return undefined;
  for (const f of OPTIONAL_TEXT_FIELDS) if (!optStr(s[f])) return undefined;
  if (s.version !== undefined && !Number.isInteger(s.version)) return undefined;
  let tags: string[] = [];
  if (s.tags !== undefined && s.tags !== null) {
    if (!Array.isArray(s.tags) || !s.tags.every((t) => typeof t === 'string')) return undefined;
    tags = [...(s.tags as string[])];
  }
  let override: EncryptedSecret['override'] = null;
  if (s.override !== undefined && s.override !== null) {
    const o = readOverride(s.override);
    if (!o) return undefined;
    override = o;
  }
  // Every field was checked above against what EncryptedSecretIn declares.
  return toEncryptedSecret(s as unknown as EncryptedSecretIn, tags, override);
}

/** One item of an E2E POST body (camelCase `keyDigest` and `isActive` are what the server reads). */
export interface EncryptedSecretCreate {
  key: string;
  keyDigest: string;
  value: string;
  /** Required by upstream (a missing property is a 500): send `""` for no comment. */
  comment: string;
  path?: string;
  tags?: string[];
  type?: SecretType;
  override?: { value: string; isActive: boolean };
}

/** One item of an E2E PUT body. Upstream clears tags when `tags` is omitted: send the existing ones. */
export interface EncryptedSecretUpdate {
  id: string;
  key?: string;
  keyDigest?: string;
  value?: string;
  comment?: string;
  path?: string;
  tags?: string[];
  type?: SecretType;
  override?: { value: string; isActive: boolean };
}

export type SecretType = 'secret' | 'sealed' | 'config';

// ---- /v1 objects (camelCase) ----

export const ListSchema = <T extends z.ZodTypeAny>(item: T) => z.object({ data: z.array(item) });

export const EnvironmentSchema = z.object({
  id: str,
  name: str,
  envType: str,
  index: z.number().int().optional(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
});
export type Environment = z.infer<typeof EnvironmentSchema>;

export const AppSchema = z.object({
  id: str,
  name: str,
  description: optText,
  sseEnabled: z.boolean(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
});
export type App = z.infer<typeof AppSchema>;

export const AppWithEnvironmentsSchema = AppSchema.extend({ environments: z.array(EnvironmentSchema) });
export type AppWithEnvironments = z.infer<typeof AppWithEnvironmentsSchema>;

export const RoleRefSchema = z.object({ id: str, name: str });
export type RoleRef = z.infer<typeof RoleRefSchema>;

/** Permission maps are stored as given (custom roles) or built in; kept as opaque JSON objects. */
export const PermissionsSchema = z.record(z.unknown());

export const RoleSchema = z.object({
  id: str,
  name: str,
  description: optText,
  color: optText,
  isDefault: z.boolean(),
  createdAt: str.optional(),
  permissions: PermissionsSchema.optional(),
});
export type Role = z.infer<typeof RoleSchema>;

export const ServiceAccountSchema = z.object({
  id: str,
  name: str,
  role: RoleRefSchema.nullable(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
});
export type ServiceAccount = z.infer<typeof ServiceAccountSchema>;

export const TokenInfoSchema = z.object({
  id: str,
  name: str,
  createdAt: str.optional(),
  expiresAt: nullableStr.optional(),
});
export type TokenInfo = z.infer<typeof TokenInfoSchema>;

export const AccessEnvironmentSchema = z.object({
  id: str,
  name: str,
  envType: str.optional(),
  /** phase-bridge extension: path-restricted grants. */
  paths: z.array(str).nullable().optional(),
});

export const AccessAppSchema = z.object({
  id: str,
  name: str,
  environments: z.array(AccessEnvironmentSchema),
  /** phase-bridge extension: the app grant's path restriction (null = every path). */
  paths: z.array(str).nullable().optional(),
});
export type AccessApp = z.infer<typeof AccessAppSchema>;

export const ServiceAccountDetailSchema = ServiceAccountSchema.extend({
  tokens: z.array(TokenInfoSchema),
  apps: z.array(AccessAppSchema),
});
export type ServiceAccountDetail = z.infer<typeof ServiceAccountDetailSchema>;

/** A freshly minted token: `token` (full pss) and `bearerToken` (`ServiceAccount <hex>`) are shown once. */
export const MintedTokenSchema = TokenInfoSchema.extend({ token: str, bearerToken: str });
export type MintedTokenResponse = z.infer<typeof MintedTokenSchema>;

export const ServiceAccountCreatedSchema = ServiceAccountSchema.extend({ initialToken: MintedTokenSchema });
export type ServiceAccountCreated = z.infer<typeof ServiceAccountCreatedSchema>;

export const MemberSchema = z.object({
  id: str,
  username: optText,
  fullName: optText,
  email: optText,
  role: RoleRefSchema.nullable(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
});
export type Member = z.infer<typeof MemberSchema>;

export const MemberAccessSchema = MemberSchema.extend({ apps: z.array(AccessAppSchema) });
export type MemberAccess = z.infer<typeof MemberAccessSchema>;

export const SseOverrideSchema = z.object({
  id: str.optional(),
  value: str,
  isActive: z.boolean(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
});

/** A plaintext secret from `/v1/secrets/` (server-side encryption). */
export const SseSecretSchema = z.object({
  id: str,
  key: str,
  value: str,
  comment: nullableStr.optional().transform((c) => c ?? ''),
  tags: z.array(str).default([]),
  override: SseOverrideSchema.nullable()
    .optional()
    .transform((o) => o ?? null),
  type: str.default('secret'),
  lifecycle: str.optional(),
  path: str.default('/'),
  keyDigest: str.optional(),
  version: z.number().int().optional(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
  environment: str.optional(),
  folder: nullableStr.optional(),
});
export type SseSecret = z.output<typeof SseSecretSchema>;

export const SseSecretListSchema = z
  .array(z.unknown())
  .transform((items) =>
    items.filter(
      (i) => !(typeof i === 'object' && i !== null && (i as { type?: unknown }).type === 'dynamic'),
    ),
  )
  .pipe(z.array(SseSecretSchema));

export const MessageSchema = z.object({ message: str });

// ---- phase-bridge extensions ----

export const NetworkPolicyAttachmentSchema = z.object({
  accountType: z.enum(['service_account', 'member']),
  accountId: str,
});
export type NetworkPolicyAttachment = z.infer<typeof NetworkPolicyAttachmentSchema>;

export const NetworkPolicySchema = z.object({
  id: str,
  name: str,
  /** IPv4/IPv6 addresses and CIDR ranges. */
  allowedIps: z.array(str),
  isGlobal: z.boolean(),
  createdAt: str.optional(),
  updatedAt: str.optional(),
  attachments: z.array(NetworkPolicyAttachmentSchema).default([]),
});
export type NetworkPolicy = z.infer<typeof NetworkPolicySchema>;

/** An audit-log entry (phase-bridge `GET /v1/audit-logs/`): who did what, never a secret value. */
export const AuditLogEntrySchema = z
  .object({
    id: str,
    timestamp: str.optional(),
    createdAt: str.optional(),
    eventType: str.optional(),
    action: str.optional(),
    resourceType: str.optional(),
    resourceId: nullableStr.optional(),
    actorType: nullableStr.optional(),
    actorId: nullableStr.optional(),
    appId: nullableStr.optional(),
    environmentId: nullableStr.optional(),
    keyDigest: nullableStr.optional(),
    path: nullableStr.optional(),
    ipAddress: nullableStr.optional(),
    userAgent: nullableStr.optional(),
  })
  .passthrough();
export type AuditLogEntry = z.infer<typeof AuditLogEntrySchema>;

export const AuditLogPageSchema = z.object({
  data: z.array(AuditLogEntrySchema),
  count: z.number().int().optional(),
});
export type AuditLogPage = z.infer<typeof AuditLogPageSchema>;

// ---- request bodies the client sends (checked before sending, so a typo fails locally) ----

export const AccessGrantSchema = z.array(
  z.object({
    id: str.min(1),
    environments: z.array(str.min(1)),
    /** phase-bridge extension: restrict the grant to these paths. */
    paths: z.array(str).optional(),
  }),
);
export type AccessGrant = z.infer<typeof AccessGrantSchema>;

export const TokenCreateSchema = z
  .object({
    name: str.min(1),
    expires_at: str.optional(),
    expires_in: z.number().int().positive().optional(),
  })
  .strict();
export type TokenCreate = z.infer<typeof TokenCreateSchema>;

// ---- phase-bridge extension: external identities (docs/identity.md) ----

/** The identity providers an identity record can use (`oidc` is ours; Phase has `aws_iam` and `azure_entra`). */
export const EXTERNAL_IDENTITY_PROVIDERS = ['oidc', 'aws_iam'] as const;
export type ExternalIdentityProvider = (typeof EXTERNAL_IDENTITY_PROVIDERS)[number];

/** `config` of an `oidc` identity, keys camelCase as Phase writes identity configs. */
export const OidcIdentityConfigSchema = z
  .object({
    /** Exact match of the token's `iss`. */
    issuer: str.min(1),
    /** The token's `aud` must contain one of these. */
    audiences: z.array(str.min(1)).min(1),
    /** The issuer's JWKS URL; neither this nor `jwks` = discovery from the issuer. */
    jwksUrl: str.min(1).optional(),
    /** An inline JWKS (`{"keys": [...]}`). */
    jwks: z.record(z.unknown()).optional(),
    /** Default (server) `["RS256", "ES256"]`; `none` and HMAC are refused. */
    allowedAlgorithms: z.array(str.min(1)).min(1).optional(),
    /** Glob patterns for `sub`; a bare `*` is refused. */
    boundSubjects: z.array(str.min(1)).min(1),
    /** Claim name → glob pattern (string claims only). */
    boundClaims: z.record(str.min(1)).optional(),
  })
  .strict();
export type OidcIdentityConfig = z.infer<typeof OidcIdentityConfigSchema>;

/** `config` of an `aws_iam` identity. */
export const AwsIamIdentityConfigSchema = z
  .object({
    /** ARN glob patterns; a bare `*` is refused. */
    trustedPrincipals: z.array(str.min(1)).min(1),
    /** Default (server) `https://sts.amazonaws.com`. */
    stsEndpoint: str.min(1).optional(),
    /** Allowed clock skew of the signed request; default (server) 60. */
    signatureTtlSeconds: z.number().int().positive().optional(),
  })
  .strict();
export type AwsIamIdentityConfig = z.infer<typeof AwsIamIdentityConfigSchema>;

/** An identity as `/v1/external-identities/` answers it. `config` is kept as sent (the provider decides its shape). */
export const ExternalIdentitySchema = z.object({
  id: str,
  name: str,
  description: optText,
  /** `oidc` or `aws_iam` (kept as a string: a Phase-created `azure_entra` record still parses). */
  provider: str,
  config: z.record(z.unknown()),
  tokenNamePattern: optText,
  defaultTtlSeconds: z.number().int(),
  maxTtlSeconds: z.number().int(),
  /** Ids of the attached service accounts. */
  serviceAccounts: z.array(str).default([]),
  createdAt: str.optional(),
  updatedAt: str.optional(),
});
export type ExternalIdentity = z.infer<typeof ExternalIdentitySchema>;

const identityFields = {
  name: str.min(1).max(64),
  description: str.nullable().optional(),
  token_name_pattern: str.min(1).max(64).nullable().optional(),
  default_ttl_seconds: z.number().int().positive().optional(),
  max_ttl_seconds: z.number().int().positive().optional(),
};

/** `POST /v1/external-identities/` body (snake_case, like every `/v1` request body). */
export const ExternalIdentityCreateSchema = z.discriminatedUnion('provider', [
  z.object({ ...identityFields, provider: z.literal('oidc'), config: OidcIdentityConfigSchema }).strict(),
  z
    .object({ ...identityFields, provider: z.literal('aws_iam'), config: AwsIamIdentityConfigSchema })
    .strict(),
]);
export type ExternalIdentityCreate = z.infer<typeof ExternalIdentityCreateSchema>;

/** `PUT /v1/external-identities/:id/` body: any create field but `provider`; `config` is replaced as a whole. */
export const ExternalIdentityUpdateSchema = z
  .object({
    ...identityFields,
    name: identityFields.name.optional(),
    config: z.union([OidcIdentityConfigSchema, AwsIamIdentityConfigSchema]).optional(),
  })
  .strict();
export type ExternalIdentityUpdate = z.infer<typeof ExternalIdentityUpdateSchema>;
