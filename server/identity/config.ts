/**
 * External identity records (phase-external-identities.md §1) and their provider configs, validated at the edge. The
 * config keys are camelCase, as Phase stores them; the record's own fields are snake_case (camelCase accepted).
 */
import { z } from 'zod';
import { ASYMMETRIC_ALGORITHMS } from '../../core/identity';
import { EXTERNAL_IDENTITY_PROVIDERS, type ExternalIdentityProvider } from '../../core/schemas';
import { isBareWildcard } from './glob';

/** The providers an identity can use: core's list, the same one clients validate against. */
export const PROVIDERS = EXTERNAL_IDENTITY_PROVIDERS;
export type IdentityProvider = ExternalIdentityProvider;

export const DEFAULT_TTL_SECONDS = 3600;
export const MAX_TTL_SECONDS = 86400;

const patterns = (what: string) =>
  z
    .array(z.string().trim().min(1, `!Each entry of '${what}' must be a non-empty pattern.`), {
      required_error: `!Missing required field: config.${what}`,
      invalid_type_error: `!'${what}' must be a list of patterns.`,
    })
    .min(1, `!'${what}' must not be empty.`)
    .max(100, `!'${what}' can have at most 100 entries.`)
    .refine((list) => !list.some(isBareWildcard), {
      message: `!Invalid pattern in '${what}': '*' on its own is not allowed (it would trust anyone).`,
    });

const url = (what: string) =>
  z
    .string({ invalid_type_error: `!'${what}' must be a URL string.` })
    .url(`!'${what}' must be an absolute URL.`)
    .max(2048);

export const oidcConfigSchema = z
  .object({
    issuer: url('issuer'),
    audiences: z
      .array(z.string().min(1), {
        required_error: '!Missing required field: config.audiences',
        invalid_type_error: "!'audiences' must be a list of strings.",
      })
      .min(1, "!'audiences' must not be empty."),
    jwksUrl: url('jwksUrl').optional(),
    jwks: z
      .object({ keys: z.array(z.record(z.unknown())).min(1, "!'jwks.keys' must not be empty.") })
      .passthrough()
      .optional(),
    allowedAlgorithms: z
      .array(
        z.enum(ASYMMETRIC_ALGORITHMS, {
          errorMap: () => ({
            message: `!'allowedAlgorithms' may hold only ${ASYMMETRIC_ALGORITHMS.join(', ')} ('none' and HMAC are refused).`,
          }),
        }),
      )
      .min(1)
      .optional(),
    boundSubjects: patterns('boundSubjects'),
    boundClaims: z
      .record(
        z
          .string()
          .min(1)
          .refine(
            (v) => !isBareWildcard(v),
            "!A bound claim pattern '*' is not allowed (it would match anyone).",
          ),
      )
      .optional(),
  })
  .strict()
  .refine((c) => !(c.jwksUrl && c.jwks), { message: "!Give 'jwksUrl' or 'jwks', not both." });
export type OidcConfig = z.infer<typeof oidcConfigSchema>;

export const awsIamConfigSchema = z
  .object({
    trustedPrincipals: z.preprocess(
      // Phase also accepts a legacy comma-separated string.
      (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()) : v),
      patterns('trustedPrincipals'),
    ),
    stsEndpoint: url('stsEndpoint').optional(),
    signatureTtlSeconds: z
      .number({ invalid_type_error: "!'signatureTtlSeconds' must be a number." })
      .int()
      .min(1)
      .max(900)
      .optional(),
  })
  .strict();
export type AwsIamConfig = z.infer<typeof awsIamConfigSchema> & { trustedPrincipals: string[] };

const ttl = (what: string) =>
  z
    .number({ invalid_type_error: `!'${what}' must be a whole number of seconds.` })
    .int(`!'${what}' must be a whole number of seconds.`)
    .positive(`!'${what}' must be positive.`)
    .max(30 * 86400, `!'${what}' can be at most 30 days.`);

const fields = {
  name: z
    .string({
      required_error: '!Missing required field: name',
      invalid_type_error: "!'name' must be a string.",
    })
    .trim()
    .min(1, '!Missing required field: name')
    .max(64, "!'name' cannot exceed 64 characters."),
  description: z.string().max(500, "!'description' cannot exceed 500 characters.").nullable().optional(),
  config: z.record(z.unknown(), {
    required_error: '!Missing required field: config',
    invalid_type_error: "!'config' must be an object.",
  }),
  token_name_pattern: z.string().trim().min(1).max(64).nullable().optional(),
  default_ttl_seconds: ttl('default_ttl_seconds').optional(),
  max_ttl_seconds: ttl('max_ttl_seconds').optional(),
};

export const createIdentitySchema = z
  .object({
    ...fields,
    provider: z.enum(PROVIDERS, {
      errorMap: () => ({ message: `!'provider' must be one of ${PROVIDERS.join(', ')}.` }),
    }),
  })
  .strict();

export const updateIdentitySchema = z
  .object({
    name: fields.name.optional(),
    description: fields.description,
    config: fields.config.optional(),
    token_name_pattern: fields.token_name_pattern,
    default_ttl_seconds: fields.default_ttl_seconds,
    max_ttl_seconds: fields.max_ttl_seconds,
  })
  .strict();

/** The provider's config schema. */
export function configSchema(provider: IdentityProvider): z.ZodTypeAny {
  return provider === 'oidc' ? oidcConfigSchema : awsIamConfigSchema;
}
