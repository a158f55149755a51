/**
 * The agent and `run` logging in with a workload identity (issue 13, docs/identity.md "Agent and run"): the real
 * agent CLI (dist/) against a real server on loopback (`allowLoopbackIdentityEndpoints`), the OIDC issuer stand-in
 * signing Kubernetes-shaped tokens, and an STS stand-in that checks SigV4 signatures as STS does. Also the SigV4
 * signer against AWS's published vectors, the AWS credential chain, and the configuration.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOidcIssuer, type OidcIssuer } from '../support/identity-issuers';
import { freePort } from '../support/ports';
import { startTestServer, type TestServer } from '../support/server';
import { AwsCredentialChain, parseIni } from '../../agent/auth/aws-credentials';
import { stsTarget } from '../../agent/auth/aws-iam';
import { signV4 } from '../../agent/auth/sigv4';
import { configFromOptions } from '../../agent/cli';
import { buildConfig, envLayer, KUBERNETES_TOKEN_PATH } from '../../agent/config';
import { AgentConfigError } from '../../agent/errors';
import {
  agentGet,
  agentStatus,
  CLI,
  clientTokenOf,
  DIST,
  logLines,
  projectedVolume,
  provision,
  spawnCli,
  startSigningSts,
  until,
  type CliProcess,
  type Provisioned,
  type SigningSts,
} from './helpers';

let srv: TestServer;
let issuer: OidcIssuer;
let sts: SigningSts;
const running: CliProcess[] = [];

beforeAll(async () => {
  expect(existsSync(CLI)).toBe(true); // build first: npx tsc -p tsconfig.build.json (npm test does)
  issuer = await startOidcIssuer();
  sts = await startSigningSts();
  srv = await startTestServer({ allowLoopbackIdentityEndpoints: true });
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await srv?.close();
  await issuer?.close();
  await sts?.close();
});

const k8sJwt = (namespace = 'shop', serviceAccount = 'api') =>
  issuer.kubernetesToken({ namespace, serviceAccount, audience: 'phase' });

/** An app with one secret, a service account with access to it, and an OIDC identity for the issuer attached. */
async function oidcAccount(
  o: { subjects?: string[]; defaultTtl?: number } = {},
): Promise<{ p: Provisioned; identityId: string; value: string }> {
  const value = `postgres://db-${Math.random().toString(36).slice(2)}`;
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'DB_URL', value }] });
  const identity = await p.owner.createExternalIdentity({
    name: `cluster-${p.appName}`,
    provider: 'oidc',
    config: {
      issuer: issuer.url,
      audiences: ['phase'],
      boundSubjects: o.subjects ?? ['system:serviceaccount:shop:api'],
    },
    defaultTtlSeconds: o.defaultTtl ?? 600,
    maxTtlSeconds: 3600,
  });
  await p.owner.attachExternalIdentity(identity.id, p.saId);
  return { p, identityId: identity.id, value };
}

interface Agent {
  proc: CliProcess;
  port: number;
  dataDir: string;
  clientToken: string;
  get(path: string): ReturnType<typeof agentGet>;
  status(): Promise<any>;
}

/** `phase-bridge agent` for the app's Production environment, with `args` on top. */
async function agent(
  p: Provisioned,
  args: string[],
  env: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), 'agent-identity-')),
): Promise<Agent> {
  const port = await freePort();
  const proc = spawnCli(
    [
      'agent',
      '--host',
      srv.url,
      '--app',
      p.appName,
      '--env',
      'Production',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--log-level',
      'debug',
      ...args,
    ],
    env,
  );
  running.push(proc);
  const clientToken = await Promise.race([
    clientTokenOf(dataDir),
    proc.exit.then(({ code }) => {
      throw new Error(`the agent exited (${code}): ${proc.err()}`);
    }),
  ]);
  return {
    proc,
    port,
    dataDir,
    clientToken,
    get: (path) => agentGet(port, clientToken, path),
    status: () => agentStatus(port, clientToken),
  };
}

/** An OIDC account, and an agent that logs in to it with a Kubernetes projected token of its own; `args` on top. */
async function kubernetesAgent(args: string[]) {
  const account = await oidcAccount();
  const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
  vol.write(await k8sJwt());
  const a = await agent(account.p, [
    '--auth',
    'kubernetes',
    '--account-id',
    account.p.saId,
    '--jwt-file',
    vol.file,
    ...args,
  ]);
  return { ...account, vol, a };
}

/** Token ids the account's reads of secrets carried (the server audits each read with the token used). */
async function readTokenIds(saId: string): Promise<Set<string>> {
  const rows = await srv.server.store.db
    .selectFrom('audit_events')
    .select(['token_id'])
    .where('actor_id', '=', saId)
    .where('event_type', '=', 'R')
    .execute();
  return new Set(rows.map((r) => r.token_id as string));
}

/** The subjects of the account's accepted OIDC logins, in order. */
async function loginSubjects(saId: string): Promise<string[]> {
  const rows = await srv.server.store.db
    .selectFrom('audit_events')
    .select(['detail', 'timestamp'])
    .where('actor_id', '=', saId)
    .where('resource_type', '=', 'sa_token')
    .orderBy('timestamp')
    .execute();
  return rows
    .map((r) => (r.detail ? (JSON.parse(r.detail as string) as { subject?: string }).subject : undefined))
    .filter((s): s is string => !!s);
}

