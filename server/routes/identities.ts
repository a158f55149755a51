/**
 * External identities (docs/identity.md): the management extension under `/v1/external-identities/` and the
 * unauthenticated logins (`/identities/external/v1/{aws/iam,oidc}/auth/`, also under `/public/` and
 * `/service/public/`) that exchange a platform credential for a short-lived service-account token.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import { orgCaller } from '../access';
import { audit, audited, resourceEvent } from '../audit';
import { rateLimit } from '../auth';
import type { Principal, ServerContext } from '../context';
import type { ExternalIdentityTable } from '../db/schema';
import { mayHandleTokensOf } from '../grant-rule';
import { badRequest, body, camelize, header, notFound, nowIso, objectBody, parseWith } from '../http';
import { verifyAwsIam, decodeSignedRequest, stsEndpointOf } from '../identity/aws-iam';
import {
  DEFAULT_TTL_SECONDS,
  MAX_TTL_SECONDS,
  configSchema,
  createIdentitySchema,
  updateIdentitySchema,
  type AwsIamConfig,
  type IdentityProvider,
  type OidcConfig,
} from '../identity/config';
import {
  accountIdOf,
  auditRefusal,
  loadAccount,
  mintLoginToken,
  ttlOf,
  type LoginAccount,
} from '../identity/login';
import { LoginError } from '../identity/login-error';
import { verifyOidcJwt } from '../identity/oidc';
import type { Db } from '../keys';
import { clientIp } from '../network';
import {
  attachedAccountIds,
  attachIdentity,
  deleteIdentity,
  detachIdentity,
} from '../repositories/identities';
import { findInOrg, foundInOrg, insertRow, listInOrg, newRecord, updateRow } from '../repositories/rows';
import { noContent, orgRoute, param, route, sendEach } from './util';

/** snake_case keys for the record's own fields (bodies may be camelCase); `config` is left as given. */
function snakeBody(b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b)) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v;
  return out;
}

function parseConfig(provider: IdentityProvider, raw: unknown): Record<string, unknown> {
  return parseWith(configSchema(provider), raw) as Record<string, unknown>;
}

async function identityWire(db: Db, row: ExternalIdentityTable) {
  const accounts = await attachedAccountIds(db, row.id);
  return {
    ...(camelize({
      id: row.id,
      name: row.name,
      description: row.description,
      provider: row.provider,
      token_name_pattern: row.token_name_pattern,
      default_ttl_seconds: row.default_ttl_seconds,
      max_ttl_seconds: row.max_ttl_seconds,
      service_accounts: accounts,
      created_at: row.created_at,
      updated_at: row.updated_at,
    }) as Record<string, unknown>),
    // Sent as stored: claim names inside `boundClaims` must not be re-cased.
    config: JSON.parse(row.config) as unknown,
  };
}

const findIdentity = (ctx: ServerContext, p: Principal, id: string) =>
  foundInOrg(ctx.store.db, 'external_identities', p.orgId, id, 'External identity not found.');

function ttlBounds(defaultTtl: number, maxTtl: number): void {
  if (defaultTtl > maxTtl) {
    throw badRequest(`'default_ttl_seconds' (${defaultTtl}) cannot exceed 'max_ttl_seconds' (${maxTtl}).`);
  }
}

/**
 * Attaching an identity lets the holder of a platform credential act as the account: the token rule of the subset
 * rule applies (the account itself or a global-access member). Anything else looks like a missing account.
 */
async function attachableAccount(ctx: ServerContext, p: Principal, saId: string) {
  const sa = await findInOrg(ctx.store.db, 'service_accounts', p.orgId, saId);
  if (!sa || !mayHandleTokensOf(p, sa.id)) throw notFound('Service account not found.');
  if (!sa.server_wrapped_keyring) {
    throw badRequest('Service account does not have server-side key management enabled; it cannot log in.');
  }
  return sa;
}

