/**
 * Client-decryption endpoints (phase-protocol.md §3.2–§3.3): `GET /secrets/tokens/` (token bootstrap, always
 * snake_case) and `/secrets/` (ciphertext CRUD; snake_case unless `X-Use-Camel-Case: true`).
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { looksLikePhaseCiphertext } from '../../core/crypto';
import { parseAuthorizationHeader } from '../../core/token';
import { resolveSecretsContext } from '../access';
import { authenticate, lookupToken, rateLimit } from '../auth';
import { principal, type Principal, type ServerContext } from '../context';
import { Pacer } from '../deadline';
import {
  HttpError,
  badRequest,
  conflict,
  forbidden,
  header,
  newId,
  normalizePath,
  nowIso,
  parseWith,
} from '../http';
import { clientIp } from '../network';
import { bootstrapKeys } from '../repositories/apps';
import { checkEntryCount, secretWire } from '../secrets';
import * as service from '../services/secrets';

const SECRET_TYPES = ['secret', 'sealed', 'config'] as const;

/** Phase's `validate_encrypted_string`: an empty value passes. */
const ct = (field: string) =>
  z
    .string({ invalid_type_error: `'${field}' must be a string.` })
    .refine((s) => s === '' || looksLikePhaseCiphertext(s), {
      message: 'Invalid ciphertext format',
    });

const tagList = z
  .array(z.string().max(64, { message: '!Tag names cannot exceed 64 characters.' }), {
    invalid_type_error: "'tags' must be a list of tag names.",
  })
  .nullish();

const overrideSchema = z
  .object({ value: ct('override.value'), isActive: z.boolean().optional() })
  .passthrough()
  .nullish();

const createItem = z
  .object({
    key: ct('key').refine((s) => s !== '', { message: "Each secret requires a non-empty 'key'." }),
    keyDigest: z.string({ required_error: "!Each secret requires a 'keyDigest'." }).min(1),
    value: ct('value'),
    comment: ct('comment').optional(),
    path: z.string().nullish(),
    tags: tagList,
    type: z.enum(SECRET_TYPES).optional(),
    override: overrideSchema,
  })
  .passthrough();

const EXPECTED_VERSION = "!'expectedVersion' must be a positive integer: the version of the secret as read.";

const updateItem = z
  .object({
    id: z.string({ required_error: '!Secret ID not provided' }),
    key: ct('key').optional(),
    keyDigest: z.string().min(1).optional(),
    value: ct('value').optional(),
    comment: ct('comment').optional(),
    path: z.string().nullish(),
    tags: tagList,
    type: z.enum(SECRET_TYPES).optional(),
    override: overrideSchema,
    // Check-and-set (extension): the version the client read; 409 when the stored one differs.
    expectedVersion: z
      .number({ invalid_type_error: EXPECTED_VERSION })
      .int({ message: EXPECTED_VERSION })
      .positive({ message: EXPECTED_VERSION })
      .nullish(),
  })
  .passthrough();

function secretsArray<T extends z.ZodTypeAny>(item: T) {
  return z
    .object({
      secrets: z.array(item, {
        required_error: "!'secrets' must be a list.",
        invalid_type_error: "!'secrets' must be a list.",
      }),
    })
    .passthrough();
}

/** The body of a bulk write or delete, refused with 413 before validation when it carries too many entries. */
function bulkBody(req: Request): Record<string, unknown> {
  const b = service.secretsBody(req);
  if (Array.isArray(b.secrets)) checkEntryCount(b.secrets.length);
  return b;
}

function useCamel(req: Request): boolean {
  return header(req, 'X-Use-Camel-Case') === 'true';
}

/** The list filter of an E2E read: `Path`, `KeyDigest` and `Tags` headers. */
function filterOf(req: Request) {
  const path = header(req, 'Path');
  const digest = header(req, 'KeyDigest');
  const tags = header(req, 'Tags');
  return {
    path: path !== undefined && path !== '' ? normalizePath(path) : undefined,
    keyDigest: digest !== undefined && digest !== '' ? digest : undefined,
    tags: tags
      ? tags
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean)
      : undefined,
  };
}

