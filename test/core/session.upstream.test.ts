/**
 * PhaseSession against a stand-in Phase Cloud upstream (node:http on 127.0.0.1 serving a bootstrap and ciphertext
 * lists built with core crypto): key checks, app/environment selection, overrides, cross-app references, refresh.
 * The server-backed end-to-end test is `session.test.ts`.
 */
import * as http from 'node:http';
import { inspect } from 'node:util';
import {
  encryptAsymmetric,
  initCrypto,
  keyDigest,
  newEnvironmentKey,
  signKeyPair,
  wrapEnvironmentKey,
  type EnvironmentKeyMaterial,
} from '../../core/crypto';
import { CryptoError } from '../../core/errors';
import { mintAccountToken } from '../../core/mint';
import { ReferenceResolutionError } from '../../core/references';
import {
  AmbiguousAppError,
  AppNotFoundError,
  EnvironmentNotFoundError,
  MissingKeyMaterialError,
  PhaseSession,
  SecretNotFoundError,
  SessionNotInitialisedError,
} from '../../core/session';

beforeAll(async () => {
  await initCrypto();
});

interface Env {
  id: string;
  name: string;
  key: EnvironmentKeyMaterial;
  updatedAt: string;
  rows: Array<Record<string, unknown>>;
}

function world() {
  const keyring = signKeyPair();
  const minted = mintAccountToken('user', keyring);
  const mk = (id: string, name: string): Env => ({
    id,
    name,
    key: newEnvironmentKey(),
    updatedAt: '2026-01-01T00:00:00Z',
    rows: [],
  });
  const apps = [
    { id: 'app-a', name: 'Web', envs: [mk('a-dev', 'Development'), mk('a-prod', 'Production')] },
    { id: 'app-b', name: 'billing', envs: [mk('b-dev', 'Development')] },
    { id: 'app-c', name: 'dup', envs: [mk('c-dev', 'Development')] },
    { id: 'app-d', name: 'DUP', envs: [mk('d-dev', 'Development')] },
  ];
  const overrides: Record<string, string> = {}; // env id → forged identity_key
  const bootstrap = () => ({
    wrapped_key_share: minted.wrappedKeyShare,
    user_id: 'member-1',
    offline_enabled: false,
    organisation: { id: 'org', name: 'Org' },
    apps: apps.map((a) => ({
      id: a.id,
      name: a.name,
      encryption: 'E2E',
      environment_keys: a.envs.map((e) => {
        const w = wrapEnvironmentKey(e.key, minted.identityKey);
        return {
          id: `ek-${e.id}`,
          environment: {
            id: e.id,
            name: e.name,
            env_type: 'DEV',
            index: 0,
            created_at: 't',
            updated_at: e.updatedAt,
          },
          identity_key: overrides[e.id] ?? e.key.publicKey,
          wrapped_seed: w.wrappedSeed,
          wrapped_salt: w.wrappedSalt,
          paths: null,
        };
      }),
    })),
  });
  const env = (id: string): Env => apps.flatMap((a) => a.envs).find((e) => e.id === id)!;
  const add = (
    envId: string,
    key: string,
    value: string,
    extra: {
      path?: string;
      tags?: string[];
      override?: { value: string; active: boolean };
      comment?: string;
    } = {},
  ): string => {
    const e = env(envId);
    const id = `${envId}-${e.rows.length}`;
    e.rows.push({
      id,
      key: encryptAsymmetric(key, e.key.publicKey),
      value: encryptAsymmetric(value, e.key.publicKey),
      comment: extra.comment ? encryptAsymmetric(extra.comment, e.key.publicKey) : '',
      tags: extra.tags ?? [],
      override: extra.override
        ? {
            id: 'o',
            value: encryptAsymmetric(extra.override.value, e.key.publicKey),
            is_active: extra.override.active,
          }
        : null,
      type: 'secret',
      lifecycle: 'static',
      path: extra.path ?? '/',
      key_digest: keyDigest(key, e.key.salt),
      version: 1,
      created_at: 't',
      updated_at: 't',
      environment: envId,
      folder: null,
    });
    return id;
  };
  return { minted, apps, env, add, overrides, bootstrap };
}