export function registerIdentities(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const db = ctx.store.db;

  orgRoute(r, '/v1/external-identities/', auth, 'ExternalIdentities', {
    get: async (req, res, p) => {
      const rows = await listInOrg(db, 'external_identities', p.orgId);
      // Sent as built: identityWire cases its own fields and keeps claim names in `config` as stored.
      await sendEach(res, rows, (row) => identityWire(db, row), true);
    },
    post: async (req, res, p) => {
      const b = parseWith(createIdentitySchema, snakeBody(objectBody(req)));
      const config = parseConfig(b.provider, b.config);
      const defaultTtl =
        b.default_ttl_seconds ?? Math.min(DEFAULT_TTL_SECONDS, b.max_ttl_seconds ?? MAX_TTL_SECONDS);
      const maxTtl = b.max_ttl_seconds ?? MAX_TTL_SECONDS;
      ttlBounds(defaultTtl, maxTtl);
      const row: ExternalIdentityTable = {
        ...newRecord(),
        org_id: p.orgId,
        provider: b.provider,
        name: b.name,
        description: b.description ?? null,
        config: JSON.stringify(config),
        token_name_pattern: b.token_name_pattern ?? null,
        default_ttl_seconds: defaultTtl,
        max_ttl_seconds: maxTtl,
        deleted_at: null,
      };
      await audited(
        db,
        p,
        resourceEvent('C', 'external_identity', row.id, { name: row.name, provider: row.provider }),
        async (trx) => {
          await insertRow(trx, 'external_identities', row);
        },
      );
      res.status(201).json(await identityWire(db, row));
    },
  });

  orgRoute(r, '/v1/external-identities/:identity_id/', auth, 'ExternalIdentities', {
    get: async (req, res, p) => {
      res.status(200).json(await identityWire(db, await findIdentity(ctx, p, param(req, 'identity_id'))));
    },
    put: async (req, res, p) => {
      const row = await findIdentity(ctx, p, param(req, 'identity_id'));
      const b = parseWith(updateIdentitySchema, snakeBody(objectBody(req)));
      if (Object.keys(b).length === 0) throw badRequest('At least one field must be provided.');
      const patch: Partial<ExternalIdentityTable> = { updated_at: nowIso() };
      if (b.name !== undefined) patch.name = b.name;
      if (b.description !== undefined) patch.description = b.description;
      if (b.config !== undefined)
        patch.config = JSON.stringify(parseConfig(row.provider as IdentityProvider, b.config));
      if (b.token_name_pattern !== undefined) patch.token_name_pattern = b.token_name_pattern;
      if (b.default_ttl_seconds !== undefined) patch.default_ttl_seconds = b.default_ttl_seconds;
      if (b.max_ttl_seconds !== undefined) patch.max_ttl_seconds = b.max_ttl_seconds;
      const next = { ...row, ...patch };
      ttlBounds(next.default_ttl_seconds, next.max_ttl_seconds);
      await audited(db, p, resourceEvent('U', 'external_identity', row.id), async (trx) => {
        await updateRow(trx, 'external_identities', row.id, patch);
      });
      res.status(200).json(await identityWire(db, next));
    },
    delete: async (req, res, p) => {
      const row = await findIdentity(ctx, p, param(req, 'identity_id'));
      await audited(
        db,
        p,
        resourceEvent('D', 'external_identity', row.id, { name: row.name }),
        async (trx) => {
          await deleteIdentity(trx, row.id);
        },
      );
      noContent(res);
    },
  });

  orgRoute(r, '/v1/external-identities/:identity_id/attachments/', auth, 'ExternalIdentities', {
    put: async (req, res, p) => {
      const row = await findIdentity(ctx, p, param(req, 'identity_id'));
      const b = snakeBody(objectBody(req));
      const unknown = Object.keys(b).filter((k) => k !== 'service_account_id');
      if (unknown.length) throw badRequest(`Unknown field(s): ${unknown.map((k) => `'${k}'`).join(', ')}.`);
      if (typeof b.service_account_id !== 'string')
        throw badRequest('Missing required field: service_account_id');
      const sa = await attachableAccount(ctx, p, b.service_account_id);
      await audited(
        db,
        p,
        resourceEvent('A', 'external_identity', row.id, { attach: sa.id }),
        async (trx) => {
          await attachIdentity(trx, row.id, sa.id);
        },
      );
      res.status(200).json(await identityWire(db, row));
    },
  });

  route(r, '/v1/external-identities/:identity_id/attachments/:sa_id/', auth, {
    delete: async (req, res) => {
      const p = orgCaller(req, 'update', 'ExternalIdentities');
      const row = await findIdentity(ctx, p, param(req, 'identity_id'));
      const sa = await attachableAccount(ctx, p, param(req, 'sa_id'));
      if (!(await detachIdentity(db, row.id, sa.id))) throw notFound('Attachment not found.');
      await audit(db, p, resourceEvent('A', 'external_identity', row.id, { detach: sa.id }));
      noContent(res);
    },
  });

  registerLogins(r, ctx);
}

