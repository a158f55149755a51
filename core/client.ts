/**
 * PhaseClient: the HTTP client every part uses for Phase Cloud, a self-hosted Phase console or phase-bridge's own
 * server. It speaks the E2E endpoints (`/service/secrets/tokens/`, `/service/secrets/`, ciphertext only) and the
 * `/v1` management and SSE secrets API. Responses are validated with zod; failures are typed (`core/api-errors`);
 * retries follow `core/retry`. The token is only ever placed in the Authorization header.
 */
import { z } from 'zod';
import { ClientConfigError, RequestValidationError, ResponseValidationError } from './api-errors';
import {
  fetchTransport,
  type HttpRequest,
  nodeTransport,
  type RetryEvent,
  sendWithRetry,
  type Transport,
} from './http';
import { DEFAULT_RETRY, type RetryOptions } from './retry';
import {
  type AccessGrant,
  AccessGrantSchema,
  type App,
  AppSchema,
  type AppWithEnvironments,
  AppWithEnvironmentsSchema,
  type AuditLogPage,
  AuditLogPageSchema,
  type BootstrapResponse,
  BootstrapResponseSchema,
  type EncryptedSecret,
  type EncryptedSecretCreate,
  EncryptedSecretListSchema,
  type EncryptedSecretUpdate,
  type Environment,
  EnvironmentSchema,
  type AwsIamIdentityConfig,
  type ExternalIdentity,
  ExternalIdentityCreateSchema,
  ExternalIdentitySchema,
  ExternalIdentityUpdateSchema,
  ListSchema,
  type Member,
  type MemberAccess,
  MemberAccessSchema,
  MemberSchema,
  MessageSchema,
  type MintedTokenResponse,
  MintedTokenSchema,
  type NetworkPolicy,
  NetworkPolicySchema,
  type OidcIdentityConfig,
  type Role,
  RoleSchema,
  type SecretType,
  type ServiceAccount,
  type ServiceAccountCreated,
  ServiceAccountCreatedSchema,
  type ServiceAccountDetail,
  ServiceAccountDetailSchema,
  ServiceAccountSchema,
  type SseSecret,
  SseSecretListSchema,
  type TokenCreate,
  TokenCreateSchema,
} from './schemas';
import { authorizationHeader, type Credential, parseCredential } from './token';
import { VERSION } from './version';

export const PHASE_CLOUD_HOST = 'https://console.phase.dev';
export const PHASE_CLOUD_API_HOST = 'https://api.phase.dev';

export interface PhaseClientOptions {
  /** Console URL (default Phase Cloud). `https://api.phase.dev` (the Terraform default) also means Phase Cloud. */
  host?: string;
  /**
   * Base URL the `/v1/...` paths are appended to, overriding the rule derived from `host`
   * (Phase Cloud: `https://api.phase.dev`; self-hosted: `{host}/service/public`).
   */
  apiHost?: string;
  /** A pss token, or a REST API token `ServiceAccount <hex>` / `User <hex>` (SSE `/v1` only). */
  token: string;
  /** Per-attempt timeout in ms (default 30000). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Backoff tuning beyond `retries`. */
  retry?: Partial<Omit<RetryOptions, 'retries'>>;
  /** Disables TLS certificate checks (self-signed self-hosted consoles). Uses a node:https transport. */
  skipTlsVerification?: boolean;
  userAgent?: string;
  /** Called before each retry (metrics, debug logs). Carries no token or body. */
  onRetry?: (e: RetryEvent) => void;
  /** Replaces the transport (advanced; e.g. a proxy). */
  transport?: Transport;
}

/** The two base URLs a host maps to (spec: phase-protocol.md §3.1, phase-rest-api.md §3.1). */
export interface PhaseBaseUrls {
  /** Prefix of `/secrets/tokens/` and `/secrets/`. */
  e2e: string;
  /** Prefix of `/v1/...`. */
  api: string;
}

