/**
 * Compatibility with the official `@phase.dev/phase-node` 3.1.1 SDK.
 *
 * 1. Its crypto helpers, byte for byte. The published package is a single rollup bundle that exports only the
 *    `Phase` class, so the bundle is evaluated once more with a trailing line exporting its internal helpers
 *    (`encryptAsymmetric`, `decryptAsymmetric`, `digest`, `reconstructPrivateKey`, `unwrapEnvKeys`): the official
 *    code runs unmodified, it is merely made reachable.
 * 2. Its public API end to end: the official `Phase` client and core's `PhaseSession` share one stand-in Phase
 *    Cloud upstream (a small in-memory `/service/secrets/` on 127.0.0.1, not phase-bridge's server) and read each
 *    other's writes.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as fc from 'fast-check';
import {
  accountKxKeyPair,
  decryptAsymmetric,
  digest,
  encryptAsymmetric,
  initCrypto,
  keyDigest,
  kxSeedKeyPair,
  newEnvironmentKey,
  reconstructPrivateKey,
  signKeyPair,
  unwrapEnvironmentKey,
  wrapEnvironmentKey,
  x25519PublicKey,
} from '../../core/crypto';
import { mintAccountToken } from '../../core/mint';
import { PhaseSession } from '../../core/session';
import { parsePssToken } from '../../core/token';
import { ENV_EXPECTED, FIXTURES } from './fixtures';

// ---- the official helpers ----

interface OfficialInternals {
  encryptAsymmetric(plaintext: string, publicKey: string): Promise<string>;
  decryptAsymmetric(ciphertext: string, privateKey: string, publicKey: string): Promise<string>;
  digest(input: string, salt: string): Promise<string>;
  reconstructPrivateKey(wrappedKeyShare: string, token: string): Promise<string>;
  unwrapEnvKeys(
    wrappedSeed: string,
    wrappedSalt: string,
    keyring: { publicKey: string; privateKey: string },
  ): Promise<{ seed: string; salt: string; publicKey: string; privateKey: string }>;
}

interface OfficialPhase {
  keypair: { publicKey: string; privateKey: string };
  apps: Array<{ id: string; name: string; environments: Array<{ id: string; name: string; salt: string }> }>;
  init(): Promise<void>;
  get(o: {
    appId: string;
    envName: string;
    path?: string;
    key?: string;
    tags?: string[];
  }): Promise<
    Array<{ id: string; key: string; value: string; comment: string; path: string; tags: string[] }>
  >;
  create(o: {
    appId: string;
    envName: string;
    secrets: Array<{ key: string; value: string; comment?: string; path?: string; tags?: string[] }>;
  }): Promise<void>;
  update(o: {
    appId: string;
    envName: string;
    secrets: Array<{ id: string; key?: string; value?: string; comment?: string; tags?: string[] }>;
  }): Promise<void>;
  delete(o: { appId: string; envName: string; secretIds: string[] }): Promise<void>;
}

const bundlePath = require.resolve('@phase.dev/phase-node');
const EXPOSE =
  '\n;module.exports.__internals = { encryptAsymmetric, decryptAsymmetric, digest, reconstructPrivateKey, unwrapEnvKeys };\n';

function loadOfficial(): {
  Phase: new (token: string, host?: string) => OfficialPhase;
  internals: OfficialInternals;
} {
  const src = readFileSync(bundlePath, 'utf8');
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const fn = new Function('require', 'module', 'exports', '__filename', '__dirname', src + EXPOSE);
  fn(createRequire(bundlePath), mod, mod.exports, bundlePath, bundlePath.replace(/\/[^/]+$/, ''));
  const Phase = mod.exports as unknown as new (token: string, host?: string) => OfficialPhase;
  return { Phase, internals: (mod.exports as { __internals: OfficialInternals }).__internals };
}

const official = loadOfficial();
const off = official.internals;
// The public class must come from the package entry itself, exactly as users load it.
const PublicPhase = require('@phase.dev/phase-node') as new (token: string, host?: string) => OfficialPhase;

beforeAll(async () => {
  await initCrypto();
});

const SAMPLES = [
  '',
  'x',
  'postgres://user:p@ss@db:5432/app?sslmode=require',
  'line1\nline2\r\n\ttab',
  'ünïcödé ✓ 日本語 🚀',
  '"quotes" and \'single\' and `back` $HOME ${REF}',
  'a'.repeat(10000),
];

describe('official crypto helpers (internal functions of the bundle)', () => {
  test('the bundle still exposes the helpers under these names', () => {
    for (const name of [
      'encryptAsymmetric',
      'decryptAsymmetric',
      'digest',
      'reconstructPrivateKey',
      'unwrapEnvKeys',
    ]) {
      expect(typeof (off as unknown as Record<string, unknown>)[name]).toBe('function');
    }
  });

  test.each(Object.keys(FIXTURES))(
    '%s fixture: both rebuild the same account key pair from the token',
    async (name) => {
      const f = FIXTURES[name];
      const ours = reconstructPrivateKey(
        f.wrappedKeyShare,
        parsePssToken(f.token).keyShare,
        parsePssToken(f.token).wrapKey,
      );
      const theirs = await off.reconstructPrivateKey(f.wrappedKeyShare, f.token);
      expect(ours).toBe(f.expected.accountPrivateKey);
      expect(theirs).toBe(ours);
      expect(x25519PublicKey(ours)).toBe(parsePssToken(f.token).publicKey);
    },
  );

  test.each(Object.keys(FIXTURES))('%s fixture: both unwrap the same environment keys', async (name) => {
    const f = FIXTURES[name];
    const account = { publicKey: parsePssToken(f.token).publicKey, privateKey: f.expected.accountPrivateKey };
    for (const env of f.environments) {
      const ours = unwrapEnvironmentKey(env, account);
      const theirs = await off.unwrapEnvKeys(env.wrappedSeed, env.wrappedSalt, account);
      const expected = ENV_EXPECTED[env.name];
      expect(ours).toEqual({
        seed: expected.seed,
        salt: expected.salt,
        publicKey: expected.publicKey,
        privateKey: expected.privateKey,
      });
      expect(theirs).toEqual(ours);
      expect(ours.publicKey).toBe(env.identityKey);
    }
  });

  test('freshly minted tokens: the official code rebuilds the key pair core minted', async () => {
    for (const kind of ['service_account', 'user'] as const) {
      for (let i = 0; i < 5; i++) {
        const keyring = signKeyPair();
        const minted = mintAccountToken(kind, keyring);
        const expected = accountKxKeyPair(keyring);
        expect(await off.reconstructPrivateKey(minted.wrappedKeyShare, minted.token)).toBe(
          expected.privateKey,
        );
        expect(minted.token.split(':')[3]).toBe(expected.publicKey);
        const t = parsePssToken(minted.token);
        expect(reconstructPrivateKey(minted.wrappedKeyShare, t.keyShare, t.wrapKey)).toBe(
          expected.privateKey,
        );
      }
    }
  });

  test('ph:v1 made by core decrypts with the official code, and the reverse', async () => {
    const env = ENV_EXPECTED.Development;
    for (const text of SAMPLES) {
      const ours = encryptAsymmetric(text, env.publicKey);
      expect(await off.decryptAsymmetric(ours, env.privateKey, env.publicKey)).toBe(text);
      const theirs = await off.encryptAsymmetric(text, env.publicKey);
      expect(theirs).toMatch(/^ph:v1:[0-9a-f]{64}:[A-Za-z0-9+/]+=*$/);
      expect(decryptAsymmetric(theirs, env.privateKey, env.publicKey)).toBe(text);
    }
  });

  test('ph:v1 round trips for random strings and fresh environment keys (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 200 }), async (text) => {
        const env = newEnvironmentKey();
        expect(
          await off.decryptAsymmetric(encryptAsymmetric(text, env.publicKey), env.privateKey, env.publicKey),
        ).toBe(text);
        expect(
          decryptAsymmetric(await off.encryptAsymmetric(text, env.publicKey), env.privateKey, env.publicKey),
        ).toBe(text);
      }),
      { numRuns: 40 },
    );
  });

  test('key digests match (spec §8.6 values and random keys)', async () => {
    for (const env of Object.values(ENV_EXPECTED)) {
      expect(keyDigest('API_KEY', env.salt)).toBe(env.digestApiKey);
      expect(await off.digest('API_KEY', env.salt)).toBe(env.digestApiKey);
      expect(keyDigest('database_url', env.salt)).toBe(env.digestDatabaseUrl);
      expect(await off.digest('DATABASE_URL', env.salt)).toBe(env.digestDatabaseUrl);
    }
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 80 }),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        async (k, salt) => {
          expect(digest(k, salt)).toBe(await off.digest(k, salt));
          // Core always digests the uppercased key, which is what the official client sends for uppercase input.
          expect(keyDigest(k, salt)).toBe(await off.digest(k.toUpperCase(), salt));
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---- a stand-in Phase Cloud for the public-API round trips ----

interface StoredSecret {
  id: string;
  key: string;
  value: string;
  comment: string;
  tags: string[];
  type: string;
  path: string;
  key_digest: string;
  version: number;
  created_at: string;
  updated_at: string;
  environment: string;
}

function normPath(p: unknown): string {
  const s = typeof p === 'string' && p !== '' ? ('/' + p).replace(/\/{2,}/g, '/') : '/';
  return s.length > 1 ? s.replace(/\/+$/, '') : '/';
}

/** In-memory `/service/secrets/tokens/` + `/service/secrets/`, answering like Phase (snake_case unless asked). */
async function standInPhase(bootstrap: unknown, bearer: string) {
  const secrets: StoredSecret[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body?: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const auth = req.headers.authorization ?? '';
      if (!auth.endsWith(` ${bearer}`)) return send(403, { error: 'Token expired or deleted' });
      if (req.url === '/service/secrets/tokens/') return send(200, bootstrap);
      if (req.url !== '/service/secrets/') return send(404, { error: 'Not found' });
      const env = String(req.headers.environment ?? '');
      const camel = req.headers['x-use-camel-case'] === 'true';
      const body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { secrets: unknown[] })
        : null;
      const now = new Date().toISOString();
      if (req.method === 'GET') {
        const digestH = req.headers.keydigest as string | undefined;
        const pathH = req.headers.path as string | undefined;
        const list = secrets.filter(
          (s) =>
            s.environment === env &&
            (digestH === undefined || s.key_digest === digestH) &&
            (pathH === undefined || s.path === normPath(pathH)),
        );
        return send(
          200,
          list.map((s) =>
            camel
              ? {
                  ...s,
                  key_digest: undefined,
                  keyDigest: s.key_digest,
                  createdAt: s.created_at,
                  updatedAt: s.updated_at,
                  override: null,
                }
              : { ...s, override: null, lifecycle: 'static', folder: null },
          ),
        );
      }
      if (req.method === 'POST') {
        const items = body!.secrets as Array<Record<string, unknown>>;
        for (const i of items) {
          if (
            secrets.some(
              (s) => s.environment === env && s.path === normPath(i.path) && s.key_digest === i.keyDigest,
            )
          ) {
            return send(409, { error: 'Duplicate secret found' });
          }
        }
        for (const i of items) {
          if (typeof i.comment !== 'string') return send(500, { error: 'Internal server error.' });
          secrets.push({
            id: randomUUID(),
            key: String(i.key),
            value: String(i.value),
            comment: i.comment,
            tags: (i.tags as string[]) ?? [],
            type: (i.type as string) ?? 'secret',
            path: normPath(i.path),
            key_digest: String(i.keyDigest),
            version: 1,
            created_at: now,
            updated_at: now,
            environment: env,
          });
        }
        return send(200);
      }
      if (req.method === 'PUT') {
        for (const i of body!.secrets as Array<Record<string, unknown>>) {
          const s = secrets.find((x) => x.id === i.id && x.environment === env);
          if (!s) return send(500, { error: 'Internal server error.' });
          if (typeof i.key === 'string') {
            s.key = i.key;
            s.key_digest = String(i.keyDigest);
          }
          if (typeof i.value === 'string') s.value = i.value;
          if (typeof i.comment === 'string') s.comment = i.comment;
          if (i.path !== undefined) s.path = normPath(i.path);
          s.tags = (i.tags as string[]) ?? []; // Phase's E2E PUT clears tags when omitted
          s.version += 1;
          s.updated_at = now;
        }
        return send(200);
      }
      if (req.method === 'DELETE') {
        const ids = new Set(body!.secrets as string[]);
        for (let i = secrets.length - 1; i >= 0; i--) {
          if (ids.has(secrets[i].id) && secrets[i].environment === env) secrets.splice(i, 1);
        }
        return send(200);
      }
      return send(405, { error: 'Method not allowed' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    secrets,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function freshAccount() {
  const keyring = signKeyPair();
  const minted = mintAccountToken('service_account', keyring);
  const t = '2026-01-01T00:00:00.000000Z';
  const envs = ['Development', 'Staging'].map((name, index) => {
    const key = newEnvironmentKey();
    const wrapped = wrapEnvironmentKey(key, minted.identityKey);
    return {
      key,
      record: {
        id: `ek-${index}`,
        environment: {
          id: `env-${name.toLowerCase()}`,
          name,
          env_type: index === 0 ? 'dev' : 'staging',
          index,
          created_at: t,
          updated_at: t,
        },
        identity_key: key.publicKey,
        wrapped_seed: wrapped.wrappedSeed,
        wrapped_salt: wrapped.wrappedSalt,
        paths: null,
        created_at: t,
        updated_at: t,
        deleted_at: null,
        user: null,
        service_account: 'sa-1',
      },
    };
  });
  const bootstrap = {
    wrapped_key_share: minted.wrappedKeyShare,
    account_id: 'sa-1',
    offline_enabled: false,
    organisation: { id: 'org-1', name: 'Acme' },
    apps: [{ id: 'app-1', name: 'web', encryption: 'E2E', environment_keys: envs.map((e) => e.record) }],
  };
  return { minted, envs, bootstrap };
}

describe('official Phase client and core PhaseSession on one upstream', () => {
  test('the §8.5 fixture bootstrap: both sessions derive the same keys', async () => {
    const f = FIXTURES.serviceAccount;
    const t = '2024-02-13T13:41:45.551255Z';
    const bootstrap = {
      wrapped_key_share: f.wrappedKeyShare,
      account_id: 'sa',
      offline_enabled: false,
      organisation: { id: 'o', name: 'O' },
      apps: [
        {
          id: 'app',
          name: 'fixture',
          encryption: 'E2E',
          environment_keys: f.environments.map((e, i) => ({
            id: `ek${i}`,
            environment: {
              id: `env${i}`,
              name: e.name,
              env_type: 'DEV',
              index: i,
              created_at: t,
              updated_at: t,
            },
            identity_key: e.identityKey,
            wrapped_seed: e.wrappedSeed,
            wrapped_salt: e.wrappedSalt,
            paths: null,
          })),
        },
      ],
    };
    const up = await standInPhase(bootstrap, f.expected.bearer);
    try {
      const theirs = new PublicPhase(f.token, up.url);
      await theirs.init();
      const ours = await PhaseSession.create({ host: up.url, token: f.token });
      expect(theirs.keypair).toEqual({
        publicKey: parsePssToken(f.token).publicKey,
        privateKey: f.expected.accountPrivateKey,
      });
      for (const env of theirs.apps[0].environments) {
        expect(env.salt).toBe(ENV_EXPECTED[env.name].salt);
        expect(ours.digestFor({ appId: 'app', env: env.name }, 'API_KEY')).toBe(
          ENV_EXPECTED[env.name].digestApiKey,
        );
      }
      expect(ours.apps()[0].environments.map((e) => e.publicKey)).toEqual(
        f.environments.map((e) => e.identityKey),
      );
    } finally {
      await up.close();
    }
  });

  test('each reads, updates and deletes what the other wrote', async () => {
    const { minted, envs, bootstrap } = freshAccount();
    const up = await standInPhase(bootstrap, minted.tokenValue);
    try {
      const theirs = new PublicPhase(minted.token, up.url);
      await theirs.init();
      const ours = await PhaseSession.create({ host: up.url, token: minted.token });
      const scope = { appId: 'app-1', env: 'development' };

      // core writes, the official client reads
      const created = await ours.create({
        ...scope,
        secrets: [
          { key: 'api_key', value: 'v-ünï ✓\nline2', comment: 'the api key', tags: ['backend'] },
          { key: 'DB_URL', value: 'postgres://db/app', path: '/db' },
        ],
      });
      expect(created.map((s) => s.key).sort()).toEqual(['API_KEY', 'DB_URL']);
      const read1 = await theirs.get({ appId: 'app-1', envName: 'Development' });
      expect(read1.map((s) => [s.key, s.value, s.comment, s.path, s.tags]).sort()).toEqual([
        ['API_KEY', 'v-ünï ✓\nline2', 'the api key', '/', ['backend']],
        ['DB_URL', 'postgres://db/app', '', '/db', []],
      ]);
      // The official single-key fetch finds core's digest.
      expect(
        (await theirs.get({ appId: 'app-1', envName: 'Development', key: 'api_key' })).map((s) => s.key),
      ).toEqual(['API_KEY']);

      // the official client writes, core reads (uppercase key: the official SDK digests the key as given)
      await theirs.create({
        appId: 'app-1',
        envName: 'Development',
        secrets: [{ key: 'FROM_SDK', value: 'sdk-value', comment: 'sdk comment', tags: ['x'] }],
      });
      const fromSdk = await ours.get({ ...scope, key: 'from_sdk' });
      expect(fromSdk.map((s) => [s.key, s.value, s.comment, s.tags])).toEqual([
        ['FROM_SDK', 'sdk-value', 'sdk comment', ['x']],
      ]);
      const stored = up.secrets.find((s) => s.id === fromSdk[0].id)!;
      expect(stored.key_digest).toBe(keyDigest('FROM_SDK', envs[0].key.salt));

      // the official update clears comment and tags unless resent; core's keeps them
      const apiKey = created.find((s) => s.key === 'API_KEY')!;
      await ours.update({ ...scope, secrets: [{ id: apiKey.id, value: 'rotated' }] });
      const afterOurs = (await theirs.get({ appId: 'app-1', envName: 'Development', key: 'API_KEY' }))[0];
      expect([afterOurs.value, afterOurs.comment, afterOurs.tags]).toEqual([
        'rotated',
        'the api key',
        ['backend'],
      ]);
      await theirs.update({
        appId: 'app-1',
        envName: 'Development',
        secrets: [{ id: fromSdk[0].id, value: 'sdk-2' }],
      });
      const afterTheirs = (await ours.get({ ...scope, key: 'FROM_SDK' }))[0];
      expect([afterTheirs.value, afterTheirs.comment, afterTheirs.tags, afterTheirs.version]).toEqual([
        'sdk-2',
        '',
        [],
        2,
      ]);

      // update by key (no id), rename by id
      await ours.update({ ...scope, secrets: [{ key: 'db_url', path: '/db', value: 'postgres://db2/app' }] });
      await ours.update({ ...scope, secrets: [{ id: fromSdk[0].id, key: 'renamed' }] });
      const names = (await theirs.get({ appId: 'app-1', envName: 'Development' })).map(
        (s) => `${s.path}:${s.key}=${s.value}`,
      );
      expect(names.sort()).toEqual(['/:API_KEY=rotated', '/:RENAMED=sdk-2', '/db:DB_URL=postgres://db2/app']);

      // deletes in both directions
      await theirs.delete({ appId: 'app-1', envName: 'Development', secretIds: [apiKey.id] });
      expect((await ours.get(scope)).map((s) => s.key).sort()).toEqual(['DB_URL', 'RENAMED']);
      const del = await ours.delete({ ...scope, keys: ['renamed', 'missing'] });
      expect(del.keysNotFound).toEqual(['MISSING']);
      expect((await theirs.get({ appId: 'app-1', envName: 'Development' })).map((s) => s.key)).toEqual([
        'DB_URL',
      ]);

      // the other environment is untouched, and its ciphertext is not readable with this environment's key
      expect(await ours.get({ appId: 'app-1', env: 'Staging' })).toEqual([]);
      expect(() =>
        decryptAsymmetric(up.secrets[0].value, envs[1].key.privateKey, envs[1].key.publicKey),
      ).toThrow();
      expect(kxSeedKeyPair(envs[0].key.seed).publicKey).toBe(envs[0].key.publicKey);
    } finally {
      await up.close();
    }
  });
});
