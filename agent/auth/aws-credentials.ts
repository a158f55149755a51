/**
 * AWS credentials for `--auth aws-iam`, from the standard chain, in the SDKs' order for what is supported:
 *
 * 1. Environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`.
 * 2. Shared files: the profile `AWS_PROFILE` (else `default`) in `AWS_SHARED_CREDENTIALS_FILE` (default
 *    `~/.aws/credentials`), then in `AWS_CONFIG_FILE` (default `~/.aws/config`, sections `[profile NAME]`), with
 *    static keys (`aws_access_key_id`, `aws_secret_access_key`, optional `aws_session_token`). A profile that
 *    needs what is not supported here (`role_arn`, `credential_process`, `sso_*`, `web_identity_token_file`) is
 *    named in the error rather than skipped.
 * 3. The container endpoint (ECS task roles, EKS Pod Identity): `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on
 *    169.254.170.2) or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https, or http on loopback or the ECS/EKS link-local
 *    addresses), with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
 * 4. The EC2 instance metadata service, IMDSv2 only (a session token first), unless `AWS_EC2_METADATA_DISABLED` is
 *    `true`; `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides the address.
 *
 * Files and variables are read again at each login (a rotated credentials file is picked up); temporary
 * credentials from 3 and 4 are kept until five minutes before they expire. Nothing here is logged or persisted.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { nodeTransport, type Transport } from '../../core/http';
import type { SigV4Credentials } from './sigv4';

export interface AwsCredentials extends SigV4Credentials {
  /** Where they came from, for the log and /v1/status: `environment`, `profile NAME`, `container`, `instance`. */
  source: string;
  /** Epoch ms when temporary credentials expire. */
  expiresAt?: number;
}

/** Why no credentials could be found or read. Never carries a key. */
export class AwsCredentialsError extends Error {}

export interface CredentialOptions {
  env: NodeJS.ProcessEnv;
  transport?: Transport;
  /** Per request to the container or instance endpoint. Default 1 s (as the AWS SDKs). */
  timeoutMs?: number;
  now?: () => number;
}

const REFRESH_BEFORE_MS = 5 * 60_000;
const ECS_HOST = '169.254.170.2';
const ALLOWED_HTTP_HOSTS = new Set([
  '169.254.170.2',
  '169.254.170.23',
  '[fd00:ec2::23]',
  'localhost',
  '[::1]',
]);
const UNSUPPORTED_PROFILE_KEYS = [
  'role_arn',
  'credential_process',
  'sso_session',
  'sso_start_url',
  'web_identity_token_file',
];

/** Parses an INI file as the AWS CLI writes them: `[section]`, `key = value`, `#` and `;` comments. */
export function parseIni(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = out.get(section[1]) ?? {};
      out.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return out;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AwsCredentialsError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function fromEnvironment(env: NodeJS.ProcessEnv): AwsCredentials | undefined {
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (!id && !secret) return undefined;
  if (!id || !secret)
    throw new AwsCredentialsError(
      `${id ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID'} is not set, but ${id ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY'} is: set both, or neither`,
    );
  return {
    accessKeyId: id,
    secretAccessKey: secret,
    sessionToken: env.AWS_SESSION_TOKEN || undefined,
    source: 'environment',
  };
}

async function fromSharedFiles(env: NodeJS.ProcessEnv): Promise<AwsCredentials | undefined> {
  const named = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE;
  const profile = named || 'default';
  const home = env.HOME || homedir();
  const files: Array<[string, string]> = [
    [env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials'), profile],
    [
      env.AWS_CONFIG_FILE || join(home, '.aws', 'config'),
      profile === 'default' ? 'default' : `profile ${profile}`,
    ],
  ];
  let found = false;
  for (const [file, section] of files) {
    const text = await readIfExists(file);
    if (text === undefined) continue;
    const s = parseIni(text).get(section);
    if (!s) continue;
    found = true;
    const id = s.aws_access_key_id;
    const secret = s.aws_secret_access_key;
    if (id && secret)
      return {
        accessKeyId: id,
        secretAccessKey: secret,
        sessionToken: s.aws_session_token || undefined,
        source: `profile ${profile}`,
      };
    const unsupported = UNSUPPORTED_PROFILE_KEYS.filter((k) => k in s);
    if (unsupported.length)
      throw new AwsCredentialsError(
        `the AWS profile ${profile} (${file}) uses ${unsupported.join(', ')}, which the agent does not support: give it static keys, or use environment variables, a container or instance role`,
      );
  }
  if (named && !found)
    throw new AwsCredentialsError(
      `the AWS profile ${profile} (AWS_PROFILE) is in neither ${files[0][0]} nor ${files[1][0]}`,
    );
  return undefined;
}

function temporary(body: string, source: string): AwsCredentials {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new AwsCredentialsError(`the ${source} credentials endpoint answered something other than JSON`);
  }
  const id = j.AccessKeyId;
  const secret = j.SecretAccessKey;
  if (typeof id !== 'string' || typeof secret !== 'string' || !id || !secret)
    throw new AwsCredentialsError(
      `the ${source} credentials endpoint answered without AccessKeyId and SecretAccessKey`,
    );
  const exp = typeof j.Expiration === 'string' ? Date.parse(j.Expiration) : NaN;
  return {
    accessKeyId: id,
    secretAccessKey: secret,
    sessionToken: typeof j.Token === 'string' && j.Token ? j.Token : undefined,
    source,
    expiresAt: Number.isNaN(exp) ? undefined : exp,
  };
}

async function get(
  t: Transport,
  method: string,
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  what: string,
): Promise<string> {
  let res;
  try {
    res = await t({ method, url, path: new URL(url).pathname, headers }, timeoutMs);
  } catch (err) {
    throw new AwsCredentialsError(`the ${what} is unreachable (${(err as Error).message})`);
  }
  if (res.status !== 200) throw new AwsCredentialsError(`the ${what} answered HTTP ${res.status}`);
  return res.text;
}

async function fromContainer(
  env: NodeJS.ProcessEnv,
  t: Transport,
  timeoutMs: number,
): Promise<AwsCredentials | undefined> {
  const rel = env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
  const full = env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  if (!rel && !full) return undefined;
  const url = rel ? `http://${ECS_HOST}${rel.startsWith('/') ? '' : '/'}${rel}` : (full as string);
  if (!rel) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new AwsCredentialsError('AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL');
    }
    const loopback =
      /^127\.\d+\.\d+\.\d+$/.test(u.hostname) ||
      ALLOWED_HTTP_HOSTS.has(u.host) ||
      ALLOWED_HTTP_HOSTS.has(u.hostname);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback))
      throw new AwsCredentialsError(
        'AWS_CONTAINER_CREDENTIALS_FULL_URI must use https, or http on loopback or the ECS/EKS link-local address',
      );
  }
  const headers: Record<string, string> = { Accept: 'application/json' };
  const tokenFile = env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  if (tokenFile) {
    const token = await readIfExists(tokenFile);
    if (token === undefined)
      throw new AwsCredentialsError(
        `cannot read ${tokenFile} (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE): ENOENT`,
      );
    headers.Authorization = token.trim();
  } else if (env.AWS_CONTAINER_AUTHORIZATION_TOKEN)
    headers.Authorization = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
  return temporary(
    await get(t, 'GET', url, headers, timeoutMs, 'container credentials endpoint'),
    'container',
  );
}