describe('--auth kubernetes', () => {
  test('logs in with a projected-token file, serves the secrets, and keeps serving across several 3 s TTLs', async () => {
    const { p, value } = await oidcAccount();
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'serviceaccount'));
    const jwt = await k8sJwt();
    vol.write(jwt);
    const a = await agent(p, [
      '--auth',
      'kubernetes',
      '--account-id',
      p.saId,
      '--jwt-file',
      vol.file,
      '--token-ttl',
      '3s',
      '--refresh',
      '60s', // renewals, not the refresh timer, keep it going
      '--budget-per-minute',
      '600',
      '--budget-burst',
      '20',
    ]);
    await until(async () => (await a.get('/v1/secrets/DB_URL')).body === value, 15_000);
    const started = Date.now();
    const failures: string[] = [];
    let reads = 0;
    while (Date.now() - started < 8000) {
      const r = await a.get('/v1/secrets/DB_URL');
      reads++;
      if (r.status !== 200 || r.body !== value) failures.push(`${r.status} ${r.body.slice(0, 200)}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(100);
    const st = await a.status();
    expect(st.auth).toMatchObject({
      method: 'kubernetes',
      state: 'ok',
      reason: null,
      validToken: true,
      accountId: p.saId,
      jwtFile: vol.file,
    });
    // 8 s at a renewal every ~2 s (two thirds of 3 s, less up to 10 %): at least three renewals after the first login.
    expect(st.auth.logins).toBeGreaterThanOrEqual(4);
    const left = Date.parse(st.auth.expiresAt) - Date.now();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(3000);
    expect(st.scopes[0]).toMatchObject({ serving: true, failClosed: null });
    // Every renewal was put to use: the agent's reads upstream carried several different tokens.
    expect((await readTokenIds(p.saId)).size).toBeGreaterThanOrEqual(3);
    // Renewed at about two thirds of the TTL: the gaps between logins are 1.8-2.0 s (plus the login's own time).
    const times = logLines(a.proc)
      .filter((l) => l.msg === 'logged in' || l.msg === 'token renewed')
      .map((l) => Date.parse(l.time));
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(1750);
      expect(g).toBeLessThan(2600);
    }
    // Neither the JWT nor a minted token reaches the log or the status document.
    expect(a.proc.err()).not.toContain(jwt);
    expect(a.proc.err()).not.toMatch(/pss_service:v2:[0-9a-f]{64}/);
    expect(JSON.stringify(st)).not.toContain(jwt.split('.')[1]);
  });

  test('a rotated JWT file is re-read at the next login', async () => {
    const { p, value } = await oidcAccount({ subjects: ['system:serviceaccount:shop:*'] });
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
    vol.write(await k8sJwt('shop', 'api'));
    const a = await agent(p, [
      '--auth',
      'kubernetes',
      '--account-id',
      p.saId,
      '--jwt-file',
      vol.file,
      '--token-ttl',
      '3s',
      '--budget-per-minute',
      '600',
    ]);
    await until(async () => (await a.get('/v1/secrets/DB_URL')).body === value, 15_000);
    expect(await loginSubjects(p.saId)).toEqual(['system:serviceaccount:shop:api']);
    // The kubelet's way: a new directory, then the ..data link swapped over.
    vol.write(await k8sJwt('shop', 'worker'));
    await until(
      async () => (await loginSubjects(p.saId)).includes('system:serviceaccount:shop:worker'),
      6000,
    );
    expect((await a.get('/v1/secrets/DB_URL')).status).toBe(200);
    expect((await a.status()).auth.state).toBe('ok');
  });

  test('refused at start (a JWT for another namespace): fails closed, says why in /v1/status; a good JWT brings it back', async () => {
    const { p, value } = await oidcAccount();
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
    vol.write(await k8sJwt('default', 'api'));
    const a = await agent(p, ['--auth', 'kubernetes', '--account-id', p.saId, '--jwt-file', vol.file]);
    const st = await until(async () => {
      const s = await a.status();
      return s.auth.state === 'refused' && s.scopes[0].failClosed ? s : undefined;
    });
    expect(st.auth).toMatchObject({ method: 'kubernetes', validToken: false, expiresAt: null, logins: 0 });
    expect(st.auth.reason).toContain('HTTP 403 from POST /service/public/identities/external/v1/oidc/auth/');
    expect(st.auth.reason).toContain("Untrusted subject 'system:serviceaccount:default:api'");
    expect(st.token).toBeNull();
    expect(st.ready).toBe(false);
    expect(st.scopes[0].serving).toBe(false);
    expect(st.scopes[0].failClosed.code).toBe('login_failed');
    expect(st.scopes[0].failClosed.message).toMatch(
      /the kubernetes login was refused \(HTTP 403 .*Untrusted subject/,
    );
    const r = await a.get('/v1/secrets');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).error).toContain('Untrusted subject');
    expect((await a.get('/readyz')).status).toBe(503);
    // Nothing was asked of the upstream with no token: no read by this account.
    expect((await readTokenIds(p.saId)).size).toBe(0);
    // The platform hands out the right token: the next retry (backoff 1 s, 2 s, 4 s, ...) logs in.
    vol.write(await k8sJwt('shop', 'api'));
    await until(async () => (await a.get('/v1/secrets/DB_URL')).body === value, 20_000, 100);
    const after = await a.status();
    expect(after.auth).toMatchObject({ state: 'ok', validToken: true, logins: 1 });
    expect(after.scopes[0].failClosed).toBeNull();
  });

  test('refused at renewal (the identity detached): served while the token is valid, then fails closed at its expiry', async () => {
    const { p, identityId, value, a } = await kubernetesAgent([
      '--token-ttl',
      '3s',
      '--budget-per-minute',
      '600',
    ]);
    await until(async () => (await a.get('/v1/secrets/DB_URL')).body === value, 15_000);
    await p.owner.detachExternalIdentity(identityId, p.saId);
    const before = await a.status();
    const expiresAt = Date.parse(before.auth.expiresAt);
    // Poll until the agent stops serving; every answer before the token's expiry must be the value.
    let firstRefusalAt = 0;
    const early: string[] = [];
    await until(
      async () => {
        const r = await a.get('/v1/secrets/DB_URL');
        const now = Date.now();
        if (r.status === 200) return false;
        if (now < expiresAt) early.push(`${r.status} at ${expiresAt - now} ms before expiry`);
        firstRefusalAt = now;
        return r.status === 503;
      },
      10_000,
      25,
    );
    expect(early).toEqual([]);
    // Fails closed at the expiry (the agent syncs then, not at its next refresh).
    expect(firstRefusalAt - expiresAt).toBeLessThan(1500);
    const r = await a.get('/v1/secrets');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).error).toContain('No OIDC identity attached to this account');
    const st = await a.status();
    expect(st.auth).toMatchObject({ state: 'refused', validToken: false });
    expect(st.auth.reason).toMatch(/^HTTP 404 .*No OIDC identity attached/);
    expect(Date.parse(st.auth.expiresAt)).toBeLessThanOrEqual(Date.now());
    expect(st.scopes[0].failClosed).toMatchObject({ code: 'login_failed' });
    expect(st.scopes[0].failClosed.message).toContain('the last token expired at');
    expect(st.scopes[0].secrets).toBe(0);
    // Retries keep going (with backoff): a new attachment brings it back without a restart.
    await p.owner.attachExternalIdentity(identityId, p.saId);
    await until(async () => (await a.get('/v1/secrets/DB_URL')).body === value, 20_000, 100);
  });

  test('refused at renewal with the call budget spent: still fails closed at the expiry (a blocked login sends nothing, so it is not charged)', async () => {
    // Start-up spends the whole burst (a bootstrap and a fetch); the budget refills one call a minute.
    const { p, identityId, value, a } = await kubernetesAgent([
      '--token-ttl',
      '3s',
      '--budget-burst',
      '2',
      '--budget-push-burst',
      '0',
      '--no-push',
    ]);
    await until(async () => (await a.get('/v1/secrets/DB_URL')).body === value, 15_000);
    await p.owner.detachExternalIdentity(identityId, p.saId);
    const expiresAt = Date.parse((await a.status()).auth.expiresAt);
    await until(async () => (await a.get('/v1/secrets/DB_URL')).status === 503, 10_000, 25);
    expect(Date.now() - expiresAt).toBeLessThan(1500);
    const st = await a.status();
    expect(st.scopes[0].failClosed).toMatchObject({ code: 'login_failed' });
    expect(st.scopes[0].failClosed.message).toContain('the last token expired at');
  });

  test('a JWT file others can write is refused at start (exit 2, one line), as a token file is', async () => {
    const { p } = await oidcAccount();
    const dir = mkdtempSync(join(tmpdir(), 'k8s-'));
    const file = join(dir, 'token');
    writeFileSync(file, await k8sJwt(), { mode: 0o600 });
    chmodSync(file, 0o620);
    const r = spawnCli([
      'agent',
      '--host',
      srv.url,
      '--app',
      p.appName,
      '--env',
      'Production',
      '--port',
      '0',
      '--data-dir',
      join(dir, 'data'),
      '--auth',
      'kubernetes',
      '--account-id',
      p.saId,
      '--jwt-file',
      file,
    ]);
    running.push(r);
    expect((await r.exit).code).toBe(2);
    expect(r.err()).toBe(
      `phase-bridge: refusing the JWT file ${file}: it is writable by its group (mode 0620); run chmod go-w ${file} (600, or 640 to share it with a group)\n`,
    );
  });

  test('the server unreachable at start: not serving, state error with the reason, and it logs in once it is back', async () => {
    const { p, value } = await oidcAccount();
    // The agent reaches the server through a forwarder that is not listening yet (connection refused).
    const proxyPort = await freePort();
    const upstream = new URL(srv.url);
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
    vol.write(await k8sJwt());
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-identity-'));
    const agentPort = await freePort();
    const proc = spawnCli([
      'agent',
      '--host',
      `http://127.0.0.1:${proxyPort}`,
      '--app',
      p.appName,
      '--env',
      'Production',
      '--port',
      String(agentPort),
      '--data-dir',
      dataDir,
      '--auth',
      'kubernetes',
      '--account-id',
      p.saId,
      '--jwt-file',
      vol.file,
    ]);
    running.push(proc);
    const ct = await clientTokenOf(dataDir);
    const st = await until(async () => {
      const s = await agentStatus(agentPort, ct);
      return s.auth.state === 'error' && s.upstream.lastCycleAt ? s : undefined;
    });
    expect(st.auth.reason).toMatch(
      /^POST \/service\/public\/identities\/external\/v1\/oidc\/auth\/ failed \(connection\): ECONNREFUSED/,
    );
    expect(st.auth.validToken).toBe(false);
    expect(st.scopes[0]).toMatchObject({ serving: false, failClosed: null });
    const r = await agentGet(agentPort, ct, '/v1/secrets');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).error).toContain('the kubernetes login failed (POST');
    // The server becomes reachable: the next retry (backoff 1 s, 2 s, 4 s, ...) logs in.
    const forwarder = createNetServer((c) => {
      const up = connect(Number(upstream.port), upstream.hostname);
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((res) => forwarder.listen(proxyPort, '127.0.0.1', () => res()));
    try {
      await until(
        async () => (await agentGet(agentPort, ct, '/v1/secrets/DB_URL')).body === value,
        20_000,
        100,
      );
      expect((await agentStatus(agentPort, ct)).auth).toMatchObject({ state: 'ok', logins: 1, reason: null });
    } finally {
      await proc.stop();
      forwarder.close();
    }
  });

  test('after a restart it simply logs in again; nothing of a login is on disk', async () => {
    const { p, value } = await oidcAccount();
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
    const jwt = await k8sJwt();
    vol.write(jwt);
    const args = ['--auth', 'kubernetes', '--account-id', p.saId, '--jwt-file', vol.file];
    const first = await agent(p, args);
    await until(async () => (await first.get('/v1/secrets/DB_URL')).body === value, 15_000);
    expect((await first.proc.stop()).code).toBe(0);
    // The data directory holds the client token only: no snapshot (a login token could not open it after a
    // restart), no minted token, no JWT.
    expect(readdirSync(first.dataDir)).toEqual(['client-token']);
    for (const f of readdirSync(first.dataDir)) {
      const text = readFileSync(join(first.dataDir, f), 'utf8');
      expect(text).not.toContain('pss_service');
      expect(text).not.toContain(jwt.split('.')[1]);
    }
    const second = await agent(p, args, {}, first.dataDir);
    await until(async () => (await second.get('/v1/secrets/DB_URL')).body === value, 15_000);
    expect((await second.status()).auth).toMatchObject({ state: 'ok', logins: 1 });
    expect(await loginSubjects(p.saId)).toHaveLength(2);
  });
});

