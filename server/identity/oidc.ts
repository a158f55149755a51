/**
 * OIDC / JWT login (ours, phase-external-identities.md §4): Kubernetes projected service-account tokens, GitHub
 * Actions, GitLab CI. The signature is checked against the issuer's keys (a JWKS URL, the issuer's discovery document,
 * or inline keys), with the algorithms pinned; `iss`, `aud`, `exp`, `nbf` and `iat` with at most 60 s of leeway; then
 * the subject and claims against the identity's glob patterns.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import { DEFAULT_ALGORITHMS } from '../../core/identity';
import type { OidcConfig } from './config';
import { globMatch, isBareWildcard } from './glob';
import { LoginError } from './login-error';
import { assertSafeUrl, UnsafeUrlError } from './safe-url';

export const CLOCK_LEEWAY_SECONDS = 60;
const DISCOVERY_TTL_MS = 3600_000;

type KeySet = ReturnType<typeof createRemoteJWKSet>;
/** Remote key sets by URL: jose caches the keys and refetches once on an unknown `kid` (with a cooldown). */
const remoteSets = new Map<string, KeySet>();
const discovered = new Map<string, { jwksUri: string; at: number }>();

async function fetchJson(url: URL): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/** The JWKS URL: configured, or from `<issuer>/.well-known/openid-configuration`. */
async function jwksUrlOf(config: OidcConfig, allowLoopback: boolean): Promise<URL> {
  if (config.jwksUrl) return assertSafeUrl(config.jwksUrl, allowLoopback);
  const hit = discovered.get(config.issuer);
  if (hit && Date.now() - hit.at < DISCOVERY_TTL_MS) return assertSafeUrl(hit.jwksUri, allowLoopback);
  const docUrl = await assertSafeUrl(
    `${config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
    allowLoopback,
  );
  let doc: unknown;
  try {
    doc = await fetchJson(docUrl);
  } catch (e) {
    throw new LoginError(502, `Could not read the issuer's discovery document: ${(e as Error).message}`);
  }
  const jwksUri = (doc as { jwks_uri?: unknown }).jwks_uri;
  if (typeof jwksUri !== 'string')
    throw new LoginError(502, "The issuer's discovery document has no jwks_uri.");
  discovered.set(config.issuer, { jwksUri, at: Date.now() });
  return assertSafeUrl(jwksUri, allowLoopback);
}

async function keySetOf(config: OidcConfig, allowLoopback: boolean) {
  if (config.jwks)
    return createLocalJWKSet(config.jwks as unknown as Parameters<typeof createLocalJWKSet>[0]);
  const url = await jwksUrlOf(config, allowLoopback);
  let set = remoteSets.get(url.href);
  if (!set) {
    set = createRemoteJWKSet(url, {
      timeoutDuration: 10_000,
      cooldownDuration: 10_000,
      cacheMaxAge: 3600_000,
    });
    if (remoteSets.size > 200) remoteSets.clear();
    remoteSets.set(url.href, set);
  }
  return set;
}

/** Verifies `jwt` for an identity; returns its claims or throws a LoginError that says why (never the token). */
export async function verifyOidcJwt(
  config: OidcConfig,
  jwt: string,
  allowLoopback: boolean,
): Promise<JWTPayload> {
  const algorithms = config.allowedAlgorithms ?? DEFAULT_ALGORITHMS;
  let header;
  try {
    header = decodeProtectedHeader(jwt);
  } catch {
    throw new LoginError(400, 'Invalid JWT: it is not a compact JWS.');
  }
  if (!header.alg || !algorithms.includes(header.alg)) {
    throw new LoginError(
      401,
      `JWT algorithm '${String(header.alg)}' is not allowed (allowed: ${algorithms.join(', ')}).`,
    );
  }
  let keys;
  try {
    keys = await keySetOf(config, allowLoopback);
  } catch (e) {
    if (e instanceof LoginError) throw e;
    if (e instanceof UnsafeUrlError)
      throw new LoginError(502, `The issuer's key URL is refused: ${e.message}`);
    throw new LoginError(502, `Could not load the issuer's keys: ${(e as Error).message}`);
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, keys, {
      issuer: config.issuer,
      audience: config.audiences,
      algorithms,
      clockTolerance: CLOCK_LEEWAY_SECONDS,
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (e) {
    throw new LoginError(e instanceof joseErrors.JWKSTimeout ? 504 : 401, describe(e));
  }
  if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_LEEWAY_SECONDS) {
    throw new LoginError(401, 'JWT was issued in the future (iat).');
  }
  const sub = String(payload.sub);
  const subjects = config.boundSubjects.filter((s) => !isBareWildcard(s));
  if (!subjects.some((p) => globMatch(p, sub)))
    throw new LoginError(403, `Untrusted subject '${sub.slice(0, 200)}'.`);
  for (const [claim, pattern] of Object.entries(config.boundClaims ?? {})) {
    const v = (payload as Record<string, unknown>)[claim];
    if (typeof v !== 'string' || isBareWildcard(pattern) || !globMatch(pattern, v)) {
      throw new LoginError(403, `Claim '${claim}' does not match the identity's bound claims.`);
    }
  }
  return payload;
}

function describe(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'JWT has expired.';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return 'JWT issuer does not match the identity.';
    if (e.claim === 'aud') return 'JWT audience does not match the identity.';
    if (e.claim === 'nbf') return 'JWT is not valid yet (nbf).';
    return `JWT claim '${e.claim}' is invalid: ${e.reason}.`;
  }
  if (e instanceof joseErrors.JWKSNoMatchingKey)
    return "JWT was signed with a key the issuer's key set does not have.";
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'JWT signature is invalid.';
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'JWT algorithm is not allowed.';
  if (e instanceof joseErrors.JWKSTimeout) return "Timed out reading the issuer's keys.";
  if (e instanceof joseErrors.JOSEError) return `Invalid JWT (${e.code}).`;
  return 'Invalid JWT.';
}
