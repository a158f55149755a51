/**
 * core/e2e-read.ts, the one E2E read path (PhaseSession and the agent): the key checks and the decryption rules,
 * on both crypto backends. First on locally minted material, then through `PhaseSession` against the real
 * phase-bridge server behind a loopback proxy that tampers with its `/secrets/tokens/` answer: a wrong
 * `identity_key`, a swapped environment key, a wrapped share of another account, a share that opens to the wrong
 * key, a token whose public key does not match. Each is refused with a typed `KeyVerificationError`, naming the
 * check and never a key, share or value.
 */
import { availableParallelism } from 'node:os';
import {
  type CryptoBackendName,
  cryptoBackendName,
  encryptAsymmetric,
  initCrypto,
  kxRandomKeyPair,
  newEnvironmentKey,
  randomHex,
  signKeyPair,
  wrapEnvironmentKey,
  wrapKeyShare,
} from '../../core/crypto';
import {
  KeyVerificationError,
  decryptSecret,
  openAccount,
  openEnvironment,
  type KeyVerificationCheck,
} from '../../core/e2e-read';
import { join } from 'node:path';
import { DecryptPool } from '../../core/crypto-worker';
import { CryptoError } from '../../core/errors';
import { mintAccountToken } from '../../core/mint';
import { PhaseClient } from '../../core/client';
import { PhaseSession } from '../../core/session';
import { parsePssToken } from '../../core/token';
import { startTestServer } from '../support/server';
import { startTamperProxy, type TamperProxy } from './tamper-proxy';

const BACKENDS: CryptoBackendName[] = ['native', 'wasm'];

