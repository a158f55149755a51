/**
 * External-identity defaults and rules shared by the server that enforces them and the clients that manage them
 * (docs/identity.md, phase-external-identities.md).
 */

/** Asymmetric JWS algorithms: `none` and HMAC (a shared secret) can never prove a platform identity. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

/** Accepted when an OIDC identity names no algorithms. */
export const DEFAULT_ALGORITHMS: string[] = ['RS256', 'ES256'];
/** The global STS endpoint, used when an AWS IAM identity names none. */
export const DEFAULT_STS_ENDPOINT = 'https://sts.amazonaws.com';
/** Allowed clock skew of a signed STS request, when an AWS IAM identity names none. */
export const DEFAULT_SIGNATURE_TTL_SECONDS = 60;
