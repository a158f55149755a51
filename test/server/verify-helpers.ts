/**
 * Helpers for the server verification suites (sdk-compat, authz-matrix, fuzz, crash-safety). Plain `fetch` against
 * the real server on loopback; every expectation in the suites comes from the specs, not from the implementation.
 */

export interface Resp {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  json: any;
}

export interface CallOptions {
  /** Full Authorization header value, e.g. `Bearer User <hex>`; null/undefined = no header. */
  auth?: string | null;
  body?: unknown;
  /** Raw body bytes/text (sent as-is, overrides `body`). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<Resp> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.auth !== undefined && opts.auth !== null) headers.Authorization = opts.auth;
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** `pss_user:v1:<tok>:…` → `Bearer User <tok>`; `pss_service:v2:…` → `Bearer ServiceAccount <tok>` (protocol §1.2). */
export function authFor(token: string): string {
  if (token.startsWith('Bearer ')) return token;
  if (!token.startsWith('pss_')) return `Bearer ${token}`; // already "<Type> <hex>"
  const [prefix, version, value] = token.split(':');
  const type = prefix.includes('user') ? 'User' : version === 'v1' ? 'Service' : 'ServiceAccount';
  return `Bearer ${type} ${value}`;
}

export function expectStatus(r: Resp, status: number, what: string): void {
  if (r.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
  }
}

/** A thin authenticated client for setting up scenarios. Throws with the server's answer on unexpected statuses. */
export class Api {
  constructor(
    readonly base: string,
    readonly auth: string,
  ) {}

  req(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Resp> {
    return call(this.base, method, path, { auth: this.auth, body, headers });
  }

  async ok(
    method: string,
    path: string,
    body: unknown,
    status: number,
    headers?: Record<string, string>,
  ): Promise<any> {
    const r = await this.req(method, path, body, headers);
    expectStatus(r, status, `${method} ${path}`);
    return r.json;
  }

  async roles(): Promise<Record<string, string>> {
    const r = await this.ok('GET', '/v1/roles/', undefined, 200);
    const out: Record<string, string> = {};
    for (const role of r.data as Array<{ id: string; name: string }>) out[role.name] = role.id;
    return out;
  }

  async createApp(name: string, environments?: string[]): Promise<AppInfo> {
    const a = await this.ok('POST', '/v1/apps/', environments ? { name, environments } : { name }, 201);
    const envs: Record<string, string> = {};
    for (const e of a.environments as Array<{ id: string; name: string }>) envs[e.name] = e.id;
    return { id: a.id, name: a.name, envs };
  }

  async createSA(name: string, roleId: string): Promise<SAInfo> {
    const r = await this.ok('POST', '/v1/service-accounts/', { name, role_id: roleId }, 201);
    return {
      id: r.id,
      token: r.initialToken.token,
      bearer: r.initialToken.bearerToken,
      tokenId: r.initialToken.id,
    };
  }

  async grantSA(
    saId: string,
    apps: Array<{ id: string; environments: string[]; paths?: string[] }>,
  ): Promise<any> {
    return this.ok('PUT', `/v1/service-accounts/${saId}/access/`, { apps }, 200);
  }

  async grantMember(memberId: string, apps: Array<{ id: string; environments: string[] }>): Promise<any> {
    return this.ok('PUT', `/v1/members/${memberId}/access/`, { apps }, 200);
  }

  secretsPath(appId: string, env: string, extra = ''): string {
    return `/v1/secrets/?app_id=${appId}&env=${encodeURIComponent(env)}${extra}`;
  }

  async listSecrets(appId: string, env: string, extra = ''): Promise<SseSecret[]> {
    return this.ok('GET', this.secretsPath(appId, env, extra), undefined, 200);
  }
}

export interface AppInfo {
  id: string;
  name: string;
  /** environment name → id */
  envs: Record<string, string>;
}

export interface SAInfo {
  id: string;
  /** pss_service:v2:… */
  token: string;
  /** `ServiceAccount <hex>` */
  bearer: string;
  tokenId: string;
}

export interface SseSecret {
  id: string;
  key: string;
  value: string;
  comment: string;
  tags: string[];
  path: string;
  type: string;
  version: number;
  keyDigest: string;
  environment: string;
}

/** Rejects after `ms` (the official SDK never settles some of its promises on HTTP errors). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let counter = 0;
/** Unique, short, valid name (apps, SAs, roles: ≤64; environments: letters, digits, -, _). */
export function uniq(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 7)}`;
}
