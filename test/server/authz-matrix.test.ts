/**
 * Authorisation matrix (issue 3): every managed role — Owner (the init PAT), Admin, Manager, Developer (members),
 * and service accounts holding Manager, Developer, Service and a custom role — against every endpoint of
 * phase-rest-api.md §14 the server implements. The expectation is computed from the spec, not the implementation:
 * the §5.2 role maps (copied below verbatim), the §5.1 evaluation (org-level vs app-context), §4.3 context checks
 * (SA denied → 401, user denied → 403), §8.3 unsupported methods, and the endpoint rules of §9.
 *
 * Also: an SA without access to an environment never sees its secrets (/v1 and E2E); a path-restricted SA (the
 * `paths` extension on access entries) never sees or writes other paths; expired, revoked and deleted-SA tokens are
 * refused (401 on /v1 and /secrets/, 403 on /secrets/tokens/, §2.4, §13 item 9, §15 item 14).
 */
import { STORES } from '../support/stores';
import { startTestServer } from '../support/server';
import { Api, authFor, call, type AppInfo, type Resp, type SAInfo, sleep, uniq } from './verify-helpers';

// ---------------------------------------------------------------------------------------------------------------
// §5.2 default role maps, exact.
const CRUD = ['create', 'read', 'update', 'delete'];
type RoleMap = {
  permissions: Record<string, string[]>;
  app_permissions: Record<string, string[]>;
  global_access: boolean;
};
const ROLE_MAPS: Record<'Owner' | 'Admin' | 'Manager' | 'Developer' | 'Service', RoleMap> = {
  Owner: {
    permissions: {
      Organisation: CRUD,
      Billing: CRUD,
      Apps: CRUD,
      Members: CRUD,
      MemberPersonalAccessTokens: CRUD,
      ServiceAccounts: CRUD,
      ServiceAccountTokens: CRUD,
      ExternalIdentities: CRUD,
      Roles: CRUD,
      IntegrationCredentials: CRUD,
      NetworkAccessPolicies: CRUD,
      Logs: ['read'],
      SSO: CRUD,
      Teams: CRUD,
      SCIM: CRUD,
      LogStreams: CRUD,
    },
    app_permissions: {
      Environments: CRUD,
      Secrets: CRUD,
      DynamicSecretLeases: CRUD,
      RotatingSecrets: CRUD,
      Lockbox: CRUD,
      Logs: CRUD,
      Tokens: CRUD,
      Members: CRUD,
      ServiceAccounts: CRUD,
      Integrations: CRUD,
      EncryptionMode: ['read', 'update'],
      Teams: CRUD,
    },
    global_access: true,
  },
  Admin: {
    permissions: {
      Organisation: ['read', 'update'],
      Billing: CRUD,
      Apps: CRUD,
      Members: CRUD,
      MemberPersonalAccessTokens: CRUD,
      ServiceAccounts: CRUD,
      ServiceAccountTokens: CRUD,
      ExternalIdentities: CRUD,
      Roles: CRUD,
      IntegrationCredentials: CRUD,
      NetworkAccessPolicies: CRUD,
      Logs: ['read'],
      SSO: CRUD,
      Teams: CRUD,
      SCIM: CRUD,
      LogStreams: CRUD,
    },
    app_permissions: {
      Environments: CRUD,
      Secrets: CRUD,
      DynamicSecretLeases: CRUD,
      RotatingSecrets: CRUD,
      Lockbox: CRUD,
      Logs: CRUD,
      Tokens: CRUD,
      Members: CRUD,
      ServiceAccounts: CRUD,
      Integrations: CRUD,
      EncryptionMode: ['read', 'update'],
      Teams: CRUD,
    },
    global_access: true,
  },
  Manager: {
    permissions: {
      Organisation: ['read'],
      Billing: CRUD,
      Apps: CRUD,
      Members: CRUD,
      ServiceAccounts: CRUD,
      ServiceAccountTokens: CRUD,
      ExternalIdentities: CRUD,
      Roles: CRUD,
      IntegrationCredentials: CRUD,
      NetworkAccessPolicies: CRUD,
      Logs: ['read'],
      SSO: [],
      Teams: CRUD,
      SCIM: [],
      LogStreams: [],
    },
    app_permissions: {
      Environments: ['read', 'create', 'update'],
      Secrets: CRUD,
      DynamicSecretLeases: CRUD,
      RotatingSecrets: CRUD,
      Lockbox: CRUD,
      Logs: CRUD,
      Tokens: CRUD,
      Members: CRUD,
      ServiceAccounts: CRUD,
      Integrations: CRUD,
      EncryptionMode: ['read', 'update'],
      Teams: CRUD,
    },
    global_access: false,
  },
  Developer: {
    permissions: {
      Organisation: [],
      Billing: [],
      Apps: ['read'],
      Members: ['read'],
      ServiceAccounts: [],
      ServiceAccountTokens: [],
      ExternalIdentities: [],
      Roles: ['read'],
      IntegrationCredentials: ['create', 'read', 'update'],
      NetworkAccessPolicies: ['read'],
      Logs: ['read'],
      SSO: [],
      Teams: ['read'],
      SCIM: [],
      LogStreams: [],
    },
    app_permissions: {
      Environments: ['read', 'create', 'update'],
      Secrets: CRUD,
      DynamicSecretLeases: ['create', 'read'],
      RotatingSecrets: ['read'],
      Lockbox: CRUD,
      Logs: ['read'],
      Tokens: ['read', 'create'],
      Members: ['read'],
      ServiceAccounts: ['create'],
      Integrations: CRUD,
      EncryptionMode: ['read', 'update'],
      Teams: ['read'],
    },
    global_access: false,
  },
  Service: {
    permissions: {
      Organisation: [],
      Billing: [],
      Apps: ['create', 'read', 'update'],
      Members: ['read'],
      ServiceAccounts: ['read'],
      ServiceAccountTokens: ['read'],
      ExternalIdentities: ['read'],
      Roles: ['read'],
      IntegrationCredentials: ['read'],
      NetworkAccessPolicies: ['read'],
      Logs: [],
      SSO: [],
      Teams: [],
      SCIM: [],
      LogStreams: [],
    },
    app_permissions: {
      Environments: ['read', 'create', 'update', 'delete'],
      Secrets: CRUD,
      DynamicSecretLeases: ['create', 'read'],
      RotatingSecrets: ['read'],
      Lockbox: [],
      Logs: [],
      Tokens: [],
      Members: ['read'],
      ServiceAccounts: ['read'],
      Integrations: ['read'],
      EncryptionMode: ['read'],
      Teams: ['read'],
    },
    global_access: false,
  },
};

/** A custom role (created through POST /v1/roles/) that reads a little and writes one thing. */
const CUSTOM_PERMISSIONS = {
  permissions: { Apps: ['read'], ServiceAccounts: ['read', 'update'], Roles: ['read'], Members: ['read'] },
  app_permissions: { Environments: ['read'], Secrets: ['read', 'update'] },
};
const CUSTOM_MAP: RoleMap = { ...CUSTOM_PERMISSIONS, global_access: false };

type RoleName = keyof typeof ROLE_MAPS | 'Custom';
const mapOf = (r: RoleName): RoleMap => (r === 'Custom' ? CUSTOM_MAP : ROLE_MAPS[r]);
type Perm = ['org' | 'app', string, 'create' | 'read' | 'update' | 'delete'];
function allowed(role: RoleName, [section, resource, action]: Perm): boolean {
  const m = mapOf(role);
  return (section === 'org' ? m.permissions : m.app_permissions)[resource]?.includes(action) ?? false;
}

/** The subset rule (issue 11): every permission of `role` is held by `holder`, and global access only from global. */
function holdsAllOf(holder: RoleName, role: RoleName): boolean {
  const h = mapOf(holder);
  const r = mapOf(role);
  const within = (want: Record<string, string[]>, have: Record<string, string[]>) =>
    Object.entries(want).every(([res, acts]) => acts.every((a) => have[res]?.includes(a)));
  return (
    within(r.permissions, h.permissions) &&
    within(r.app_permissions, h.app_permissions) &&
    (!r.global_access || h.global_access)
  );
}