function normaliseBase(url: string, what: string): string {
  const trimmed = url.trim().replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    throw new ClientConfigError(`${what} must be an absolute http(s) URL like https://phase.example.com`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ClientConfigError(`${what} must use http or https`);
  }
  if (parsed.search || parsed.hash || parsed.username || parsed.password) {
    throw new ClientConfigError(`${what} must not contain credentials, a query string or a fragment`);
  }
  return trimmed;
}

/** Phase Cloud console or API host → the cloud pair; anything else → self-hosted `{H}/service[/public]`. */
export function resolveBaseUrls(host: string = PHASE_CLOUD_HOST, apiHost?: string): PhaseBaseUrls {
  const h = normaliseBase(host, 'host');
  const lower = h.toLowerCase();
  const cloud = lower === PHASE_CLOUD_HOST || lower === PHASE_CLOUD_API_HOST;
  const urls: PhaseBaseUrls = cloud
    ? { e2e: `${PHASE_CLOUD_HOST}/service`, api: PHASE_CLOUD_API_HOST }
    : { e2e: `${h}/service`, api: `${h}/service/public` };
  if (apiHost !== undefined) urls.api = normaliseBase(apiHost, 'apiHost');
  return urls;
}

type Query = Record<string, string | number | boolean | undefined | null>;

function queryString(q?: Query): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const seg = (id: string): string => encodeURIComponent(id);

export interface ListEncryptedOptions {
  /** Exact path filter (server-normalised); absent → secrets at all paths. */
  path?: string;
  /** Exact key digest filter. */
  keyDigest?: string;
  /** Tag names; any match. */
  tags?: string[];
}

export interface SecretScope {
  appId: string;
  /** Environment name (case-insensitive on the server). */
  env: string;
}

export interface ListSecretsOptions extends SecretScope {
  /** Exact key, case-insensitive, across all paths. */
  key?: string;
  path?: string;
  tags?: string[];
  /** phase-bridge extension: values with `${...}` references as written (real Phase ignores it and resolves). */
  raw?: boolean;
}

export interface SseSecretInput {
  key: string;
  value: string;
  comment?: string;
  path?: string;
  tags?: string[];
  type?: SecretType;
  override?: { value: string; isActive: boolean };
}

export interface SseSecretUpdate extends Partial<SseSecretInput> {
  id: string;
}

export interface RoleInput {
  name: string;
  description?: string;
  color?: string;
  permissions: Record<string, unknown>;
}

export interface NetworkPolicyInput {
  name: string;
  allowedIps: string[];
  isGlobal?: boolean;
}

export type AccountType = 'service_account' | 'member';

/** Fields every external identity has (docs/identity.md); the server defaults the TTLs to 3600 and 86400. */
interface ExternalIdentityFields {
  name: string;
  /** null clears it on update. */
  description?: string | null;
  /** Name given to minted tokens (falls back to the provider, e.g. `aws-iam`); null clears it on update. */
  tokenNamePattern?: string | null;
  defaultTtlSeconds?: number;
  maxTtlSeconds?: number;
}

/** A new external identity: the provider and its config. */
export type ExternalIdentityInput =
  | (ExternalIdentityFields & { provider: 'oidc'; config: OidcIdentityConfig })
  | (ExternalIdentityFields & { provider: 'aws_iam'; config: AwsIamIdentityConfig });

/** Changes to an identity: any field but `provider` (fixed at creation); `config` replaces the whole config. */
export type ExternalIdentityChanges = Partial<ExternalIdentityFields> & {
  config?: OidcIdentityConfig | AwsIamIdentityConfig;
};

/** The longest grace a deleted token may keep (`?grace_seconds=`, phase-bridge extension): 7 days. */
export const MAX_REVOKE_GRACE_SECONDS = 7 * 86400;

export interface DeleteTokenOptions {
  /**
   * phase-bridge extension: the token stays valid this many more seconds (at most 7 days), then expires, so a
   * replaced token keeps working while its users move to the new one. Phase ignores it and revokes at once.
   */
  graceSeconds?: number;
}

