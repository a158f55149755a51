/**
 * phase-bridge extensions under `/v1`: network access policies (Phase manages them only in its console) and the
 * audit log. Unknown body fields and query parameters are rejected here (400), unlike Phase's lenient views.
 */
import type { Request, RequestHandler, Router } from 'express';
import { z } from 'zod';
import { orgCaller } from '../access';
import { audit, audited, resourceEvent } from '../audit';
import type { Principal, ServerContext } from '../context';
import type { AccountType, NetworkPolicyTable } from '../db/schema';
import { badRequest, newId, notFound, nowIso, objectBody, parseWith, toStoredIso } from '../http';
import type { Db } from '../keys';
import { assertMayChangePolicies, loadPolicyState, type PolicyState } from '../grant-rule';
import { validIpEntry } from '../network';
import { auditEventsPage } from '../repositories/audit-log';
import {
  attachPolicy,
  deletePolicy,
  detachPolicy,
  isAttached,
  policyAttachments,
} from '../repositories/policies';
import { findInOrg, foundInOrg, insertRow, listInOrg, touch, updateRow } from '../repositories/rows';
import { noContent, orgRoute, param, route, send, sendEach } from './util';

const ipList = z
  .array(z.string({ invalid_type_error: "!Each entry of 'allowed_ips' must be a string." }), {
    required_error: '!Missing required field: allowed_ips',
    invalid_type_error: "!'allowed_ips' must be a list of IP addresses or CIDR ranges.",
  })
  .min(1, { message: "!'allowed_ips' must not be empty." })
  .max(1000, { message: "!'allowed_ips' cannot have more than 1000 entries." })
  .superRefine((list, c) => {
    for (const e of list) {
      if (!validIpEntry(e)) {
        c.addIssue({
          code: z.ZodIssueCode.custom,
          message: `'allowed_ips': '${e.slice(0, 60)}' is not a valid IPv4/IPv6 address or CIDR range.`,
        });
        return;
      }
    }
  });

const policyName = z
  .string({
    required_error: '!Missing required field: name',
    invalid_type_error: "!'name' must be a string.",
  })
  .trim()
  .min(1, { message: '!Missing required field: name' })
  .max(64, { message: "!'name' cannot exceed 64 characters." });

const createSchema = z
  .object({
    name: policyName,
    allowed_ips: ipList,
    is_global: z.boolean({ invalid_type_error: "!'is_global' must be a boolean." }).optional(),
  })
  .strict();

const updateSchema = z
  .object({
    name: policyName.optional(),
    allowed_ips: ipList.optional(),
    is_global: z.boolean({ invalid_type_error: "!'is_global' must be a boolean." }).optional(),
  })
  .strict()
  .refine((v) => v.name !== undefined || v.allowed_ips !== undefined || v.is_global !== undefined, {
    message: "At least one of 'name', 'allowed_ips' or 'is_global' must be provided.",
  });

const attachSchema = z
  .object({
    account_type: z.enum(['service_account', 'member'], {
      errorMap: (issue) => ({
        message:
          issue.code === 'invalid_type' && issue.received === 'undefined'
            ? '!Missing required field: account_type'
            : "!'account_type' must be 'service_account' or 'member'.",
      }),
    }),
    account_id: z.string({
      required_error: '!Missing required field: account_id',
      invalid_type_error: "!'account_id' must be a string.",
    }),
  })
  .strict();

async function policyWire(db: Db, p: NetworkPolicyTable) {
  const attachments = await policyAttachments(db, p.id);
  let ips: string[] = [];
  try {
    ips = JSON.parse(p.allowed_ips) as string[];
  } catch {
    ips = [];
  }
  return {
    id: p.id,
    name: p.name,
    allowed_ips: ips,
    is_global: p.is_global === 1,
    created_at: p.created_at,
    updated_at: p.updated_at,
    attachments,
  };
}

/** The subset rule for policies: checked in the writing transaction, against the state it is about to change. */
async function guardPolicies(trx: Db, p: Principal, change: (s: PolicyState) => PolicyState): Promise<void> {
  const before = await loadPolicyState(trx, p.orgId);
  await assertMayChangePolicies(trx, p, before, change(before));
}

