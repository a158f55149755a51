/** `/v1/apps/` and `/v1/environments/` (phase-rest-api.md §9.1–§9.2). */
import type { Request, RequestHandler, Router } from 'express';
import {
  contextDenied,
  findApp,
  holdsEnvKey,
  isGlobal,
  membershipOf,
  requireAppAccess,
  requireAppPermission,
} from '../access';
import { audit, audited, resourceEvent } from '../audit';
import { principal, type Principal, type ServerContext } from '../context';
import type { AppTable, EnvironmentTable } from '../db/schema';
import { badRequest, conflict, forbidden, notFound, nowIso, objectBody, query, textField } from '../http';
import { addAppMember, createEnvironment, globalMembers, type Recipient, ENV_NAME_RE } from '../keys';
import { actionFor } from '../rbac';
import {
  appOf,
  appsOf,
  deleteApp,
  deleteEnvironmentCascade,
  environmentNames,
  environmentsOf,
  findEnvironmentInOrg,
  renameEnvironment,
} from '../repositories/apps';
import { insertRow, newRecord, updateRow } from '../repositories/rows';
import { noContent, orgRoute, param, route, send } from './util';

export function appWire(a: AppTable) {
  return {
    id: a.id,
    name: a.name,
    description: a.description,
    sse_enabled: a.sse_enabled === 1,
    created_at: a.created_at,
    updated_at: a.updated_at,
  };
}

export function envWire(e: EnvironmentTable) {
  return {
    id: e.id,
    name: e.name,
    env_type: e.env_type,
    index: e.sort_index,
    created_at: e.created_at,
    updated_at: e.updated_at,
  };
}

const ENV_NAME_INVALID =
  'Environment name is invalid. Only letters, numbers, hyphens and underscores are allowed (max 64 characters).';

function checkEnvName(name: string): void {
  if (!ENV_NAME_RE.test(name)) throw badRequest(ENV_NAME_INVALID);
}

/** The body's environment `name`, required and valid. */
function envName(b: Record<string, unknown>): string {
  const name = textField(b, 'name', { required: true, max: 64 }) as string;
  checkEnvName(name);
  return name;
}

function requester(p: Principal): Recipient {
  return { type: p.kind, id: p.accountId, identityKey: p.identityKey };
}

/** App detail context (§9.1): app in the org, SSE, caller access, `Apps:<action>` with app-context semantics. */
async function appDetail(ctx: ServerContext, req: Request, p: Principal): Promise<AppTable> {
  const app = await findApp(ctx, p, param(req, 'app_id'));
  const m = await requireAppAccess(ctx, p, app);
  if (!app.sse_enabled) throw forbidden('SSE is not enabled for this App.');
  requireAppPermission(p, m, actionFor(req.method), 'Apps', false);
  return app;
}