export interface AuditLogFilters {
  limit?: number;
  offset?: number;
  appId?: string;
  environmentId?: string;
  actorId?: string;
  resourceType?: string;
  eventType?: string;
  keyDigest?: string;
  since?: string;
  until?: string;
}

export class PhaseClient {
  readonly urls: PhaseBaseUrls;
  readonly credential: Credential;
  private readonly auth: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryOptions;
  private readonly transport: Transport;
  private readonly userAgent: string;
  private readonly onRetry?: (e: RetryEvent) => void;

  constructor(opts: PhaseClientOptions) {
    this.credential = parseCredential(opts.token);
    this.auth = authorizationHeader(this.credential);
    this.urls = resolveBaseUrls(opts.host, opts.apiHost);
    this.timeoutMs = opts.timeoutMs ?? 30000;
    if (!(this.timeoutMs > 0)) throw new ClientConfigError('timeoutMs must be a positive number');
    const retries = opts.retries ?? DEFAULT_RETRY.retries;
    if (!Number.isInteger(retries) || retries < 0)
      throw new ClientConfigError('retries must be a non-negative integer');
    this.retry = { ...DEFAULT_RETRY, ...opts.retry, retries };
    this.transport =
      opts.transport ??
      (opts.skipTlsVerification ? nodeTransport({ rejectUnauthorized: false }) : fetchTransport);
    this.userAgent = opts.userAgent ?? `phase-bridge/${VERSION}`;
    this.onRetry = opts.onRetry;
  }

  // Keeps the token out of util.inspect / console.log of the client.
  toJSON(): Record<string, unknown> {
    return { urls: this.urls, authType: this.credential.authType };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `PhaseClient { e2e: ${this.urls.e2e}, api: ${this.urls.api}, authType: ${this.credential.authType} }`;
  }

  // ---- plumbing ----

