/**
 * The subset rule: no principal (member or service account, through any route) creates, changes or hands on access,
 * roles or network policies beyond what it holds itself, and nobody edits their own role, their own access or the
 * role they hold. Every route that grants asks this module; nothing else decides "may A grant G?".
 *
 * This is stricter than Phase in one visible way: a role may be assigned (to a member, an invite or a service account)
 * or written into a custom role only when every permission in it is also in the granter's role. A Manager therefore
 * cannot create a `Service` service account (Service may delete environments; Manager may not). See docs/server.md.
 */
import { isIP } from 'node:net';
import { isGlobal, pathAllowed } from './access';
import type { Principal } from './context';
import type { AccountType, RoleTable } from './db/schema';
import { forbidden } from './http';
import type { Db } from './keys';
import { effectiveMap, type PermissionMap, type RoleLike } from './rbac';
import { liveAccountIds } from './repositories/accounts';

/** The account a grant is aimed at. */
export interface GrantTarget {
  type: AccountType;
  id: string;
}

const isSelf = (p: Principal, t: GrantTarget): boolean => p.kind === t.type && p.accountId === t.id;

// ---------------------------------------------------------------------------------------------------------------
// Roles

/** Permissions of `role` that `holder` lacks, as `Resource:action` (app ones prefixed `app `), plus global access. */
export function permissionsBeyond(role: RoleLike, holder: RoleLike | null): string[] {
  const want = effectiveMap(role);
  const have = holder ? effectiveMap(holder) : {};
  const missing: string[] = [];
  const compare = (w: PermissionMap | undefined, h: PermissionMap | undefined, prefix: string): void => {
    for (const [resource, actions] of Object.entries(w ?? {})) {
      if (!Array.isArray(actions)) continue;
      const held = h?.[resource];
      for (const a of actions) {
        if (!Array.isArray(held) || !held.includes(a)) missing.push(`${prefix}${resource}:${a}`);
      }
    }
  };
  compare(want.permissions, have.permissions, '');
  compare(want.app_permissions, have.app_permissions, 'app ');
  if (want.global_access === true && have.global_access !== true) missing.unshift('global access');
  return missing;
}

