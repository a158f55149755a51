/**
 * `/v1/secrets/` (phase-rest-api.md §9.3): plaintext through server-side encryption, references resolved. Bulk work
 * is paced (deadline.ts): encryption happens before the write transaction, decryption per entry, both yielding to
 * the event loop every few milliseconds; writes carry at most `MAX_SECRETS_PER_REQUEST` entries.
 */
import { randomBytes } from 'node:crypto';
import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import {
  decryptAsymmetric,
  encryptAsymmetric,
  keyDigest,
  type EnvironmentKeyMaterial,
} from '../../core/crypto';
import { CryptoError } from '../../core/errors';
import { resolveSecretsContext, type SecretsContext } from '../access';
import { principal, type Principal, type ServerContext } from '../context';
import { Pacer } from '../deadline';
import { HttpError, badRequest, newId, normalizePath, notFound, nowIso, parseWith, query } from '../http';
import { ServerReferenceResolver } from '../references';
import { checkEntryCount, loadSecrets, secretWire, type LoadedSecret } from '../secrets';
import * as service from '../services/secrets';
import { route, send } from './util';

const TYPES = ['secret', 'sealed', 'config'];
const MISSING = 'Environment context required. Supply `app_id` and `env` as query parameters.';

async function sseContext(
  ctx: ServerContext,
  req: Request,
  p: Principal,
): Promise<SecretsContext & { keys: EnvironmentKeyMaterial }> {
  const c = await resolveSecretsContext(ctx, req, p, { missingMessage: MISSING });
  if (!c.app.sse_enabled) throw badRequest('SSE is not enabled for this App');
  const keys = await ctx.envKeys.get(ctx.store.db, c.env.id);
  if (!keys) throw badRequest('SSE is not enabled for this App');
  return { ...c, keys };
}

/**
 * The environment's server-side encryption for one request. Each ciphertext takes its randomness (ephemeral key,
 * nonce) from one node:crypto call: with the WebAssembly crypto backend, libsodium's own random bytes come from
 * node:crypto four bytes per call, which was half the cost of an encryption (native libsodium: no difference). The
 * format is unchanged (phase-protocol.md §2.4). Plaintexts encrypted in this request are remembered, so the response
 * does not decrypt what the request itself sent.
 */
class EnvCipher {
  private readonly known = new Map<string, string>();

  constructor(private readonly keys: EnvironmentKeyMaterial) {}

  encrypt(plaintext: string): string {
    const r = randomBytes(56);
    const ct = encryptAsymmetric(plaintext, this.keys.publicKey, {
      ephemeralPrivateKey: r.toString('hex', 0, 32),
      nonce: new Uint8Array(r.buffer, r.byteOffset + 32, 24),
    });
    this.known.set(ct, plaintext);
    return ct;
  }

  /** Decrypts a stored field; any failure (malformed key, tag mismatch) becomes a CryptoError. */
  decrypt(s: string): string {
    if (s === '') return '';
    const known = this.known.get(s);
    if (known !== undefined) return known;
    try {
      return decryptAsymmetric(s, this.keys.privateKey, this.keys.publicKey);
    } catch (err) {
      throw err instanceof CryptoError
        ? err
        : new CryptoError('stored ciphertext does not decrypt', { cause: err });
    }
  }
}

/** The secrets list as JSON: the wire objects are camelCase already (secretWire), so no camelize pass. */
async function sendList(res: Response, data: unknown[], work: Pacer): Promise<void> {
  const json = await work.jsonArray(data);
  res.status(200).type('application/json').send(json);
}

/**
 * Decrypted wire object, or null when a stored ciphertext does not decrypt (E2E clients can store any
 * well-formed `ph:v1` string): such a secret is left out, like the Go SDK does, instead of failing the request.
 */
async function plainWire(
  ctx: ServerContext,
  c: SecretsContext,
  cipher: EnvCipher,
  resolver: ServerReferenceResolver | null,
  s: LoadedSecret,
) {
  const scope = { appId: c.app.id, env: c.env };
  try {
    let value = cipher.decrypt(s.value);
    if (resolver) value = await resolver.resolve(value, scope);
    let override: string | undefined;
    if (s.override) {
      override = cipher.decrypt(s.override.value);
      if (resolver) override = await resolver.resolve(override, scope);
    }
    return secretWire(
      s,
      { key: cipher.decrypt(s.key), value, comment: cipher.decrypt(s.comment), override },
      true,
    );
  } catch (err) {
    if (!(err instanceof CryptoError)) throw err;
    ctx.log.warn(
      { secretId: s.id, environmentId: c.env.id },
      'stored secret does not decrypt with the environment key; skipped',
    );
    return null;
  }
}

interface Entry {
  key?: string;
  value?: string;
  comment?: string;
  path?: string;
  tags?: string[];
  type?: string;
  override?: { value: string; isActive: boolean };
  /** Check-and-set (update only): the version the client read. */
  expectedVersion?: number;
}