  /** Sends one request and validates the JSON body with `schema` (or returns undefined for `null`). */
  async request<T extends z.ZodTypeAny>(
    method: string,
    base: 'e2e' | 'api',
    path: string,
    schema: T | null,
    opts: { query?: Query; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<z.output<T>> {
    const baseUrl = this.urls[base];
    const fullPath = new URL(baseUrl).pathname.replace(/\/$/, '') + path;
    const headers: Record<string, string> = {
      Authorization: this.auth,
      Accept: 'application/json',
      'User-Agent': this.userAgent,
      ...opts.headers,
    };
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      // fetch rejects such values with an untyped error; say which header is wrong instead (never its value).
      if (!/^[\x20-\x7e]*$/.test(value)) {
        throw new RequestValidationError(`${name} header`, [`${name}: only printable ASCII is allowed`]);
      }
    }
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
    const req: HttpRequest = {
      method,
      url: baseUrl + path + queryString(opts.query),
      path: fullPath,
      headers,
      body,
    };
    const res = await sendWithRetry(req, {
      timeoutMs: this.timeoutMs,
      retry: this.retry,
      transport: this.transport,
      onRetry: this.onRetry,
      redact: [this.credential.bearer],
    });
    if (schema === null) return undefined as z.output<T>;
    let json: unknown;
    try {
      json = JSON.parse(res.text);
    } catch {
      throw new ResponseValidationError({
        method,
        path: fullPath,
        status: res.status,
        issues: ['body is not JSON'],
      });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ResponseValidationError({
        method,
        path: fullPath,
        status: res.status,
        issues: issuesOf(parsed.error),
      });
    }
    return parsed.data as z.output<T>;
  }

  private async list<T extends z.ZodTypeAny>(path: string, item: T, query?: Query): Promise<z.output<T>[]> {
    const page = await this.request('GET', 'api', path, ListSchema(item), { query });
    return page.data as z.output<T>[];
  }

  // ---- E2E ----

  /** `GET /service/secrets/tokens/`: key share plus wrapped environment keys (the access list). */
  bootstrap(): Promise<BootstrapResponse> {
    return this.request('GET', 'e2e', '/secrets/tokens/', BootstrapResponseSchema);
  }

  /** E2E list (ciphertext). Dynamic secrets are dropped. */
  listEncryptedSecrets(envId: string, opts: ListEncryptedOptions = {}): Promise<EncryptedSecret[]> {
    const headers: Record<string, string> = { Environment: envId };
    if (opts.path !== undefined) headers.Path = opts.path;
    if (opts.keyDigest !== undefined) headers.KeyDigest = opts.keyDigest;
    if (opts.tags && opts.tags.length > 0) headers.Tags = opts.tags.join(',');
    return this.request('GET', 'e2e', '/secrets/', EncryptedSecretListSchema, { headers });
  }

  /** E2E create (ciphertext in; the server answers 200 with an empty body). */
  async createEncryptedSecrets(envId: string, secrets: EncryptedSecretCreate[]): Promise<void> {
    await this.request('POST', 'e2e', '/secrets/', null, {
      headers: { Environment: envId },
      body: { secrets },
    });
  }

  /** E2E update. Upstream clears tags when an item omits `tags`: send the existing tag names. */
  async updateEncryptedSecrets(envId: string, secrets: EncryptedSecretUpdate[]): Promise<void> {
    await this.request('PUT', 'e2e', '/secrets/', null, {
      headers: { Environment: envId },
      body: { secrets },
    });
  }

  async deleteEncryptedSecrets(envId: string, ids: string[]): Promise<void> {
    await this.request('DELETE', 'e2e', '/secrets/', null, {
      headers: { Environment: envId },
      body: { secrets: ids },
    });
  }

  // ---- apps ----

  listApps(): Promise<App[]> {
    return this.list('/v1/apps/', AppSchema);
  }
  createApp(input: {
    name: string;
    description?: string;
    environments?: string[];
  }): Promise<AppWithEnvironments> {
    return this.request('POST', 'api', '/v1/apps/', AppWithEnvironmentsSchema, { body: input });
  }
  getApp(appId: string): Promise<App> {
    return this.request('GET', 'api', `/v1/apps/${seg(appId)}/`, AppSchema);
  }
  updateApp(appId: string, input: { name?: string; description?: string }): Promise<App> {
    return this.request('PUT', 'api', `/v1/apps/${seg(appId)}/`, AppSchema, { body: input });
  }
  async deleteApp(appId: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/apps/${seg(appId)}/`, null);
  }

  // ---- environments ----

  listEnvironments(appId: string): Promise<Environment[]> {
    return this.list('/v1/environments/', EnvironmentSchema, { app_id: appId });
  }
  createEnvironment(appId: string, name: string): Promise<Environment> {
    return this.request('POST', 'api', '/v1/environments/', EnvironmentSchema, {
      query: { app_id: appId },
      body: { name },
    });
  }
  getEnvironment(envId: string): Promise<Environment> {
    return this.request('GET', 'api', `/v1/environments/${seg(envId)}/`, EnvironmentSchema);
  }
  updateEnvironment(envId: string, name: string): Promise<Environment> {
    return this.request('PUT', 'api', `/v1/environments/${seg(envId)}/`, EnvironmentSchema, {
      body: { name },
    });
  }
  async deleteEnvironment(envId: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/environments/${seg(envId)}/`, null);
  }

  // ---- roles ----