describe('--auth aws-iam', () => {
  const KEY = 'AKIAAGENTEXAMPLE0001';
  const SECRET = 'agentSecretKeyEXAMPLE/0123456789abcdefghij';
  const SESSION = 'IQoJb3JpZ2luX2VjEXAMPLE//session+token/for=the-agent-test';

  async function awsAccount(): Promise<{ p: Provisioned; value: string }> {
    const value = `aws-value-${Math.random().toString(36).slice(2)}`;
    const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'API_KEY', value }] });
    const identity = await p.owner.createExternalIdentity({
      name: `aws-${p.appName}`,
      provider: 'aws_iam',
      config: {
        trustedPrincipals: ['arn:aws:sts::123456789012:assumed-role/shop-api/*'],
        stsEndpoint: sts.url,
      },
    });
    await p.owner.attachExternalIdentity(identity.id, p.saId);
    return { p, value };
  }

  beforeAll(() => {
    sts.principals.set(KEY, 'arn:aws:sts::123456789012:assumed-role/shop-api/i-0abc');
    sts.secrets.set(KEY, SECRET);
  });

  test('signs GetCallerIdentity with the credentials from the environment; STS checks the signature; serves', async () => {
    const { p, value } = await awsAccount();
    const before = sts.seen.length;
    const a = await agent(p, ['--auth', 'aws-iam', '--account-id', p.saId, '--sts-endpoint', sts.url], {
      AWS_ACCESS_KEY_ID: KEY,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_SESSION_TOKEN: SESSION,
      AWS_REGION: 'eu-west-1',
    });
    await until(async () => (await a.get('/v1/secrets/API_KEY')).body === value, 15_000);
    const st = await a.status();
    expect(st.auth).toMatchObject({
      method: 'aws-iam',
      state: 'ok',
      validToken: true,
      credentials: 'environment',
      logins: 1,
    });
    const seen = sts.seen.slice(before);
    expect(seen).toHaveLength(1);
    const req = seen[0];
    expect(req.signatureValid).toBe(true);
    expect(String(req.headers.authorization)).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${KEY}/\\d{8}/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$`,
      ),
    );
    expect(req.headers['x-amz-security-token']).toBe(SESSION);
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
    expect(req.body).toBe('Action=GetCallerIdentity&Version=2011-06-15');
    // The secret key never leaves the agent: not in its log, not in anything the server stored.
    expect(a.proc.err()).not.toContain(SECRET);
    const audit = await srv.server.store.db.selectFrom('audit_events').selectAll().execute();
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });

  test('a wrong secret key: STS rejects the signature, the login is refused, the agent fails closed', async () => {
    const { p } = await awsAccount();
    const before = sts.seen.length;
    const a = await agent(p, ['--auth', 'aws-iam', '--account-id', p.saId, '--sts-endpoint', sts.url], {
      AWS_ACCESS_KEY_ID: KEY,
      AWS_SECRET_ACCESS_KEY: `${SECRET}x`,
    });
    const st = await until(async () => {
      const s = await a.status();
      return s.auth.state === 'refused' ? s : undefined;
    });
    expect(st.auth.reason).toContain(
      'HTTP 401 from POST /service/public/identities/external/v1/aws/iam/auth/',
    );
    expect(st.auth.reason).toContain('AWS STS validation failed');
    expect(sts.seen.slice(before).map((s) => s.signatureValid)).toContain(false);
    expect((await a.get('/v1/secrets')).status).toBe(503);
  });

  test('the AWS signing code is loaded only for --auth aws-iam', async () => {
    // A fresh process per method: which modules under agent/auth/ did starting the login load? (Asynchronously: the
    // server under test runs in this process.)
    const loaded = async (method: string, env: Record<string, string>): Promise<string[]> => {
      const script = `
        const { buildConfig } = require(${JSON.stringify(join(DIST, 'agent/config.js'))});
        const { startAgent } = require(${JSON.stringify(join(DIST, 'agent/agent.js'))});
        const dir = require('fs').mkdtempSync(require('path').join(require('os').tmpdir(), 'agent-mods-'));
        const values = { host: ${JSON.stringify(srv.url)}, scopes: [{ app: 'x', env: 'y' }], port: 0, dataDir: dir,
          logLevel: 'silent', auth: ${JSON.stringify(method)}, accountId: 'nope', push: false };
        if (values.auth === 'kubernetes') values.jwtFile = process.env.JWT_FILE;
        if (values.auth === 'aws-iam') values.stsEndpoint = ${JSON.stringify(sts.url)};
        if (values.auth === 'token') { delete values.accountId; values.token = process.env.TOKEN; }
        startAgent(buildConfig([{ values, source: {} }])).then(async (a) => {
          await a.engine.firstSync;
          await a.close();
          const mods = Object.keys(require.cache).filter((k) => /[\\\\/]agent[\\\\/]auth[\\\\/]/.test(k));
          process.stdout.write(JSON.stringify(mods.map((m) => require('path').basename(m))), () => process.exit(0));
        });`;
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        encoding: 'utf8',
      });
      return JSON.parse(stdout) as string[];
    };
    const jwtFile = join(mkdtempSync(join(tmpdir(), 'jwt-')), 'token');
    writeFileSync(jwtFile, 'a.b.c', { mode: 0o600 });
    const token = `pss_service:v2:${'a'.repeat(64)}:${'b'.repeat(64)}:${'c'.repeat(64)}:${'d'.repeat(64)}`;
    expect(await loaded('token', { TOKEN: token })).toEqual([]);
    const k8s = await loaded('kubernetes', { JWT_FILE: jwtFile });
    expect(k8s).toContain('login.js');
    expect(k8s).not.toContain('sigv4.js');
    expect(k8s).not.toContain('aws-iam.js');
    expect(await loaded('aws-iam', { AWS_ACCESS_KEY_ID: KEY, AWS_SECRET_ACCESS_KEY: SECRET })).toEqual(
      expect.arrayContaining(['login.js', 'aws-iam.js', 'sigv4.js', 'aws-credentials.js']),
    );
  });
});

describe('run --auth', () => {
  /** `phase-bridge run --auth kubernetes` for the account, then `node -e script`. */
  const runWithKubernetes = (p: { appName: string; saId: string }, jwtFile: string, script: string) =>
    spawnCli([
      'run',
      '--host',
      srv.url,
      '--app',
      p.appName,
      '--env',
      'Production',
      '--auth',
      'kubernetes',
      '--account-id',
      p.saId,
      '--jwt-file',
      jwtFile,
      '--',
      process.execPath,
      '-e',
      script,
    ]);

  test('run --auth kubernetes -- node -e ...: the command sees the secrets', async () => {
    const { p, value } = await oidcAccount();
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
    vol.write(await k8sJwt());
    const r = runWithKubernetes(p, vol.file, 'process.stdout.write("DB_URL=" + process.env.DB_URL)');
    running.push(r);
    const { code } = await r.exit;
    expect(r.err()).not.toContain('could not fetch');
    expect(code).toBe(0);
    expect(r.out()).toBe(`DB_URL=${value}`);
    expect(r.err()).toMatch(/injected 1 secrets/);
  });

  test('run with a refused login: the command is not started, exit 1 with the reason', async () => {
    const { p } = await oidcAccount();
    const vol = projectedVolume(join(mkdtempSync(join(tmpdir(), 'k8s-')), 'token-vol'));
    vol.write(await k8sJwt('kube-system', 'api'));
    const marker = join(mkdtempSync(join(tmpdir(), 'run-')), 'started');
    const r = runWithKubernetes(p, vol.file, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`);
    running.push(r);
    const { code } = await r.exit;
    expect(code).toBe(1);
    expect(r.err()).toMatch(/could not fetch the secrets, not starting the command/);
    expect(r.err()).toContain("Untrusted subject 'system:serviceaccount:kube-system:api'");
    expect(existsSync(marker)).toBe(false);
  });
});