// ---------------------------------------------------------------------------------------------------------------
interface Principal {
  label: string;
  kind: 'user' | 'sa';
  role: RoleName;
  auth: string;
  /** member id (users) or SA id */
  id: string;
  /** the SA's initial token id (SAs) */
  tokenId?: string;
  /** An extra token of this SA, for the self-revocation case. */
  spareTokenId?: string;
  global: boolean;
}

/** Per-principal throw-away resources, so destructive cases never disturb the others. */
interface Fixtures {
  victimSa: SAInfo;
  victimTokenId: string;
  victimRoleId: string;
  victimMemberId: string;
  scratchApp: AppInfo;
  secretToUpdate: string;
  secretToDelete: string;
  secretToDeleteE2e: string;
}

interface World {
  url: string;
  owner: Api;
  roles: Record<string, string>;
  app: AppInfo;
  editableMemberId: string;
  principals: Principal[];
  fixtures: Map<string, Fixtures>;
}

interface Case {
  name: string;
  method: string;
  path: (w: World, p: Principal, f: Fixtures) => string;
  body?: (w: World, p: Principal, f: Fixtures) => unknown;
  headers?: (w: World, p: Principal, f: Fixtures) => Record<string, string>;
  /** null: no RBAC check (any valid token). */
  perm: Perm | null;
  ok: number;
  /** After RBAC passed: an endpoint rule that changes the outcome (e.g. the token scope rule → 404). */
  rule?: (p: Principal) => number | undefined;
}

/** §9.4.7: SA callers may target only themselves; global users any SA; other users only team SAs (none here). */
const tokenScopeOnVictim = (p: Principal): number | undefined =>
  p.kind === 'user' && p.global ? undefined : 404;

const sec = (w: World, env = 'Development'): string => `/v1/secrets/?app_id=${w.app.id}&env=${env}`;