/** One `/v1/secrets/` entry as a zod schema with Phase's messages (§9.3). */
const entrySchema = (forCreate: boolean) =>
  z.unknown().transform((raw, ctx): Entry & { id?: string } => {
    const fail = (message: string) => {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message });
      return z.NEVER;
    };
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      return fail('Each secret must be a JSON object.');
    const e = raw as Record<string, unknown>;
    const out: Entry & { id?: string } = {};
    if (!forCreate) {
      if (e.id === undefined || e.id === null || e.id === '') return fail('Secret ID not provided');
      if (typeof e.id !== 'string') return fail("'id' must be a string.");
      out.id = e.id;
    }
    if (forCreate || e.key !== undefined) {
      if (typeof e.key !== 'string' || e.key.trim() === '')
        return fail("Each secret requires a non-empty 'key'.");
      out.key = e.key.toUpperCase();
    }
    if (forCreate || e.value !== undefined) {
      if (typeof e.value !== 'string') return fail("'value' must be a string.");
      out.value = e.value;
    }
    if (e.comment !== undefined && e.comment !== null) {
      if (typeof e.comment !== 'string') return fail("'comment' must be a string.");
      out.comment = e.comment;
    }
    if (e.path !== undefined && e.path !== null) {
      if (typeof e.path !== 'string') return fail("'path' must be a string.");
      out.path = normalizePath(e.path);
    }
    if (e.tags !== undefined && e.tags !== null) {
      if (!Array.isArray(e.tags) || e.tags.some((t) => typeof t !== 'string')) {
        return fail("'tags' must be a list of tag names.");
      }
      if ((e.tags as string[]).some((t) => t.length > 64))
        return fail('Tag names cannot exceed 64 characters.');
      out.tags = e.tags as string[];
    }
    if (e.type !== undefined && e.type !== null) {
      if (typeof e.type !== 'string' || !TYPES.includes(e.type)) {
        return fail(`Invalid 'type': ${JSON.stringify(e.type)}. Must be one of: secret, sealed, config.`);
      }
      out.type = e.type;
    }
    if (e.override !== undefined && e.override !== null) {
      const o = e.override as Record<string, unknown>;
      if (typeof o !== 'object' || Array.isArray(o)) return fail("'override' must be an object.");
      if (typeof o.value !== 'string') return fail("'override.value' must be a string.");
      if (typeof o.isActive !== 'boolean') return fail("'override.isActive' must be a boolean.");
      out.override = { value: o.value, isActive: o.isActive };
    }
    if (!forCreate && e.expectedVersion !== undefined && e.expectedVersion !== null) {
      const v = e.expectedVersion;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
        return fail("'expectedVersion' must be a positive integer: the version of the secret as read.");
      }
      out.expectedVersion = v;
    }
    return out;
  });

const CREATE_ENTRY = entrySchema(true);
const UPDATE_ENTRY = entrySchema(false);

/** The entries of a write, each validated; a failure is a 400 with Phase's message, too many a 413. */
function entriesOf(req: Request, forCreate: boolean): Array<Entry & { id?: string }> {
  const b = service.secretsBody(req);
  if (!Array.isArray(b.secrets) || b.secrets.length === 0)
    throw badRequest("'secrets' must be a non-empty list.");
  checkEntryCount(b.secrets.length);
  return b.secrets.map((e) => parseWith(forCreate ? CREATE_ENTRY : UPDATE_ENTRY, e));
}

/** The list filter of a `/v1` read: `key` (by its digest), `path` and `tags` query parameters. */
function filterOf(req: Request, c: { keys: EnvironmentKeyMaterial }) {
  const key = query(req, 'key');
  const path = query(req, 'path');
  const tags = query(req, 'tags');
  return {
    keyDigest: key !== undefined && key !== '' ? keyDigest(key, c.keys.salt) : undefined,
    path: path !== undefined && path !== '' ? normalizePath(path) : undefined,
    tags: tags !== undefined && tags !== '' ? tags.split(',').map((t) => t.trim()) : undefined,
  };
}

/** The response of a write: the written secrets in request order, decrypted (mostly from the request's own plaintexts). */
async function writtenSecrets(
  ctx: ServerContext,
  c: SecretsContext,
  cipher: EnvCipher,
  p: Principal,
  ids: string[],
  work: Pacer,
): Promise<unknown[]> {
  const items = new Map((await loadSecrets(ctx.store.db, c.env.id, { ids }, p)).map((s) => [s.id, s]));
  const out = [];
  for (const id of ids) {
    const s = items.get(id);
    if (!s) continue;
    const w = await plainWire(ctx, c, cipher, null, s);
    if (w) out.push(w);
    await work.tick();
  }
  return out;
}