async function fromInstance(
  env: NodeJS.ProcessEnv,
  t: Transport,
  timeoutMs: number,
): Promise<AwsCredentials | undefined> {
  if ((env.AWS_EC2_METADATA_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  const base = (env.AWS_EC2_METADATA_SERVICE_ENDPOINT || 'http://169.254.169.254').replace(/\/+$/, '');
  const what = 'instance metadata service';
  const session = await get(
    t,
    'PUT',
    `${base}/latest/api/token`,
    { 'X-aws-ec2-metadata-token-ttl-seconds': '21600' },
    timeoutMs,
    what,
  );
  const h = { 'X-aws-ec2-metadata-token': session.trim() };
  const roles = await get(t, 'GET', `${base}/latest/meta-data/iam/security-credentials/`, h, timeoutMs, what);
  const role = roles.split('\n')[0]?.trim();
  if (!role) throw new AwsCredentialsError('the instance has no IAM role (instance metadata lists none)');
  const body = await get(
    t,
    'GET',
    `${base}/latest/meta-data/iam/security-credentials/${encodeURIComponent(role)}`,
    h,
    timeoutMs,
    what,
  );
  return temporary(body, 'instance');
}

/** The credential chain, with temporary credentials kept until shortly before they expire. */
export class AwsCredentialChain {
  private cached: AwsCredentials | undefined;
  private readonly transport: Transport;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: CredentialOptions) {
    this.transport = opts.transport ?? nodeTransport({ rejectUnauthorized: true });
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  async resolve(): Promise<AwsCredentials> {
    const env = this.opts.env;
    const fromEnv = fromEnvironment(env);
    if (fromEnv) return fromEnv;
    const fromFile = await fromSharedFiles(env);
    if (fromFile) return fromFile;
    const c = this.cached;
    if (c && (c.expiresAt === undefined ? false : c.expiresAt - REFRESH_BEFORE_MS > this.now())) return c;
    this.cached = undefined;
    const container = await fromContainer(env, this.transport, this.timeoutMs);
    const found = container ?? (await this.instance());
    if (!found)
      throw new AwsCredentialsError(
        'no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in ~/.aws/credentials (AWS_PROFILE), or run with a container or instance role',
      );
    this.cached = found;
    return found;
  }

  private async instance(): Promise<AwsCredentials | undefined> {
    try {
      return await fromInstance(this.opts.env, this.transport, this.timeoutMs);
    } catch (err) {
      // Not on EC2 (nothing answers): the chain simply ends; a metadata service that answers wrongly is reported.
      if (/unreachable/.test((err as Error).message) && !this.opts.env.AWS_EC2_METADATA_SERVICE_ENDPOINT)
        return undefined;
      throw err;
    }
  }
}
