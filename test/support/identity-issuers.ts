/**
 * Stand-ins on loopback for the platforms a workload logs in with: an OIDC issuer (discovery document and JWKS) that
 * signs Kubernetes-shaped service-account tokens, and an AWS STS that answers GetCallerIdentity for the access key a
 * request was signed with. Real HTTP servers; nothing of ours is mocked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose';

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

export interface KubernetesClaims {
  namespace: string;
  serviceAccount: string;
  audience?: string | string[];
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  issuer?: string;
  notBefore?: number;
}

export interface OidcIssuer {
  /** The issuer URL (discovery under `/.well-known/openid-configuration`). */
  url: string;
  jwksUrl: string;
  /** Number of JWKS downloads so far. */
  jwksFetches(): number;
  /** A Kubernetes projected service-account token signed with the issuer's current key. */
  kubernetesToken(c: KubernetesClaims, opts?: { key?: 'current' | 'unpublished' }): Promise<string>;
  /** Replaces the published key (the old one stops verifying). */
  rotate(): Promise<void>;
  close(): Promise<void>;
}

export async function startOidcIssuer(): Promise<OidcIssuer> {
  let current = await generateKeyPair('RS256');
  let kid = 'k1';
  const unpublished = await generateKeyPair('RS256');
  let fetches = 0;
  let base = '';
  const jwk = async (): Promise<JWK> => ({
    ...(await exportJWK(current.publicKey)),
    kid,
    alg: 'RS256',
    use: 'sig',
  });
  const server = createServer((req, res) => {
    void (async () => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') {
        res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/openid/v1/jwks` }));
      } else if (req.url === '/openid/v1/jwks') {
        fetches++;
        res.end(JSON.stringify({ keys: [await jwk()] }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    })();
  });
  base = await listen(server);
  const sign = (claims: KubernetesClaims, key: KeyLike, keyId: string): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      'kubernetes.io': { namespace: claims.namespace, serviceaccount: { name: claims.serviceAccount } },
    })
      .setProtectedHeader({ alg: 'RS256', kid: keyId })
      .setIssuer(claims.issuer ?? base)
      .setSubject(`system:serviceaccount:${claims.namespace}:${claims.serviceAccount}`)
      .setAudience(claims.audience ?? 'phase')
      .setIssuedAt(now)
      .setNotBefore(claims.notBefore ?? now)
      .setExpirationTime(now + (claims.expiresIn ?? 600))
      .sign(key);
  };
  return {
    url: base,
    jwksUrl: `${base}/openid/v1/jwks`,
    jwksFetches: () => fetches,
    kubernetesToken: (c, opts) =>
      opts?.key === 'unpublished'
        ? sign(c, unpublished.privateKey, 'k-unpublished')
        : sign(c, current.privateKey, kid),
    rotate: async () => {
      current = await generateKeyPair('RS256');
      kid = `k${Date.now()}`;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export interface StsStandIn {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  /** The ARN STS answers for an access key id. */
  principals: Map<string, string>;
  requests(): number;
  close(): Promise<void>;
}

/**
 * Answers `Action=GetCallerIdentity` for the access key named in the SigV4 `Authorization` header, with AWS's XML.
 * (Checking the signature itself is STS's job; the server under test only forwards the signed request.)
 */
export async function startStsStandIn(): Promise<StsStandIn> {
  const principals = new Map<string, string>();
  let count = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      count++;
      const auth = String(req.headers.authorization ?? '');
      const key = /Credential=([^/]+)\//.exec(auth)?.[1];
      const arn = key ? principals.get(key) : undefined;
      res.setHeader('Content-Type', 'text/xml');
      if (req.method !== 'POST' || !body.includes('Action=GetCallerIdentity') || !arn) {
        res.statusCode = 403;
        res.end('<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>');
        return;
      }
      res.end(
        `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>` +
          `<Arn>${arn}</Arn><UserId>AIDEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>` +
          `<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
      );
    });
  });
  const url = await listen(server);
  return { url, principals, requests: () => count, close: () => new Promise((r) => server.close(() => r())) };
}

/** `20261203T081500Z` */
export function amzDate(d = new Date()): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/**
 * The `awsIam` part of a login body as Phase's clients build it: a GetCallerIdentity request for `endpoint`, with the
 * signed headers (the signature itself is a placeholder the stand-in does not check).
 */
export function awsIamLogin(
  endpoint: string,
  accessKeyId: string,
  opts: { date?: Date; host?: string } = {},
) {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const date = amzDate(opts.date);
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
    'X-Amz-Date': date,
    Authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${date.slice(0, 8)}/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=00`,
  };
  if (opts.host) headers.Host = opts.host;
  return {
    httpRequestMethod: 'POST',
    httpRequestUrl: b64(endpoint),
    httpRequestHeaders: b64(JSON.stringify(headers)),
    httpRequestBody: b64('Action=GetCallerIdentity&Version=2011-06-15'),
  };
}
