/**
 * AWS Signature Version 4 with node:crypto, enough for the one request the agent signs: STS GetCallerIdentity (a
 * POST with a form body, spec phase-external-identities.md §2). Checked against AWS's published test-suite vectors
 * and the worked example of the signing guide (test/agent/identity.test.ts).
 *
 * Loaded only with `--auth aws-iam` (through agent/auth/aws-iam.ts, imported on demand): an agent that does not log in
 * with AWS never has this code in memory.
 */
import { createHash, createHmac } from 'node:crypto';

export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials (STS, a container or instance role): sent and signed as X-Amz-Security-Token. */
  sessionToken?: string;
}

export interface SigV4Request {
  method: string;
  /** The full URL; its host is signed, its path and query are canonicalised. */
  url: string;
  /** Headers to sign and send besides Host, X-Amz-Date and X-Amz-Security-Token (added here). */
  headers: Record<string, string>;
  body: string;
}

export interface SigV4Options {
  region: string;
  service: string;
  /** The signing time (X-Amz-Date). */
  date: Date;
}

export interface SigV4Result {
  /**
   * What to send: the request's headers plus `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials) and
   * `Authorization`. `Host` is signed but not included: the HTTP client sends it from the URL.
   */
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
  signedHeaders: string;
  signature: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer =>
  createHmac('sha256', key).update(s, 'utf8').digest();

/** `20150830T123600Z` */
export function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** RFC 3986 percent-encoding: everything but unreserved characters (A-Z a-z 0-9 - _ . ~). */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The canonical URI of a service other than S3: the path as sent (already percent-encoded once), with `.` and `..`
 * segments resolved, encoded once more, slashes kept.
 */
function canonicalUri(pathname: string): string {
  const segments: string[] = [];
  for (const seg of pathname.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const trailing = segments.length > 0 && pathname.endsWith('/') ? '/' : '';
  return `/${segments.map(uriEncode).join('/')}${trailing}`;
}

function canonicalQuery(search: URLSearchParams): string {
  return [...search]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** The signing key: HMAC chain of the date, region, service and `aws4_request`. */
export function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
}

/** Signs a request; the secret access key appears in no returned field. */
export function signV4(req: SigV4Request, creds: SigV4Credentials, opts: SigV4Options): SigV4Result {
  const url = new URL(req.url);
  const stamp = amzDate(opts.date);
  const day = stamp.slice(0, 8);
  const send: Record<string, string> = { ...req.headers, 'X-Amz-Date': stamp };
  if (creds.sessionToken) send['X-Amz-Security-Token'] = creds.sessionToken;
  const signed = new Map<string, string>([['host', url.host]]);
  for (const [k, v] of Object.entries(send)) {
    const name = k.toLowerCase();
    if (name === 'authorization' || name === 'host') continue;
    const value = v.trim().replace(/\s+/g, ' ');
    signed.set(name, signed.has(name) ? `${signed.get(name)},${value}` : value);
  }
  const names = [...signed.keys()].sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(url.pathname),
    canonicalQuery(url.searchParams),
    names.map((n) => `${n}:${signed.get(n)}\n`).join(''),
    signedHeaders,
    sha256Hex(req.body),
  ].join('\n');
  const scope = `${day}/${opts.region}/${opts.service}/aws4_request`;
  const stringToSign = [ALGORITHM, stamp, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, day, opts.region, opts.service))
    .update(stringToSign, 'utf8')
    .digest('hex');
  send.Authorization = `${ALGORITHM} Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { headers: send, canonicalRequest, stringToSign, signedHeaders, signature };
}