  listRoles(): Promise<Role[]> {
    return this.list('/v1/roles/', RoleSchema);
  }
  createRole(input: RoleInput): Promise<Role> {
    return this.request('POST', 'api', '/v1/roles/', RoleSchema, { body: input });
  }
  getRole(roleId: string): Promise<Role> {
    return this.request('GET', 'api', `/v1/roles/${seg(roleId)}/`, RoleSchema);
  }
  updateRole(roleId: string, input: Partial<RoleInput>): Promise<Role> {
    return this.request('PUT', 'api', `/v1/roles/${seg(roleId)}/`, RoleSchema, { body: input });
  }
  async deleteRole(roleId: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/roles/${seg(roleId)}/`, null);
  }

  /** Grouped calls: `client.apps.list()`, `client.environments.create(appId, name)`, `client.roles.get(id)`. */
  readonly apps = {
    list: () => this.listApps(),
    create: (input: Parameters<PhaseClient['createApp']>[0]) => this.createApp(input),
    get: (id: string) => this.getApp(id),
    update: (id: string, input: { name?: string; description?: string }) => this.updateApp(id, input),
    delete: (id: string) => this.deleteApp(id),
  };

  readonly environments = {
    list: (appId: string) => this.listEnvironments(appId),
    create: (appId: string, name: string) => this.createEnvironment(appId, name),
    get: (id: string) => this.getEnvironment(id),
    update: (id: string, name: string) => this.updateEnvironment(id, name),
    delete: (id: string) => this.deleteEnvironment(id),
  };

  readonly roles = {
    list: () => this.listRoles(),
    create: (input: RoleInput) => this.createRole(input),
    get: (id: string) => this.getRole(id),
    update: (id: string, input: Partial<RoleInput>) => this.updateRole(id, input),
    delete: (id: string) => this.deleteRole(id),
  };

  // ---- service accounts ----

  listServiceAccounts(): Promise<ServiceAccount[]> {
    return this.list('/v1/service-accounts/', ServiceAccountSchema);
  }
  /** Creates an SA; the response's `initialToken.token` / `bearerToken` are shown exactly once. */
  createServiceAccount(input: {
    name: string;
    role_id: string;
    token_name?: string;
    team_id?: string;
  }): Promise<ServiceAccountCreated> {
    return this.request('POST', 'api', '/v1/service-accounts/', ServiceAccountCreatedSchema, { body: input });
  }
  getServiceAccount(id: string): Promise<ServiceAccountDetail> {
    return this.request('GET', 'api', `/v1/service-accounts/${seg(id)}/`, ServiceAccountDetailSchema);
  }
  updateServiceAccount(
    id: string,
    input: { name?: string; role_id?: string },
  ): Promise<ServiceAccountDetail> {
    return this.request('PUT', 'api', `/v1/service-accounts/${seg(id)}/`, ServiceAccountDetailSchema, {
      body: input,
    });
  }
  async deleteServiceAccount(id: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/service-accounts/${seg(id)}/`, null);
  }
  /** Declarative access: apps not listed are revoked; `paths` is a phase-bridge extension. */
  async setServiceAccountAccess(id: string, apps: AccessGrant): Promise<ServiceAccountDetail> {
    const body = { apps: checkInput(AccessGrantSchema, apps, 'access grant') };
    return this.request('PUT', 'api', `/v1/service-accounts/${seg(id)}/access/`, ServiceAccountDetailSchema, {
      body,
    });
  }
  /** Mints a token (`expires_at` ISO-8601 with timezone wins over `expires_in` seconds; neither = never expires). */
  async createServiceAccountToken(id: string, input: TokenCreate): Promise<MintedTokenResponse> {
    const body = checkInput(TokenCreateSchema, input, 'token request');
    return this.request('POST', 'api', `/v1/service-accounts/${seg(id)}/tokens/`, MintedTokenSchema, {
      body,
    });
  }
  /** Revokes a token; with `graceSeconds` (phase-bridge extension) it stays valid that long, then expires. */
  async deleteServiceAccountToken(id: string, tokenId: string, opts: DeleteTokenOptions = {}): Promise<void> {
    const grace = opts.graceSeconds;
    if (
      grace !== undefined &&
      !(Number.isInteger(grace) && grace >= 0 && grace <= MAX_REVOKE_GRACE_SECONDS)
    ) {
      throw new RequestValidationError('token deletion', [
        `graceSeconds: must be a whole number of seconds from 0 to ${MAX_REVOKE_GRACE_SECONDS}`,
      ]);
    }
    await this.request('DELETE', 'api', `/v1/service-accounts/${seg(id)}/tokens/${seg(tokenId)}/`, null, {
      query: { grace_seconds: grace ? grace : undefined },
    });
  }

  /** Grouped service-account calls (`client.serviceAccounts.setAccess(...)`). */
  readonly serviceAccounts = {
    list: () => this.listServiceAccounts(),
    create: (input: Parameters<PhaseClient['createServiceAccount']>[0]) => this.createServiceAccount(input),
    get: (id: string) => this.getServiceAccount(id),
    update: (id: string, input: { name?: string; role_id?: string }) => this.updateServiceAccount(id, input),
    delete: (id: string) => this.deleteServiceAccount(id),
    setAccess: (id: string, apps: AccessGrant) => this.setServiceAccountAccess(id, apps),
    createToken: (id: string, input: TokenCreate) => this.createServiceAccountToken(id, input),
    deleteToken: (id: string, tokenId: string, opts?: DeleteTokenOptions) =>
      this.deleteServiceAccountToken(id, tokenId, opts),
  };

  // ---- members ----

  listMembers(): Promise<Member[]> {
    return this.list('/v1/members/', MemberSchema);
  }
  getMember(id: string): Promise<Member> {
    return this.request('GET', 'api', `/v1/members/${seg(id)}/`, MemberSchema);
  }
  updateMemberRole(id: string, roleId: string): Promise<Member> {
    return this.request('PUT', 'api', `/v1/members/${seg(id)}/`, MemberSchema, { body: { role_id: roleId } });
  }
  async deleteMember(id: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/members/${seg(id)}/`, null);
  }
  getMemberAccess(id: string): Promise<MemberAccess> {
    return this.request('GET', 'api', `/v1/members/${seg(id)}/access/`, MemberAccessSchema);
  }
  async setMemberAccess(id: string, apps: AccessGrant): Promise<MemberAccess> {
    const body = { apps: checkInput(AccessGrantSchema, apps, 'access grant') };
    return this.request('PUT', 'api', `/v1/members/${seg(id)}/access/`, MemberAccessSchema, { body });
  }

  readonly members = {
    list: () => this.listMembers(),
    get: (id: string) => this.getMember(id),
    updateRole: (id: string, roleId: string) => this.updateMemberRole(id, roleId),
    delete: (id: string) => this.deleteMember(id),
    getAccess: (id: string) => this.getMemberAccess(id),
    setAccess: (id: string, apps: AccessGrant) => this.setMemberAccess(id, apps),
  };

  // ---- SSE secrets (/v1/secrets/) ----

  private secretsQuery(scope: SecretScope): Query {
    return { app_id: scope.appId, env: scope.env };
  }

  /** Plaintext secrets (SSE apps); references resolved by the server. Dynamic secrets are dropped. */
  listSecrets(opts: ListSecretsOptions): Promise<SseSecret[]> {
    const query: Query = {
      ...this.secretsQuery(opts),
      key: opts.key,
      path: opts.path,
      tags: opts.tags && opts.tags.length > 0 ? opts.tags.join(',') : undefined,
      raw: opts.raw ? 'true' : undefined,
    };
    return this.request('GET', 'api', '/v1/secrets/', SseSecretListSchema, { query });
  }
  createSecrets(scope: SecretScope, secrets: SseSecretInput[]): Promise<SseSecret[]> {
    return this.request('POST', 'api', '/v1/secrets/', SseSecretListSchema, {
      query: this.secretsQuery(scope),
      body: { secrets },
    });
  }
  updateSecrets(scope: SecretScope, secrets: SseSecretUpdate[]): Promise<SseSecret[]> {
    return this.request('PUT', 'api', '/v1/secrets/', SseSecretListSchema, {
      query: this.secretsQuery(scope),
      body: { secrets },
    });
  }
  async deleteSecrets(scope: SecretScope, ids: string[]): Promise<string> {
    const r = await this.request('DELETE', 'api', '/v1/secrets/', MessageSchema, {
      query: this.secretsQuery(scope),
      body: { secrets: ids },
    });
    return r.message;
  }

  readonly secrets = {
    list: (opts: ListSecretsOptions) => this.listSecrets(opts),
    create: (scope: SecretScope, secrets: SseSecretInput[]) => this.createSecrets(scope, secrets),
    update: (scope: SecretScope, secrets: SseSecretUpdate[]) => this.updateSecrets(scope, secrets),
    delete: (scope: SecretScope, ids: string[]) => this.deleteSecrets(scope, ids),
  };

  // ---- phase-bridge extensions: network policies, audit logs ----

  listNetworkPolicies(): Promise<NetworkPolicy[]> {
    return this.list('/v1/network-policies/', NetworkPolicySchema);
  }
  createNetworkPolicy(input: NetworkPolicyInput): Promise<NetworkPolicy> {
    return this.request('POST', 'api', '/v1/network-policies/', NetworkPolicySchema, {
      body: policyBody(input),
    });
  }
  getNetworkPolicy(id: string): Promise<NetworkPolicy> {
    return this.request('GET', 'api', `/v1/network-policies/${seg(id)}/`, NetworkPolicySchema);
  }
  updateNetworkPolicy(id: string, input: Partial<NetworkPolicyInput>): Promise<NetworkPolicy> {
    return this.request('PUT', 'api', `/v1/network-policies/${seg(id)}/`, NetworkPolicySchema, {
      body: policyBody(input),
    });
  }
  async deleteNetworkPolicy(id: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/network-policies/${seg(id)}/`, null);
  }
  /** Attaches a policy to a service account or member (`POST /v1/network-policies/:id/attachments/`). */
  attachNetworkPolicy(
    id: string,
    target: { account_type: AccountType; account_id: string },
  ): Promise<NetworkPolicy> {
    return this.request('POST', 'api', `/v1/network-policies/${seg(id)}/attachments/`, NetworkPolicySchema, {
      body: target,
    });
  }
  /** Detaches (`DELETE /v1/network-policies/:id/attachments/` with the same body). */
  async detachNetworkPolicy(
    id: string,
    target: { account_type: AccountType; account_id: string },
  ): Promise<void> {
    await this.request('DELETE', 'api', `/v1/network-policies/${seg(id)}/attachments/`, null, {
      body: target,
    });
  }

  readonly networkPolicies = {
    list: () => this.listNetworkPolicies(),
    create: (input: NetworkPolicyInput) => this.createNetworkPolicy(input),
    get: (id: string) => this.getNetworkPolicy(id),
    update: (id: string, input: Partial<NetworkPolicyInput>) => this.updateNetworkPolicy(id, input),
    delete: (id: string) => this.deleteNetworkPolicy(id),
    attach: (id: string, target: { account_type: AccountType; account_id: string }) =>
      this.attachNetworkPolicy(id, target),
    detach: (id: string, target: { account_type: AccountType; account_id: string }) =>
      this.detachNetworkPolicy(id, target),
  };

  // ---- phase-bridge extension: external identities (docs/identity.md) ----

  listExternalIdentities(): Promise<ExternalIdentity[]> {
    return this.list('/v1/external-identities/', ExternalIdentitySchema);
  }
  /** Creates an identity (`oidc` or `aws_iam`); the config is checked locally before it is sent. */
  createExternalIdentity(input: ExternalIdentityInput): Promise<ExternalIdentity> {
    const body = checkInput(ExternalIdentityCreateSchema, identityBody(input), 'external identity');
    return this.request('POST', 'api', '/v1/external-identities/', ExternalIdentitySchema, { body });
  }
  getExternalIdentity(id: string): Promise<ExternalIdentity> {
    return this.request('GET', 'api', `/v1/external-identities/${seg(id)}/`, ExternalIdentitySchema);
  }
  updateExternalIdentity(id: string, changes: ExternalIdentityChanges): Promise<ExternalIdentity> {
    const body = checkInput(ExternalIdentityUpdateSchema, identityBody(changes), 'external identity update');
    return this.request('PUT', 'api', `/v1/external-identities/${seg(id)}/`, ExternalIdentitySchema, {
      body,
    });
  }
  /** Deletes an identity (soft delete on the server); its attachments go with it. */
  async deleteExternalIdentity(id: string): Promise<void> {
    await this.request('DELETE', 'api', `/v1/external-identities/${seg(id)}/`, null);
  }
  /** Lets the identity log in as the service account (only the account itself or a global-access member may). */
  attachExternalIdentity(id: string, serviceAccountId: string): Promise<ExternalIdentity> {
    return this.request(
      'PUT',
      'api',
      `/v1/external-identities/${seg(id)}/attachments/`,
      ExternalIdentitySchema,
      { body: { service_account_id: serviceAccountId } },
    );
  }
  async detachExternalIdentity(id: string, serviceAccountId: string): Promise<void> {
    await this.request(
      'DELETE',
      'api',
      `/v1/external-identities/${seg(id)}/attachments/${seg(serviceAccountId)}/`,
      null,
    );
  }

  readonly externalIdentities = {
    list: () => this.listExternalIdentities(),
    create: (input: ExternalIdentityInput) => this.createExternalIdentity(input),
    get: (id: string) => this.getExternalIdentity(id),
    update: (id: string, changes: ExternalIdentityChanges) => this.updateExternalIdentity(id, changes),
    delete: (id: string) => this.deleteExternalIdentity(id),
    attach: (id: string, serviceAccountId: string) => this.attachExternalIdentity(id, serviceAccountId),
    detach: (id: string, serviceAccountId: string) => this.detachExternalIdentity(id, serviceAccountId),
  };

  /** `GET /v1/audit-logs/` (phase-bridge extension): key digests and actors, never values. */
  auditLogs(filters: AuditLogFilters = {}): Promise<AuditLogPage> {
    const query: Query = {
      limit: filters.limit,
      offset: filters.offset,
      app_id: filters.appId,
      environment_id: filters.environmentId,
      actor_id: filters.actorId,
      resource_type: filters.resourceType,
      event_type: filters.eventType,
      key_digest: filters.keyDigest,
      since: filters.since,
      until: filters.until,
    };
    return this.request('GET', 'api', '/v1/audit-logs/', AuditLogPageSchema, { query });
  }
}

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.code}`);
}

/** Validates a request body locally; a typo fails before anything is sent. */
function checkInput<T extends z.ZodTypeAny>(schema: T, input: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new RequestValidationError(what, issuesOf(parsed.error));
  return parsed.data as z.output<T>;
}

/** Network-policy bodies go out snake_case like every other `/v1` request body. */
function policyBody(input: Partial<NetworkPolicyInput>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (input.name !== undefined) body.name = input.name;
  if (input.allowedIps !== undefined) body.allowed_ips = input.allowedIps;
  if (input.isGlobal !== undefined) body.is_global = input.isGlobal;
  return body;
}

/** External-identity bodies go out snake_case; the config keeps its camelCase keys (docs/identity.md). */
function identityBody(input: ExternalIdentityChanges & { provider?: string }): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (input.name !== undefined) body.name = input.name;
  if (input.description !== undefined) body.description = input.description;
  if (input.provider !== undefined) body.provider = input.provider;
  if (input.config !== undefined) body.config = input.config;
  if (input.tokenNamePattern !== undefined) body.token_name_pattern = input.tokenNamePattern;
  if (input.defaultTtlSeconds !== undefined) body.default_ttl_seconds = input.defaultTtlSeconds;
  if (input.maxTtlSeconds !== undefined) body.max_ttl_seconds = input.maxTtlSeconds;
  return body;
}

export type { RetryEvent } from './http';