/** A base64 JWT, or the compact JWT itself (accepted too: it cannot be mistaken for base64 of one). */
function jwtOf(b: unknown): string {
  const raw = (b as { oidc?: { jwt?: unknown } }).oidc?.jwt;
  if (typeof raw !== 'string' || raw === '')
    throw new LoginError(400, "Missing field 'oidc.jwt' (the JWT, base64).");
  if (/^[\w-]+\.[\w-]+\.[\w-]*$/.test(raw)) return raw;
  return Buffer.from(raw, 'base64').toString('utf8').trim();
}

type Verify = (
  b: unknown,
  account: LoginAccount,
) => Promise<{ identity: ExternalIdentityTable; subject: string }>;

function registerLogins(r: Router, ctx: ServerContext): void {
  const allowLoopback = ctx.allowLoopbackIdentityEndpoints === true;

  const aws: Verify = async (b, account) => {
    const signed = decodeSignedRequest((b as { awsIam?: unknown }).awsIam);
    // Several AWS identities: the one whose endpoint the request was signed for, else the first (Phase's rule).
    const identity =
      account.identities.find(
        (i) => stsEndpointOf(JSON.parse(i.config) as AwsIamConfig).host === signed.request.url.host,
      ) ?? account.identities[0];
    const arn = await verifyAwsIam(JSON.parse(identity.config) as AwsIamConfig, signed, allowLoopback);
    return { identity, subject: arn };
  };

  const oidc: Verify = async (b, account) => {
    const jwt = jwtOf(b);
    let last: LoginError | undefined;
    // The first attached identity that accepts the token wins; the last refusal is the answer otherwise.
    for (const identity of account.identities) {
      try {
        const claims = await verifyOidcJwt(JSON.parse(identity.config) as OidcConfig, jwt, allowLoopback);
        return { identity, subject: String(claims.sub) };
      } catch (e) {
        if (!(e instanceof LoginError)) throw e;
        last = e;
      }
    }
    throw last ?? new LoginError(401, 'JWT was refused.');
  };

  const login =
    (provider: IdentityProvider, label: string, verify: Verify) =>
    async (req: Request, res: Response): Promise<void> => {
      const ip = clientIp(req, ctx.trustedProxies);
      const userAgent = header(req, 'User-Agent') ?? null;
      rateLimit(ctx, `anon:${ip}`);
      let account: LoginAccount | undefined;
      try {
        const b = body(req);
        if (b === undefined) throw new LoginError(400, 'Invalid JSON');
        account = await loadAccount(ctx, accountIdOf(b), provider, label);
        const { identity, subject } = await verify(b, account);
        const ttl = ttlOf(b, identity);
        res.status(200).json(await mintLoginToken(ctx, account, identity, ttl, { ip, userAgent, subject }));
      } catch (e) {
        if (!(e instanceof LoginError)) throw e;
        ctx.metrics.authFailures.inc({ reason: `${provider}_login` });
        if (account) await auditRefusal(ctx, account.sa, provider, { ip, userAgent }, e);
        res.status(e.status).json({ error: e.message, ...e.extra });
      }
    };

  for (const prefix of ['', '/public']) {
    r.post(`${prefix}/identities/external/v1/aws/iam/auth/`, login('aws_iam', 'AWS IAM', aws));
    r.post(`${prefix}/identities/external/v1/oidc/auth/`, login('oidc', 'OIDC', oidc));
  }
}