export function registerApps(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  orgRoute(r, '/v1/apps/', auth, 'Apps', {
    get: async (req, res, p) => {
      send(res, 200, { data: (await appsOf(db, p)).map(appWire) });
    },
    post: async (req, res, p) => {
      const b = objectBody(req);
      const name = textField(b, 'name', { required: true, max: 64 }) as string;
      const description = textField(b, 'description', { required: false, max: 10000 }) ?? null;
      let envNames: Array<{ name: string; type: string }> = [
        { name: 'Development', type: 'dev' },
        { name: 'Staging', type: 'staging' },
        { name: 'Production', type: 'prod' },
      ];
      if (b.environments !== undefined && b.environments !== null) {
        if (!Array.isArray(b.environments))
          throw badRequest("'environments' must be a list of environment names.");
        if (b.environments.length === 0) throw badRequest("'environments' must not be empty.");
        const seen = new Set<string>();
        envNames = b.environments.map((e: unknown) => {
          if (typeof e !== 'string' || e.trim() === '')
            throw badRequest('Each environment name must be a non-empty string.');
          const n = e.trim();
          if (seen.has(n.toLowerCase())) throw badRequest(`Duplicate environment name: '${n}'.`);
          seen.add(n.toLowerCase());
          return { name: n, type: 'custom' };
        });
        for (const e of envNames) {
          checkEnvName(e.name);
        }
      }
      const result = await db.transaction().execute(async (trx) => {
        const app: AppTable = { ...newRecord(), org_id: p.orgId, name, description, sse_enabled: 1 };
        await insertRow(trx, 'apps', app);
        await addAppMember(trx, app.id, p.kind, p.accountId);
        for (const g of await globalMembers(trx, p.orgId)) await addAppMember(trx, app.id, 'member', g.id);
        const envs: EnvironmentTable[] = [];
        for (const [i, e] of envNames.entries()) {
          envs.push(
            await createEnvironment(trx, ctx.server, {
              orgId: p.orgId,
              appId: app.id,
              name: e.name,
              envType: e.type,
              index: e.type === 'custom' ? i : { dev: 0, staging: 1, prod: 2 }[e.type as 'dev'],
              requester: requester(p),
            }),
          );
        }
        await audit(trx, p, resourceEvent('C', 'app', app.id, { name }, { appId: app.id }));
        return { app, envs };
      });
      send(res, 201, { ...appWire(result.app), environments: result.envs.map(envWire) });
    },
  });

  route(r, '/v1/apps/:app_id/', auth, {
    get: async (req, res) => {
      const app = await appDetail(ctx, req, principal(req));
      send(res, 200, appWire(app));
    },
    put: async (req, res) => {
      const p = principal(req);
      const app = await appDetail(ctx, req, p);
      const b = objectBody(req);
      const name = textField(b, 'name', { required: false, max: 64 });
      const description = textField(b, 'description', { required: false, max: 10000 });
      if (name === undefined && description === undefined) {
        throw badRequest("At least one of 'name' or 'description' must be provided.");
      }
      const patch = {
        ...(name !== undefined ? { name } : {}),
        ...(description !== undefined ? { description } : {}),
        updated_at: nowIso(),
      };
      await audited(db, p, resourceEvent('U', 'app', app.id, undefined, { appId: app.id }), async (trx) => {
        await updateRow(trx, 'apps', app.id, patch);
      });
      send(res, 200, appWire({ ...app, ...patch }));
    },
    delete: async (req, res) => {
      const p = principal(req);
      const app = await appDetail(ctx, req, p);
      await audited(
        db,
        p,
        resourceEvent('D', 'app', app.id, { name: app.name }, { appId: app.id }),
        async (trx) => {
          for (const envId of await deleteApp(trx, app.id)) ctx.envKeys.forget(envId);
        },
      );
      noContent(res);
    },
  });

  route(r, '/v1/environments/', auth, {
    get: async (req, res) => {
      const p = principal(req);
      const app = await envListContext(ctx, req, p);
      const envs = await environmentsOf(db, app.id, p);
      send(res, 200, { data: envs.map(envWire) });
    },
    post: async (req, res) => {
      const p = principal(req);
      const app = await envListContext(ctx, req, p);
      const b = objectBody(req);
      const name = envName(b);
      const env = await db.transaction().execute(async (trx) => {
        const envs = await environmentNames(trx, app.id);
        if (envs.some((e) => e.name.toLowerCase() === name.toLowerCase())) {
          throw badRequest(`An environment named '${name}' already exists in this app.`);
        }
        const index = envs.reduce((m, e) => Math.max(m, e.sort_index), -1) + 1;
        const created = await createEnvironment(trx, ctx.server, {
          orgId: p.orgId,
          appId: app.id,
          name,
          envType: 'custom',
          index,
          requester: requester(p),
        });
        await audit(
          trx,
          p,
          resourceEvent('C', 'env', created.id, { name }, { appId: app.id, environmentId: created.id }),
        );
        return created;
      });
      send(res, 201, envWire(env));
    },
  });

  route(r, '/v1/environments/:env_id/', auth, {
    get: async (req, res) => {
      const { env } = await envDetail(ctx, req, principal(req));
      send(res, 200, envWire(env));
    },
    put: async (req, res) => {
      const p = principal(req);
      const { env } = await envDetail(ctx, req, p);
      const b = objectBody(req);
      const name = envName(b);
      const updated = await db.transaction().execute(async (trx) => {
        const others = (await environmentNames(trx, env.app_id)).filter((o) => o.id !== env.id);
        if (others.some((o) => o.name.toLowerCase() === name.toLowerCase())) {
          throw conflict(`An environment named '${name}' already exists in this app.`);
        }
        const patch = { name, updated_at: nowIso() };
        await renameEnvironment(trx, env.id, patch);
        await audit(
          trx,
          p,
          resourceEvent('U', 'env', env.id, { name }, { appId: env.app_id, environmentId: env.id }),
        );
        return { ...env, ...patch };
      });
      send(res, 200, envWire(updated));
    },
    delete: async (req, res) => {
      const p = principal(req);
      const { env } = await envDetail(ctx, req, p);
      await audited(
        db,
        p,
        resourceEvent('D', 'env', env.id, { name: env.name }, { appId: env.app_id, environmentId: env.id }),
        async (trx) => {
          await deleteEnvironmentCascade(trx, env.id);
        },
      );
      ctx.envKeys.forget(env.id);
      noContent(res);
    },
  });
}

/** `?app_id=` context for the environment list and create (§9.2). */
async function envListContext(ctx: ServerContext, req: Request, p: Principal): Promise<AppTable> {
  const appId = query(req, 'app_id');
  if (appId === undefined) throw forbidden('Could not resolve app from request.');
  const app = await findApp(ctx, p, appId);
  const m = await requireAppAccess(ctx, p, app);
  if (!app.sse_enabled) throw forbidden('SSE is not enabled for this App.');
  requireAppPermission(p, m, actionFor(req.method), 'Environments', true);
  return app;
}

async function envDetail(
  ctx: ServerContext,
  req: Request,
  p: Principal,
): Promise<{ env: EnvironmentTable; app: AppTable }> {
  const envId = param(req, 'env_id');
  const env = await findEnvironmentInOrg(ctx.store.db, p.orgId, envId);
  if (!env) throw notFound('Environment not found');
  const app = await appOf(ctx.store.db, env);
  const m = await membershipOf(ctx.store.db, app.id, p);
  if (!m) throw contextDenied(p, 'User cannot access this app', 'Service account cannot access this app');
  if (!app.sse_enabled) throw forbidden('SSE is not enabled for this App.');
  requireAppPermission(p, m, actionFor(req.method), 'Environments', true);
  if (!(await holdsEnvKey(ctx.store.db, env.id, p))) {
    throw forbidden(
      p.kind === 'member'
        ? "You don't have access to this environment."
        : "Service account doesn't have access to this environment.",
    );
  }
  void isGlobal;
  return { env, app };
}
