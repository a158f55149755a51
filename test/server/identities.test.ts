/**
 * Workload identity on the server (issue 13, docs/identity.md): external identities managed over the REST extension,
 * OIDC logins verified against a real issuer on loopback (discovery + JWKS, Kubernetes-shaped tokens), AWS IAM logins
 * forwarded to an STS stand-in on loopback, the short-lived tokens they mint, and token revocation with a grace window.
 */
import { SignJWT, generateSecret, UnsecuredJWT } from 'jose';
import {
  awsIamLogin,
  startOidcIssuer,
  startStsStandIn,
  type OidcIssuer,
  type StsStandIn,
} from '../support/identity-issuers';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';
import { caller, createApp, createSa, type Call } from './helpers';

const OIDC = '/identities/external/v1/oidc/auth/';
const AWS = '/identities/external/v1/aws/iam/auth/';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe.each(STORES)('external identities (%s)', (store) => {
  let srv: TestServer;
  let owner: Call;
  let anon: Call;
  let issuer: OidcIssuer;
  let sts: StsStandIn;
  let sa: { id: string; token: string };
  let oidcId: string;
  let appId: string;

  const oidcLogin = (jwt: string, extra: Record<string, unknown> = {}, account = sa.id) =>
    anon('POST', OIDC, { account: { type: 'service', id: account }, oidc: { jwt: b64(jwt) }, ...extra });
  const k8s = (o: Partial<Parameters<OidcIssuer['kubernetesToken']>[0]> = {}) =>
    issuer.kubernetesToken({ namespace: 'shop', serviceAccount: 'api', ...o });

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    sts = await startStsStandIn();
    srv = await startTestServer({ store, allowLoopbackIdentityEndpoints: true });
    owner = caller(srv, srv.ownerToken);
    anon = caller(srv, null);
    const { app, envs } = await createApp(owner);
    appId = app.id;
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Production`, {
      secrets: [{ key: 'DB_URL', value: 'postgres://prod' }],
    });
    sa = await createSa(owner, 'k8s-api');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Production.id] }],
    });
    const created = await owner('POST', '/v1/external-identities/', {
      name: 'cluster',
      provider: 'oidc',
      config: { issuer: issuer.url, audiences: ['phase'], boundSubjects: ['system:serviceaccount:shop:api'] },
      default_ttl_seconds: 600,
      max_ttl_seconds: 3600,
    });
    expect(created.status).toBe(201);
    oidcId = created.body.id;
    const attached = await owner('PUT', `/v1/external-identities/${oidcId}/attachments/`, {
      service_account_id: sa.id,
    });
    expect([attached.status, attached.body.serviceAccounts]).toEqual([200, [sa.id]]);
  });

  afterAll(async () => {
    await srv?.close();
    await issuer?.close();
    await sts?.close();
  });

  describe('OIDC (Kubernetes projected tokens)', () => {
    test('a valid token logs in; the minted token reads the account’s secrets and expires server-side', async () => {
      const r = await oidcLogin(await k8s(), { tokenRequest: { ttl: 120 } });
      expect(r.status).toBe(200);
      const a = r.body.authentication;
      expect(a).toEqual({
        tokenType: 'ServiceAccount',
        token: expect.stringMatching(/^pss_service:v2:[0-9a-f]{64}:/),
        bearerToken: expect.stringMatching(/^ServiceAccount [0-9a-f]{64}$/),
        TTL: 120,
        maxTTL: 3600,
      });
      const secrets = await caller(srv, a.token)('GET', `/v1/secrets/?app_id=${appId}&env=Production`);
      expect(secrets.status).toBe(200);
      expect(secrets.body.map((s: { value: string }) => s.value)).toEqual(['postgres://prod']);
      const detail = await owner('GET', `/v1/service-accounts/${sa.id}/`);
      const minted = detail.body.tokens.find((t: { name: string }) => t.name === 'oidc');
      const ms = Date.parse(minted.expiresAt) - Date.now();
      expect(ms).toBeGreaterThan(100_000);
      expect(ms).toBeLessThanOrEqual(120_000);
    });

    test('the raw compact JWT is accepted as well as its base64', async () => {
      const r = await anon('POST', OIDC, {
        account: { type: 'service', id: sa.id },
        oidc: { jwt: await k8s() },
      });
      expect(r.status).toBe(200);
    });

    test('the token expires: a 1-second login token is refused once it has passed', async () => {
      const r = await oidcLogin(await k8s(), { tokenRequest: { ttl: 1 } });
      const c = caller(srv, r.body.authentication.token);
      expect((await c('GET', '/v1/apps/')).status).toBe(200);
      await new Promise((res) => setTimeout(res, 1500));
      expect((await c('GET', '/v1/apps/')).status).toBe(401);
    });

    test.each([
      ['wrong issuer', () => k8s({ issuer: 'https://evil.example' }), 401, 'issuer'],
      ['wrong audience', () => k8s({ audience: 'other' }), 401, 'audience'],
      ['wrong namespace', () => k8s({ namespace: 'default' }), 403, 'Untrusted subject'],
      ['wrong service account', () => k8s({ serviceAccount: 'admin' }), 403, 'Untrusted subject'],
      ['expired', () => k8s({ expiresIn: -120 }), 401, 'expired'],
      ['not yet valid', () => k8s({ notBefore: Math.floor(Date.now() / 1000) + 600 }), 401, 'not valid yet'],
      [
        'unknown key',
        () => issuer.kubernetesToken({ namespace: 'shop', serviceAccount: 'api' }, { key: 'unpublished' }),
        401,
        'key',
      ],
    ])('refused: %s', async (_what, make, status, says) => {
      const r = await oidcLogin(await make());
      expect(r.status).toBe(status);
      expect(r.body.error).toContain(says);
      expect(r.body.authentication).toBeUndefined();
    });

    test('refused: a tampered signature, alg none and HMAC', async () => {
      const good = await k8s();
      const [h, p, s] = good.split('.');
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
      payload.sub = 'system:serviceaccount:shop:api';
      payload.extra = 'tampered';
      const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
      const t = await oidcLogin(tampered);
      expect([t.status, t.body.error]).toEqual([401, 'JWT signature is invalid.']);

      const none = new UnsecuredJWT({ sub: 'system:serviceaccount:shop:api' })
        .setIssuer(issuer.url)
        .setAudience('phase')
        .setExpirationTime('5m')
        .encode();
      const n = await oidcLogin(none);
      expect(n.status).toBe(401);
      expect(n.body.error).toContain("algorithm 'none' is not allowed");

      const hs = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('system:serviceaccount:shop:api')
        .setIssuer(issuer.url)
        .setAudience('phase')
        .setExpirationTime('5m')
        .sign(await generateSecret('HS256'));
      const m = await oidcLogin(hs);
      expect(m.status).toBe(401);
      expect(m.body.error).toContain("algorithm 'HS256' is not allowed");
    });

    test('a rotated issuer key is fetched once on the unknown kid, and then verifies', async () => {
      const before = issuer.jwksFetches();
      await issuer.rotate();
      // jose refetches an unknown kid only after its cooldown; wait it out rather than trust timing.
      let r = await oidcLogin(await k8s());
      for (let i = 0; r.status !== 200 && i < 40; i++) {
        await new Promise((res) => setTimeout(res, 1000));
        r = await oidcLogin(await k8s());
      }
      expect(r.status).toBe(200);
      expect(issuer.jwksFetches()).toBeGreaterThan(before);
    }, 60_000);

    test('envelope and TTL errors', async () => {
      const jwt = await k8s();
      expect(
        (await anon('POST', OIDC, { account: { type: 'user', id: sa.id }, oidc: { jwt } })).body,
      ).toEqual({
        error: 'Only service account authentication is supported.',
      });
      const missing = await oidcLogin(jwt, {}, '00000000-0000-4000-8000-000000000000');
      expect([missing.status, missing.body.error]).toEqual([404, 'Service account not found']);
      const unattached = await createSa(owner, 'no-identity');
      const none = await oidcLogin(jwt, {}, unattached.id);
      expect([none.status, none.body.error]).toEqual([404, 'No OIDC identity attached to this account']);
      const big = await oidcLogin(jwt, { tokenRequest: { ttl: 7200 } });
      expect([big.status, big.body.error]).toEqual([
        400,
        'Requested TTL (7200s) exceeds maximum allowed TTL (3600s)',
      ]);
      expect((await oidcLogin(jwt, { tokenRequest: { ttl: 0 } })).body.error).toBe(
        'TTL must be a positive integer',
      );
      expect((await oidcLogin(jwt, { tokenRequest: { ttl: 'x' } })).body.error).toBe('Invalid TTL value');
    });

    test('every login is audited, accepted and refused, without the credential', async () => {
      await oidcLogin(await k8s({ namespace: 'default' }));
      const log = await owner('GET', '/v1/audit-logs/?limit=1000');
      const mine = (
        log.body.data as Array<{ resourceType: string; detail: Record<string, unknown> | null }>
      ).filter((e) => JSON.stringify(e.detail ?? {}).includes('oidc'));
      expect(
        mine.some(
          (e) => e.resourceType === 'sa_token' && e.detail?.subject === 'system:serviceaccount:shop:api',
        ),
      ).toBe(true);
      expect(mine.some((e) => e.resourceType === 'identity_login' && e.detail?.outcome === 'refused')).toBe(
        true,
      );
      expect(JSON.stringify(log.body)).not.toMatch(/eyJ[\w-]+\.eyJ/);
    });
  });

  describe('AWS IAM (STS stand-in)', () => {
    let awsSa: { id: string; token: string };
    const login = (awsIam: unknown, account = awsSa.id) =>
      anon('POST', `/service/public${AWS}`, {
        account: { type: 'service', id: account },
        awsIam,
        tokenRequest: { ttl: 300 },
      });

    beforeAll(async () => {
      sts.principals.set('AKIATRUSTED', 'arn:aws:sts::123456789012:assumed-role/shop-api/i-0abc');
      sts.principals.set('AKIAOTHER', 'arn:aws:iam::999999999999:user/mallory');
      awsSa = await createSa(owner, 'aws-api');
      const id = await owner('POST', '/v1/external-identities/', {
        name: 'aws',
        provider: 'aws_iam',
        config: {
          trustedPrincipals: ['arn:aws:sts::123456789012:assumed-role/shop-api/*'],
          stsEndpoint: sts.url,
        },
      });
      expect(id.status).toBe(201);
      expect(id.body.config.trustedPrincipals).toEqual(['arn:aws:sts::123456789012:assumed-role/shop-api/*']);
      await owner('PUT', `/v1/external-identities/${id.body.id}/attachments/`, {
        service_account_id: awsSa.id,
      });
    });

    test('a signed request for a trusted ARN logs in (under /service/public/ as Phase’s SDK calls it)', async () => {
      const r = await login(awsIamLogin(sts.url, 'AKIATRUSTED'));
      expect(r.status).toBe(200);
      expect(r.body.authentication).toMatchObject({ tokenType: 'ServiceAccount', TTL: 300, maxTTL: 86400 });
      expect((await caller(srv, r.body.authentication.token)('GET', '/v1/apps/')).status).toBe(200);
    });

    test('refused: an untrusted ARN, a stale date, a foreign host, a request STS rejects', async () => {
      expect((await login(awsIamLogin(sts.url, 'AKIAOTHER'))).body).toEqual({ error: 'Untrusted principal' });
      const stale = await login(
        awsIamLogin(sts.url, 'AKIATRUSTED', { date: new Date(Date.now() - 10 * 60_000) }),
      );
      expect([stale.status, stale.body.error]).toEqual([401, 'Signature expired']);
      const before = sts.requests();
      const foreign = await login(awsIamLogin('https://sts.amazonaws.com', 'AKIATRUSTED'));
      expect(foreign.status).toBe(400);
      expect(foreign.body).toMatchObject({
        error: 'STS endpoint mismatch. Please sign the request for the configured STS endpoint.',
        expectedEndpoint: sts.url,
        receivedEndpoint: 'https://sts.amazonaws.com',
      });
      const hostHeader = await login(awsIamLogin(sts.url, 'AKIATRUSTED', { host: 'sts.amazonaws.com' }));
      expect(hostHeader.status).toBe(400);
      expect(sts.requests()).toBe(before); // refused before anything was forwarded
      const unknown = await login(awsIamLogin(sts.url, 'AKIAUNKNOWN'));
      expect([unknown.status, unknown.body.error, unknown.body.status]).toEqual([
        401,
        'AWS STS validation failed',
        403,
      ]);
    });

    test('bad encodings and dates', async () => {
      expect((await login({ httpRequestUrl: '!!', httpRequestHeaders: 'bm9wZQ==' })).body.error).toBe(
        'Invalid awsIam request encoding',
      );
      const noDate = awsIamLogin(sts.url, 'AKIATRUSTED');
      noDate.httpRequestHeaders = b64(JSON.stringify({ Authorization: 'x' }));
      expect((await login(noDate)).body.error).toBe('Missing X-Amz-Date header');
      const badDate = awsIamLogin(sts.url, 'AKIATRUSTED');
      badDate.httpRequestHeaders = b64(JSON.stringify({ 'X-Amz-Date': 'yesterday' }));
      expect((await login(badDate)).body.error).toBe('Invalid X-Amz-Date');
    });
  });

  describe('management', () => {
    test('config is validated: a bare * pattern, HMAC algorithms and unknown fields are refused', async () => {
      const star = await owner('POST', '/v1/external-identities/', {
        name: 'x',
        provider: 'oidc',
        config: { issuer: issuer.url, audiences: ['a'], boundSubjects: ['*'] },
      });
      expect(star.status).toBe(400);
      expect(star.body.error).toContain("'*' on its own is not allowed");
      const awsStar = await owner('POST', '/v1/external-identities/', {
        name: 'x',
        provider: 'aws_iam',
        config: { trustedPrincipals: 'arn:aws:iam::1:user/a, *' },
      });
      expect(awsStar.status).toBe(400);
      const hmac = await owner('POST', '/v1/external-identities/', {
        name: 'x',
        provider: 'oidc',
        config: { issuer: issuer.url, audiences: ['a'], boundSubjects: ['s'], allowedAlgorithms: ['HS256'] },
      });
      expect(hmac.status).toBe(400);
      const unknown = await owner('POST', '/v1/external-identities/', {
        name: 'x',
        provider: 'oidc',
        config: { issuer: issuer.url, audiences: ['a'], boundSubjects: ['s'], secret: 'x' },
      });
      expect(unknown.status).toBe(400);
      const ttl = await owner('POST', '/v1/external-identities/', {
        name: 'x',
        provider: 'oidc',
        config: { issuer: issuer.url, audiences: ['a'], boundSubjects: ['s'] },
        default_ttl_seconds: 7200,
        max_ttl_seconds: 3600,
      });
      expect([ttl.status, ttl.body.error]).toEqual([
        400,
        "'default_ttl_seconds' (7200) cannot exceed 'max_ttl_seconds' (3600).",
      ]);
    });

    test('boundClaims keep their names (no re-casing) and are enforced', async () => {
      const target = await createSa(owner, 'claims');
      const made = await owner('POST', '/v1/external-identities/', {
        name: 'claims',
        provider: 'oidc',
        config: {
          issuer: issuer.url,
          audiences: ['phase'],
          boundSubjects: ['system:serviceaccount:shop:*'],
          boundClaims: { repository_owner: 'acme' },
        },
      });
      expect(made.body.config.boundClaims).toEqual({ repository_owner: 'acme' });
      await owner('PUT', `/v1/external-identities/${made.body.id}/attachments/`, {
        service_account_id: target.id,
      });
      const r = await oidcLogin(await k8s(), {}, target.id);
      expect([r.status, r.body.error]).toEqual([
        403,
        "Claim 'repository_owner' does not match the identity's bound claims.",
      ]);
    });

    test('only the account itself or a global member may attach an identity to it; a Service SA cannot create one', async () => {
      const manager = await srv.addMember('Manager');
      const mc = caller(srv, manager.token);
      const r = await mc('PUT', `/v1/external-identities/${oidcId}/attachments/`, {
        service_account_id: sa.id,
      });
      expect([r.status, r.body.error]).toEqual([404, 'Service account not found.']);
      const svc = caller(srv, sa.token);
      const made = await svc('POST', '/v1/external-identities/', {
        name: 'mine',
        provider: 'oidc',
        config: { issuer: issuer.url, audiences: ['a'], boundSubjects: ['s'] },
      });
      expect(made.status).toBe(403);
    });

    test('detach and delete: the account can no longer log in', async () => {
      const target = await createSa(owner, 'detach');
      const made = await owner('POST', '/v1/external-identities/', {
        name: 'temp',
        provider: 'oidc',
        config: {
          issuer: issuer.url,
          audiences: ['phase'],
          boundSubjects: ['system:serviceaccount:shop:api'],
        },
      });
      await owner('PUT', `/v1/external-identities/${made.body.id}/attachments/`, {
        service_account_id: target.id,
      });
      expect((await oidcLogin(await k8s(), {}, target.id)).status).toBe(200);
      expect(
        (await owner('DELETE', `/v1/external-identities/${made.body.id}/attachments/${target.id}/`)).status,
      ).toBe(204);
      expect((await oidcLogin(await k8s(), {}, target.id)).status).toBe(404);
      expect((await owner('DELETE', `/v1/external-identities/${made.body.id}/`)).status).toBe(204);
      expect((await owner('GET', `/v1/external-identities/${made.body.id}/`)).status).toBe(404);
    });
  });

  describe('token revocation with a grace window (extension)', () => {
    test('grace_seconds keeps the token valid for that long; without it the token is refused at once', async () => {
      const t1 = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'old' });
      const t2 = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'older' });
      const graced = await owner(
        'DELETE',
        `/v1/service-accounts/${sa.id}/tokens/${t1.body.id}/?grace_seconds=3600`,
      );
      expect(graced.status).toBe(204);
      expect((await caller(srv, t1.body.token)('GET', '/v1/apps/')).status).toBe(200);
      expect((await owner('DELETE', `/v1/service-accounts/${sa.id}/tokens/${t2.body.id}/`)).status).toBe(204);
      expect((await caller(srv, t2.body.token)('GET', '/v1/apps/')).status).toBe(401);
      const detail = await owner('GET', `/v1/service-accounts/${sa.id}/`);
      const old = detail.body.tokens.find((t: { id: string }) => t.id === t1.body.id);
      expect(Date.parse(old.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
      const bad = await owner(
        'DELETE',
        `/v1/service-accounts/${sa.id}/tokens/${t1.body.id}/?grace_seconds=9999999`,
      );
      expect(bad.status).toBe(400);
    });

    test('a short grace expires server-side', async () => {
      const t = await owner('POST', `/v1/service-accounts/${sa.id}/tokens/`, { name: 'short' });
      await owner('DELETE', `/v1/service-accounts/${sa.id}/tokens/${t.body.id}/?grace_seconds=1`);
      const c = caller(srv, t.body.token);
      expect((await c('GET', '/v1/apps/')).status).toBe(200);
      await new Promise((res) => setTimeout(res, 1500));
      expect((await c('GET', '/v1/apps/')).status).toBe(401);
    });
  });
});

describe('external identity endpoints on loopback are refused without the test setting', () => {
  test('the issuer on loopback is not called', async () => {
    const issuer = await startOidcIssuer();
    const srv = await startTestServer({ store: 'sqlite' });
    try {
      const owner = caller(srv, srv.ownerToken);
      const sa = await createSa(owner, 'ssrf');
      const made = await owner('POST', '/v1/external-identities/', {
        name: 'loop',
        provider: 'oidc',
        config: {
          issuer: issuer.url,
          audiences: ['phase'],
          boundSubjects: ['system:serviceaccount:shop:api'],
        },
      });
      await owner('PUT', `/v1/external-identities/${made.body.id}/attachments/`, {
        service_account_id: sa.id,
      });
      const jwt = await issuer.kubernetesToken({ namespace: 'shop', serviceAccount: 'api' });
      const r = await caller(srv, null)('POST', OIDC, {
        account: { type: 'service', id: sa.id },
        oidc: { jwt },
      });
      expect(r.status).toBe(502);
      expect(r.body.error).toContain('must use https');
      expect(issuer.jwksFetches()).toBe(0);
    } finally {
      await srv.close();
      await issuer.close();
    }
  });
});
