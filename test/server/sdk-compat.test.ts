/**
 * The official `@phase.dev/phase-node` 3.1.1 SDK, unmodified, against our server on loopback (issue 3, "Tests that
 * must pass"): a service account minted by `POST /v1/service-accounts/` and granted an environment through
 * `PUT /v1/service-accounts/:id/access/` reads, creates, updates and deletes secrets over the E2E endpoints, and
 * sees exactly what the SSE `/v1/secrets/` API sees, and vice versa. Runs on every store.
 *
 * What the SDK sends (read from its dist/index.js): `GET /service/secrets/tokens/` once in init(); then
 * `/service/secrets/` with headers `environment`, `path`, `keyDigest`, `X-Use-Camel-Case: true`, `User-agent`;
 * POST/PUT bodies are JSON strings sent with `Content-Type: application/x-www-form-urlencoded` (axios default);
 * DELETE carries a JSON body. It digests the key as given but encrypts it uppercased, so keys here are uppercase.
 */
import Phase from '@phase.dev/phase-node';
import {
  initCrypto,
  keyDigest,
  reconstructPrivateKey,
  unwrapEnvironmentKey,
  x25519PublicKey,
} from '../../core/crypto';
import { STORES } from '../support/stores';
import { startTestServer } from '../support/server';
import {
  Api,
  authFor,
  call,
  type AppInfo,
  type SAInfo,
  type SseSecret,
  uniq,
  withTimeout,
} from './verify-helpers';

type SdkSecret = Awaited<ReturnType<Phase['get']>>[number];

const SDK_TIMEOUT = 10_000;

/** Comparable view of a secret: what both APIs must agree on. */
function view(s: {
  id: string;
  key: string;
  value: string;
  comment: string;
  path: string;
  tags: string[];
  version: number;
}) {
  return {
    id: s.id,
    key: s.key,
    value: s.value,
    comment: s.comment,
    path: s.path,
    tags: [...s.tags].sort(),
    version: s.version,
  };
}
const byId = <T extends { id: string }>(a: T, b: T): number => a.id.localeCompare(b.id);

// The SDK throws inside `new Promise(async …)` executors, so its HTTP failures surface as unhandled rejections while
// the call itself never settles. Collect them: any one is a test failure with the SDK's own message.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
afterEach(() => {
  const seen = unhandled.splice(0);
  expect(seen.map(String)).toEqual([]);
});

