/** `/v1/service-accounts/` (phase-rest-api.md §9.4): SSK service accounts, access grants, token minting. */
import type { Request, RequestHandler, Response, Router } from 'express';
import { newServerManagedIdentity } from '../../core/mint';
import { orgCaller, requireOrgPermission } from '../access';
import { audit, audited, resourceEvent } from '../audit';
import { principal, type Principal, type ServerContext } from '../context';
import type { ServiceAccountTable } from '../db/schema';
import {
  assertMayAssignRole,
  assertMayChangeAccessOf,
  assertMayChangeRoleOf,
  mayHandleTokensOf,
} from '../grant-rule';
import { applyAccess, accessWire, removeAccountGrants, validateAccess } from '../grants';
import { mintSaToken } from '../sa-tokens';
import {
  HttpError,
  badRequest,
  body,
  newId,
  notFound,
  nowIso,
  objectBody,
  textField,
  toStoredIso,
} from '../http';
import type { Db } from '../keys';
import { hasGlobalAccess } from '../rbac';
import {
  findLiveToken,
  liveTokens,
  revokeSaToken,
  serviceAccountsWithRoles,
  softDeleteAccount,
} from '../repositories/accounts';
import { roleFromBody, roleRef } from '../repositories/roles';
import { foundInOrg, insertRow, touch, updateRow } from '../repositories/rows';
import { noContent, orgRoute, param, route, send } from './util';

async function saWire(db: Db, sa: ServiceAccountTable) {
  return {
    id: sa.id,
    name: sa.name,
    role: await roleRef(db, sa.role_id),
    created_at: sa.created_at,
    updated_at: sa.updated_at,
  };
}

export async function saDetail(db: Db, sa: ServiceAccountTable) {
  const tokens = await liveTokens(db, sa.id);
  return { ...(await saWire(db, sa)), tokens, apps: await accessWire(db, 'service_account', sa.id) };
}

const findSa = (ctx: ServerContext, p: Principal, id: string) =>
  foundInOrg(ctx.store.db, 'service_accounts', p.orgId, id, 'Service account not found.');

/** §9.4.7 scope rule: SAs only themselves, global users any SA; everything else looks like a missing SA. */
function requireTokenScope(p: Principal, sa: ServiceAccountTable): void {
  if (!mayHandleTokensOf(p, sa.id)) throw notFound('Service account not found.');
}

/** `expires_at` / `expires_in` / `expiry` rules (§9.4.7). Returns the stored value and the value to echo. */
export function parseExpiry(b: Record<string, unknown>): { stored: string | null; echo: string | null } {
  if ('expiry' in b) {
    throw badRequest(
      "Unknown field 'expiry'. Use 'expires_at' (ISO-8601 with timezone) or 'expires_in' (positive integer seconds).",
    );
  }
  if (b.expires_at !== undefined && b.expires_at !== null) {
    if (typeof b.expires_at !== 'string') {
      throw badRequest("'expires_at' must be an ISO-8601 datetime string (e.g. '2030-01-01T00:00:00Z').");
    }
    const s = b.expires_at.trim();
    const iso = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i.exec(s);
    const d = new Date(s.replace(' ', 'T'));
    if (!iso || Number.isNaN(d.getTime())) throw badRequest("'expires_at' is not a valid ISO-8601 datetime.");
    if (!iso[3]) throw badRequest("'expires_at' must include a timezone offset (e.g. 'Z' or '+00:00').");
    if (d.getTime() <= Date.now()) throw badRequest("'expires_at' must be in the future.");
    return { stored: toStoredIso(d), echo: s };
  }
  if (b.expires_in !== undefined && b.expires_in !== null) {
    const v = b.expires_in;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > 100 * 365 * 86400) {
      throw badRequest("'expires_in' must be a positive integer (seconds).");
    }
    const stored = toStoredIso(new Date(Date.now() + v * 1000));
    return { stored, echo: stored };
  }
  return { stored: null, echo: null };
}

/** Longest grace a revoked token may keep: a week, so a forgotten rotation cannot keep a token alive for long. */
export const MAX_REVOKE_GRACE_SECONDS = 7 * 86400;

