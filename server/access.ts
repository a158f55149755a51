/**
 * Context resolution and authorisation checks (phase-rest-api.md §4.2–§5), plus the path-restriction extension.
 */
import type { Request } from 'express';
import { principal, type Principal, type ServerContext } from './context';
import type { AppTable, EnvironmentTable } from './db/schema';
import { HttpError, forbidden, header, isUuid, notFound, query } from './http';
import type { Db } from './keys';
import { actionFor, hasGlobalAccess, roleHasPermission, type Action } from './rbac';
import { appOf, findEnvironmentInOrg, holdsEnvironmentKey, membershipRow } from './repositories/apps';
import { findInOrg } from './repositories/rows';

export function isGlobal(p: Principal): boolean {
  return p.kind === 'member' && hasGlobalAccess(p.role);
}

/** Context denials: users get 403, service accounts 401 (§4.3). */
export function contextDenied(p: Principal, userMsg: string, saMsg: string): HttpError {
  return p.kind === 'member'
    ? forbidden(userMsg)
    : new HttpError(401, saMsg, { 'WWW-Authenticate': 'Bearer' });
}

const RESOURCE_LABEL: Record<string, string> = {
  ServiceAccounts: 'service accounts',
  ServiceAccountTokens: 'service account tokens',
  NetworkAccessPolicies: 'network access policies',
  Apps: 'apps',
  Members: 'members',
  Roles: 'roles',
  Logs: 'logs',
  Environments: 'environments',
  Secrets: 'secrets',
};

/** Org-level RBAC check; 403 naming the action and resource. */
export function requireOrgPermission(p: Principal, action: Action, resource: string): void {
  if (!roleHasPermission(p.role, action, resource, false)) {
    throw forbidden(`You don't have permission to ${action} ${RESOURCE_LABEL[resource] ?? resource}.`);
  }
}

/** The caller of an org-level route, after its RBAC check (`requireOrgPermission`). */
export function orgCaller(req: Request, action: Action, resource: string): Principal {
  const p = principal(req);
  requireOrgPermission(p, action, resource);
  return p;
}

export interface Membership {
  paths: string[] | null;
}

/** The caller's direct membership of an app, or undefined. */
export async function membershipOf(db: Db, appId: string, p: Principal): Promise<Membership | undefined> {
  const row = await membershipRow(db, appId, p.kind, p.accountId);
  if (!row) return undefined;
  return { paths: parsePaths(row.paths) };
}

export function parsePaths(raw: string | null): string[] | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) && v.length > 0 ? (v as string[]) : null;
  } catch {
    return null;
  }
}

/** Path restriction (extension): a prefix match on normalised paths; null = unrestricted. */
export function pathAllowed(paths: string[] | null, path: string): boolean {
  if (!paths) return true;
  return paths.some((p) => p === '/' || path === p || path.startsWith(`${p}/`));
}

export async function findApp(
  ctx: ServerContext,
  p: Principal,
  appId: string | undefined,
): Promise<AppTable> {
  const app = await findInOrg(ctx.store.db, 'apps', p.orgId, appId);
  if (!app) throw notFound(`App with ID ${appId ?? ''} not found`);
  return app;
}

/** App-only context: the caller must be a direct member (§4.3). Returns the membership. */
export async function requireAppAccess(ctx: ServerContext, p: Principal, app: AppTable): Promise<Membership> {
  const m = await membershipOf(ctx.store.db, app.id, p);
  if (!m) throw contextDenied(p, 'User cannot access this app', 'Service account cannot access this app');
  return m;
}

export async function holdsEnvKey(db: Db, envId: string, p: Principal): Promise<boolean> {
  return holdsEnvironmentKey(db, envId, p.kind, p.accountId);
}

/** App-context RBAC (§5.1): direct membership plus the caller's role. */
export function requireAppPermission(
  p: Principal,
  membership: Membership | undefined,
  action: Action,
  resource: string,
  isAppResource: boolean,
  message?: string,
): void {
  if (!membership || !roleHasPermission(p.role, action, resource, isAppResource)) {
    throw forbidden(
      message ?? `You don't have permission to ${action} ${RESOURCE_LABEL[resource] ?? resource}.`,
    );
  }
}

export interface SecretsContext {
  app: AppTable;
  env: EnvironmentTable;
  membership: Membership;
}

/**
 * Environment context for secrets endpoints (§4.2): `secret_id`, then the `Environment` header, then
 * `app_id` + `env`. Then env-key possession (§4.3) and app-level `Secrets:<action>`.
 */
export async function resolveSecretsContext(
  ctx: ServerContext,
  req: Request,
  p: Principal,
  opts: { missingMessage: string; action?: Action },
): Promise<SecretsContext> {
  const db = ctx.store.db;
  let env: EnvironmentTable | undefined;
  let app: AppTable | undefined;
  const secretId = header(req, 'secret_id') ?? query(req, 'secret_id');
  const envHeader = header(req, 'Environment');
  const appId = query(req, 'app_id');
  const envName = query(req, 'env');
  if (secretId !== undefined) {
    const row = isUuid(secretId)
      ? await db
          .selectFrom('secrets')
          .innerJoin('environments', 'environments.id', 'secrets.environment_id')
          .innerJoin('apps', 'apps.id', 'environments.app_id')
          .select('secrets.environment_id')
          .where('secrets.id', '=', secretId)
          .where('secrets.deleted_at', 'is', null)
          .where('apps.org_id', '=', p.orgId)
          .executeTakeFirst()
      : undefined;
    if (!row) throw notFound('Secret not found');
    env = await db
      .selectFrom('environments')
      .selectAll()
      .where('id', '=', row.environment_id)
      .executeTakeFirst();
  } else if (envHeader !== undefined) {
    const row = await findEnvironmentInOrg(db, p.orgId, envHeader);
    if (!row) throw new HttpError(401, 'Environment not found', { 'WWW-Authenticate': 'Bearer' });
    env = row;
  } else if (appId !== undefined && envName !== undefined) {
    app = await findApp(ctx, p, appId);
    const envs = await db.selectFrom('environments').selectAll().where('app_id', '=', app.id).execute();
    env = envs.find((e) => e.name.toLowerCase() === envName.toLowerCase());
    if (!env) throw notFound(`Environment '${envName}' not found in App ${appId}`);
  } else if (appId !== undefined) {
    // App-only context: authentication resolves the app and checks access (§4.3); secrets then need an environment.
    const only = await findApp(ctx, p, appId);
    if (!(await membershipOf(db, only.id, p))) {
      throw contextDenied(p, 'User cannot access this app', 'Service account cannot access this app');
    }
    throw forbidden(opts.missingMessage);
  } else {
    throw forbidden(opts.missingMessage);
  }
  if (!env) throw notFound('Environment not found');
  if (!app) app = await appOf(db, env);
  if (!(await holdsEnvKey(db, env.id, p))) {
    throw contextDenied(
      p,
      'User cannot access this environment',
      'Service account cannot access this environment',
    );
  }
  const membership = await membershipOf(db, app.id, p);
  const action = opts.action ?? actionFor(req.method);
  requireAppPermission(
    p,
    membership,
    action,
    'Secrets',
    true,
    `You don't have permission to ${action} secrets in this environment.`,
  );
  return { app, env, membership: membership as Membership };
}
