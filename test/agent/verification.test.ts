/**
 * The agent refuses a server answer that fails core's E2E key checks (core/e2e-read.ts, the same code as
 * `PhaseSession`): the real phase-bridge server behind a loopback proxy that tampers with its `/secrets/tokens/`
 * answer. A refused answer is a failed refresh: the agent keeps serving the last good values (STALE, until
 * max-stale), `/v1/status` names the reason, nothing from the tampered answer is used, and the next good answer
 * recovers.
 */
import { startAgent, type AgentHandle } from '../../agent/agent';
import { initCrypto, kxRandomKeyPair, randomHex, wrapKeyShare } from '../../core/crypto';
import { PhaseClient } from '../../core/client';
import { parsePssToken } from '../../core/token';
import { startTestServer } from '../support/server';
import { startTamperProxy, type TamperProxy } from '../core/tamper-proxy';
import { call, provision, silent, testConfig, until, type Provisioned } from './helpers';

const FIRST = 'first-good-value-3f9c';
const LATER = 'later-value-upstream-8d21';

let srv: Awaited<ReturnType<typeof startTestServer>>;
let proxy: TamperProxy;
const agents: AgentHandle[] = [];

beforeAll(async () => {
  await initCrypto();
  srv = await startTestServer();
  proxy = await startTamperProxy(srv.url);
});

afterEach(async () => {
  proxy.tamper = undefined;
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await proxy?.close();
  await srv?.close();
});

interface ScopeStatus {
  name: string;
  serving: boolean;
  cache: string;
  lastError: { code: string; message: string } | null;
  failClosed: { code: string; message: string } | null;
}
interface Status {
  ready: boolean;
  upstream: { lastError: { code: string; message: string } | null };
  scopes: ScopeStatus[];
}

async function status(a: AgentHandle): Promise<Status> {
  return JSON.parse((await call(a, '/v1/status')).body) as Status;
}

async function values(a: AgentHandle): Promise<Record<string, string>> {
  const r = await call(a, '/v1/secrets');
  expect(r.status).toBe(200);
  return JSON.parse(r.body) as Record<string, string>;
}

function envKey(body: Record<string, any>, p: Provisioned, name: string) {
  return body.apps
    .find((a: { id: string }) => a.id === p.appId)
    .environment_keys.find((k: { environment: { name: string } }) => k.environment.name === name);
}

async function agentThroughProxy(p: Provisioned): Promise<AgentHandle> {
  const a = await startAgent(
    testConfig({
      host: proxy.url,
      token: p.token,
      scopes: [{ app: p.appName, env: 'Production' }],
      maxStale: '1h',
    }),
    { logger: silent },
  );
  agents.push(a);
  await a.engine.firstSync;
  return a;
}

/** Tampers, changes a secret upstream, and checks that the agent keeps the last good values and names `check`. */
async function refusedKeepsServing(
  p: Provisioned,
  a: AgentHandle,
  tamper: NonNullable<TamperProxy['tamper']>,
  mention: RegExp,
  secretMaterial: string[],
): Promise<void> {
  expect(await values(a)).toEqual({ API_KEY: FIRST });
  proxy.tamper = tamper;
  const seen = proxy.tampered;
  // A write upstream moves updated_at: an accepted answer would make the agent download and serve it.
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'ADDED', value: LATER }]);
  const st = await until(async () => {
    const s = await status(a);
    return proxy.tampered > seen + 1 && s.scopes[0].lastError ? s : undefined;
  });
  const scope = st.scopes[0];
  expect(scope.lastError!.code).toBe('key_verification');
  expect(scope.lastError!.message).toMatch(/refused the upstream's \/secrets\/tokens\/ answer/);
  expect(scope.lastError!.message).toMatch(mention);
  expect(scope.failClosed).toBeNull();
  expect(scope.serving).toBe(true);
  expect(scope.cache).toBe('STALE');
  const doc = JSON.stringify(st);
  const [, , bearer, , keyShare, wrapKey] = p.token.split(':'); // the public key is in /v1/status on purpose
  for (const s of [...secretMaterial, bearer, keyShare, wrapKey, FIRST, LATER]) expect(doc).not.toContain(s);
  // Still the last good values, several cycles later.
  await new Promise((r) => setTimeout(r, 400));
  expect(await values(a)).toEqual({ API_KEY: FIRST });
  // A good answer again: the agent recovers and picks up the change.
  proxy.tamper = undefined;
  await until(async () => (await values(a)).ADDED === LATER);
  expect(await values(a)).toEqual({ API_KEY: FIRST, ADDED: LATER });
  const after = await status(a);
  expect(after.scopes[0].lastError).toBeNull();
  expect(after.scopes[0].cache).toBe('HIT');
}

test('a wrong identity_key: refused, last good values served, /v1/status names the reason', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'API_KEY', value: FIRST }] });
  const a = await agentThroughProxy(p);
  await refusedKeepsServing(
    p,
    a,
    (b) => {
      envKey(b, p, 'Production').identity_key = kxRandomKeyPair().publicKey;
    },
    /environment "Production" of app "[^"]+" \([^)]+\): the key derived from its wrapped seed does not match the server's identity_key/,
    [],
  );
});

test("another environment's wrapped seed under this identity_key: refused the same way", async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'API_KEY', value: FIRST }] });
  const a = await agentThroughProxy(p);
  await refusedKeepsServing(
    p,
    a,
    (b) => {
      const prod = envKey(b, p, 'Production');
      const staging = envKey(b, p, 'Staging');
      prod.wrapped_seed = staging.wrapped_seed;
      prod.wrapped_salt = staging.wrapped_salt;
    },
    /does not match the server's identity_key/,
    [],
  );
});

test('a wrapped share of another account: refused, last good values served, /v1/status names the reason', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'API_KEY', value: FIRST }] });
  const other = await provision(srv.url, srv.ownerToken);
  const otherShare = (await new PhaseClient({ host: srv.url, token: other.token, retries: 0 }).bootstrap())
    .wrapped_key_share;
  const a = await agentThroughProxy(p);
  await refusedKeepsServing(
    p,
    a,
    (b) => {
      b.wrapped_key_share = otherShare;
    },
    /wrapped key share does not open with the token's wrap key/,
    [otherShare],
  );
  const st = await status(a);
  expect(st.ready).toBe(true);
});

test('a wrapped share that opens to the wrong key: refused (the rebuilt public key does not match)', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'API_KEY', value: FIRST }] });
  const forged = wrapKeyShare(randomHex(32), parsePssToken(p.token).wrapKey);
  const a = await agentThroughProxy(p);
  await refusedKeepsServing(
    p,
    a,
    (b) => {
      b.wrapped_key_share = forged;
    },
    /does not match the token's public key/,
    [forged],
  );
});

test('a refused first answer: nothing served, /v1/status says why', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'API_KEY', value: FIRST }] });
  proxy.tamper = (b) => {
    envKey(b, p, 'Production').identity_key = kxRandomKeyPair().publicKey;
  };
  const a = await agentThroughProxy(p);
  const st = await status(a);
  expect(st.ready).toBe(false);
  expect(st.scopes[0].serving).toBe(false);
  expect(st.scopes[0].lastError!.code).toBe('key_verification');
  expect((await call(a, '/v1/secrets')).status).toBe(503);
  proxy.tamper = undefined;
  await until(async () => (await call(a, '/v1/secrets')).status === 200);
  expect(await values(a)).toEqual({ API_KEY: FIRST });
});