export function registerV1Secrets(r: Router, ctx: ServerContext, auth: RequestHandler): void {
  const unsupported = (m: string) => new HttpError(403, `Unsupported HTTP method: ${m}`);

  route(
    r,
    '/v1/secrets/',
    auth,
    {
      get: async (req, res) => {
        const p = principal(req);
        const work = new Pacer();
        const c = await sseContext(ctx, req, p);
        const items = await service.listSecrets(
          ctx,
          p,
          c,
          query(req, 'lease_ttl'),
          () => filterOf(req, c),
          work,
        );
        // Extension: `raw=true` returns values with references as written (the Terraform provider compares
        // configuration with these; resolved values would show as drift and copy other secrets into state).
        const resolver = query(req, 'raw') === 'true' ? null : new ServerReferenceResolver(ctx, p);
        const cipher = new EnvCipher(c.keys);
        const out = [];
        for (const s of items) {
          const w = await plainWire(ctx, c, cipher, resolver, s);
          if (w) out.push(w);
          await work.tick();
        }
        await service.auditRead(ctx, p, c, items, 'sse', work);
        await sendList(res, out, work);
      },
      post: async (req, res) => {
        const p = principal(req);
        const work = new Pacer();
        const c = await sseContext(ctx, req, p);
        const entries = entriesOf(req, true);
        const prepared = entries.map((e) => {
          const path = e.path ?? '/';
          service.requirePath(c, path);
          return { ...e, path, digest: keyDigest(e.key as string, c.keys.salt) };
        });
        // Encryption needs no store: it runs (paced) before the transaction, which then only writes.
        const cipher = new EnvCipher(c.keys);
        const items: service.NewSecret[] = [];
        for (const e of prepared) {
          const now = nowIso();
          items.push({
            row: {
              id: newId(),
              environment_id: c.env.id,
              folder_id: null,
              path: e.path,
              key: cipher.encrypt(e.key as string),
              key_digest: e.digest,
              value: cipher.encrypt(e.value as string),
              comment: e.comment ? cipher.encrypt(e.comment) : '',
              version: 1,
              type: e.type ?? 'secret',
              created_at: now,
              updated_at: now,
              deleted_at: null,
            },
            tags: e.tags,
            override: e.override && p.kind === 'member' ? cipher.encrypt(e.override.value) : undefined,
          });
          await work.tick();
        }
        await service.createSecrets(ctx, p, c, items, work);
        await sendList(
          res,
          await writtenSecrets(
            ctx,
            c,
            cipher,
            p,
            items.map((i) => i.row.id),
            work,
          ),
          work,
        );
      },
      put: async (req, res) => {
        const p = principal(req);
        const work = new Pacer();
        const c = await sseContext(ctx, req, p);
        const entries = entriesOf(req, false);
        // New fields are encrypted (paced) before the transaction; a sealed secret's new value is dropped below.
        const cipher = new EnvCipher(c.keys);
        const sealed: Array<{ key?: string; value?: string; comment?: string; override?: string }> = [];
        for (const e of entries) {
          sealed.push({
            key: e.key !== undefined ? cipher.encrypt(e.key) : undefined,
            value: e.value !== undefined ? cipher.encrypt(e.value) : undefined,
            comment: e.comment !== undefined ? (e.comment ? cipher.encrypt(e.comment) : '') : undefined,
            override: e.override && p.kind === 'member' ? cipher.encrypt(e.override.value) : undefined,
          });
          await work.tick();
        }
        const ids = await service.updateSecrets(
          ctx,
          p,
          c,
          entries.map((e, i) => {
            const x = sealed[i];
            return {
              id: e.id as string,
              expectedVersion: e.expectedVersion,
              path: e.path,
              key: () =>
                e.key !== undefined
                  ? { key: x.key as string, keyDigest: keyDigest(e.key, c.keys.salt) }
                  : undefined,
              value: x.value,
              comment: x.comment,
              type: e.type,
              // `/v1` PUT replaces tags only when given (unlike E2E PUT).
              tags: e.tags,
              override:
                e.override && x.override !== undefined
                  ? { value: x.override, isActive: e.override.isActive }
                  : undefined,
            };
          }),
          work,
        );
        await sendList(res, await writtenSecrets(ctx, c, cipher, p, ids, work), work);
      },
      delete: async (req, res) => {
        const p = principal(req);
        const c = await sseContext(ctx, req, p);
        const b = service.secretsBody(req);
        const ids = b.secrets;
        if (Array.isArray(ids)) checkEntryCount(ids.length);
        if (!Array.isArray(ids) || ids.length === 0 || ids.some((i) => typeof i !== 'string')) {
          throw badRequest("'secrets' must be a non-empty list of secret IDs.");
        }
        const unique = [...new Set(ids as string[])];
        const n = await service.deleteSecrets(ctx, p, c, unique, (missing) => {
          if (missing.length)
            throw notFound(`Secret(s) not found in this environment: ${missing.join(', ')}`);
        });
        send(res, 200, { message: `Deleted ${n} secret${n === 1 ? '' : 's'}` });
      },
    },
    unsupported,
  );

  // No dynamic secrets on this server: the endpoint answers like Phase does for an environment without any.
  route(
    r,
    '/v1/secrets/dynamic/',
    auth,
    {
      get: async (req) => {
        await sseContext(ctx, req, principal(req));
        throw notFound('No dynamic secrets found');
      },
    },
    unsupported,
  );
}