const CASES: Case[] = [
  // --- apps (org-level list/create; app-context detail) ---
  { name: 'GET /v1/apps/', method: 'GET', path: () => '/v1/apps/', perm: ['org', 'Apps', 'read'], ok: 200 },
  {
    name: 'POST /v1/apps/',
    method: 'POST',
    path: () => '/v1/apps/',
    body: () => ({ name: uniq('mx-app') }),
    perm: ['org', 'Apps', 'create'],
    ok: 201,
  },
  {
    name: 'GET /v1/apps/:id/',
    method: 'GET',
    path: (w) => `/v1/apps/${w.app.id}/`,
    perm: ['org', 'Apps', 'read'],
    ok: 200,
  },
  {
    name: 'PUT /v1/apps/:id/',
    method: 'PUT',
    path: (w) => `/v1/apps/${w.app.id}/`,
    body: () => ({ description: uniq('d') }),
    perm: ['org', 'Apps', 'update'],
    ok: 200,
  },
  {
    name: 'PATCH /v1/apps/ (§8.3: 405 after auth)',
    method: 'PATCH',
    path: () => '/v1/apps/',
    perm: null,
    ok: 405,
  },
  // --- environments (app context, app_permissions) ---
  {
    name: 'GET /v1/environments/?app_id',
    method: 'GET',
    path: (w) => `/v1/environments/?app_id=${w.app.id}`,
    perm: ['app', 'Environments', 'read'],
    ok: 200,
  },
  {
    name: 'POST /v1/environments/?app_id',
    method: 'POST',
    path: (w) => `/v1/environments/?app_id=${w.app.id}`,
    body: () => ({ name: uniq('env').replace(/[^a-zA-Z0-9_-]/g, '_') }),
    perm: ['app', 'Environments', 'create'],
    ok: 201,
  },
  {
    name: 'GET /v1/environments/:id/',
    method: 'GET',
    path: (w) => `/v1/environments/${w.app.envs.Development}/`,
    perm: ['app', 'Environments', 'read'],
    ok: 200,
  },
  {
    name: 'PUT /v1/environments/:id/ (same name)',
    method: 'PUT',
    path: (w) => `/v1/environments/${w.app.envs.Development}/`,
    body: () => ({ name: 'Development' }),
    perm: ['app', 'Environments', 'update'],
    ok: 200,
  },
  {
    name: 'DELETE /v1/environments/:id/',
    method: 'DELETE',
    path: (_w, _p, f) => `/v1/environments/${f.scratchApp.envs.Staging}/`,
    perm: ['app', 'Environments', 'delete'],
    ok: 204,
  },
  // --- /v1/secrets (SSE) ---
  { name: 'GET /v1/secrets/', method: 'GET', path: (w) => sec(w), perm: ['app', 'Secrets', 'read'], ok: 200 },
  {
    name: 'POST /v1/secrets/',
    method: 'POST',
    path: (w) => sec(w),
    body: () => ({ secrets: [{ key: uniq('MX').replace(/-/g, '_'), value: 'v' }] }),
    perm: ['app', 'Secrets', 'create'],
    ok: 200,
  },
  {
    name: 'PUT /v1/secrets/',
    method: 'PUT',
    path: (w) => sec(w),
    body: (_w, _p, f) => ({ secrets: [{ id: f.secretToUpdate, value: 'changed' }] }),
    perm: ['app', 'Secrets', 'update'],
    ok: 200,
  },
  {
    name: 'DELETE /v1/secrets/',
    method: 'DELETE',
    path: (w) => sec(w),
    body: (_w, _p, f) => ({ secrets: [f.secretToDelete] }),
    perm: ['app', 'Secrets', 'delete'],
    ok: 200,
  },
  {
    name: 'GET /v1/secrets/dynamic/ (none on this server → 404 after the check)',
    method: 'GET',
    path: (w) => `/v1/secrets/dynamic/?app_id=${w.app.id}&env=Development`,
    perm: ['app', 'Secrets', 'read'],
    ok: 404,
  },
  { name: 'PATCH /v1/secrets/ (§8.3: 403)', method: 'PATCH', path: (w) => sec(w), perm: null, ok: 403 },
  // --- E2E endpoints ---
  {
    name: 'GET /service/secrets/tokens/',
    method: 'GET',
    path: () => '/service/secrets/tokens/',
    perm: null,
    ok: 200,
  },
  {
    name: 'GET /service/secrets/',
    method: 'GET',
    path: () => '/service/secrets/',
    headers: (w) => ({ Environment: w.app.envs.Development }),
    perm: ['app', 'Secrets', 'read'],
    ok: 200,
  },
  {
    name: 'DELETE /service/secrets/',
    method: 'DELETE',
    path: () => '/service/secrets/',
    headers: (w) => ({ Environment: w.app.envs.Development }),
    body: (_w, _p, f) => ({ secrets: [f.secretToDeleteE2e] }),
    perm: ['app', 'Secrets', 'delete'],
    ok: 200,
  },
  // --- service accounts (org-level) ---
  {
    name: 'GET /v1/service-accounts/',
    method: 'GET',
    path: () => '/v1/service-accounts/',
    perm: ['org', 'ServiceAccounts', 'read'],
    ok: 200,
  },
  {
    name: 'POST /v1/service-accounts/',
    method: 'POST',
    path: () => '/v1/service-accounts/',
    body: (w) => ({ name: uniq('mx-sa'), role_id: w.roles.Service }),
    perm: ['org', 'ServiceAccounts', 'create'],
    ok: 201,
    // Service may delete environments; a Manager may not, so a Manager cannot hand the Service role on.
    rule: (p) => (holdsAllOf(p.role, 'Service') ? undefined : 403),
  },
  {
    name: 'POST /v1/service-accounts/ (Developer role)',
    method: 'POST',
    path: () => '/v1/service-accounts/',
    body: (w) => ({ name: uniq('mx-sa'), role_id: w.roles.Developer }),
    perm: ['org', 'ServiceAccounts', 'create'],
    ok: 201,
    rule: (p) => (holdsAllOf(p.role, 'Developer') ? undefined : 403),
  },
  {
    name: 'GET /v1/service-accounts/:id/',
    method: 'GET',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/`,
    perm: ['org', 'ServiceAccounts', 'read'],
    ok: 200,
  },
  {
    name: 'PUT /v1/service-accounts/:id/',
    method: 'PUT',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/`,
    body: () => ({ name: uniq('renamed') }),
    perm: ['org', 'ServiceAccounts', 'update'],
    ok: 200,
  },
  {
    name: 'PUT /v1/service-accounts/:id/access/ (revoke all)',
    method: 'PUT',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/access/`,
    body: () => ({ apps: [] }),
    perm: ['org', 'ServiceAccounts', 'update'],
    ok: 200,
  },
  // The subset rule (issue 11): nobody changes their own role or access, whatever their role allows.
  {
    name: 'PUT /v1/service-accounts/:self/ (role change, SAs)',
    method: 'PUT',
    path: (_w, p) => `/v1/service-accounts/${p.id}/`,
    body: (w) => ({ role_id: w.roles.Developer }),
    perm: ['org', 'ServiceAccounts', 'update'],
    ok: 403,
    rule: (p) => (p.kind === 'user' ? -1 : undefined),
  },
  {
    name: 'PUT /v1/service-accounts/:self/access/ (SAs)',
    method: 'PUT',
    path: (_w, p) => `/v1/service-accounts/${p.id}/access/`,
    body: (w) => ({ apps: [{ id: w.app.id, environments: [w.app.envs.Development] }] }),
    perm: ['org', 'ServiceAccounts', 'update'],
    ok: 403,
    rule: (p) => (p.kind === 'user' ? -1 : undefined),
  },
  {
    name: 'PUT /v1/members/:self/access/ (non-global users)',
    method: 'PUT',
    path: (_w, p) => `/v1/members/${p.id}/access/`,
    body: (w) => ({ apps: [{ id: w.app.id, environments: [w.app.envs.Development] }] }),
    perm: ['org', 'Members', 'update'],
    ok: 403,
    rule: (p) => (p.kind === 'sa' || p.global ? -1 : undefined),
  },
  {
    name: 'GET /v1/service-accounts/:id/access/ (405 after the check)',
    method: 'GET',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/access/`,
    perm: ['org', 'ServiceAccounts', 'update'],
    ok: 405,
  },
  {
    name: 'POST /v1/service-accounts/:other/tokens/',
    method: 'POST',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/tokens/`,
    body: () => ({ name: 'mx' }),
    perm: ['org', 'ServiceAccountTokens', 'create'],
    ok: 201,
    rule: tokenScopeOnVictim,
  },
  {
    name: 'DELETE /v1/service-accounts/:other/tokens/:tid/',
    method: 'DELETE',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/tokens/${f.victimTokenId}/`,
    perm: ['org', 'ServiceAccountTokens', 'delete'],
    ok: 204,
    rule: tokenScopeOnVictim,
  },
  {
    name: 'POST /v1/service-accounts/:self/tokens/ (SAs)',
    method: 'POST',
    path: (_w, p) => `/v1/service-accounts/${p.id}/tokens/`,
    body: () => ({ name: 'self' }),
    perm: ['org', 'ServiceAccountTokens', 'create'],
    ok: 201,
    rule: (p) => (p.kind === 'user' ? -1 : undefined),
  },
  {
    name: 'DELETE /v1/service-accounts/:self/tokens/:spare/ (SAs)',
    method: 'DELETE',
    path: (_w, p) => `/v1/service-accounts/${p.id}/tokens/${p.spareTokenId}/`,
    perm: ['org', 'ServiceAccountTokens', 'delete'],
    ok: 204,
    rule: (p) => (p.kind === 'user' ? -1 : undefined),
  },
  {
    name: 'DELETE /v1/service-accounts/:id/',
    method: 'DELETE',
    path: (_w, _p, f) => `/v1/service-accounts/${f.victimSa.id}/`,
    perm: ['org', 'ServiceAccounts', 'delete'],
    ok: 204,
  },
  // --- roles (org-level) ---
  {
    name: 'GET /v1/roles/',
    method: 'GET',
    path: () => '/v1/roles/',
    perm: ['org', 'Roles', 'read'],
    ok: 200,
  },
  {
    name: 'GET /v1/roles/:id/',
    method: 'GET',
    path: (w) => `/v1/roles/${w.roles.Developer}/`,
    perm: ['org', 'Roles', 'read'],
    ok: 200,
  },
  {
    name: 'POST /v1/roles/',
    method: 'POST',
    path: () => '/v1/roles/',
    body: () => ({
      name: uniq('mx-role'),
      permissions: { permissions: { Apps: ['read'] }, app_permissions: {} },
    }),
    perm: ['org', 'Roles', 'create'],
    ok: 201,
  },
  {
    name: 'PUT /v1/roles/:custom/',
    method: 'PUT',
    path: (_w, _p, f) => `/v1/roles/${f.victimRoleId}/`,
    body: () => ({ description: 'changed' }),
    perm: ['org', 'Roles', 'update'],
    ok: 200,
  },
  {
    name: 'DELETE /v1/roles/:custom/',
    method: 'DELETE',
    path: (_w, _p, f) => `/v1/roles/${f.victimRoleId}/`,
    perm: ['org', 'Roles', 'delete'],
    ok: 204,
  },
  // --- members (org-level) ---
  {
    name: 'GET /v1/members/',
    method: 'GET',
    path: () => '/v1/members/',
    perm: ['org', 'Members', 'read'],
    ok: 200,
  },
  {
    name: 'POST /v1/members/ (405 after the check)',
    method: 'POST',
    path: () => '/v1/members/',
    body: () => ({}),
    perm: ['org', 'Members', 'create'],
    ok: 405,
  },
  {
    name: 'GET /v1/members/:id/',
    method: 'GET',
    path: (w) => `/v1/members/${w.editableMemberId}/`,
    perm: ['org', 'Members', 'read'],
    ok: 200,
  },
  {
    name: 'GET /v1/members/:id/access/',
    method: 'GET',
    path: (w) => `/v1/members/${w.editableMemberId}/access/`,
    perm: ['org', 'Members', 'read'],
    ok: 200,
  },
  {
    name: 'PUT /v1/members/:id/ (Developer → Developer)',
    method: 'PUT',
    path: (w) => `/v1/members/${w.editableMemberId}/`,
    body: (w) => ({ role_id: w.roles.Developer }),
    perm: ['org', 'Members', 'update'],
    ok: 200,
    rule: (p) => (holdsAllOf(p.role, 'Developer') ? undefined : 403),
  },
  {
    name: 'DELETE /v1/members/:id/',
    method: 'DELETE',
    path: (_w, _p, f) => `/v1/members/${f.victimMemberId}/`,
    perm: ['org', 'Members', 'delete'],
    ok: 204,
  },
  // --- the same views under the self-hosted prefixes (§3.1) ---
  {
    name: 'GET /service/public/v1/apps/',
    method: 'GET',
    path: () => '/service/public/v1/apps/',
    perm: ['org', 'Apps', 'read'],
    ok: 200,
  },
  {
    name: 'GET /public/v1/roles/',
    method: 'GET',
    path: () => '/public/v1/roles/',
    perm: ['org', 'Roles', 'read'],
    ok: 200,
  },
  {
    name: 'GET /service/v1/service-accounts/',
    method: 'GET',
    path: () => '/service/v1/service-accounts/',
    perm: ['org', 'ServiceAccounts', 'read'],
    ok: 200,
  },
  {
    name: 'GET /service/public/v1/secrets/',
    method: 'GET',
    path: (w) => `/service/public${sec(w)}`,
    perm: ['app', 'Secrets', 'read'],
    ok: 200,
  },
  // --- extensions, guarded by the matching §5.2 resources ---
  {
    name: 'GET /v1/network-policies/',
    method: 'GET',
    path: () => '/v1/network-policies/',
    perm: ['org', 'NetworkAccessPolicies', 'read'],
    ok: 200,
  },
  {
    name: 'POST /v1/network-policies/',
    method: 'POST',
    path: () => '/v1/network-policies/',
    body: () => ({ name: uniq('mx-policy'), allowed_ips: ['0.0.0.0/0', '::/0'] }),
    perm: ['org', 'NetworkAccessPolicies', 'create'],
    ok: 201,
  },
  {
    name: 'GET /v1/audit-logs/',
    method: 'GET',
    path: () => '/v1/audit-logs/',
    perm: ['org', 'Logs', 'read'],
    ok: 200,
  },
  // --- last: the scratch app itself ---
  {
    name: 'DELETE /v1/apps/:id/',
    method: 'DELETE',
    path: (_w, _p, f) => `/v1/apps/${f.scratchApp.id}/`,
    perm: ['org', 'Apps', 'delete'],
    ok: 204,
  },
];