const findPolicy = (ctx: ServerContext, p: Principal, id: string) =>
  foundInOrg(ctx.store.db, 'network_policies', p.orgId, id, 'Network policy not found.');

async function accountExists(db: Db, orgId: string, type: AccountType, id: string): Promise<boolean> {
  return (await findInOrg(db, type === 'member' ? 'members' : 'service_accounts', orgId, id)) !== undefined;
}

const AUDIT_QUERY = [
  'since',
  'until',
  'actor',
  'actor_id',
  'app_id',
  'env',
  'environment_id',
  'event_type',
  'resource_type',
  'key_digest',
  'limit',
  'offset',
];

function snakeQuery(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    const key = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const val = Array.isArray(v) ? v[v.length - 1] : v;
    if (typeof val === 'string') out[key] = val;
  }
  return out;
}

function isoParam(name: string, v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) {
    throw badRequest(`'${name}' must be an ISO-8601 datetime (e.g. 2030-01-01T00:00:00Z).`);
  }
  return toStoredIso(d);
}

function intParam(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw badRequest(`'${name}' must be an integer between ${min} and ${max}.`);
  }
  return Number(v);
}

export function registerExtensions(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  orgRoute(r, '/v1/network-policies/', auth, 'NetworkAccessPolicies', {
    get: async (req, res, p) => {
      await sendEach(res, await listInOrg(db, 'network_policies', p.orgId), (row) => policyWire(db, row));
    },
    post: async (req, res, p) => {
      const b = parseWith(createSchema, objectBody(req));
      const now = nowIso();
      const row: NetworkPolicyTable = {
        id: newId(),
        org_id: p.orgId,
        name: b.name,
        allowed_ips: JSON.stringify(b.allowed_ips.map((e) => e.trim())),
        is_global: b.is_global ? 1 : 0,
        created_at: now,
        updated_at: now,
      };
      await audited(db, p, resourceEvent('C', 'policy', row.id, { name: row.name }), async (trx) => {
        await guardPolicies(trx, p, (st) => ({ ...st, policies: [...st.policies, row] }));
        await insertRow(trx, 'network_policies', row);
      });
      send(res, 201, await policyWire(db, row));
    },
  });

  orgRoute(r, '/v1/network-policies/:policy_id/', auth, 'NetworkAccessPolicies', {
    get: async (req, res, p) => {
      send(res, 200, await policyWire(db, await findPolicy(ctx, p, param(req, 'policy_id'))));
    },
    put: async (req, res, p) => {
      const row = await findPolicy(ctx, p, param(req, 'policy_id'));
      const b = parseWith(updateSchema, objectBody(req));
      const patch: Partial<NetworkPolicyTable> = { updated_at: nowIso() };
      if (b.name !== undefined) patch.name = b.name;
      if (b.allowed_ips !== undefined) patch.allowed_ips = JSON.stringify(b.allowed_ips.map((e) => e.trim()));
      if (b.is_global !== undefined) patch.is_global = b.is_global ? 1 : 0;
      await audited(db, p, resourceEvent('U', 'policy', row.id), async (trx) => {
        await guardPolicies(trx, p, (st) => ({
          ...st,
          policies: st.policies.map((x) => (x.id === row.id ? { ...x, ...patch } : x)),
        }));
        await updateRow(trx, 'network_policies', row.id, patch);
      });
      send(res, 200, await policyWire(db, { ...row, ...patch }));
    },
    delete: async (req, res, p) => {
      const row = await findPolicy(ctx, p, param(req, 'policy_id'));
      await audited(db, p, resourceEvent('D', 'policy', row.id, { name: row.name }), async (trx) => {
        await guardPolicies(trx, p, (st) => ({
          policies: st.policies.filter((x) => x.id !== row.id),
          attachments: st.attachments.filter((a) => a.policy_id !== row.id),
        }));
        await deletePolicy(trx, row.id);
      });
      noContent(res);
    },
  });

  const attach = async (req: Request, res: import('express').Response) => {
    const p = orgCaller(req, 'update', 'NetworkAccessPolicies');
    const row = await findPolicy(ctx, p, param(req, 'policy_id'));
    const b = parseWith(attachSchema, objectBody(req));
    if (!(await accountExists(db, p.orgId, b.account_type, b.account_id))) {
      throw notFound(b.account_type === 'member' ? 'Member not found.' : 'Service account not found.');
    }
    await audited(db, p, resourceEvent('A', 'policy', row.id, { attach: b }), async (trx) => {
      await guardPolicies(trx, p, (st) => ({
        ...st,
        attachments: [...st.attachments, { policy_id: row.id, ...b }],
      }));
      await attachPolicy(trx, row.id, b.account_type, b.account_id);
      await touch(trx, 'network_policies', row.id);
    });
    send(res, 200, await policyWire(db, await findPolicy(ctx, p, row.id)));
  };
  const detach = async (
    req: Request,
    res: import('express').Response,
    accountId: string,
    type?: AccountType,
  ) => {
    const p = orgCaller(req, 'update', 'NetworkAccessPolicies');
    const row = await findPolicy(ctx, p, param(req, 'policy_id'));
    if (!(await isAttached(db, row.id, accountId, type))) throw notFound('Attachment not found.');
    await db.transaction().execute(async (trx) => {
      await guardPolicies(trx, p, (st) => ({
        ...st,
        attachments: st.attachments.filter(
          (a) =>
            !(a.policy_id === row.id && a.account_id === accountId && (!type || a.account_type === type)),
        ),
      }));
      await detachPolicy(trx, row.id, accountId, type);
      await touch(trx, 'network_policies', row.id);
      await audit(trx, p, resourceEvent('A', 'policy', row.id, { detach: { account_id: accountId } }));
    });
    noContent(res);
  };

  // PUT (documented) and POST (what core's client sends) both attach; DELETE detaches by path or body.
  route(r, '/v1/network-policies/:policy_id/attachments/', auth, {
    put: attach,
    post: attach,
    delete: async (req, res) => {
      const b = parseWith(attachSchema, objectBody(req));
      await detach(req, res, b.account_id, b.account_type);
    },
  });
  route(r, '/v1/network-policies/:policy_id/attachments/:account_id/', auth, {
    delete: async (req, res) => detach(req, res, param(req, 'account_id')),
  });

  orgRoute(r, '/v1/audit-logs/', auth, 'Logs', {
    get: async (req, res, p) => {
      const q = snakeQuery(req);
      const unknown = Object.keys(q).filter((k) => !AUDIT_QUERY.includes(k));
      if (unknown.length) {
        throw badRequest(
          `Unknown query parameter(s): ${unknown.join(', ')}. Allowed: ${AUDIT_QUERY.join(', ')}.`,
        );
      }
      const since = isoParam('since', q.since);
      const until = isoParam('until', q.until);
      const limit = intParam('limit', q.limit, 100, 1, 1000);
      const offset = intParam('offset', q.offset, 0, 0, 1_000_000_000);
      if (q.event_type !== undefined && !/^[CRUDA]$/.test(q.event_type)) {
        throw badRequest("'event_type' must be one of C, R, U, D, A.");
      }
      const keyDigest = q.key_digest ? q.key_digest.toLowerCase() : undefined;
      if (keyDigest !== undefined && !/^[0-9a-f]{64}$/.test(keyDigest)) {
        throw badRequest("'key_digest' must be 64 hex characters.");
      }
      const filter = {
        since,
        until,
        actorId: q.actor_id ?? q.actor,
        appId: q.app_id,
        environment: q.environment_id ?? q.env,
        eventType: q.event_type,
        resourceType: q.resource_type,
        keyDigest,
      };
      const { events, count } = await auditEventsPage(db, p.orgId, filter, limit, offset);
      send(res, 200, {
        data: events.map((e) => ({
          id: e.id,
          timestamp: e.timestamp,
          event_type: e.event_type,
          resource_type: e.resource_type,
          resource_id: e.resource_id,
          actor_type: e.actor_type,
          actor_id: e.actor_id,
          token_id: e.token_id,
          app_id: e.app_id,
          environment_id: e.environment_id,
          key_digest: e.key_digest,
          path: e.path,
          detail: e.detail ? (JSON.parse(e.detail) as unknown) : null,
          ip_address: e.ip_address,
          user_agent: e.user_agent,
        })),
        count,
      });
    },
  });
}