describe('SigV4 (agent/auth/sigv4.ts) against AWS published vectors', () => {
  // The AWS Signature Version 4 test suite's credentials, date, region and service.
  const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
  const suite = { region: 'us-east-1', service: 'service', date: new Date('2015-08-30T12:36:00Z') };
  const url = 'https://example.amazonaws.com/';

  test('post-x-www-form-urlencoded-parameters (a form POST with a charset, the shape of GetCallerIdentity)', () => {
    const s = signV4(
      {
        method: 'POST',
        url,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf8' },
        body: 'Param1=value1',
      },
      creds,
      suite,
    );
    expect(s.canonicalRequest).toBe(
      'POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e',
    );
    expect(s.stringToSign).toBe(
      'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c',
    );
    expect(s.headers.Authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe',
    );
  });

  test('post-x-www-form-urlencoded, post-vanilla, and post-sts-header-before (a session token is signed)', () => {
    const form = signV4(
      {
        method: 'POST',
        url,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'Param1=value1',
      },
      creds,
      suite,
    );
    expect(form.signature).toBe('ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a');
    expect(signV4({ method: 'POST', url, headers: {}, body: '' }, creds, suite).signature).toBe(
      '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    );
    const token =
      'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==';
    const sts = signV4(
      { method: 'POST', url, headers: {}, body: '' },
      { ...creds, sessionToken: token },
      suite,
    );
    expect(sts.signedHeaders).toBe('host;x-amz-date;x-amz-security-token');
    expect(sts.signature).toBe('85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead');
    expect(sts.headers['X-Amz-Security-Token']).toBe(token);
  });

  test("the signing guide's worked example (IAM ListUsers: a query string, a content type with a charset)", () => {
    const s = signV4(
      {
        method: 'GET',
        url: 'https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: '',
      },
      creds,
      { region: 'us-east-1', service: 'iam', date: suite.date },
    );
    expect(s.canonicalRequest.split('\n').slice(0, 3)).toEqual([
      'GET',
      '/',
      'Action=ListUsers&Version=2010-05-08',
    ]);
    expect(s.signature).toBe('5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7');
  });

  test('what is sent: the signed headers without Host, never the secret key', () => {
    const s = signV4(
      { method: 'POST', url: 'https://sts.amazonaws.com', headers: { 'Content-Type': 'x' }, body: 'b' },
      creds,
      suite,
    );
    expect(Object.keys(s.headers).sort()).toEqual(['Authorization', 'Content-Type', 'X-Amz-Date']);
    expect(JSON.stringify(s)).not.toContain(creds.secretAccessKey);
  });

  test('region and endpoint: us-east-1 is the global endpoint, other regions theirs, an override names its region', () => {
    expect(stsTarget({})).toEqual({ region: 'us-east-1', endpoint: 'https://sts.amazonaws.com' });
    expect(stsTarget({ AWS_DEFAULT_REGION: 'eu-west-1' })).toEqual({
      region: 'eu-west-1',
      endpoint: 'https://sts.eu-west-1.amazonaws.com',
    });
    expect(stsTarget({ AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'eu-west-1' }).region).toBe(
      'ap-south-1',
    );
    expect(stsTarget({ AWS_REGION: 'eu-west-1' }, 'https://sts.us-west-2.amazonaws.com/')).toEqual({
      region: 'us-west-2',
      endpoint: 'https://sts.us-west-2.amazonaws.com',
    });
    expect(stsTarget({ AWS_REGION: 'eu-west-1' }, 'http://127.0.0.1:9')).toEqual({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9',
    });
  });
});

describe('AWS credential chain (agent/auth/aws-credentials.ts)', () => {
  const noImds = { AWS_EC2_METADATA_DISABLED: 'true' };
  const home = () => mkdtempSync(join(tmpdir(), 'aws-home-'));

  test('environment first; half of a key pair is an error', async () => {
    const c = await new AwsCredentialChain({
      env: { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 's1', AWS_SESSION_TOKEN: 't1', HOME: home() },
    }).resolve();
    expect(c).toMatchObject({
      accessKeyId: 'AKIA1',
      secretAccessKey: 's1',
      sessionToken: 't1',
      source: 'environment',
    });
    await expect(
      new AwsCredentialChain({ env: { AWS_ACCESS_KEY_ID: 'AKIA1', HOME: home(), ...noImds } }).resolve(),
    ).rejects.toThrow('AWS_SECRET_ACCESS_KEY is not set, but AWS_ACCESS_KEY_ID is');
  });

  test('shared files: the profile of AWS_PROFILE in the credentials file, then in the config file; unsupported kinds are named', async () => {
    const h = home();
    const creds = join(h, 'credentials');
    writeFileSync(
      creds,
      '[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = sdefault\n\n# comment\n[ci]\naws_access_key_id=AKIACI\naws_secret_access_key=sci\naws_session_token=tci\n',
    );
    const config = join(h, 'config');
    writeFileSync(
      config,
      '[profile cfg]\naws_access_key_id = AKIACFG\naws_secret_access_key = scfg\n[profile assume]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n',
    );
    const env = { HOME: h, AWS_SHARED_CREDENTIALS_FILE: creds, AWS_CONFIG_FILE: config, ...noImds };
    expect(await new AwsCredentialChain({ env }).resolve()).toMatchObject({
      accessKeyId: 'AKIADEFAULT',
      source: 'profile default',
    });
    expect(await new AwsCredentialChain({ env: { ...env, AWS_PROFILE: 'ci' } }).resolve()).toMatchObject({
      accessKeyId: 'AKIACI',
      sessionToken: 'tci',
      source: 'profile ci',
    });
    expect(await new AwsCredentialChain({ env: { ...env, AWS_PROFILE: 'cfg' } }).resolve()).toMatchObject({
      accessKeyId: 'AKIACFG',
    });
    await expect(
      new AwsCredentialChain({ env: { ...env, AWS_PROFILE: 'assume' } }).resolve(),
    ).rejects.toThrow(/the AWS profile assume .* uses role_arn, which the agent does not support/);
    await expect(new AwsCredentialChain({ env: { ...env, AWS_PROFILE: 'nope' } }).resolve()).rejects.toThrow(
      /the AWS profile nope \(AWS_PROFILE\) is in neither/,
    );
    // ~/.aws/credentials under HOME is the default location.
    const h2 = home();
    mkdirSync(join(h2, '.aws'));
    writeFileSync(
      join(h2, '.aws', 'credentials'),
      '[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=shome\n',
    );
    expect((await new AwsCredentialChain({ env: { HOME: h2, ...noImds } }).resolve()).accessKeyId).toBe(
      'AKIAHOME',
    );
    expect(parseIni('[a]\n; c\nk = v = w\n').get('a')).toEqual({ k: 'v = w' });
  });

  /** A loopback endpoint answering by path; records each request. */
  async function endpoint(
    routes: Record<string, (req: { method?: string; headers: Record<string, unknown> }) => [number, string]>,
  ): Promise<{
    url: string;
    seen: Array<{ method?: string; path?: string; headers: Record<string, unknown> }>;
    server: Server;
  }> {
    const seen: Array<{ method?: string; path?: string; headers: Record<string, unknown> }> = [];
    const server = createServer((req, res) => {
      seen.push({ method: req.method, path: req.url, headers: { ...req.headers } });
      const route = routes[req.url ?? ''];
      const [status, body] = route ? route(req) : [404, ''];
      res.statusCode = status;
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
  }

  const temp = (id: string) =>
    JSON.stringify({
      AccessKeyId: id,
      SecretAccessKey: `secret-${id}`,
      Token: `token-${id}`,
      Expiration: new Date(Date.now() + 3600_000).toISOString(),
    });

  test('the container endpoint (EKS Pod Identity / ECS): full URI, authorization token file; kept until it expires', async () => {
    const ep = await endpoint({ '/v1/credentials': () => [200, temp('ASIACONTAINER')] });
    try {
      const tokenFile = join(home(), 'pod-identity-token');
      writeFileSync(tokenFile, 'eks-pod-identity-token\n');
      const chain = new AwsCredentialChain({
        env: {
          HOME: home(),
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `${ep.url}/v1/credentials`,
          AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
          ...noImds,
        },
      });
      const c = await chain.resolve();
      expect(c).toMatchObject({
        accessKeyId: 'ASIACONTAINER',
        sessionToken: 'token-ASIACONTAINER',
        source: 'container',
      });
      expect(ep.seen[0].headers.authorization).toBe('eks-pod-identity-token');
      await chain.resolve();
      expect(ep.seen).toHaveLength(1); // cached: an hour left
      await expect(
        new AwsCredentialChain({
          env: { HOME: home(), AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://203.0.113.9/creds', ...noImds },
        }).resolve(),
      ).rejects.toThrow('must use https, or http on loopback');
    } finally {
      ep.server.close();
    }
  });

  test('the instance metadata service, IMDSv2 (a session token first)', async () => {
    const ep = await endpoint({
      '/latest/api/token': (req) => (req.method === 'PUT' ? [200, 'imds-session'] : [405, '']),
      '/latest/meta-data/iam/security-credentials/': (req) =>
        req.headers['x-aws-ec2-metadata-token'] === 'imds-session' ? [200, 'shop-api-role\n'] : [401, ''],
      '/latest/meta-data/iam/security-credentials/shop-api-role': (req) =>
        req.headers['x-aws-ec2-metadata-token'] === 'imds-session' ? [200, temp('ASIAINSTANCE')] : [401, ''],
    });
    try {
      const c = await new AwsCredentialChain({
        env: { HOME: home(), AWS_EC2_METADATA_SERVICE_ENDPOINT: ep.url },
      }).resolve();
      expect(c).toMatchObject({ accessKeyId: 'ASIAINSTANCE', source: 'instance' });
      expect(ep.seen[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token' });
      expect(ep.seen[0].headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('21600');
      await expect(new AwsCredentialChain({ env: { HOME: home(), ...noImds } }).resolve()).rejects.toThrow(
        /no AWS credentials: set AWS_ACCESS_KEY_ID/,
      );
    } finally {
      ep.server.close();
    }
  });
});

describe('configuration', () => {
  const TOKEN = `pss_service:v2:${'a'.repeat(64)}:${'b'.repeat(64)}:${'c'.repeat(64)}:${'d'.repeat(64)}`;
  const scope = { PHASE_APP: 'shop', PHASE_ENV: 'Production' };
  const issues = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof AgentConfigError)
        return err.issues.map((i) => `${i.setting} (${i.source}): ${i.message}`);
      throw err;
    }
    throw new Error('expected an AgentConfigError');
  };

  test('flags, environment and the config file; kubernetes defaults to the pod token; no snapshot with a login', () => {
    const k8s = configFromOptions({ auth: 'kubernetes', accountId: 'sa-1', tokenTtl: '1h' }, scope);
    expect(k8s).toMatchObject({
      auth: 'kubernetes',
      accountId: 'sa-1',
      jwtFile: KUBERNETES_TOKEN_PATH,
      tokenTtl: 3_600_000,
    });
    expect(k8s.snapshot).toBe(false);
    const env = buildConfig([
      envLayer({
        ...scope,
        PHASE_AGENT_AUTH: 'aws-iam',
        PHASE_SERVICE_ACCOUNT_ID: 'sa-2',
        PHASE_AGENT_STS_ENDPOINT: 'https://sts.eu-west-1.amazonaws.com',
        PHASE_AGENT_TOKEN_TTL: '900',
      }),
    ]);
    expect(env).toMatchObject({ auth: 'aws-iam', accountId: 'sa-2', tokenTtl: 900_000, jwtFile: undefined });
    const dir = mkdtempSync(join(tmpdir(), 'agent-cfg-'));
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ auth: 'oidc', accountId: 'sa-3', jwtFile: '/run/ci/oidc-token' }));
    expect(configFromOptions({ config: file }, scope)).toMatchObject({
      auth: 'oidc',
      jwtFile: '/run/ci/oidc-token',
    });
    expect(configFromOptions({}, { ...scope, PHASE_SERVICE_TOKEN: TOKEN }).snapshot).toBe(true);
  });

  test('the highest layer with a credential wins: --auth beats a token from the environment, and vice versa', () => {
    const flagWins = configFromOptions(
      { auth: 'kubernetes', accountId: 'sa' },
      { ...scope, PHASE_SERVICE_TOKEN: TOKEN },
    );
    expect([flagWins.auth, flagWins.token]).toEqual(['kubernetes', undefined]);
    const dir = mkdtempSync(join(tmpdir(), 'agent-cfg-'));
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ auth: 'kubernetes', accountId: 'sa' }));
    const envWins = configFromOptions({ config: file }, { ...scope, PHASE_TOKEN_FILE: '/run/token' });
    expect([envWins.auth, envWins.tokenFile]).toEqual(['token', '/run/token']);
  });

  test('bad login settings: one line each, naming where they came from', () => {
    expect(issues(() => configFromOptions({ auth: 'kubernetes' }, scope))).toEqual([
      "accountId (not set): --auth kubernetes needs the service account's id: --account-id, PHASE_SERVICE_ACCOUNT_ID or accountId",
    ]);
    expect(issues(() => configFromOptions({ auth: 'oidc', accountId: 'sa' }, scope))).toEqual([
      'jwtFile (not set): --auth oidc needs --jwt-file: the file your platform or CI writes its OIDC token to',
    ]);
    expect(issues(() => configFromOptions({ auth: 'ldap', accountId: 'sa' }, scope))[0]).toMatch(
      /^auth \(--auth\): must be one of token, kubernetes, oidc, aws-iam/,
    );
    expect(
      issues(() =>
        configFromOptions(
          { auth: 'aws-iam', accountId: 'sa', tokenTtl: '1500ms', stsEndpoint: 'ftp://x' },
          scope,
        ),
      ),
    ).toEqual(
      expect.arrayContaining([
        'tokenTtl (--token-ttl): tokenTtl must be whole seconds',
        expect.stringMatching(/^stsEndpoint \(--sts-endpoint\): must use http/),
      ]),
    );
    expect(
      issues(() =>
        configFromOptions(
          { auth: 'kubernetes', accountId: 'sa', stsEndpoint: 'https://sts.amazonaws.com' },
          scope,
        ),
      ),
    ).toEqual(['stsEndpoint (--sts-endpoint): only --auth aws-iam signs for STS']);
    expect(
      issues(() =>
        configFromOptions({ auth: 'kubernetes', accountId: 'sa', tokenFile: '/run/token' }, scope),
      ),
    ).toEqual([
      'auth (--auth): --auth kubernetes logs in by itself: do not also configure a token file in the same place',
    ]);
    expect(issues(() => configFromOptions({}, scope))[0]).toContain(
      'or log in with --auth kubernetes|oidc|aws-iam',
    );
  });
});