/** `?grace_seconds=N` on token deletion (extension); 0 = revoke at once, as Phase does. */
function graceSeconds(req: Request): number {
  const raw = req.query.grace_seconds;
  if (raw === undefined) return 0;
  const v = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) > MAX_REVOKE_GRACE_SECONDS) {
    throw badRequest(
      `'grace_seconds' must be a whole number of seconds from 0 to ${MAX_REVOKE_GRACE_SECONDS}.`,
    );
  }
  return Number(v);
}

export function registerServiceAccounts(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  orgRoute(r, '/v1/service-accounts/', auth, 'ServiceAccounts', {
    get: async (req, res, p) => {
      const rows = await serviceAccountsWithRoles(db, p.orgId);
      send(res, 200, {
        data: rows.map((sa) => ({
          id: sa.id,
          name: sa.name,
          role: sa.role_id && sa.role_name ? { id: sa.role_id, name: sa.role_name } : null,
          created_at: sa.created_at,
          updated_at: sa.updated_at,
        })),
      });
    },
    post: async (req, res, p) => {
      const b = objectBody(req);
      const name = textField(b, 'name', { required: true, max: 64 }) as string;
      let tokenName = 'Default';
      if ('token_name' in b) tokenName = textField(b, 'token_name', { required: true, max: 64 }) as string;
      if (b.team_id !== undefined && b.team_id !== null) throw new HttpError(404, 'Team not found.');
      const role = await roleFromBody(db, p.orgId, b.role_id);
      if (hasGlobalAccess(role))
        throw badRequest(`Service accounts cannot be assigned the '${role.name}' role.`);
      assertMayAssignRole(p, role);
      const identity = newServerManagedIdentity(ctx.server.publicKey);
      const out = await db.transaction().execute(async (trx) => {
        const now = nowIso();
        const sa: ServiceAccountTable = {
          id: newId(),
          org_id: p.orgId,
          name,
          role_id: role.id,
          identity_key: identity.identityKey,
          server_wrapped_keyring: identity.serverWrappedKeyring,
          server_wrapped_recovery: identity.serverWrappedRecovery,
          created_at: now,
          updated_at: now,
          deleted_at: null,
        };
        await insertRow(trx, 'service_accounts', sa);
        const initial = await mintSaToken(trx, ctx, p, sa, tokenName, null);
        await audit(trx, p, resourceEvent('C', 'sa', sa.id, { name }));
        return { ...(await saWire(trx, sa)), initial_token: initial };
      });
      send(res, 201, out);
    },
  });

  orgRoute(r, '/v1/service-accounts/:sa_id/', auth, 'ServiceAccounts', {
    get: async (req, res, p) => {
      const sa = await findSa(ctx, p, param(req, 'sa_id'));
      send(res, 200, await saDetail(db, sa));
    },
    put: async (req, res, p) => {
      const sa = await findSa(ctx, p, param(req, 'sa_id'));
      const b = objectBody(req);
      const name = textField(b, 'name', { required: false, max: 64 });
      const hasRole = b.role_id !== undefined && b.role_id !== null;
      if (name === undefined && !hasRole)
        throw badRequest("At least one of 'name' or 'role_id' must be provided.");
      const patch: Partial<ServiceAccountTable> = { updated_at: nowIso() };
      if (name !== undefined) patch.name = name;
      if (hasRole) {
        const target = { type: 'service_account' as const, id: sa.id };
        assertMayChangeRoleOf(p, target);
        const role = await roleFromBody(db, p.orgId, b.role_id);
        if (hasGlobalAccess(role))
          throw badRequest(`Service accounts cannot be assigned the '${role.name}' role.`);
        assertMayAssignRole(p, role, target);
        patch.role_id = role.id;
      }
      await audited(db, p, resourceEvent('U', 'sa', sa.id), async (trx) => {
        await updateRow(trx, 'service_accounts', sa.id, patch);
      });
      send(res, 200, await saDetail(db, { ...sa, ...patch }));
    },
    delete: async (req, res, p) => {
      const sa = await findSa(ctx, p, param(req, 'sa_id'));
      await audited(db, p, resourceEvent('D', 'sa', sa.id, { name: sa.name }), async (trx) => {
        await softDeleteAccount(trx, 'service_account', sa.id);
        await removeAccountGrants(trx, 'service_account', sa.id);
      });
      noContent(res);
    },
  });

  // Access: the action is fixed to ServiceAccounts:update whatever the method (GET → 405 after the check).
  route(
    r,
    '/v1/service-accounts/:sa_id/access/',
    auth,
    {
      put: async (req, res) => {
        const p = orgCaller(req, 'update', 'ServiceAccounts');
        const sa = await findSa(ctx, p, param(req, 'sa_id'));
        assertMayChangeAccessOf(p, { type: 'service_account', id: sa.id });
        if (!sa.identity_key) {
          throw badRequest(
            'Service account does not have an identity key set. Cannot grant environment access.',
          );
        }
        const entries = await validateAccess(ctx, p, { type: 'service_account', id: sa.id }, objectBody(req));
        if (!sa.server_wrapped_keyring) {
          throw badRequest('Service account does not have server-side key management enabled.');
        }
        await db.transaction().execute(async (trx) => {
          await applyAccess(
            trx,
            ctx,
            { type: 'service_account', id: sa.id, identityKey: sa.identity_key },
            entries,
          );
          await touch(trx, 'service_accounts', sa.id);
          const apps = entries.map((e) => ({ id: e.appId, environments: e.envIds, paths: e.paths }));
          await audit(trx, p, resourceEvent('A', 'sa', sa.id, { apps }));
        });
        const fresh = await findSa(ctx, p, sa.id);
        send(res, 200, await saDetail(db, fresh));
      },
    },
    (m) => new HttpError(405, `Method "${m}" not allowed.`),
    (req) => requireOrgPermission(principal(req), 'update', 'ServiceAccounts'),
  );

  // Tokens (§9.4.7): the action is fixed per path, checked before 405 for other methods.
  const tokenAccount = async (req: Request, action: 'create' | 'delete') => {
    const p = orgCaller(req, action, 'ServiceAccountTokens');
    const sa = await findSa(ctx, p, param(req, 'sa_id'));
    requireTokenScope(p, sa);
    return { p, sa };
  };
  const tokensCheck = (action: 'create' | 'delete') => (req: Request) =>
    requireOrgPermission(principal(req), action, 'ServiceAccountTokens');
  const mintToken = async (req: Request, res: Response) => {
    const { p, sa } = await tokenAccount(req, 'create');
    const b = objectBody(req);
    const name = textField(b, 'name', { required: true, max: 64 }) as string;
    const expiry = parseExpiry(b);
    const out = await db.transaction().execute(async (trx) => {
      const t = await mintSaToken(trx, ctx, p, sa, name, expiry.stored);
      await audit(trx, p, resourceEvent('C', 'sa_token', t.id, { service_account: sa.id, name }));
      return { ...t, expires_at: expiry.echo };
    });
    send(res, 201, out);
  };
  const revokeToken = async (req: Request, res: Response) => {
    const { p, sa } = await tokenAccount(req, 'delete');
    const tok = await findLiveToken(db, sa.id, param(req, 'token_id'));
    if (!tok) throw notFound('Token not found.');
    const grace = graceSeconds(req);
    await db.transaction().execute(async (trx) => {
      // Rotation without an outage (extension): the replaced token keeps working until the grace runs out.
      await revokeSaToken(
        trx,
        tok.id,
        grace > 0 ? toStoredIso(new Date(Date.now() + grace * 1000)) : undefined,
      );
      const detail = { service_account: sa.id, ...(grace > 0 ? { grace_seconds: grace } : {}) };
      await audit(trx, p, resourceEvent('D', 'sa_token', tok.id, detail));
    });
    noContent(res);
  };
  const tokens = '/v1/service-accounts/:sa_id/tokens/';
  route(r, tokens, auth, { post: mintToken }, undefined, tokensCheck('create'));
  route(r, `${tokens}:token_id/`, auth, { delete: revokeToken }, undefined, tokensCheck('delete'));
  void body;
}

export type { Request };