function beyondMessage(what: string, missing: string[], holder: Principal): string {
  const shown =
    missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, and ${missing.length - 5} more` : '');
  const own = holder.role ? `your role '${holder.role.name}'` : 'your account (it has no role)';
  return `${what}: it allows ${shown}, which ${own} does not. You can only grant what you hold.`;
}

/**
 * May `p` give `role` to `target` (a member's or service account's role; `target` undefined for a new account or an
 * invite)? Nobody changes their own role; every permission of `role` must be held by `p`.
 */
export function assertMayAssignRole(p: Principal, role: RoleTable, target?: GrantTarget): void {
  if (target) assertMayChangeRoleOf(p, target);
  const missing = permissionsBeyond(role, p.role);
  if (missing.length) throw forbidden(beyondMessage(`You cannot assign the '${role.name}' role`, missing, p));
}

/** Nobody changes their own role (members were already refused by Phase; service accounts are too). */
export function assertMayChangeRoleOf(p: Principal, target: GrantTarget): void {
  if (isSelf(p, target)) throw forbidden('You cannot update your own role.');
}

/** Nobody edits the role they hold: they would be granting themselves whatever they write into it. */
export function assertMayEditRole(p: Principal, role: Pick<RoleTable, 'id'>): void {
  if (p.role?.id === role.id) throw forbidden('You cannot modify the role you hold.');
}

/** May `p` write a custom role with these permissions (create or update)? */
export function assertMayWriteRole(
  p: Principal,
  name: string,
  permissions: { permissions: PermissionMap; app_permissions: PermissionMap },
): void {
  const missing = permissionsBeyond(
    { name, is_default: 0, permissions: JSON.stringify(permissions) },
    p.role,
  );
  if (missing.length)
    throw forbidden(beyondMessage(`You cannot give the role '${name}' these permissions`, missing, p));
}

// ---------------------------------------------------------------------------------------------------------------
// Access (apps, environments, paths)

/** Nobody changes their own access: a narrow grant would otherwise widen itself. */
export function assertMayChangeAccessOf(p: Principal, target: GrantTarget): void {
  if (isSelf(p, target)) throw forbidden('You cannot change your own access.');
}

/**
 * Paths granted on an app must lie inside the granter's own paths there. `granterPaths` null = unrestricted. A
 * path-limited granter must name paths: leaving them out would grant every path.
 */
export function assertPathsWithin(
  p: Principal,
  appName: string,
  granterPaths: string[] | null,
  paths: string[] | null,
): void {
  if (isGlobal(p) || granterPaths === null) return;
  const own = granterPaths.join(', ');
  if (paths === null) {
    throw forbidden(
      `Your access to app '${appName}' is limited to the paths ${own}: list 'paths' inside them for this app.`,
    );
  }
  const outside = paths.filter((x) => !pathAllowed(granterPaths, x));
  if (outside.length) {
    throw forbidden(
      `You cannot grant the paths ${outside.join(', ')} on app '${appName}': your access is limited to ${own}.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens

/**
 * A token carries its account's whole access, so only the account itself or a global-access member may mint or revoke
 * one (§9.4.7's scope rule; team-owned accounts do not exist on this server). Anything else looks like a missing SA.
 */
export function mayHandleTokensOf(p: Principal, serviceAccountId: string): boolean {
  return p.kind === 'service_account' ? p.accountId === serviceAccountId : isGlobal(p);
}

// ---------------------------------------------------------------------------------------------------------------
// Network policies

interface Net {
  family: 4 | 6;
  bits: bigint;
  prefix: number;
}

function toBits(addr: string, family: 4 | 6): bigint {
  if (family === 4) return addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  // Expand `::` and an embedded IPv4 tail into eight 16-bit groups.
  let s = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = toBits(v4[1], 4);
    s = `${s.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

/** `1.2.3.4`, `10.0.0.0/8`, `::1`, `2001:db8::/32` → a network; invalid → undefined (skipped, as in enforcement). */
export function parseNet(entry: string): Net | undefined {
  const s = entry.trim();
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return undefined;
  const width = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? width : Number(s.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > width || !/^\d+$/.test(String(prefix)))
    return undefined;
  const host = BigInt(width - prefix);
  return { family, prefix, bits: (toBits(addr, family) >> host) << host };
}

function netWithin(child: Net, parent: Net): boolean {
  if (child.family !== parent.family || child.prefix < parent.prefix) return false;
  const host = BigInt((child.family === 4 ? 32 : 128) - parent.prefix);
  return (child.bits >> host) << host === parent.bits;
}

/** Where an account may connect from: null = anywhere (no policy applies), else the union of these entries. */
export type Reach = string[] | null;

/** Every entry of `child` lies inside some entry of `parent` (null = anywhere). Conservative for split ranges. */
export function reachWithin(child: Reach, parent: Reach): boolean {
  if (parent === null) return true;
  if (child === null) return false;
  const parents = parent.map(parseNet).filter((n): n is Net => n !== undefined);
  return child.every((e) => {
    const n = parseNet(e);
    return n === undefined || parents.some((q) => netWithin(n, q));
  });
}

export interface PolicyRow {
  id: string;
  allowed_ips: string;
  is_global: number;
}
export interface AttachmentRow {
  policy_id: string;
  account_type: AccountType;
  account_id: string;
}

/** The organisation's policies and attachments: what the rule reasons over, before and after a change. */
export interface PolicyState {
  policies: PolicyRow[];
  attachments: AttachmentRow[];
}

function entriesOf(p: PolicyRow): string[] {
  try {
    const v = JSON.parse(p.allowed_ips) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** An account's reach in a state: the union of its own and the global policies, as the auth middleware applies it. */
export function reachIn(state: PolicyState, account: GrantTarget): Reach {
  const own = new Set(
    state.attachments
      .filter((a) => a.account_type === account.type && a.account_id === account.id)
      .map((a) => a.policy_id),
  );
  const applicable = state.policies.filter((p) => p.is_global || own.has(p.id));
  return applicable.length ? applicable.flatMap(entriesOf) : null;
}

export async function loadPolicyState(db: Db, orgId: string): Promise<PolicyState> {
  const policies = await db
    .selectFrom('network_policies')
    .select(['id', 'allowed_ips', 'is_global'])
    .where('org_id', '=', orgId)
    .execute();
  const ids = policies.map((p) => p.id);
  const attachments = ids.length
    ? await db
        .selectFrom('network_policy_attachments')
        .select(['policy_id', 'account_type', 'account_id'])
        .where('policy_id', 'in', ids)
        .execute()
    : [];
  return { policies, attachments };
}

async function orgAccounts(db: Db, orgId: string): Promise<GrantTarget[]> {
  const members = await liveAccountIds(db, orgId, 'member');
  const sas = await liveAccountIds(db, orgId, 'service_account');
  return [
    ...members.map((id) => ({ type: 'member' as const, id })),
    ...sas.map((id) => ({ type: 'service_account' as const, id })),
  ];
}

/**
 * May `p` move the organisation's network policies from `before` to `after`? Every account whose reach changes may,
 * afterwards, connect only from addresses it could connect from before or that `p` itself may connect from. So a
 * restricted principal cannot add `0.0.0.0/0` anywhere, attach a wide policy, or detach someone's last policy
 * (which would leave them unrestricted); an unrestricted one can do all of these.
 */
export async function assertMayChangePolicies(
  db: Db,
  p: Principal,
  before: PolicyState,
  after: PolicyState,
): Promise<void> {
  const own = reachIn(before, { type: p.kind, id: p.accountId });
  if (own === null) return;
  const touchesGlobal = [...before.policies, ...after.policies].some((x) => x.is_global);
  const affected = touchesGlobal
    ? await orgAccounts(db, p.orgId)
    : dedupe(
        [...before.attachments, ...after.attachments].map((a) => ({
          type: a.account_type,
          id: a.account_id,
        })),
      );
  for (const account of affected) {
    const was = reachIn(before, account);
    const now = reachIn(after, account);
    if (reachWithin(now, was) || reachWithin(now, own)) continue;
    const who = isSelf(p, account)
      ? 'you'
      : `${account.type === 'member' ? 'member' : 'service account'} ${account.id}`;
    throw forbidden(
      now === null
        ? `This change would leave ${who} without any network policy (reachable from anywhere), but your own access is limited to ${own.join(', ')}.`
        : `This change would let ${who} connect from addresses outside your own network access (${own.join(', ')}).`,
    );
  }
}

function dedupe(list: GrantTarget[]): GrantTarget[] {
  const seen = new Map<string, GrantTarget>();
  for (const t of list) seen.set(`${t.type}:${t.id}`, t);
  return [...seen.values()];
}