async function serve(w: ReturnType<typeof world>) {
  let requests: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (!(req.headers.authorization ?? '').endsWith(w.minted.tokenValue)) {
        res.writeHead(403);
        return res.end(JSON.stringify({ error: 'Token expired or deleted' }));
      }
      if (req.url === '/service/secrets/tokens/') return res.end(JSON.stringify(w.bootstrap()));
      const envId = String(req.headers.environment);
      requests.push(envId);
      const digest = req.headers.keydigest;
      const path = req.headers.path;
      const rows = w
        .env(envId)
        .rows.filter(
          (r) => (digest === undefined || r.key_digest === digest) && (path === undefined || r.path === path),
        );
      // Mimic the server's tag join duplicating rows, and a dynamic secret entry.
      const tagged = req.headers.tags ? rows.flatMap((r) => [r, r]) : rows;
      res.end(JSON.stringify([...tagged, { id: 'dyn', type: 'dynamic', name: 'db', key_map: [] }]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    takeRequests: () => {
      const r = requests;
      requests = [];
      return r;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

test('selection, overrides, filters, cross-scope references and key checks', async () => {
  const w = world();
  w.add('a-dev', 'API_KEY', 'base', {
    override: { value: 'mine', active: true },
    comment: 'c1',
    tags: ['x'],
  });
  w.add('a-dev', 'OFF', 'base-off', { override: { value: 'unused', active: false } });
  w.add('a-dev', 'REFS', '${API_KEY}|${Production.P}|${billing::Development./cfg/B}|${/deep/D}|${nope.X}');
  w.add('a-dev', 'D', 'deep', { path: '/deep' });
  w.add('a-prod', 'P', 'prod-value');
  w.add('b-dev', 'B', 'billing-value', { path: '/cfg' });
  w.overrides['d-dev'] = '00'.repeat(32); // a forged environment public key
  const up = await serve(w);
  try {
    const pending = new PhaseSession({ host: up.url, token: w.minted.token });
    expect(() => pending.apps()).toThrow(SessionNotInitialisedError);
    const s = await pending.init();
    expect(s.accountId).toBe('member-1');
    expect(inspect(s, { depth: 10 })).not.toContain(w.minted.tokenValue);

    // App by name is exact and case-insensitive; ambiguous names are refused; env by name or id.
    expect(s.resolveScope({ appName: 'web', env: 'PRODUCTION' }).env.id).toBe('a-prod');
    expect(s.resolveScope({ appId: 'app-a', env: 'a-dev' }).env.name).toBe('Development');
    expect(() => s.resolveScope({ appName: 'Dup', env: 'Development' })).toThrow(AmbiguousAppError);
    expect(() => s.resolveScope({ appName: 'we', env: 'Development' })).toThrow(AppNotFoundError);
    expect(() => s.resolveScope({ appId: 'app-b', env: 'Production' })).toThrow(EnvironmentNotFoundError);

    // Overrides: the active one wins and is flagged.
    const all = await s.get({ appName: 'WEB', env: 'development', resolveReferences: false });
    const byKey = Object.fromEntries(all.map((x) => [x.key, x]));
    expect([byKey.API_KEY.value, byKey.API_KEY.overridden, byKey.API_KEY.comment]).toEqual([
      'mine',
      true,
      'c1',
    ]);
    expect([byKey.OFF.value, byKey.OFF.overridden]).toEqual(['base-off', false]);
    expect(all.map((x) => x.id)).not.toContain('dyn');

    // Filters: tags (duplicated rows collapse), key, path.
    expect(
      (await s.fetchScope({ appId: 'app-a', env: 'Development' }, { tags: ['x'] })).map((x) => x.key),
    ).toEqual(['API_KEY']);
    expect((await s.fetchScope({ appId: 'app-a', env: 'Development' }, { key: 'api_key' })).length).toBe(1);
    expect(
      (await s.fetchScope({ appId: 'app-a', env: 'Development' }, { path: 'deep/' })).map((x) => x.key),
    ).toEqual(['D']);

    // References: same env (override value), other env, other app and path, other path; broken ones stay verbatim.
    up.takeRequests();
    const refs = await s.get({ appId: 'app-a', env: 'Development', key: 'REFS' });
    expect(refs[0].value).toBe('mine|prod-value|billing-value|deep|${nope.X}');
    // One fetch per referenced scope: this env (all paths), Production, billing's Development.
    expect(up.takeRequests().sort()).toEqual(['a-dev', 'a-dev', 'a-prod', 'b-dev']);
    await expect(
      s.get({ appId: 'app-a', env: 'Development', key: 'REFS', resolveReferences: 'strict' }),
    ).rejects.toThrow(ReferenceResolutionError);

    // A forged environment key does not break init, but using that environment fails.
    await expect(s.get({ appId: 'app-d', env: 'Development' })).rejects.toThrow(CryptoError);
    expect((await s.get({ appId: 'app-c', env: 'Development' })).length).toBe(0);

    // Updates and deletes of unknown secrets are typed errors before any write.
    await expect(
      s.update({ appId: 'app-a', env: 'Development', secrets: [{ key: 'NOPE', value: 'x' }] }),
    ).rejects.toThrow(SecretNotFoundError);
    await expect(
      s.update({ appId: 'app-a', env: 'Development', secrets: [{ id: 'nope', value: 'x' }] }),
    ).rejects.toThrow(SecretNotFoundError);

    // refresh() reports environments whose updated_at moved.
    w.env('a-prod').updatedAt = '2026-02-02T00:00:00Z';
    const changed = await s.refresh();
    expect(changed.map((e) => e.id)).toEqual(['a-prod']);
    expect(s.environmentVersions().get('a-prod')).toBe('2026-02-02T00:00:00Z');
    expect(await s.refresh()).toEqual([]);
  } finally {
    await up.close();
  }
});

test('a token whose key material does not match the server share is refused at init', async () => {
  const w = world();
  const other = mintAccountToken('user', signKeyPair());
  const up = await serve(w);
  try {
    // Same bearer (so the upstream answers), different key share and wrap key.
    const parts = other.token.split(':');
    const forged = [...w.minted.token.split(':').slice(0, 4), parts[4], parts[5]].join(':');
    const err = await PhaseSession.create({ host: up.url, token: forged }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CryptoError);
    expect(String(err)).not.toContain(parts[4]);
    expect(() => new PhaseSession({ host: up.url, token: `User ${w.minted.tokenValue}` })).toThrow(
      MissingKeyMaterialError,
    );
  } finally {
    await up.close();
  }
});
