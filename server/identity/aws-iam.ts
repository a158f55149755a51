/**
 * AWS IAM login, wire-compatible with Phase (phase-external-identities.md §2): the client signs an STS
 * GetCallerIdentity request; the server checks its date and host, forwards it to its configured STS endpoint, and
 * matches the caller's ARN against the identity's trusted principals.
 */
import { DEFAULT_SIGNATURE_TTL_SECONDS, DEFAULT_STS_ENDPOINT } from '../../core/identity';
import type { AwsIamConfig } from './config';
import { globMatch, isBareWildcard } from './glob';
import { LoginError } from './login-error';
import { assertSafeUrl, UnsafeUrlError } from './safe-url';

const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** The signed request as the client sends it (base64 fields), decoded. */
export interface SignedStsRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
}

const b64 = (v: unknown): string => {
  if (typeof v !== 'string') throw new Error('not a string');
  return Buffer.from(v, 'base64').toString('utf8');
};

/** Step 2: decode `awsIam` and check that it carries a parseable `X-Amz-Date`. */
export function decodeSignedRequest(awsIam: unknown): { request: SignedStsRequest; amzDate: Date } {
  let request: SignedStsRequest;
  try {
    const o = awsIam as Record<string, unknown>;
    const headers = JSON.parse(b64(o.httpRequestHeaders)) as unknown;
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) throw new Error('headers');
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers))
      flat[k] = Array.isArray(v) ? v.map(String).join(',') : String(v);
    request = {
      method: typeof o.httpRequestMethod === 'string' ? o.httpRequestMethod.toUpperCase() : 'POST',
      url: new URL(b64(o.httpRequestUrl)),
      headers: flat,
      body: b64(o.httpRequestBody),
    };
  } catch {
    throw new LoginError(400, 'Invalid awsIam request encoding');
  }
  const raw = headerOf(request.headers, 'x-amz-date');
  if (raw === undefined) throw new LoginError(400, 'Missing X-Amz-Date header');
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(raw.trim());
  const amzDate = m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : undefined;
  if (!amzDate || Number.isNaN(amzDate.getTime())) throw new LoginError(400, 'Invalid X-Amz-Date');
  return { request, amzDate };
}

function headerOf(headers: Record<string, string>, name: string): string | undefined {
  const k = Object.keys(headers).find((h) => h.toLowerCase() === name);
  return k === undefined ? undefined : headers[k];
}

/** The configured STS endpoint of an identity. */
export function stsEndpointOf(config: AwsIamConfig): URL {
  return new URL(config.stsEndpoint ?? DEFAULT_STS_ENDPOINT);
}

/** Steps 5 to 9: freshness, endpoint, STS round trip, trust. Returns the caller's ARN. */
export async function verifyAwsIam(
  config: AwsIamConfig,
  signed: { request: SignedStsRequest; amzDate: Date },
  allowLoopback: boolean,
): Promise<string> {
  const ttl = config.signatureTtlSeconds ?? DEFAULT_SIGNATURE_TTL_SECONDS;
  if (Math.abs(Date.now() - signed.amzDate.getTime()) > ttl * 1000)
    throw new LoginError(401, 'Signature expired');
  const endpoint = stsEndpointOf(config);
  const hostHeader = headerOf(signed.request.headers, 'host');
  if (
    signed.request.url.host !== endpoint.host ||
    (hostHeader !== undefined && hostHeader !== endpoint.host)
  ) {
    throw new LoginError(
      400,
      'STS endpoint mismatch. Please sign the request for the configured STS endpoint.',
      {
        expectedEndpoint: endpoint.origin,
        receivedEndpoint: signed.request.url.origin,
      },
    );
  }
  let target: URL;
  try {
    target = await assertSafeUrl(endpoint.href, allowLoopback);
  } catch (e) {
    if (e instanceof UnsafeUrlError)
      throw new LoginError(502, `The configured STS endpoint is refused: ${e.message}`);
    throw new LoginError(502, 'AWS STS request failed');
  }
  const forward: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.request.headers)) {
    if (!['host', 'content-length', 'connection'].includes(k.toLowerCase())) forward[k] = v;
  }
  let res: Response;
  try {
    res = await fetch(target, {
      method: signed.request.method,
      headers: forward,
      body: signed.request.method === 'GET' ? undefined : signed.request.body,
      signal: AbortSignal.timeout(10_000),
      redirect: 'error',
    });
  } catch (e) {
    const timedOut = (e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError';
    throw new LoginError(
      timedOut ? 504 : 502,
      timedOut ? 'AWS STS request timed out' : 'AWS STS request failed',
    );
  }
  const text = (await res.text()).slice(0, 64 * 1024);
  if (res.status !== 200) throw new LoginError(401, 'AWS STS validation failed', { status: res.status });
  const arn = callerArn(text);
  if (!arn) throw new LoginError(502, 'AWS STS answered without a caller ARN');
  if (config.trustedPrincipals.some(isBareWildcard)) {
    throw new LoginError(400, "Invalid trusted principal pattern '*' is not allowed");
  }
  if (!config.trustedPrincipals.some((p) => globMatch(p, arn)))
    throw new LoginError(403, 'Untrusted principal');
  return arn;
}

/**
 * `GetCallerIdentityResult/Arn` in the STS namespace. A document with a DTD is refused outright: nothing here expands
 * entities, and STS never sends one.
 */
export function callerArn(xml: string): string | undefined {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return undefined;
  const root = /<GetCallerIdentityResponse\b[^>]*\bxmlns="([^"]*)"/.exec(xml);
  if (!root || root[1] !== STS_NAMESPACE) return undefined;
  const m = /<GetCallerIdentityResult>[\s\S]*?<Arn>\s*([^<\s]+)\s*<\/Arn>/.exec(xml);
  return m ? m[1] : undefined;
}
