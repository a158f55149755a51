/**
 * Declarative access grants (phase-rest-api.md §9.4.6, §9.6): `{"apps":[{"id","environments":[...],"paths"?}]}`.
 * Apps not listed are revoked; `paths` is the path-restriction extension.
 */
import { z } from 'zod';
import { isGlobal, membershipOf, holdsEnvKey } from './access';
import type { Principal, ServerContext } from './context';
import type { AccountType } from './db/schema';
import { assertMayChangeAccessOf, assertPathsWithin, type GrantTarget } from './grant-rule';
import { badRequest, forbidden, normalizePath, notFound, parseWith } from './http';
import { addAppMember, grantEnvironment, type Db } from './keys';
import { findInOrg } from './repositories/rows';

const pathsSchema = z
  .array(
    z
      .string({ invalid_type_error: "!Each entry of 'paths' must be a string." })
      .min(1, { message: "!Each entry of 'paths' must be a non-empty path." }),
    {
      invalid_type_error: "!'paths' must be a list of paths.",
    },
  )
  .min(1, { message: "!'paths' must not be empty; omit it to allow every path." })
  .nullish();

export const accessBodySchema = z
  .object({
    apps: z.array(z.unknown(), {
      required_error: '!Missing required field: apps',
      invalid_type_error: "!'apps' must be a list.",
    }),
  })
  .passthrough();

export interface AccessEntry {
  appId: string;
  appName: string;
  envIds: string[];
  paths: string[] | null;
}

/**
 * Validates the body and the caller's rights (§9.4.6 step 4) before anything changes, including the subset rule:
 * nobody changes their own access, and paths granted lie inside the granter's own.
 */
export async function validateAccess(
  ctx: ServerContext,
  p: Principal,
  target: GrantTarget,
  rawBody: unknown,
): Promise<AccessEntry[]> {
  assertMayChangeAccessOf(p, target);
  const { apps } = parseWith(accessBodySchema, rawBody);
  const db = ctx.store.db;
  const out: AccessEntry[] = [];
  const seen = new Set<string>();
  for (const entry of apps) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw badRequest("Each entry in 'apps' must be an object.");
    }
    const e = entry as Record<string, unknown>;
    if (e.id === undefined || e.id === null || e.id === '')
      throw badRequest("Each app entry requires an 'id'.");
    const appId = String(e.id);
    const app = await findInOrg(db, 'apps', p.orgId, appId);
    if (!app) throw notFound(`App not found: ${appId}`);
    if (!app.sse_enabled) {
      throw badRequest(`App '${app.name}' does not have SSE enabled. Only SSE apps are supported.`);
    }
    const own = isGlobal(p) ? undefined : await membershipOf(db, app.id, p);
    if (!isGlobal(p) && !own) throw forbidden(`You don't have access to app '${app.name}'.`);
    if (!Array.isArray(e.environments)) {
      throw badRequest(`'environments' for app '${appId}' must be a list of environment IDs.`);
    }
    if (e.environments.length === 0) {
      throw badRequest(
        `'environments' for app '${appId}' must not be empty. To revoke all access, remove the app from the list.`,
      );
    }
    const envIds = [...new Set(e.environments.map((x) => String(x)))];
    const envs = await db
      .selectFrom('environments')
      .select(['id', 'name'])
      .where('app_id', '=', app.id)
      .execute();
    const missing = envIds.filter((id) => !envs.some((x) => x.id === id));
    if (missing.length)
      throw notFound(`Environment(s) not found in app '${app.name}': ${missing.join(', ')}`);
    if (!isGlobal(p)) {
      for (const id of envIds) {
        if (!(await holdsEnvKey(db, id, p))) {
          const name = envs.find((x) => x.id === id)?.name ?? id;
          throw forbidden(`You don't have access to environment '${name}' in app '${app.name}'.`);
        }
      }
    }
    const paths = parseWith(z.object({ paths: pathsSchema }).passthrough(), { paths: e.paths }).paths;
    if (seen.has(app.id)) throw badRequest(`App '${app.name}' is listed more than once.`);
    seen.add(app.id);
    const granted = paths ? [...new Set(paths.map((x) => normalizePath(x)))] : null;
    assertPathsWithin(p, app.name, own?.paths ?? null, granted);
    out.push({ appId: app.id, appName: app.name, envIds, paths: granted });
  }
  return out;
}