function expected(c: Case, p: Principal): number | undefined {
  if (c.perm && !allowed(p.role, c.perm)) return 403;
  const r = c.rule?.(p);
  if (r === -1) return undefined; // not applicable to this principal
  return r ?? c.ok;
}

const PRINCIPALS: Array<{ label: string; kind: 'user' | 'sa'; role: RoleName }> = [
  { label: 'Owner (user)', kind: 'user', role: 'Owner' },
  { label: 'Admin (user)', kind: 'user', role: 'Admin' },
  { label: 'Manager (user)', kind: 'user', role: 'Manager' },
  { label: 'Developer (user)', kind: 'user', role: 'Developer' },
  { label: 'Manager (SA)', kind: 'sa', role: 'Manager' },
  { label: 'Developer (SA)', kind: 'sa', role: 'Developer' },
  { label: 'Service (SA)', kind: 'sa', role: 'Service' },
  { label: 'Custom (SA)', kind: 'sa', role: 'Custom' },
];

function isErrorBody(r: Resp): boolean {
  return (
    r.json !== null &&
    typeof r.json === 'object' &&
    typeof r.json.error === 'string' &&
    Object.keys(r.json).length === 1
  );
}

describe.each(STORES)('authorisation (%s)', (store) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let w: World;

  beforeAll(async () => {
    server = await startTestServer({ store });
    const url = server.url.replace(/\/+$/, '');
    const owner = new Api(url, authFor(server.ownerToken));
    const roles = await owner.roles();
    for (const r of ['Owner', 'Admin', 'Manager', 'Developer', 'Service']) expect(roles[r]).toBeDefined();
    const custom = await owner.ok(
      'POST',
      '/v1/roles/',
      { name: uniq('Custom'), permissions: CUSTOM_PERMISSIONS },
      201,
    );
    roles.Custom = custom.id;

    // Members first, so the Admin (global access) is added to every app created afterwards (§9.1, §12.1).
    const members: Record<string, { id: string; token: string }> = {};
    for (const r of ['Admin', 'Manager', 'Developer'] as const) members[r] = await server.addMember(r);
    const editable = await server.addMember('Developer');

    const app = await owner.createApp(uniq('mx-shared'));
    const principals: Principal[] = [];
    for (const spec of PRINCIPALS) {
      if (spec.kind === 'user') {
        if (spec.role === 'Owner') {
          const me = await owner.ok('GET', '/v1/members/', undefined, 200);
          const ownerRow = (me.data as Array<{ id: string; role: { name: string } | null }>).find(
            (m) => m.role?.name === 'Owner',
          );
          principals.push({ ...spec, auth: owner.auth, id: ownerRow!.id, global: true });
        } else {
          const m = members[spec.role];
          principals.push({ ...spec, auth: authFor(m.token), id: m.id, global: spec.role === 'Admin' });
          if (spec.role !== 'Admin')
            await owner.grantMember(m.id, [{ id: app.id, environments: [app.envs.Development] }]);
        }
      } else {
        const sa = await owner.createSA(uniq(`mx-${spec.role}`), roles[spec.role]);
        await owner.grantSA(sa.id, [{ id: app.id, environments: [app.envs.Development] }]);
        const spare = await owner.ok('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'spare' }, 201);
        principals.push({
          ...spec,
          auth: `Bearer ${sa.bearer}`,
          id: sa.id,
          tokenId: sa.tokenId,
          spareTokenId: spare.id,
          global: false,
        });
      }
    }

    const fixtures = new Map<string, Fixtures>();
    for (const p of principals) {
      const victimSa = await owner.createSA(uniq('victim'), roles.Service);
      const victimToken = await owner.ok(
        'POST',
        `/v1/service-accounts/${victimSa.id}/tokens/`,
        { name: 'victim' },
        201,
      );
      const victimRole = await owner.ok(
        'POST',
        '/v1/roles/',
        { name: uniq('victim-role'), permissions: { permissions: {}, app_permissions: {} } },
        201,
      );
      const victimMember = await server.addMember('Developer');
      const scratchApp = await owner.createApp(uniq('scratch'));
      const envs = [scratchApp.envs.Development, scratchApp.envs.Staging];
      if (p.kind === 'sa')
        await owner.grantSA(p.id, [
          { id: app.id, environments: [app.envs.Development] },
          { id: scratchApp.id, environments: envs },
        ]);
      else if (!p.global)
        await owner.grantMember(p.id, [
          { id: app.id, environments: [app.envs.Development] },
          { id: scratchApp.id, environments: envs },
        ]);
      const made = await owner.ok(
        'POST',
        sec({ app } as World),
        {
          secrets: ['U', 'D', 'E'].map((s) => ({ key: uniq(`VICTIM_${s}`).replace(/-/g, '_'), value: 'x' })),
        },
        200,
      );
      fixtures.set(p.label, {
        victimSa,
        victimTokenId: victimToken.id,
        victimRoleId: victimRole.id,
        victimMemberId: victimMember.id,
        scratchApp,
        secretToUpdate: made[0].id,
        secretToDelete: made[1].id,
        secretToDeleteE2e: made[2].id,
      });
    }
    w = { url, owner, roles, app, editableMemberId: editable.id, principals, fixtures };
  }, 120_000);

  afterAll(async () => {
    await server?.close();
  });

  test.each(PRINCIPALS.map((p) => p.label))('%s: every endpoint answers as §5.2/§9 say', async (label) => {
    const p = w.principals.find((x) => x.label === label)!;
    const f = w.fixtures.get(label)!;
    const mismatches: string[] = [];
    for (const c of CASES) {
      const want = expected(c, p);
      if (want === undefined) continue;
      const r = await call(w.url, c.method, c.path(w, p, f), {
        auth: p.auth,
        body: c.body?.(w, p, f),
        headers: c.headers?.(w, p, f),
      });
      if (r.status !== want)
        mismatches.push(`${c.name}: expected ${want}, got ${r.status} ${r.text.slice(0, 160)}`);
      else if (want >= 400 && !isErrorBody(r))
        mismatches.push(`${c.name}: error body is not {"error": string}: ${r.text.slice(0, 160)}`);
    }
    expect(mismatches).toEqual([]);
  });

  test('denied writes changed nothing: secrets a role may not delete are still there', async () => {
    const live = new Set((await w.owner.listSecrets(w.app.id, 'Development')).map((s) => s.id));
    for (const p of w.principals) {
      const f = w.fixtures.get(p.label)!;
      const mayDelete = allowed(p.role, ['app', 'Secrets', 'delete']);
      expect([p.label, live.has(f.secretToDelete)]).toEqual([p.label, !mayDelete]);
      expect([p.label, live.has(f.secretToDeleteE2e)]).toEqual([p.label, !mayDelete]);
    }
  });

  test('ownership and global-access rules (§5.1, §9.4.2, §9.4.4, §9.4.6, §9.5, §9.6)', async () => {
    const byLabel = (l: string): Principal => w.principals.find((p) => p.label === l)!;
    const owner = byLabel('Owner (user)');
    const admin = byLabel('Admin (user)');
    const managerUser = byLabel('Manager (user)');
    const managerSa = byLabel('Manager (SA)');
    const as = (p: Principal, method: string, path: string, body?: unknown) =>
      call(w.url, method, path, { auth: p.auth, body });
    const got: Array<[string, number, unknown]> = [];
    const check = async (what: string, r: Promise<Resp>, status: number, error?: string): Promise<void> => {
      const res = await r;
      const ok = res.status === status && (error === undefined || res.json?.error === error);
      if (!ok) got.push([what, res.status, res.json]);
    };

    // Service accounts never hold a global-access role.
    for (const role of ['Owner', 'Admin']) {
      await check(
        `SA created with ${role}`,
        as(owner, 'POST', '/v1/service-accounts/', { name: uniq('g'), role_id: w.roles[role] }),
        400,
        `Service accounts cannot be assigned the '${role}' role.`,
      );
      await check(
        `SA changed to ${role}`,
        as(owner, 'PUT', `/v1/service-accounts/${managerSa.id}/`, { role_id: w.roles[role] }),
        400,
        `Service accounts cannot be assigned the '${role}' role.`,
      );
    }
    await check(
      'SA with unknown role',
      as(owner, 'POST', '/v1/service-accounts/', {
        name: uniq('g'),
        role_id: '00000000-0000-4000-8000-000000000000',
      }),
      404,
      'Role not found.',
    );
    await check(
      'SA without role_id',
      as(owner, 'POST', '/v1/service-accounts/', { name: uniq('g') }),
      400,
      'Missing required field: role_id',
    );

    // Members: the Owner is untouchable over REST; nobody edits or removes themselves; global members only by global users.
    await check(
      'Admin changes the Owner',
      as(admin, 'PUT', `/v1/members/${owner.id}/`, { role_id: w.roles.Developer }),
      403,
      'The Owner role cannot be changed via the API. Use the ownership transfer flow.',
    );
    await check(
      'Admin removes the Owner',
      as(admin, 'DELETE', `/v1/members/${owner.id}/`),
      403,
      'The Owner cannot be removed via the API. Use the ownership transfer flow.',
    );
    await check(
      'Manager changes own role',
      as(managerUser, 'PUT', `/v1/members/${managerUser.id}/`, { role_id: w.roles.Developer }),
      403,
      'You cannot update your own role.',
    );
    await check(
      'Manager removes self',
      as(managerUser, 'DELETE', `/v1/members/${managerUser.id}/`),
      403,
      'You cannot remove yourself from the organisation.',
    );
    await check(
      'Manager changes an Admin',
      as(managerUser, 'PUT', `/v1/members/${admin.id}/`, { role_id: w.roles.Developer }),
      403,
      'You cannot update the role of a member with global access.',
    );
    await check(
      'Manager SA changes an Admin',
      as(managerSa, 'PUT', `/v1/members/${admin.id}/`, { role_id: w.roles.Developer }),
      403,
      'Service accounts cannot modify members with global access.',
    );
    await check('Manager removes an Admin', as(managerUser, 'DELETE', `/v1/members/${admin.id}/`), 403);
    await check('Manager SA removes an Admin', as(managerSa, 'DELETE', `/v1/members/${admin.id}/`), 403);
    await check(
      'Owner assigns Owner',
      as(owner, 'PUT', `/v1/members/${w.editableMemberId}/`, { role_id: w.roles.Owner }),
      403,
      'You cannot assign the Owner role directly. Use the ownership transfer flow.',
    );
    await check(
      'Manager assigns Admin',
      as(managerUser, 'PUT', `/v1/members/${w.editableMemberId}/`, { role_id: w.roles.Admin }),
      403,
      "You cannot assign the 'Admin' role.",
    );
    await check(
      'Manager SA assigns Admin',
      as(managerSa, 'PUT', `/v1/members/${w.editableMemberId}/`, { role_id: w.roles.Admin }),
      403,
      "You cannot assign the 'Admin' role.",
    );
    await check(
      'access of a global member',
      as(owner, 'PUT', `/v1/members/${admin.id}/access/`, { apps: [] }),
      403,
      'Access cannot be changed for members with a global access role.',
    );

    // Default roles are fixed; a role in use cannot go.
    await check(
      'PUT default role',
      as(owner, 'PUT', `/v1/roles/${w.roles.Developer}/`, { description: 'x' }),
      403,
      'Default roles cannot be modified.',
    );
    await check(
      'DELETE default role',
      as(owner, 'DELETE', `/v1/roles/${w.roles.Service}/`),
      403,
      'Default roles cannot be deleted.',
    );
    await check(
      'DELETE role held by an SA',
      as(owner, 'DELETE', `/v1/roles/${w.roles.Custom}/`),
      409,
      'Cannot delete a role that has service accounts assigned to it.',
    );
    await check(
      'duplicate role name',
      as(owner, 'POST', '/v1/roles/', {
        name: 'developer',
        permissions: { permissions: {}, app_permissions: {} },
      }),
      409,
      'A role with this name already exists.',
    );
    await check(
      'global_access via REST',
      as(owner, 'POST', '/v1/roles/', {
        name: uniq('g'),
        permissions: { permissions: {}, app_permissions: {}, global_access: true },
      }),
      400,
    );

    // Granting access requires holding it (non-global callers): the Manager SA holds only Development (+ scratch).
    const target = await w.owner.createSA(uniq('grant-target'), w.roles.Service);
    await check(
      'Manager SA grants Production it does not hold',
      as(managerSa, 'PUT', `/v1/service-accounts/${target.id}/access/`, {
        apps: [{ id: w.app.id, environments: [w.app.envs.Production] }],
      }),
      403,
    );
    await check(
      'Manager user grants Production it does not hold',
      as(managerUser, 'PUT', `/v1/service-accounts/${target.id}/access/`, {
        apps: [{ id: w.app.id, environments: [w.app.envs.Production] }],
      }),
      403,
    );
    await check(
      'Manager SA grants Development it holds',
      as(managerSa, 'PUT', `/v1/service-accounts/${target.id}/access/`, {
        apps: [{ id: w.app.id, environments: [w.app.envs.Development] }],
      }),
      200,
    );
    await check(
      'Admin (global) grants Production',
      as(admin, 'PUT', `/v1/service-accounts/${target.id}/access/`, {
        apps: [{ id: w.app.id, environments: [w.app.envs.Production] }],
      }),
      200,
    );
    await check(
      'empty environments list',
      as(owner, 'PUT', `/v1/service-accounts/${target.id}/access/`, {
        apps: [{ id: w.app.id, environments: [] }],
      }),
      400,
    );
    await check(
      'unknown app',
      as(owner, 'PUT', `/v1/service-accounts/${target.id}/access/`, {
        apps: [{ id: '00000000-0000-4000-8000-000000000000', environments: [w.app.envs.Production] }],
      }),
      404,
    );

    // Token scope rule: a non-global Manager user cannot mint for an org-level SA (404, not 403).
    await check(
      'Manager user mints for an org-level SA',
      as(managerUser, 'POST', `/v1/service-accounts/${target.id}/tokens/`, { name: 'x' }),
      404,
      'Service account not found.',
    );
    await check(
      'expiry field rejected',
      as(owner, 'POST', `/v1/service-accounts/${target.id}/tokens/`, { name: 'x', expiry: 1 }),
      400,
      "Unknown field 'expiry'. Use 'expires_at' (ISO-8601 with timezone) or 'expires_in' (positive integer seconds).",
    );
    await check(
      'expires_at without timezone',
      as(owner, 'POST', `/v1/service-accounts/${target.id}/tokens/`, {
        name: 'x',
        expires_at: '2099-01-01T00:00:00',
      }),
      400,
      "'expires_at' must include a timezone offset (e.g. 'Z' or '+00:00').",
    );
    await check(
      'expires_at in the past',
      as(owner, 'POST', `/v1/service-accounts/${target.id}/tokens/`, {
        name: 'x',
        expires_at: '2001-01-01T00:00:00Z',
      }),
      400,
      "'expires_at' must be in the future.",
    );
    await check(
      'expires_in boolean',
      as(owner, 'POST', `/v1/service-accounts/${target.id}/tokens/`, { name: 'x', expires_in: true }),
      400,
      "'expires_in' must be a positive integer (seconds).",
    );
    await check(
      'expires_in zero',
      as(owner, 'POST', `/v1/service-accounts/${target.id}/tokens/`, { name: 'x', expires_in: 0 }),
      400,
      "'expires_in' must be a positive integer (seconds).",
    );

    expect(got).toEqual([]);
  });

  test('network access policies (extension, §6): enforced on /v1 and /secrets/, not on /secrets/tokens/; a union', async () => {
    const sa = await w.owner.createSA(uniq('netpol'), w.roles.Service);
    await w.owner.grantSA(sa.id, [{ id: w.app.id, environments: [w.app.envs.Development] }]);
    const auth = `Bearer ${sa.bearer}`;
    const denied = { error: 'Access denied: a network access policy restricts access from your IP address.' };
    const elsewhere = await w.owner.ok(
      'POST',
      '/v1/network-policies/',
      { name: uniq('elsewhere'), allowed_ips: ['10.0.0.0/8', '2001:db8::/32'] },
      201,
    );
    await w.owner.ok(
      'PUT',
      `/v1/network-policies/${elsewhere.id}/attachments/`,
      { account_type: 'service_account', account_id: sa.id },
      200,
    );

    const v1 = await call(w.url, 'GET', sec(w), { auth });
    expect([v1.status, v1.json]).toEqual([403, denied]);
    const e2e = await call(w.url, 'GET', '/service/secrets/', {
      auth,
      headers: { Environment: w.app.envs.Development },
    });
    expect([e2e.status, e2e.json]).toEqual([403, denied]);
    expect((await call(w.url, 'GET', '/service/secrets/tokens/', { auth })).status).toBe(200);
    // Without a trusted proxy, forwarded-for headers are not believed (they would let anyone pick their IP).
    const spoofed = await call(w.url, 'GET', sec(w), {
      auth,
      headers: { 'X-Forwarded-For': '10.1.2.3', 'X-Real-IP': '10.1.2.3' },
    });
    expect(spoofed.status).toBe(403);
    // Other accounts are not affected.
    expect((await call(w.url, 'GET', sec(w), { auth: w.owner.auth })).status).toBe(200);

    // A second policy that allows loopback: the union allows the request.
    const loopback = await w.owner.ok(
      'POST',
      '/v1/network-policies/',
      { name: uniq('loopback'), allowed_ips: ['127.0.0.1/32', '::1'] },
      201,
    );
    await w.owner.ok(
      'PUT',
      `/v1/network-policies/${loopback.id}/attachments/`,
      { account_type: 'service_account', account_id: sa.id },
      200,
    );
    expect((await call(w.url, 'GET', sec(w), { auth })).status).toBe(200);
    // Detach it again: denied on the very next request.
    expect(
      (await w.owner.req('DELETE', `/v1/network-policies/${loopback.id}/attachments/${sa.id}/`)).status,
    ).toBe(204);
    expect((await call(w.url, 'GET', sec(w), { auth })).status).toBe(403);
    const bad = await w.owner.req('POST', '/v1/network-policies/', {
      name: 'bad',
      allowed_ips: ['10.0.0.0/33'],
    });
    expect(bad.status).toBe(400);
  });

  test('an Environment header naming no environment of the org → 401 Environment not found (§4.2 step 3)', async () => {
    const r = await call(w.url, 'GET', '/service/secrets/', {
      auth: w.owner.auth,
      headers: { Environment: '00000000-0000-4000-8000-000000000000' },
    });
    expect([r.status, r.json]).toEqual([401, { error: 'Environment not found' }]);
    const v1 = await call(w.url, 'GET', `/v1/secrets/?app_id=${w.app.id}&env=NoSuchEnv`, {
      auth: w.owner.auth,
    });
    expect([v1.status, v1.json]).toEqual([
      404,
      { error: `Environment 'NoSuchEnv' not found in App ${w.app.id}` },
    ]);
    const noApp = await call(
      w.url,
      'GET',
      '/v1/secrets/?app_id=00000000-0000-4000-8000-000000000000&env=Development',
      { auth: w.owner.auth },
    );
    expect([noApp.status, noApp.json]).toEqual([
      404,
      { error: 'App with ID 00000000-0000-4000-8000-000000000000 not found' },
    ]);
    const none = await call(w.url, 'GET', '/v1/secrets/', { auth: w.owner.auth });
    expect([none.status, none.json]).toEqual([
      403,
      { error: 'Environment context required. Supply `app_id` and `env` as query parameters.' },
    ]);
  });

  describe('a service account without access to an environment', () => {
    let noAccess: SAInfo;
    let stagingOnly: SAInfo;
    let devSecretId: string;

    beforeAll(async () => {
      const [s] = await w.owner.ok(
        'POST',
        sec(w),
        { secrets: [{ key: 'HIDDEN_FROM_OTHERS', value: 'top-secret-value' }] },
        200,
      );
      devSecretId = s.id;
      noAccess = await w.owner.createSA(uniq('none'), w.roles.Service);
      stagingOnly = await w.owner.createSA(uniq('staging-only'), w.roles.Manager);
      await w.owner.grantSA(stagingOnly.id, [{ id: w.app.id, environments: [w.app.envs.Staging] }]);
    });

    const neverLeaks = (r: Resp): void => {
      expect(r.text).not.toContain('top-secret-value');
      expect(r.text).not.toContain('HIDDEN_FROM_OTHERS');
    };

    test('gets 401 on /v1/secrets/ and E2E /secrets/ for that environment (§4.3: SA denials are 401)', async () => {
      for (const sa of [noAccess, stagingOnly]) {
        const auth = `Bearer ${sa.bearer}`;
        const v1 = await call(w.url, 'GET', sec(w), { auth });
        expect(v1.status).toBe(401);
        expect(v1.json).toEqual({ error: 'Service account cannot access this environment' });
        neverLeaks(v1);
        const byKey = await call(w.url, 'GET', `${sec(w)}&key=HIDDEN_FROM_OTHERS`, { auth });
        expect(byKey.status).toBe(401);
        neverLeaks(byKey);
        const bySecretId = await call(w.url, 'GET', `/v1/secrets/?secret_id=${devSecretId}`, { auth });
        expect(bySecretId.status).toBe(401);
        neverLeaks(bySecretId);
        const e2e = await call(w.url, 'GET', '/service/secrets/', {
          auth,
          headers: { Environment: w.app.envs.Development },
        });
        expect(e2e.status).toBe(401);
        neverLeaks(e2e);
        const write = await call(w.url, 'POST', sec(w), {
          auth,
          body: { secrets: [{ key: 'INTRUDER', value: 'x' }] },
        });
        expect(write.status).toBe(401);
        const tokens = await call(w.url, 'GET', '/service/secrets/tokens/', { auth });
        expect(tokens.status).toBe(200);
        const envIds = (
          tokens.json.apps as Array<{ environment_keys: Array<{ environment: { id: string } }> }>
        ).flatMap((a) => a.environment_keys.map((k) => k.environment.id));
        expect(envIds).not.toContain(w.app.envs.Development);
        expect(envIds).not.toContain(w.app.envs.Production);
      }
      expect((await w.owner.listSecrets(w.app.id, 'Development', '&key=INTRUDER')).length).toBe(0);
    });

    test('cannot reach a foreign secret through an environment it does hold (ids are scoped)', async () => {
      const auth = `Bearer ${stagingOnly.bearer}`;
      const stagingPath = sec(w, 'Staging');
      const put = await call(w.url, 'PUT', stagingPath, {
        auth,
        body: { secrets: [{ id: devSecretId, value: 'overwritten' }] },
      });
      expect(put.status).toBe(404);
      neverLeaks(put);
      const del = await call(w.url, 'DELETE', stagingPath, { auth, body: { secrets: [devSecretId] } });
      expect(del.status).toBe(404);
      const e2eDel = await call(w.url, 'DELETE', '/service/secrets/', {
        auth,
        headers: { Environment: w.app.envs.Staging },
        body: { secrets: [devSecretId] },
      });
      expect([200, 404]).toContain(e2eDel.status);
      const e2ePut = await call(w.url, 'PUT', '/service/secrets/', {
        auth,
        headers: { Environment: w.app.envs.Staging },
        body: { secrets: [{ id: devSecretId, comment: '' }] },
      });
      expect(e2ePut.status).not.toBe(200);
      expect(e2ePut.status).toBeLessThan(500);
      const still = await w.owner.listSecrets(w.app.id, 'Development', '&key=HIDDEN_FROM_OTHERS');
      expect(still.map((s) => [s.id, s.value, s.version])).toEqual([[devSecretId, 'top-secret-value', 1]]);
    });

    test('its environment detail and app list do not expose the environment', async () => {
      const env = await call(w.url, 'GET', `/v1/environments/${w.app.envs.Development}/`, {
        auth: `Bearer ${stagingOnly.bearer}`,
      });
      expect([401, 403]).toContain(env.status);
      const list = await call(w.url, 'GET', `/v1/environments/?app_id=${w.app.id}`, {
        auth: `Bearer ${stagingOnly.bearer}`,
      });
      expect(list.status).toBe(200);
      expect((list.json.data as Array<{ id: string }>).map((e) => e.id)).toEqual([w.app.envs.Staging]);
      const apps = await call(w.url, 'GET', '/v1/apps/', { auth: `Bearer ${noAccess.bearer}` });
      expect(apps.status).toBe(200);
      expect((apps.json.data as Array<{ id: string }>).map((a) => a.id)).not.toContain(w.app.id);
    });
  });

  describe('a path-restricted service account (extension: `paths` on access entries)', () => {
    let restricted: SAInfo;
    const secretsAt: Record<string, string> = {};

    beforeAll(async () => {
      const made = await w.owner.ok(
        'POST',
        sec(w, 'Staging'),
        {
          secrets: [
            { key: 'ROOT_SECRET', value: 'root-value', path: '/' },
            { key: 'ALLOWED_SECRET', value: 'allowed-value', path: '/allowed' },
            { key: 'NESTED_SECRET', value: 'nested-value', path: '/allowed/sub' },
            { key: 'SHARED_NAME', value: 'other-value', path: '/other' },
            { key: 'SHARED_NAME', value: 'allowed-shared', path: '/allowed' },
            { key: 'LOOKALIKE_SECRET', value: 'lookalike-value', path: '/allowedx' },
          ],
        },
        200,
      );
      for (const s of made) secretsAt[`${s.path}:${s.key}`] = s.id;
      restricted = await w.owner.createSA(uniq('paths'), w.roles.Service);
      await w.owner.grantSA(restricted.id, [
        { id: w.app.id, environments: [w.app.envs.Staging], paths: ['/allowed'] },
      ]);
    });

    const outside = ['root-value', 'other-value', 'lookalike-value'];

    test('reads: /v1 and E2E return only secrets under the granted path', async () => {
      const auth = `Bearer ${restricted.bearer}`;
      const v1 = await call(w.url, 'GET', sec(w, 'Staging'), { auth });
      expect(v1.status).toBe(200);
      const paths = (v1.json as Array<{ path: string }>).map((s) => s.path);
      expect(paths.length).toBeGreaterThan(0);
      for (const p of paths) expect(p === '/allowed' || p.startsWith('/allowed/')).toBe(true);
      expect((v1.json as Array<{ key: string }>).map((s) => s.key).sort()).toEqual([
        'ALLOWED_SECRET',
        'NESTED_SECRET',
        'SHARED_NAME',
      ]);
      for (const v of outside) expect(v1.text).not.toContain(v);

      for (const q of [
        '&path=/other',
        '&path=/',
        '&path=/allowedx',
        '&key=ROOT_SECRET',
        '&key=SHARED_NAME',
        '&key=LOOKALIKE_SECRET',
      ]) {
        const r = await call(w.url, 'GET', sec(w, 'Staging') + q, { auth });
        expect([200, 403]).toContain(r.status);
        for (const v of outside) expect(r.text).not.toContain(v);
      }
      const shared = await call(w.url, 'GET', `${sec(w, 'Staging')}&key=SHARED_NAME`, { auth });
      if (shared.status === 200)
        expect((shared.json as Array<{ value: string }>).map((s) => s.value)).toEqual(['allowed-shared']);

      const bySecretId = await call(
        w.url,
        'GET',
        `/v1/secrets/?secret_id=${secretsAt['/other:SHARED_NAME']}`,
        { auth },
      );
      for (const v of outside) expect(bySecretId.text).not.toContain(v);

      const e2e = await call(w.url, 'GET', '/service/secrets/', {
        auth,
        headers: { Environment: w.app.envs.Staging },
      });
      expect(e2e.status).toBe(200);
      const e2ePaths = (e2e.json as Array<{ path: string; id: string }>).map((s) => s.path);
      for (const p of e2ePaths) expect(p === '/allowed' || p.startsWith('/allowed/')).toBe(true);
      const e2eIds = (e2e.json as Array<{ id: string }>).map((s) => s.id);
      for (const k of ['/:ROOT_SECRET', '/other:SHARED_NAME', '/allowedx:LOOKALIKE_SECRET'])
        expect(e2eIds).not.toContain(secretsAt[k]);
      for (const hdr of ['/other', '/', '/allowedx']) {
        const r = await call(w.url, 'GET', '/service/secrets/', {
          auth,
          headers: { Environment: w.app.envs.Staging, Path: hdr },
        });
        expect([200, 403]).toContain(r.status);
        if (r.status === 200) expect(r.json).toEqual([]);
      }
    });

    test('writes: outside the granted path are refused and change nothing; inside they work', async () => {
      const auth = `Bearer ${restricted.bearer}`;
      const out = await call(w.url, 'POST', sec(w, 'Staging'), {
        auth,
        body: { secrets: [{ key: 'SNEAKY', value: 'x', path: '/other' }] },
      });
      expect(out.status).toBe(403);
      const atRoot = await call(w.url, 'POST', sec(w, 'Staging'), {
        auth,
        body: { secrets: [{ key: 'SNEAKY_ROOT', value: 'x' }] },
      });
      expect(atRoot.status).toBe(403);
      const moveOut = await call(w.url, 'PUT', sec(w, 'Staging'), {
        auth,
        body: { secrets: [{ id: secretsAt['/allowed:ALLOWED_SECRET'], path: '/other' }] },
      });
      expect(moveOut.status).toBe(403);
      const editOther = await call(w.url, 'PUT', sec(w, 'Staging'), {
        auth,
        body: { secrets: [{ id: secretsAt['/other:SHARED_NAME'], value: 'pwned' }] },
      });
      expect([403, 404]).toContain(editOther.status);
      const delOther = await call(w.url, 'DELETE', sec(w, 'Staging'), {
        auth,
        body: { secrets: [secretsAt['/:ROOT_SECRET']] },
      });
      expect([403, 404]).toContain(delOther.status);
      const e2eDel = await call(w.url, 'DELETE', '/service/secrets/', {
        auth,
        headers: { Environment: w.app.envs.Staging },
        body: { secrets: [secretsAt['/allowedx:LOOKALIKE_SECRET']] },
      });
      expect(e2eDel.status).toBeLessThan(500);

      const inside = await call(w.url, 'POST', sec(w, 'Staging'), {
        auth,
        body: { secrets: [{ key: 'MINE', value: 'ok', path: '/allowed/new' }] },
      });
      expect(inside.status).toBe(200);

      const all = await w.owner.listSecrets(w.app.id, 'Staging');
      const byKey = (k: string, p: string) => all.find((s) => s.key === k && s.path === p);
      expect(byKey('SNEAKY', '/other')).toBeUndefined();
      expect(byKey('SNEAKY_ROOT', '/')).toBeUndefined();
      expect(byKey('ALLOWED_SECRET', '/allowed')).toMatchObject({ version: 1 });
      expect(byKey('SHARED_NAME', '/other')).toMatchObject({ value: 'other-value', version: 1 });
      expect(byKey('ROOT_SECRET', '/')).toBeDefined();
      expect(byKey('LOOKALIKE_SECRET', '/allowedx')).toBeDefined();
      expect(byKey('MINE', '/allowed/new')).toMatchObject({ value: 'ok' });
    });
  });

  describe('expired, revoked and deleted-account tokens are refused on the next request', () => {
    const expectRefused = async (auth: string, what: string): Promise<void> => {
      const v1 = await call(w.url, 'GET', '/v1/apps/', { auth });
      expect([what, v1.status, v1.json]).toEqual([what, 401, { error: 'Token expired or deleted' }]);
      const v1s = await call(w.url, 'GET', sec(w), { auth });
      expect([what, v1s.status]).toEqual([what, 401]);
      const e2e = await call(w.url, 'GET', '/service/secrets/', {
        auth,
        headers: { Environment: w.app.envs.Development },
      });
      expect([what, e2e.status]).toEqual([what, 401]);
      const tokens = await call(w.url, 'GET', '/service/secrets/tokens/', { auth });
      expect([what, tokens.status, tokens.json]).toEqual([what, 403, { error: 'Token expired or deleted' }]);
      for (const r of [v1, v1s, e2e, tokens]) expect(r.text).not.toContain('HIDDEN_FROM_OTHERS');
    };
    const expectAccepted = async (auth: string, what: string): Promise<void> => {
      const v1s = await call(w.url, 'GET', sec(w), { auth });
      expect([what, v1s.status]).toEqual([what, 200]);
      const tokens = await call(w.url, 'GET', '/service/secrets/tokens/', { auth });
      expect([what, tokens.status]).toEqual([what, 200]);
    };

    let sa: SAInfo;
    beforeAll(async () => {
      sa = await w.owner.createSA(uniq('expiry'), w.roles.Service);
      await w.owner.grantSA(sa.id, [{ id: w.app.id, environments: [w.app.envs.Development] }]);
    });

    test('expires_in: 1 → accepted, then refused after ~1.2 s', async () => {
      const t = await w.owner.ok(
        'POST',
        `/v1/service-accounts/${sa.id}/tokens/`,
        { name: 'short', expires_in: 1 },
        201,
      );
      expect(typeof t.expiresAt).toBe('string');
      const auth = `Bearer ${t.bearerToken}`;
      await expectAccepted(auth, 'fresh expires_in token');
      await sleep(1300);
      await expectRefused(auth, 'expired (expires_in)');
    });

    test('expires_at just ahead → accepted, then refused once it passes', async () => {
      const at = new Date(Date.now() + 1500).toISOString();
      const t = await w.owner.ok(
        'POST',
        `/v1/service-accounts/${sa.id}/tokens/`,
        { name: 'short-at', expires_at: at },
        201,
      );
      const auth = `Bearer ${t.bearerToken}`;
      await expectAccepted(auth, 'fresh expires_at token');
      await sleep(Math.max(0, Date.parse(at) - Date.now()) + 300);
      await expectRefused(auth, 'expired (expires_at)');
      // SA detail still lists the expired, non-deleted token (§13 item 5).
      const detail = await w.owner.ok('GET', `/v1/service-accounts/${sa.id}/`, undefined, 200);
      expect((detail.tokens as Array<{ id: string }>).map((x) => x.id)).toContain(t.id);
    });

    test("a revoked (deleted) token is refused; the account's other tokens still work", async () => {
      const t = await w.owner.ok('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'to-revoke' }, 201);
      const auth = `Bearer ${t.bearerToken}`;
      await expectAccepted(auth, 'before revocation');
      const del = await w.owner.req('DELETE', `/v1/service-accounts/${sa.id}/tokens/${t.id}/`);
      expect(del.status).toBe(204);
      expect(del.text).toBe('');
      await expectRefused(auth, 'revoked');
      await expectAccepted(`Bearer ${sa.bearer}`, 'sibling token after revocation');
      const again = await w.owner.req('DELETE', `/v1/service-accounts/${sa.id}/tokens/${t.id}/`);
      expect(again.status).toBe(404);
    });

    test('every token of a deleted service account is refused', async () => {
      const victim = await w.owner.createSA(uniq('doomed'), w.roles.Service);
      await w.owner.grantSA(victim.id, [{ id: w.app.id, environments: [w.app.envs.Development] }]);
      const second = await w.owner.ok(
        'POST',
        `/v1/service-accounts/${victim.id}/tokens/`,
        { name: 'second' },
        201,
      );
      await expectAccepted(`Bearer ${victim.bearer}`, 'before SA deletion');
      expect((await w.owner.req('DELETE', `/v1/service-accounts/${victim.id}/`)).status).toBe(204);
      await expectRefused(`Bearer ${victim.bearer}`, 'initial token of deleted SA');
      await expectRefused(`Bearer ${second.bearerToken}`, 'second token of deleted SA');
      expect((await w.owner.req('GET', `/v1/service-accounts/${victim.id}/`)).status).toBe(404);
    });

    test('personal access tokens: an expired PAT and the PAT of a removed member are refused', async () => {
      const member = await server.addMember('Developer');
      await w.owner.grantMember(member.id, [{ id: w.app.id, environments: [w.app.envs.Development] }]);
      const short = await server.mintMemberToken(member.id, {
        name: 'short',
        expiresAt: new Date(Date.now() + 1200).toISOString(),
      });
      const auth = authFor(short.token);
      await expectAccepted(auth, 'fresh PAT');
      await sleep(Math.max(0, 1500));
      await expectRefused(auth, 'expired PAT');

      await expectAccepted(authFor(member.token), 'member PAT before removal');
      expect((await w.owner.req('DELETE', `/v1/members/${member.id}/`)).status).toBe(204);
      // Upstream finds the PAT, then fails the member lookup (§4.3: 404 User not found); revoking the PATs (401) is
      // as good. Never a 2xx, never a secret.
      for (const [path, headers] of [
        ['/v1/apps/', {}],
        [sec(w), {}],
        ['/service/secrets/', { Environment: w.app.envs.Development }],
      ] as Array<[string, Record<string, string>]>) {
        const r = await call(w.url, 'GET', path, { auth: authFor(member.token), headers });
        expect([path, [401, 404].includes(r.status)]).toEqual([path, true]);
        expect(r.text).not.toContain('HIDDEN_FROM_OTHERS');
      }
      const tokens = await call(w.url, 'GET', '/service/secrets/tokens/', { auth: authFor(member.token) });
      expect(tokens.status).toBe(403);
    });

    test('the token value is all that authenticates: a wrong type or a near-miss value is refused', async () => {
      const hex = sa.bearer.split(' ')[1];
      const flipped = hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');
      const near = await call(w.url, 'GET', '/v1/apps/', { auth: `Bearer ServiceAccount ${flipped}` });
      expect([near.status, near.json]).toEqual([401, { error: 'Token expired or deleted' }]);
      const wrongType = await call(w.url, 'GET', '/v1/apps/', { auth: `Bearer User ${hex}` });
      expect(wrongType.status).toBe(401);
      const badType = await call(w.url, 'GET', '/v1/apps/', { auth: `Bearer Robot ${hex}` });
      expect([badType.status, badType.json]).toEqual([401, { error: 'Invalid token' }]);
    });
  });
});

describe.each(STORES)('rate limiting (§7, §15 item 9) (%s)', (store) => {
  test("over the limit → 429 with an integer Retry-After and DRF's message; other accounts unaffected", async () => {
    const server = await startTestServer({ store, rateLimit: '5/m' });
    try {
      const url = server.url.replace(/\/+$/, '');
      const owner = new Api(url, authFor(server.ownerToken));
      const roles = await owner.roles();
      const sa = await owner.createSA(uniq('rl'), roles.Service);
      const auth = `Bearer ${sa.bearer}`;
      const statuses: number[] = [];
      let throttled: Resp | undefined;
      for (let i = 0; i < 8; i++) {
        const r = await call(url, 'GET', '/v1/apps/', { auth });
        statuses.push(r.status);
        if (r.status === 429 && !throttled) throttled = r;
      }
      expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5);
      expect(throttled).toBeDefined();
      const retry = throttled!.headers.get('retry-after');
      expect(retry).toMatch(/^[1-9]\d*$/);
      expect(Number(retry)).toBeLessThanOrEqual(60);
      expect(throttled!.json).toEqual({
        error: `Request was throttled. Expected available in ${retry} second${retry === '1' ? '' : 's'}.`,
      });
      // A different account has its own budget.
      const other = await owner.createSA(uniq('rl-other'), roles.Service);
      expect((await call(url, 'GET', '/v1/apps/', { auth: `Bearer ${other.bearer}` })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