/** The error is a KeyVerificationError for `check` (a CryptoError) and its message holds none of `secrets`. */
function expectRefused(
  err: unknown,
  check: KeyVerificationCheck,
  secrets: string[] = [],
): KeyVerificationError {
  expect(err).toBeInstanceOf(KeyVerificationError);
  expect(err).toBeInstanceOf(CryptoError);
  const e = err as KeyVerificationError;
  expect(e.check).toBe(check);
  expect(e.code).toBe('key_verification');
  for (const s of secrets) expect(`${e.message} ${String(e.stack)}`).not.toContain(s);
  return e;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

afterAll(() => initCrypto({ backend: 'auto' }));

describe.each(BACKENDS)('%s backend: the checks on locally minted material', (backend) => {
  beforeAll(() => initCrypto({ backend }));

  const fixture = () => {
    const identity = signKeyPair();
    const minted = mintAccountToken('service_account', identity);
    const token = parsePssToken(minted.token);
    const env = newEnvironmentKey();
    const wrapped = wrapEnvironmentKey(env, token.publicKey);
    return { minted, token, env, wrapped };
  };

  test('runs on the backend asked for', () => {
    expect(cryptoBackendName()).toBe(backend);
  });

  test('a consistent answer opens: account, environment, secrets', () => {
    const { minted, token, env, wrapped } = fixture();
    const account = openAccount(token, minted.wrappedKeyShare);
    expect(account.publicKey).toBe(token.publicKey);
    const keys = openEnvironment(account, { ...wrapped, identityKey: env.publicKey });
    expect([keys.publicKey, keys.privateKey, keys.salt]).toEqual([env.publicKey, env.privateKey, env.salt]);
    const enc = (v: string): string => encryptAsymmetric(v, env.publicKey);
    expect(
      decryptSecret(keys, { key: enc('API_KEY'), value: enc('v'), comment: enc('why'), override: null }),
    ).toEqual({ key: 'API_KEY', value: 'v', comment: 'why', overridden: false });
  });

  test('the decryption rules: empty fields, plain comments, personal overrides', () => {
    const { env, wrapped, minted, token } = fixture();
    const keys = openEnvironment(openAccount(token, minted.wrappedKeyShare), {
      ...wrapped,
      identityKey: env.publicKey,
    });
    const enc = (v: string): string => encryptAsymmetric(v, env.publicKey);
    // An empty field is the empty string, not ciphertext.
    expect(decryptSecret(keys, { key: enc('K'), value: '', comment: '', override: null })).toEqual({
      key: 'K',
      value: '',
      comment: '',
      overridden: false,
    });
    // A comment that is not ph:v1 ciphertext is kept verbatim (older clients stored plain comments).
    expect(
      decryptSecret(keys, { key: enc('K'), value: enc('v'), comment: 'plain note', override: null }).comment,
    ).toBe('plain note');
    // The active override replaces the value; an inactive one does not.
    const item = (isActive: boolean) => ({
      key: enc('K'),
      value: enc('base'),
      comment: '',
      override: { id: 'o', value: enc('mine'), isActive, createdAt: undefined, updatedAt: undefined },
    });
    expect(decryptSecret(keys, item(true))).toMatchObject({ value: 'mine', overridden: true });
    expect(decryptSecret(keys, item(false))).toMatchObject({ value: 'base', overridden: false });
    // Ciphertext for another key does not decrypt.
    const other = encryptAsymmetric('x', kxRandomKeyPair().publicKey);
    expect(() => decryptSecret(keys, { key: other, value: '', comment: '', override: null })).toThrow(
      CryptoError,
    );
  });

  test('a wrapped share made for another account, or with another wrap key, is refused', () => {
    const { token } = fixture();
    const other = fixture();
    expectRefused(
      thrown(() => openAccount(token, other.minted.wrappedKeyShare)),
      'wrapped_key_share',
      [token.keyShare, token.wrapKey, other.minted.wrappedKeyShare],
    );
  });

  test('a share that opens but rebuilds another key, or a token with another public key, is refused', () => {
    const { token, minted } = fixture();
    const forgedShare = wrapKeyShare(randomHex(32), token.wrapKey);
    expectRefused(
      thrown(() => openAccount(token, forgedShare)),
      'account_public_key',
      [token.keyShare, token.wrapKey, forgedShare],
    );
    const wrongPk = { ...token, publicKey: kxRandomKeyPair().publicKey };
    expectRefused(
      thrown(() => openAccount(wrongPk, minted.wrappedKeyShare)),
      'account_public_key',
      [token.keyShare],
    );
  });

  test('an environment key that does not match identity_key, or does not open, is refused', () => {
    const { token, minted, env, wrapped } = fixture();
    const account = openAccount(token, minted.wrappedKeyShare);
    const other = newEnvironmentKey();
    const e1 = expectRefused(
      thrown(() =>
        openEnvironment(account, {
          ...wrapped,
          identityKey: other.publicKey,
          environmentId: 'env-1',
          label: 'environment "Production" of app "web"',
        }),
      ),
      'identity_key',
      [env.seed, env.salt, env.privateKey, account.privateKey],
    );
    expect(e1.environmentId).toBe('env-1');
    expect(e1.message).toContain('environment "Production" of app "web"');
    // Another environment's seed, wrapped to the same account, under this environment's identity_key.
    const swapped = wrapEnvironmentKey(other, token.publicKey);
    expectRefused(
      thrown(() => openEnvironment(account, { ...swapped, identityKey: env.publicKey })),
      'identity_key',
    );
    // A seed wrapped to another account does not open.
    const foreign = wrapEnvironmentKey(env, kxRandomKeyPair().publicKey);
    expectRefused(
      thrown(() => openEnvironment(account, { ...foreign, identityKey: env.publicKey })),
      'environment_key',
    );
  });
});

describe.each(BACKENDS)('%s backend: PhaseSession against the real server, answer tampered', (backend) => {
  let srv: Awaited<ReturnType<typeof startTestServer>>;
  let proxy: TamperProxy;
  let token: string;
  let otherShare: string;
  let appId: string;
  let envIds: Record<string, string>;

  beforeAll(async () => {
    await initCrypto({ backend });
    srv = await startTestServer();
    proxy = await startTamperProxy(srv.url);
    const owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
    const app = await owner.createApp({ name: `e2e-read-${backend}-${Date.now()}` });
    appId = app.id;
    envIds = Object.fromEntries(app.environments.map((e) => [e.name, e.id]));
    const role = (await owner.listRoles()).find((r) => r.name === 'Service')!;
    const sa = await owner.createServiceAccount({ name: `reader-${backend}`, role_id: role.id });
    await owner.setServiceAccountAccess(sa.id, [
      { id: app.id, environments: [envIds.Development, envIds.Production] },
    ]);
    token = sa.initialToken.token;
    await owner.createSecrets({ appId, env: 'Development' }, [{ key: 'DEV_KEY', value: 'dev-value' }]);
    await owner.createSecrets({ appId, env: 'Production' }, [{ key: 'PROD_KEY', value: 'prod-value' }]);
    // A second service account: its wrapped share is a real one, made for another token.
    const other = await owner.createServiceAccount({ name: `other-${backend}`, role_id: role.id });
    const otherBoot = await new PhaseClient({
      host: srv.url,
      token: other.initialToken.token,
      retries: 0,
    }).bootstrap();
    otherShare = otherBoot.wrapped_key_share;
  });

  afterEach(() => {
    proxy.tamper = undefined;
  });

  afterAll(async () => {
    await proxy?.close();
    await srv?.close();
  });

  const session = (t = token): Promise<PhaseSession> =>
    PhaseSession.create({ host: proxy.url, token: t, retries: 0 });
  const envKey = (body: Record<string, any>, name: string) =>
    body.apps
      .find((a: { id: string }) => a.id === appId)
      .environment_keys.find((k: { environment: { name: string } }) => k.environment.name === name);
  const tokenSecrets = (): string[] => token.split(':').slice(2);

  test('untampered: the session reads through the proxy', async () => {
    const s = await session();
    expect((await s.get({ appId, env: 'Development' })).map((x) => [x.key, x.value])).toEqual([
      ['DEV_KEY', 'dev-value'],
    ]);
  });

  test('a wrong identity_key: that environment is refused with a typed error, the others still read', async () => {
    proxy.tamper = (b) => {
      envKey(b, 'Development').identity_key = kxRandomKeyPair().publicKey;
    };
    const s = await session();
    const err = await s.get({ appId, env: 'Development' }).catch((e: unknown) => e);
    const e = expectRefused(err, 'identity_key', [...tokenSecrets(), 'dev-value']);
    expect(e.environmentId).toBe(envIds.Development);
    expect(e.message).toContain('"Development"');
    expect((await s.get({ appId, env: 'Production' }))[0].value).toBe('prod-value');
    expect(proxy.tampered).toBeGreaterThan(0);
  });

  test("another environment's wrapped seed under this identity_key is refused", async () => {
    proxy.tamper = (b) => {
      const dev = envKey(b, 'Development');
      const prod = envKey(b, 'Production');
      dev.wrapped_seed = prod.wrapped_seed;
      dev.wrapped_salt = prod.wrapped_salt;
    };
    const s = await session();
    expectRefused(await s.get({ appId, env: 'Development' }).catch((e: unknown) => e), 'identity_key');
  });

  test('a wrapped share of another account is refused at init', async () => {
    proxy.tamper = (b) => {
      b.wrapped_key_share = otherShare;
    };
    expectRefused(await session().catch((e: unknown) => e), 'wrapped_key_share', [
      ...tokenSecrets(),
      otherShare,
    ]);
  });

  test('a wrapped share that opens to the wrong key is refused at init', async () => {
    const wrapKey = parsePssToken(token).wrapKey;
    const forged = wrapKeyShare(randomHex(32), wrapKey);
    proxy.tamper = (b) => {
      b.wrapped_key_share = forged;
    };
    expectRefused(await session().catch((e: unknown) => e), 'account_public_key', [
      ...tokenSecrets(),
      forged,
    ]);
  });

  test('a token whose public key does not match is refused at init', async () => {
    const parts = token.split(':');
    parts[3] = kxRandomKeyPair().publicKey;
    expectRefused(await session(parts.join(':')).catch((e: unknown) => e), 'account_public_key', [
      parts[4],
      parts[5],
    ]);
  });

  test('refresh() refuses a tampered share and keeps the last good state', async () => {
    const s = await session();
    proxy.tamper = (b) => {
      b.wrapped_key_share = otherShare;
    };
    expectRefused(await s.refresh().catch((e: unknown) => e), 'wrapped_key_share');
    proxy.tamper = undefined;
    expect((await s.get({ appId, env: 'Development' }))[0].value).toBe('dev-value');
  });
});

describe('DecryptPool: worker threads share the decryption of large lists', () => {
  // Worker threads run compiled JavaScript, so this part loads core from dist/ (built by `npm test`).
  const dist = join(__dirname, '../../dist/core');
  const load = <T>(name: string): T => require(join(dist, name)) as T;

  test('default threads: cores − 1 at most 3 unless PHASE_BRIDGE_DECRYPT_THREADS says otherwise', () => {
    const w = load<typeof import('../../core/crypto-worker')>('crypto-worker');
    const saved = process.env.PHASE_BRIDGE_DECRYPT_THREADS;
    const auto = Math.max(0, Math.min(3, availableParallelism() - 1));
    try {
      delete process.env.PHASE_BRIDGE_DECRYPT_THREADS;
      expect(w.defaultDecryptThreads()).toBe(auto);
      expect(new w.DecryptPool().threads).toBe(auto);
      process.env.PHASE_BRIDGE_DECRYPT_THREADS = 'auto';
      expect(w.defaultDecryptThreads()).toBe(auto);
      process.env.PHASE_BRIDGE_DECRYPT_THREADS = '0';
      expect(new w.DecryptPool().threads).toBe(0);
      process.env.PHASE_BRIDGE_DECRYPT_THREADS = ' 2 ';
      expect(w.defaultDecryptThreads()).toBe(2);
      for (const bad of ['-1', '1.5', 'many', '17']) {
        process.env.PHASE_BRIDGE_DECRYPT_THREADS = bad;
        expect(() => w.defaultDecryptThreads()).toThrow(
          /PHASE_BRIDGE_DECRYPT_THREADS must be auto or an integer/,
        );
      }
    } finally {
      if (saved === undefined) delete process.env.PHASE_BRIDGE_DECRYPT_THREADS;
      else process.env.PHASE_BRIDGE_DECRYPT_THREADS = saved;
    }
  });

  test('from TypeScript sources no worker can start: the pool stays in-thread', () => {
    expect(new DecryptPool({ threads: 2 }).threads).toBe(0);
  });

  test.each(BACKENDS)(
    '%s backend: the same results as in-thread, per item, errors included',
    async (backend) => {
      const c = load<typeof import('../../core/crypto')>('crypto');
      const w = load<typeof import('../../core/crypto-worker')>('crypto-worker');
      const r = load<typeof import('../../core/e2e-read')>('e2e-read');
      await c.initCrypto({ backend });
      const env = c.newEnvironmentKey();
      const keys = { ...env, recipient: c.recipientKey(env.privateKey, env.publicKey) };
      const enc = (v: string): string => c.encryptAsymmetric(v, env.publicKey);
      const foreign = c.encryptAsymmetric('not yours', c.kxRandomKeyPair().publicKey);
      const items = Array.from({ length: 1000 }, (_, i) => ({
        key: enc(`KEY_${i}`),
        value: i === 17 ? foreign : i % 50 === 0 ? '' : enc(`value ${i} ✓`),
        comment: i % 3 === 0 ? enc(`comment ${i}`) : i % 3 === 1 ? 'plain' : '',
        override: null,
      }));
      const pool = new w.DecryptPool({ threads: 1 });
      expect(pool.threads).toBe(1);
      pool.warm();
      await pool.ready();
      try {
        const parallel = await r.decryptSecretList(keys, items, pool);
        expect(pool.lastJob!.inWorkers).toBeGreaterThan(0);
        expect(pool.lastJob!.inWorkers).toBeLessThan(pool.lastJob!.chunks);
        const inThread = await r.decryptSecretList(keys, items);
        const plain = (xs: typeof parallel) =>
          xs.map((x) => (x instanceof Error ? `error: ${x.message}` : x));
        expect(plain(parallel)).toEqual(plain(inThread));
        expect(parallel[17]).toBeInstanceOf(Error);
        expect(parallel[0]).toEqual({ key: 'KEY_0', value: '', comment: 'comment 0', overridden: false });
        expect(parallel[999]).toEqual({
          key: 'KEY_999',
          value: 'value 999 ✓',
          comment: 'comment 999',
          overridden: false,
        });
      } finally {
        await pool.close();
      }
    },
  );
});