/** Applies validated entries in the caller's transaction. */
export async function applyAccess(
  trx: Db,
  ctx: ServerContext,
  target: { type: AccountType; id: string; identityKey: string },
  entries: AccessEntry[],
): Promise<void> {
  const listed = new Set(entries.map((e) => e.appId));
  const current = await trx
    .selectFrom('app_memberships')
    .select('app_id')
    .where((eb) => eb.and({ account_type: target.type, account_id: target.id }))
    .execute();
  for (const m of current) {
    if (listed.has(m.app_id)) continue;
    await trx
      .deleteFrom('environment_keys')
      .where('account_type', '=', target.type)
      .where('account_id', '=', target.id)
      .where(
        'environment_id',
        'in',
        trx.selectFrom('environments').select('id').where('app_id', '=', m.app_id),
      )
      .execute();
    await trx
      .deleteFrom('app_memberships')
      .where('app_id', '=', m.app_id)
      .where('account_type', '=', target.type)
      .where('account_id', '=', target.id)
      .execute();
  }
  for (const e of entries) {
    await addAppMember(trx, e.appId, target.type, target.id, e.paths);
    const envs = await trx.selectFrom('environments').selectAll().where('app_id', '=', e.appId).execute();
    const wanted = new Set(e.envIds);
    const revoke = envs.filter((x) => !wanted.has(x.id)).map((x) => x.id);
    if (revoke.length) {
      await trx
        .deleteFrom('environment_keys')
        .where('account_type', '=', target.type)
        .where('account_id', '=', target.id)
        .where('environment_id', 'in', revoke)
        .execute();
    }
    for (const env of envs.filter((x) => wanted.has(x.id))) {
      const material = await ctx.envKeys.get(trx, env.id);
      // An environment without a server copy is skipped silently, as in Phase.
      if (material)
        await grantEnvironment(trx, env, material, {
          type: target.type,
          id: target.id,
          identityKey: target.identityKey,
        });
    }
  }
}

/** `apps: [{id, name, environments: [{id, name, env_type}], paths}]` for an account (SA detail, member access). */
export async function accessWire(db: Db, type: AccountType, id: string) {
  const apps = await db
    .selectFrom('app_memberships as m')
    .innerJoin('apps', 'apps.id', 'm.app_id')
    .select(['apps.id', 'apps.name', 'm.paths', 'm.created_at'])
    .where('m.account_type', '=', type)
    .where('m.account_id', '=', id)
    .orderBy('m.created_at', 'desc')
    .orderBy('apps.created_at', 'desc')
    .execute();
  const envs = await db
    .selectFrom('environment_keys as k')
    .innerJoin('environments as e', 'e.id', 'k.environment_id')
    .select(['e.id', 'e.name', 'e.env_type', 'e.app_id', 'e.sort_index'])
    .where((eb) => eb.and({ 'k.account_type': type, 'k.account_id': id }))
    .orderBy('e.sort_index')
    .execute();
  return apps.map((a) => {
    let paths: string[] | null = null;
    try {
      paths = a.paths ? (JSON.parse(a.paths) as string[]) : null;
    } catch {
      paths = null;
    }
    return {
      id: a.id,
      name: a.name,
      environments: envs
        .filter((e) => e.app_id === a.id)
        .map((e) => ({ id: e.id, name: e.name, env_type: e.env_type })),
      paths,
    };
  });
}

/**
 * Everything that lets a removed account reach secrets: its environment keys (the wrapped seeds go with them), its
 * app memberships and its network-policy attachments. Used when a member or a service account is deleted.
 */
export async function removeAccountGrants(db: Db, type: AccountType, id: string): Promise<void> {
  for (const table of ['environment_keys', 'app_memberships', 'network_policy_attachments'] as const) {
    await db.deleteFrom(table).where('account_type', '=', type).where('account_id', '=', id).execute();
  }
}