describe.each(STORES)('official Node SDK 3.1.1 against the server (%s)', (store) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let owner: Api;
  let saApi: Api;
  let app: AppInfo;
  let sa: SAInfo;
  let sdk: Phase;
  let url: string;

  const sdkGet = (
    opts: Omit<Parameters<Phase['get']>[0], 'appId'> & { appId?: string },
  ): Promise<SdkSecret[]> => withTimeout(sdk.get({ appId: app.id, ...opts }), SDK_TIMEOUT, 'sdk.get');
  const v1List = (env = 'Development', extra = ''): Promise<SseSecret[]> =>
    owner.listSecrets(app.id, env, extra);

  beforeAll(async () => {
    server = await startTestServer({ store });
    url = server.url.replace(/\/+$/, '');
    owner = new Api(url, authFor(server.ownerToken));
    const roles = await owner.roles();
    app = await owner.createApp(uniq('sdk-app'));
    expect(Object.keys(app.envs).sort()).toEqual(['Development', 'Production', 'Staging']);
    sa = await owner.createSA(uniq('sdk-sa'), roles.Service);
    expect(sa.token).toMatch(/^pss_service:v2:[0-9a-f]{64}:[0-9a-f]{64}:[0-9a-f]{64}:[0-9a-f]{64}$/);
    expect(sa.bearer).toBe(`ServiceAccount ${sa.token.split(':')[2]}`);
    await owner.grantSA(sa.id, [{ id: app.id, environments: [app.envs.Development, app.envs.Staging] }]);
    saApi = new Api(url, `Bearer ${sa.bearer}`);
    sdk = new Phase(sa.token, url);
    await withTimeout(sdk.init(), SDK_TIMEOUT, 'sdk.init');
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  test('init: the SDK sees exactly the granted environments of the app', () => {
    const mine = sdk.apps.find((a) => a.id === app.id);
    expect(mine).toBeDefined();
    expect(mine!.environments.map((e) => e.name).sort()).toEqual(['Development', 'Staging']);
    expect(mine!.environments.find((e) => e.name === 'Development')!.id).toBe(app.envs.Development);
    // The keypair the SDK rebuilt is the token's public key (segment 3) plus the reconstructed private key.
    expect(sdk.keypair.publicKey).toBe(sa.token.split(':')[3]);
  });

  test('wire contract the SDKs rely on: /secrets/tokens/ shape, environment keys, E2E casing (§15 items 3, 5)', async () => {
    await initCrypto();
    const auth = `Bearer ${sa.bearer}`;
    // Always snake_case, even when the client asks for camelCase (the Node SDK does).
    const t = await call(url, 'GET', '/service/secrets/tokens/', {
      auth,
      headers: { 'X-Use-Camel-Case': 'true' },
    });
    expect(t.status).toBe(200);
    expect(t.json).toMatchObject({
      account_id: sa.id,
      offline_enabled: false,
      organisation: { id: expect.any(String), name: expect.any(String) },
    });
    expect(t.json.wrapped_key_share).toMatch(/^[0-9a-f]+$/);
    expect(t.json.user_id).toBeUndefined();
    const [, , , pub, share0, wrapKey] = sa.token.split(':');
    const priv = reconstructPrivateKey(t.json.wrapped_key_share, share0, wrapKey);
    // The reconstructed private key belongs to the token's public key (segment 3).
    expect(x25519PublicKey(priv)).toBe(pub);
    const appEntry = (t.json.apps as any[]).find((a) => a.id === app.id);
    expect(appEntry).toMatchObject({ name: app.name, encryption: 'SSE' });
    expect(appEntry.environment_keys).toHaveLength(2);
    for (const k of appEntry.environment_keys) {
      expect(Object.keys(k.environment).sort()).toEqual(
        expect.arrayContaining(['id', 'name', 'env_type', 'created_at', 'updated_at']),
      );
      expect(k).toMatchObject({ service_account: sa.id, paths: null, deleted_at: null });
      // identity_key is the ENVIRONMENT public key: the unwrapped seed derives exactly that key pair.
      const env = unwrapEnvironmentKey(
        { wrappedSeed: k.wrapped_seed, wrappedSalt: k.wrapped_salt },
        { publicKey: pub, privateKey: priv },
      );
      expect(env.publicKey).toBe(k.identity_key);
      expect(env.salt).toMatch(/^[0-9a-f]{64}$/);
      expect(k.environment.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    const devKey = appEntry.environment_keys.find((k: any) => k.environment.id === app.envs.Development);
    const devEnv = unwrapEnvironmentKey(
      { wrappedSeed: devKey.wrapped_seed, wrappedSalt: devKey.wrapped_salt },
      { publicKey: pub, privateKey: priv },
    );

    // E2E GET: snake_case by default, camelCase only with X-Use-Camel-Case: true; KeyDigest header matching is
    // case-insensitive on the name and treats _ like - (§3.4).
    await owner.ok(
      'POST',
      owner.secretsPath(app.id, 'Development'),
      { secrets: [{ key: 'WIRE_KEY', value: 'wire', tags: ['w'] }] },
      200,
    );
    const snake = await call(url, 'GET', '/service/secrets/', {
      auth,
      headers: { Environment: app.envs.Development },
    });
    expect(snake.status).toBe(200);
    const wire = (snake.json as any[]).find((x) => x.key_digest === keyDigest('WIRE_KEY', devEnv.salt));
    expect(wire).toBeDefined();
    expect(wire).toMatchObject({
      tags: ['w'],
      type: 'secret',
      lifecycle: 'static',
      path: '/',
      version: 1,
      environment: app.envs.Development,
      override: null,
    });
    expect(wire.key).toMatch(/^ph:v1:[0-9a-f]{64}:/);
    expect(wire.keyDigest).toBeUndefined();
    const camel = await call(url, 'GET', '/service/secrets/', {
      auth,
      headers: {
        environment: app.envs.Development,
        key_digest: keyDigest('WIRE_KEY', devEnv.salt),
        'X-Use-Camel-Case': 'true',
      },
    });
    expect(camel.status).toBe(200);
    expect((camel.json as any[]).map((x) => x.keyDigest)).toEqual([keyDigest('WIRE_KEY', devEnv.salt)]);
    expect(camel.json[0].key_digest).toBeUndefined();
    await owner.ok('DELETE', owner.secretsPath(app.id, 'Development'), { secrets: [wire.id] }, 200);
  });

  test('SDK creates → /v1/secrets/ sees the same keys, values, comments, paths and tags', async () => {
    await withTimeout(
      sdk.create({
        appId: app.id,
        envName: 'Development',
        secrets: [
          { key: 'SDK_PLAIN', value: 'plain-value', comment: 'made by the sdk' },
          {
            key: 'SDK_PATHED',
            value: 'ünïcødé ✓ "quoted" \\ back',
            comment: '',
            path: '/api',
            tags: ['alpha'],
          },
          { key: 'SDK_MULTILINE', value: 'line1\nline2\n', comment: 'multi', tags: ['alpha', 'beta'] },
        ],
      }),
      SDK_TIMEOUT,
      'sdk.create',
    );
    const v1 = await v1List();
    const got = Object.fromEntries(v1.map((s) => [s.key, s]));
    expect(got.SDK_PLAIN).toMatchObject({
      value: 'plain-value',
      comment: 'made by the sdk',
      path: '/',
      version: 1,
    });
    expect(got.SDK_PATHED).toMatchObject({
      value: 'ünïcødé ✓ "quoted" \\ back',
      comment: '',
      path: '/api',
      tags: ['alpha'],
    });
    expect(got.SDK_MULTILINE).toMatchObject({ value: 'line1\nline2\n', comment: 'multi' });
    expect([...got.SDK_MULTILINE.tags].sort()).toEqual(['alpha', 'beta']);
    // The same through the SA's own bearer on /v1 (SSE): one account, two APIs, one truth.
    const viaSa = await saApi.listSecrets(app.id, 'Development');
    expect(viaSa.map(view).sort(byId)).toEqual(v1.map(view).sort(byId));
  });

  test('/v1/secrets/ creates → the SDK decrypts the same secrets (all paths, ?key, ?path)', async () => {
    const created: SseSecret[] = await owner.ok(
      'POST',
      owner.secretsPath(app.id, 'Development'),
      {
        secrets: [
          { key: 'v1_lower_key', value: 'from-v1', comment: 'v1 comment', tags: ['gamma'] },
          { key: 'V1_DEEP', value: 'deep', path: '/deep/er/', comment: '' },
          { key: 'DB_HOST', value: 'db.internal' },
          { key: 'DB_URL', value: 'postgres://${DB_HOST}:5432' },
        ],
      },
      200,
    );
    expect(created.map((s) => s.key).sort()).toEqual(['DB_HOST', 'DB_URL', 'V1_DEEP', 'V1_LOWER_KEY']);
    expect(created.find((s) => s.key === 'V1_DEEP')!.path).toBe('/deep/er');

    const all = await sdkGet({ envName: 'Development' });
    const v1 = await v1List();
    // Same set, same ids, same decrypted content — references resolved on both sides (client and server).
    expect(all.map(view).sort(byId)).toEqual(v1.map(view).sort(byId));
    expect(all.find((s) => s.key === 'DB_URL')!.value).toBe('postgres://db.internal:5432');
    expect(all.find((s) => s.key === 'V1_LOWER_KEY')).toMatchObject({
      value: 'from-v1',
      comment: 'v1 comment',
      tags: ['gamma'],
    });

    const one = await sdkGet({ envName: 'development', key: 'v1_lower_key' }); // get() matches env names case-insensitively
    expect(one.map((s) => s.key)).toEqual(['V1_LOWER_KEY']);
    const deep = await sdkGet({ envName: 'Development', path: '/deep/er' });
    expect(deep.map((s) => s.key)).toEqual(['V1_DEEP']);
    const v1Deep = await v1List('Development', '&path=/deep/er');
    expect(v1Deep.map((s) => s.id)).toEqual(deep.map((s) => s.id));
    const tagged = await sdkGet({ envName: 'Development', tags: ['gamma'] });
    expect(tagged.map((s) => s.key)).toEqual(['V1_LOWER_KEY']);
  });

  test('updates flow both ways; versions, comments and tags follow the E2E rules', async () => {
    const before = Object.fromEntries((await v1List()).map((s) => [s.key, s]));
    // SDK update of a /v1-made secret: new value; omitted comment and tags are cleared (SDK sends "" and []).
    await withTimeout(
      sdk.update({
        appId: app.id,
        envName: 'Development',
        secrets: [{ id: before.V1_LOWER_KEY.id, value: 'sdk-updated' }],
      }),
      SDK_TIMEOUT,
      'sdk.update',
    );
    let after = Object.fromEntries((await v1List()).map((s) => [s.key, s]));
    expect(after.V1_LOWER_KEY).toMatchObject({
      id: before.V1_LOWER_KEY.id,
      key: 'V1_LOWER_KEY',
      value: 'sdk-updated',
      comment: '',
      tags: [],
      version: before.V1_LOWER_KEY.version + 1,
    });

    // SDK renames a key and moves nothing else; /v1 ?key= finds it under the new name only.
    await withTimeout(
      sdk.update({
        appId: app.id,
        envName: 'Development',
        secrets: [{ id: before.SDK_PLAIN.id, key: 'SDK_RENAMED', comment: 'kept', tags: ['delta'] }],
      }),
      SDK_TIMEOUT,
      'sdk.update rename',
    );
    expect((await v1List('Development', '&key=SDK_PLAIN')).length).toBe(0);
    const renamed = await v1List('Development', '&key=sdk_renamed');
    expect(renamed.map(view)).toEqual([
      view({
        ...before.SDK_PLAIN,
        key: 'SDK_RENAMED',
        comment: 'kept',
        tags: ['delta'],
        version: before.SDK_PLAIN.version + 1,
      }),
    ]);

    // /v1 update of an SDK-made secret → the SDK decrypts the new value.
    await owner.ok(
      'PUT',
      owner.secretsPath(app.id, 'Development'),
      { secrets: [{ id: before.SDK_MULTILINE.id, value: 'v1-updated', comment: 'v1 says hi' }] },
      200,
    );
    const sdkView = await sdkGet({ envName: 'Development', key: 'SDK_MULTILINE' });
    expect(sdkView).toHaveLength(1);
    expect(sdkView[0]).toMatchObject({
      value: 'v1-updated',
      comment: 'v1 says hi',
      version: before.SDK_MULTILINE.version + 1,
    });
    // /v1 PUT without tags keeps them (§9.3 PUT rule 5).
    expect([...sdkView[0].tags].sort()).toEqual(['alpha', 'beta']);

    after = Object.fromEntries((await v1List()).map((s) => [s.key, s]));
    const all = await sdkGet({ envName: 'Development' });
    expect(all.map(view).sort(byId)).toEqual(Object.values(after).map(view).sort(byId));
  });

  test('deletes flow both ways', async () => {
    const before = Object.fromEntries((await v1List()).map((s) => [s.key, s]));
    await withTimeout(
      sdk.delete({ appId: app.id, envName: 'Development', secretIds: [before.SDK_PATHED.id] }),
      SDK_TIMEOUT,
      'sdk.delete',
    );
    const afterSdkDelete = await v1List();
    expect(afterSdkDelete.map((s) => s.id)).not.toContain(before.SDK_PATHED.id);
    expect(afterSdkDelete).toHaveLength(Object.keys(before).length - 1);

    const del = await owner.req('DELETE', owner.secretsPath(app.id, 'Development'), {
      secrets: [before.V1_DEEP.id],
    });
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ message: 'Deleted 1 secret' });
    const all = await sdkGet({ envName: 'Development' });
    expect(all.map((s) => s.id)).not.toContain(before.V1_DEEP.id);
    expect(all.map(view).sort(byId)).toEqual((await v1List()).map(view).sort(byId));
  });

  test('environments stay separate, and a write bumps environment.updated_at', async () => {
    const tokensBefore = await call(url, 'GET', '/service/secrets/tokens/', { auth: `Bearer ${sa.bearer}` });
    expect(tokensBefore.status).toBe(200);
    const envOf = (body: any, id: string) =>
      body.apps.flatMap((a: any) => a.environment_keys).find((k: any) => k.environment.id === id).environment;
    const stagingBefore = envOf(tokensBefore.json, app.envs.Staging);

    await withTimeout(
      sdk.create({
        appId: app.id,
        envName: 'Staging',
        secrets: [{ key: 'ONLY_STAGING', value: 's', comment: '' }],
      }),
      SDK_TIMEOUT,
      'sdk.create staging',
    );
    const tokensAfter = await call(url, 'GET', '/service/secrets/tokens/', { auth: `Bearer ${sa.bearer}` });
    expect(envOf(tokensAfter.json, app.envs.Staging).updated_at).not.toBe(stagingBefore.updated_at);

    expect((await sdkGet({ envName: 'Staging' })).map((s) => s.key)).toEqual(['ONLY_STAGING']);
    expect((await v1List('Staging')).map((s) => s.key)).toEqual(['ONLY_STAGING']);
    expect((await sdkGet({ envName: 'Development' })).map((s) => s.key)).not.toContain('ONLY_STAGING');
    expect((await v1List('Development')).map((s) => s.key)).not.toContain('ONLY_STAGING');
  });

  test('every write, through either API, changes environment.updated_at (§15 item 4)', async () => {
    const envPath = `/v1/environments/${app.envs.Staging}/`;
    const stamp = async (): Promise<string> =>
      (await owner.ok('GET', envPath, undefined, 200)).updatedAt as string;
    const seen = [await stamp()];
    const sp = owner.secretsPath(app.id, 'Staging');
    const [made] = await owner.ok('POST', sp, { secrets: [{ key: 'STAMP', value: '1' }] }, 200);
    seen.push(await stamp());
    await owner.ok('PUT', sp, { secrets: [{ id: made.id, value: '2' }] }, 200);
    seen.push(await stamp());
    await withTimeout(
      sdk.update({ appId: app.id, envName: 'Staging', secrets: [{ id: made.id, value: '3' }] }),
      SDK_TIMEOUT,
      'sdk.update',
    );
    seen.push(await stamp());
    await withTimeout(
      sdk.delete({ appId: app.id, envName: 'Staging', secretIds: [made.id] }),
      SDK_TIMEOUT,
      'sdk.delete',
    );
    seen.push(await stamp());
    for (let i = 1; i < seen.length; i++) expect([i, seen[i] > seen[i - 1]]).toEqual([i, true]);
  });

  test('an environment the account was not granted is invisible to the SDK', async () => {
    await owner.ok(
      'POST',
      owner.secretsPath(app.id, 'Production'),
      { secrets: [{ key: 'PROD_ONLY', value: 'p' }] },
      200,
    );
    await expect(sdk.get({ appId: app.id, envName: 'Production' })).rejects.toMatch(
      /Invalid environment name/,
    );
    // A fresh SDK session (re-reads /secrets/tokens/) still lists only the granted environments.
    const fresh = new Phase(sa.token, url);
    await withTimeout(fresh.init(), SDK_TIMEOUT, 'fresh init');
    expect(
      fresh.apps
        .find((a) => a.id === app.id)!
        .environments.map((e) => e.name)
        .sort(),
    ).toEqual(['Development', 'Staging']);
  });

  test('a second SA token minted by POST /v1/service-accounts/:id/tokens/ works with the SDK', async () => {
    const minted = await owner.ok('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'second' }, 201);
    expect(minted.token).toMatch(/^pss_service:v2:/);
    // Same account, so the same X25519 public key (segment 3) as the initial token.
    expect(minted.token.split(':')[3]).toBe(sa.token.split(':')[3]);
    const other = new Phase(minted.token, url);
    await withTimeout(other.init(), SDK_TIMEOUT, 'second init');
    const a = await withTimeout(
      other.get({ appId: app.id, envName: 'Development' }),
      SDK_TIMEOUT,
      'second get',
    );
    const b = await sdkGet({ envName: 'Development' });
    expect(a.map(view).sort(byId)).toEqual(b.map(view).sort(byId));
  });
});