export function e2eRouter(ctx: ServerContext): Router {
  const r = Router({ strict: true, caseSensitive: true });

  // Token bootstrap: no network-policy check (Phase's AllowAny); every failure is 403 (never Phase's 500).
  r.get('/secrets/tokens/', async (req: Request, res: Response) => {
    const parsed = parseAuthorizationHeader(header(req, 'Authorization'));
    if (!parsed.ok) {
      rateLimit(ctx, `anon:${clientIp(req, ctx.trustedProxies)}`);
      ctx.metrics.authFailures.inc({ reason: parsed.reason === 'missing' ? 'missing' : 'malformed' });
      throw forbidden('Token expired or deleted');
    }
    const rec = await lookupToken(ctx, parsed.authType, parsed.token);
    if (!rec) {
      rateLimit(ctx, `anon:${clientIp(req, ctx.trustedProxies)}`);
      ctx.metrics.authFailures.inc({ reason: 'invalid_token' });
      throw forbidden('Token expired or deleted');
    }
    rateLimit(ctx, `token:${rec.tokenId}`);
    const keys = await bootstrapKeys(ctx.store.db, rec);
    const apps = new Map<
      string,
      { id: string; name: string; encryption: string; environment_keys: unknown[] }
    >();
    for (const k of keys) {
      let app = apps.get(k.app_id);
      if (!app) {
        app = {
          id: k.app_id,
          name: k.app_name,
          encryption: k.sse_enabled ? 'SSE' : 'E2E',
          environment_keys: [],
        };
        apps.set(k.app_id, app);
      }
      let paths: string[] | null = null;
      try {
        paths = k.paths ? (JSON.parse(k.paths) as string[]) : null;
      } catch {
        paths = null;
      }
      app.environment_keys.push({
        id: k.key_id,
        environment: {
          id: k.env_id,
          name: k.env_name,
          env_type: k.env_type,
          index: k.sort_index,
          created_at: k.env_created_at,
          updated_at: k.env_updated_at,
        },
        user: rec.kind === 'member' ? rec.accountId : null,
        service_account: rec.kind === 'service_account' ? rec.accountId : null,
        paths: paths && paths.length ? paths : null,
        identity_key: k.identity_key,
        wrapped_seed: k.wrapped_seed,
        wrapped_salt: k.wrapped_salt,
        created_at: k.key_created_at,
        updated_at: k.key_updated_at,
        deleted_at: null,
      });
    }
    const out: Record<string, unknown> = { wrapped_key_share: rec.wrappedKeyShare };
    if (rec.kind === 'member') out.user_id = rec.accountId;
    else out.account_id = rec.accountId;
    out.offline_enabled = false;
    out.organisation = { id: rec.orgId, name: rec.orgName };
    out.apps = [...apps.values()];
    res.status(200).json(out);
  });

  const auth = authenticate(ctx);

  const missing = 'Environment context required. Supply the `Environment` header with an environment id.';

  r.head('/secrets/', auth, (req: Request) => {
    throw new HttpError(403, `Unsupported HTTP method: ${req.method}`);
  });

  r.get('/secrets/', auth, async (req: Request, res: Response) => {
    const p = principal(req);
    const work = new Pacer();
    const c = await resolveSecretsContext(ctx, req, p, { missingMessage: missing });
    const items = await service.listSecrets(ctx, p, c, header(req, 'lease-ttl'), () => filterOf(req), work);
    await service.auditRead(ctx, p, c, items, 'e2e', work);
    const camel = useCamel(req);
    const json = await work.jsonArray(items.map((s) => secretWire(s, undefined, camel)));
    res.status(200).type('application/json').send(json);
  });

  r.post('/secrets/', auth, async (req: Request, res: Response) => {
    const p = principal(req);
    const work = new Pacer();
    const c = await resolveSecretsContext(ctx, req, p, { missingMessage: missing });
    const { secrets } = parseWith(secretsArray(createItem), bulkBody(req));
    const seen = new Set<string>();
    const prepared = secrets.map((s) => {
      const path = normalizePath(s.path ?? '/');
      service.requirePath(c, path);
      const k = `${path}\u0000${s.keyDigest}`;
      if (seen.has(k)) throw conflict('Duplicate secret found');
      seen.add(k);
      return { ...s, path };
    });
    const now = nowIso();
    await service.createSecrets(
      ctx,
      p,
      c,
      prepared.map((s) => ({
        row: {
          id: newId(),
          environment_id: c.env.id,
          folder_id: null,
          path: s.path,
          key: s.key,
          key_digest: s.keyDigest,
          value: s.value,
          comment: s.comment ?? '',
          version: 1,
          type: s.type ?? 'secret',
          created_at: now,
          updated_at: now,
          deleted_at: null,
        },
        tags: s.tags,
        override: s.override?.value,
      })),
      work,
    );
    res.status(200).end();
  });

  r.put('/secrets/', auth, async (req: Request, res: Response) => {
    const p = principal(req);
    const work = new Pacer();
    const c = await resolveSecretsContext(ctx, req, p, { missingMessage: missing });
    const { secrets } = parseWith(secretsArray(updateItem), bulkBody(req));
    await service.updateSecrets(
      ctx,
      p,
      c,
      secrets.map((s) => ({
        id: s.id,
        expectedVersion: s.expectedVersion ?? undefined,
        path: s.path !== undefined && s.path !== null ? normalizePath(s.path) : undefined,
        key: () => {
          // A new key without its digest would leave the blind index pointing at the old name.
          if (s.key !== undefined && s.keyDigest === undefined) {
            throw badRequest("'keyDigest' is required when 'key' is given.");
          }
          return s.key !== undefined ? { key: s.key, keyDigest: s.keyDigest as string } : undefined;
        },
        value: s.value,
        comment: s.comment,
        type: s.type,
        // E2E PUT always applies tags: omitting them clears them (Phase behaviour the official clients rely on).
        tags: s.tags ?? [],
        override: s.override ? { value: s.override.value, isActive: s.override.isActive ?? true } : undefined,
      })),
      work,
    );
    res.status(200).end();
  });

  r.delete('/secrets/', auth, async (req: Request, res: Response) => {
    const p = principal(req);
    const c = await resolveSecretsContext(ctx, req, p, { missingMessage: missing });
    const { secrets: ids } = parseWith(
      z
        .object({
          secrets: z.array(z.string(), {
            required_error: "!'secrets' must be a list of secret IDs.",
            invalid_type_error: "!'secrets' must be a list of secret IDs.",
          }),
        })
        .passthrough(),
      bulkBody(req),
    );
    await service.deleteSecrets(ctx, p, c, ids);
    res.status(200).end();
  });

  // Unsupported methods fail after authentication, like Phase's secrets views.
  r.all('/secrets/', auth, (req: Request) => {
    throw new HttpError(403, `Unsupported HTTP method: ${req.method}`);
  });

  return r;
}

export type { Principal };
