/**
 * Fuzzing every endpoint (issue 3, "Bad input"): random and malformed JSON bodies, raw bytes, headers, query strings
 * and paths, with fast-check and bounded runs. Invariants, from phase-rest-api.md §8 and the issue:
 * - never a 5xx, never a crash: the server still answers `/health/` afterwards;
 * - every error body is exactly `{"error": string}` (§8.1; §15 item 8);
 * - a body that is not JSON → 400; an oversized body → 413;
 * - unknown fields on our extension endpoints (network policies) → 400;
 * - malformed or unknown `Authorization` → 401 on /v1 and /secrets/ (§4.1), 403 on /secrets/tokens/ (§11).
 * Runs on every store. FUZZ_RUNS scales the number of cases per endpoint (default 10).
 */
import fc from 'fast-check';
import { STORES } from '../support/stores';
import { startTestServer } from '../support/server';
import { Api, authFor, call, type AppInfo, type Resp, type SAInfo, uniq } from './verify-helpers';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10);

interface Fx {
  url: string;
  owner: Api;
  app: AppInfo;
  sa: SAInfo;
  scratchSa: SAInfo;
  scratchEnvId: string;
  scratchRoleId: string;
  scratchMemberId: string;
  policyId: string;
  /** A secret random bodies may target (they may rename or delete it). */
  secretId: string;
  /** A secret nothing random ever names: it must survive unchanged. */
  anchorId: string;
}

interface Endpoint {
  method: string;
  path: (f: Fx) => string;
  headers?: (f: Fx) => Record<string, string>;
  /** The handler reads a JSON body, so non-JSON must be a 400. */
  readsBody: boolean;
  kind: 'v1' | 'e2e' | 'tokens' | 'open';
}

const rid = '00000000-0000-4000-8000-000000000000';
const ENDPOINTS: Endpoint[] = [
  { method: 'GET', path: () => '/v1/apps/', readsBody: false, kind: 'v1' },
  { method: 'POST', path: () => '/v1/apps/', readsBody: true, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/apps/${f.app.id}/`, readsBody: false, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/apps/${f.app.id}/`, readsBody: true, kind: 'v1' },
  { method: 'DELETE', path: () => `/v1/apps/${rid}/`, readsBody: false, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/environments/?app_id=${f.app.id}`, readsBody: false, kind: 'v1' },
  { method: 'POST', path: (f) => `/v1/environments/?app_id=${f.app.id}`, readsBody: true, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/environments/${f.scratchEnvId}/`, readsBody: false, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/environments/${f.scratchEnvId}/`, readsBody: true, kind: 'v1' },
  { method: 'DELETE', path: () => `/v1/environments/${rid}/`, readsBody: false, kind: 'v1' },
  {
    method: 'GET',
    path: (f) => `/v1/secrets/?app_id=${f.app.id}&env=Development`,
    readsBody: false,
    kind: 'v1',
  },
  {
    method: 'POST',
    path: (f) => `/v1/secrets/?app_id=${f.app.id}&env=Development`,
    readsBody: true,
    kind: 'v1',
  },
  {
    method: 'PUT',
    path: (f) => `/v1/secrets/?app_id=${f.app.id}&env=Development`,
    readsBody: true,
    kind: 'v1',
  },
  {
    method: 'DELETE',
    path: (f) => `/v1/secrets/?app_id=${f.app.id}&env=Development`,
    readsBody: true,
    kind: 'v1',
  },
  { method: 'GET', path: () => '/v1/service-accounts/', readsBody: false, kind: 'v1' },
  { method: 'POST', path: () => '/v1/service-accounts/', readsBody: true, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/service-accounts/${f.scratchSa.id}/`, readsBody: false, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/service-accounts/${f.scratchSa.id}/`, readsBody: true, kind: 'v1' },
  { method: 'DELETE', path: () => `/v1/service-accounts/${rid}/`, readsBody: false, kind: 'v1' },
  {
    method: 'PUT',
    path: (f) => `/v1/service-accounts/${f.scratchSa.id}/access/`,
    readsBody: true,
    kind: 'v1',
  },
  {
    method: 'POST',
    path: (f) => `/v1/service-accounts/${f.scratchSa.id}/tokens/`,
    readsBody: true,
    kind: 'v1',
  },
  {
    method: 'DELETE',
    path: (f) => `/v1/service-accounts/${f.scratchSa.id}/tokens/${rid}/`,
    readsBody: false,
    kind: 'v1',
  },
  { method: 'GET', path: () => '/v1/roles/', readsBody: false, kind: 'v1' },
  { method: 'POST', path: () => '/v1/roles/', readsBody: true, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/roles/${f.scratchRoleId}/`, readsBody: false, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/roles/${f.scratchRoleId}/`, readsBody: true, kind: 'v1' },
  { method: 'DELETE', path: () => `/v1/roles/${rid}/`, readsBody: false, kind: 'v1' },
  { method: 'GET', path: () => '/v1/members/', readsBody: false, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/members/${f.scratchMemberId}/`, readsBody: false, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/members/${f.scratchMemberId}/`, readsBody: true, kind: 'v1' },
  { method: 'GET', path: (f) => `/v1/members/${f.scratchMemberId}/access/`, readsBody: false, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/members/${f.scratchMemberId}/access/`, readsBody: true, kind: 'v1' },
  { method: 'DELETE', path: () => `/v1/members/${rid}/`, readsBody: false, kind: 'v1' },
  { method: 'GET', path: () => '/v1/network-policies/', readsBody: false, kind: 'v1' },
  { method: 'POST', path: () => '/v1/network-policies/', readsBody: true, kind: 'v1' },
  { method: 'PUT', path: (f) => `/v1/network-policies/${f.policyId}/`, readsBody: true, kind: 'v1' },
  { method: 'GET', path: () => '/v1/audit-logs/', readsBody: false, kind: 'v1' },
  { method: 'GET', path: () => '/service/secrets/tokens/', readsBody: false, kind: 'tokens' },
  {
    method: 'GET',
    path: () => '/service/secrets/',
    headers: (f) => ({ Environment: f.app.envs.Development }),
    readsBody: false,
    kind: 'e2e',
  },
  {
    method: 'POST',
    path: () => '/service/secrets/',
    headers: (f) => ({ Environment: f.app.envs.Development }),
    readsBody: true,
    kind: 'e2e',
  },
  {
    method: 'PUT',
    path: () => '/service/secrets/',
    headers: (f) => ({ Environment: f.app.envs.Development }),
    readsBody: true,
    kind: 'e2e',
  },
  {
    method: 'DELETE',
    path: () => '/service/secrets/',
    headers: (f) => ({ Environment: f.app.envs.Development }),
    readsBody: true,
    kind: 'e2e',
  },
  { method: 'GET', path: () => '/health/', readsBody: false, kind: 'open' },
  { method: 'GET', path: () => '/', readsBody: false, kind: 'open' },
];
const label = (e: Endpoint): string =>
  `${e.method} ${e.path({ app: { id: ':app', envs: {} }, scratchSa: { id: ':sa' } } as unknown as Fx)}`;

// Field names the handlers look at, so random objects reach deep validation rather than bouncing off the first check.
const FIELDS = [
  'name',
  'description',
  'environments',
  'role_id',
  'token_name',
  'team_id',
  'expires_at',
  'expires_in',
  'expiry',
  'apps',
  'id',
  'paths',
  'secrets',
  'key',
  'value',
  'comment',
  'path',
  'tags',
  'type',
  'override',
  'isActive',
  'keyDigest',
  'permissions',
  'app_permissions',
  'appPermissions',
  'global_access',
  'color',
  'email',
  'allowed_ips',
  'is_global',
  'account_type',
  'account_id',
  '__proto__',
  'constructor',
];

function bodyArb(f: Fx): fc.Arbitrary<unknown> {
  const idLike = fc.constantFrom(
    f.app.id,
    f.app.envs.Development,
    f.sa.id,
    f.scratchSa.id,
    f.secretId,
    rid,
    'not-a-uuid',
    '',
  );
  const leaf = fc.oneof(
    fc.string({ maxLength: 24 }),
    fc.string({ unit: 'binary', maxLength: 24 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    idLike,
    fc.constantFrom(
      'ph:v1:' + 'ab'.repeat(32) + ':AAAA',
      'secret',
      'sealed',
      'config',
      'Development',
      '/a//b/',
      '2099-01-01T00:00:00Z',
      'x'.repeat(300),
    ),
  );
  const key = fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 }));
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('arr'), tie('obj')),
    arr: fc.array(tie('tree'), { maxLength: 4 }),
    obj: fc.dictionary(key, tie('tree'), { maxKeys: 6 }),
  }));
  const entry = fc.dictionary(key, tree, { maxKeys: 8 });
  return fc.oneof(
    tree,
    fc.record({
      secrets: fc.oneof(fc.array(entry, { maxLength: 3 }), fc.array(idLike, { maxLength: 3 }), tree),
    }),
    fc.record({
      apps: fc.oneof(
        fc.array(
          fc.record(
            { id: idLike, environments: fc.array(idLike, { maxLength: 3 }), paths: tree },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        tree,
      ),
    }),
    fc.record(
      { name: tree, role_id: idLike, permissions: tree, expires_at: tree, expires_in: tree },
      { requiredKeys: [] },
    ),
  );
}

/** A random Authorization value that can never be valid (no real token value). */
const badAuthArb = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
  fc
    .tuple(
      fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Token', ''),
      fc.constantFrom('User', 'Service', 'ServiceAccount', 'user', 'serviceaccount', 'Robot', ''),
      fc.oneof(
        fc.stringMatching(/^[0-9a-f]{64}$/),
        fc.stringMatching(/^[0-9A-Za-z]{0,70}$/),
        fc.constant(''),
      ),
      fc.constantFrom(' ', '  ', '\t'),
    )
    .map(([b, t, v, sep]) => [b, t, v].join(sep)),
  fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `pss_service:v2:${h}:${h}:${h}:${h}`),
);

const headerValueArb = fc.string({ unit: 'grapheme-ascii', maxLength: 60 });

function isErrorBody(r: Resp): boolean {
  return (
    r.json !== null &&
    typeof r.json === 'object' &&
    !Array.isArray(r.json) &&
    typeof r.json.error === 'string' &&
    Object.keys(r.json).every((k) => k === 'error')
  );
}

/** The common invariant: no 5xx, and 4xx bodies are `{"error": string}`. */
function checkAnswer(r: Resp, what: string): void {
  if (r.status >= 500) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  if (r.status >= 400 && !isErrorBody(r))
    throw new Error(`${what}: HTTP ${r.status} error body is not {"error": string}: ${r.text.slice(0, 200)}`);
}

describe.each(STORES)('fuzzing every endpoint (%s)', (store) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let f: Fx;

  beforeAll(async () => {
    server = await startTestServer({ store });
    const url = server.url.replace(/\/+$/, '');
    const owner = new Api(url, authFor(server.ownerToken));
    const roles = await owner.roles();
    const app = await owner.createApp(uniq('fuzz'));
    const sa = await owner.createSA(uniq('fuzz-sa'), roles.Service);
    await owner.grantSA(sa.id, [{ id: app.id, environments: [app.envs.Development] }]);
    const scratchSa = await owner.createSA(uniq('fuzz-scratch'), roles.Service);
    const env = await owner.ok('POST', `/v1/environments/?app_id=${app.id}`, { name: 'FuzzScratch' }, 201);
    const role = await owner.ok(
      'POST',
      '/v1/roles/',
      { name: uniq('fuzz-role'), permissions: { permissions: {}, app_permissions: {} } },
      201,
    );
    const member = await server.addMember('Developer');
    const policy = await owner.ok(
      'POST',
      '/v1/network-policies/',
      { name: 'fuzz', allowed_ips: ['0.0.0.0/0', '::/0'] },
      201,
    );
    const [anchor, secret] = await owner.ok(
      'POST',
      `/v1/secrets/?app_id=${app.id}&env=Development`,
      {
        secrets: [
          { key: 'FUZZ_ANCHOR', value: 'anchor' },
          { key: 'FUZZ_TARGET', value: 'target' },
        ],
      },
      200,
    );
    f = {
      url,
      owner,
      app,
      sa,
      scratchSa,
      scratchEnvId: env.id,
      scratchRoleId: role.id,
      scratchMemberId: member.id,
      policyId: policy.id,
      secretId: secret.id,
      anchorId: anchor.id,
    };
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  test('random JSON bodies: never a 5xx, errors are {"error": string}', async () => {
    for (const e of ENDPOINTS.filter((x) => x.method !== 'GET')) {
      await fc.assert(
        fc.asyncProperty(bodyArb(f), fc.boolean(), async (body, asSa) => {
          const r = await call(f.url, e.method, e.path(f), {
            auth: asSa ? `Bearer ${f.sa.bearer}` : f.owner.auth,
            body,
            headers: e.headers?.(f),
          });
          checkAnswer(r, `${label(e)} body=${JSON.stringify(body).slice(0, 200)}`);
        }),
        { numRuns: RUNS * 2 },
      );
    }
  });

  test('bodies that are not JSON → 400 (and never a 5xx); any content type is parsed as JSON', async () => {
    for (const e of ENDPOINTS.filter((x) => x.method !== 'GET')) {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 64 }),
            fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
            fc.constantFrom(
              '{',
              '{"secrets": [',
              '[1,,2]',
              "{'a': 1}",
              'NaN',
              '{"a":1}}',
              '\u0000',
              'undefined',
            ),
          ),
          fc.constantFrom(
            'application/json',
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/octet-stream',
          ),
          async (raw, contentType) => {
            let isJson = true;
            try {
              JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : raw);
            } catch {
              isJson = false;
            }
            const r = await call(f.url, e.method, e.path(f), {
              auth: f.owner.auth,
              raw,
              headers: { ...(e.headers?.(f) ?? {}), 'Content-Type': contentType },
            });
            const what = `${label(e)} raw=${JSON.stringify(Buffer.isBuffer(raw) ? raw.toString('hex') : raw).slice(0, 120)} (${contentType})`;
            checkAnswer(r, what);
            if (e.readsBody && !isJson && (Buffer.isBuffer(raw) ? raw.length : raw.length) > 0) {
              if (r.status !== 400)
                throw new Error(
                  `${what}: expected 400 for a body that is not JSON, got ${r.status} ${r.text.slice(0, 120)}`,
                );
            }
          },
        ),
        { numRuns: RUNS },
      );
    }
  });

  test('an empty body where one is required → 400', async () => {
    for (const e of ENDPOINTS.filter((x) => x.readsBody)) {
      const r = await call(f.url, e.method, e.path(f), {
        auth: f.owner.auth,
        headers: { ...(e.headers?.(f) ?? {}), 'Content-Type': 'application/json' },
      });
      expect([label(e), r.status, isErrorBody(r)]).toEqual([label(e), 400, true]);
    }
  });

  test('malformed or unknown Authorization: 401 on /v1 and /secrets/, 403 on /secrets/tokens/', async () => {
    for (const e of ENDPOINTS.filter((x) => x.kind !== 'open')) {
      await fc.assert(
        fc.asyncProperty(badAuthArb, async (auth) => {
          let r: Resp;
          try {
            r = await call(f.url, e.method, e.path(f), {
              auth,
              body: e.method === 'GET' ? undefined : { secrets: [] },
              headers: e.headers?.(f),
            });
          } catch (err) {
            // fetch itself refuses some header values (e.g. leading/trailing whitespace is trimmed, not rejected);
            // a refusal client-side is not a server answer.
            if (err instanceof TypeError) return;
            throw err;
          }
          // fetch trims header values; a blank one is then an absent header (see the no-header case below).
          const want = e.kind === 'tokens' ? (auth.trim() === '' ? [401, 403] : [403]) : [401];
          const what = `${label(e)} Authorization=${JSON.stringify(auth)}`;
          checkAnswer(r, what);
          if (!want.includes(r.status))
            throw new Error(`${what}: expected ${want.join('/')}, got ${r.status} ${r.text.slice(0, 120)}`);
        }),
        { numRuns: RUNS },
      );
      const none = await call(f.url, e.method, e.path(f), {
        headers: e.headers?.(f),
        body: e.method === 'GET' ? undefined : {},
      });
      checkAnswer(none, `${label(e)} without Authorization`);
      // Upstream answers 500 on /secrets/tokens/ without the header (§11); a compatible server must not.
      expect([
        label(e),
        e.kind === 'tokens' ? [401, 403].includes(none.status) : none.status === 401,
      ]).toEqual([label(e), true]);
      if (e.kind === 'v1')
        expect(none.json).toEqual({ error: 'Authentication credentials were not provided.' });
    }
  });

  test('random query strings and headers: never a 5xx', async () => {
    const qKeys = [
      'app_id',
      'appId',
      'env',
      'key',
      'path',
      'tags',
      'dynamic',
      'lease',
      'lease_ttl',
      'secret_id',
      'limit',
      'offset',
      'since',
      'until',
      'event_type',
      'actor_id',
      'environment_id',
    ];
    const qArb = fc.array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...qKeys), fc.string({ maxLength: 6 })),
        fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.constantFrom(
            f.app.id,
            f.secretId,
            'Development',
            '-1',
            '1e309',
            '%zz',
            '%',
            '[]',
            '',
            'x'.repeat(500),
          ),
        ),
        fc.boolean(),
      ),
      { maxLength: 5 },
    );
    const hArb = fc.dictionary(
      fc.constantFrom(
        'Environment',
        'KeyDigest',
        'Path',
        'Tags',
        'lease_ttl',
        'lease-ttl',
        'dynamic',
        'X-Use-Camel-Case',
        'X-Forwarded-For',
        'X-Real-IP',
        'secret_id',
        'Accept',
        'Content-Type',
      ),
      fc.oneof(
        headerValueArb,
        fc.constantFrom(f.app.envs.Development, f.secretId, rid, 'true', '::1', '999.1.1.1'),
      ),
      { maxKeys: 4 },
    );
    for (const e of ENDPOINTS.filter((x) => x.method === 'GET')) {
      await fc.assert(
        fc.asyncProperty(qArb, hArb, fc.boolean(), async (q, hs, asSa) => {
          const base = e.path(f);
          // Half the keys raw (possibly malformed %-escapes), half encoded.
          const qs = q
            .map(([k, v, enc]) =>
              enc
                ? `${encodeURIComponent(k)}=${encodeURIComponent(v)}`
                : `${k.replace(/[#\s&]/g, '')}=${v.replace(/[#\s&]/g, '')}`,
            )
            .join('&');
          const path = qs ? `${base}${base.includes('?') ? '&' : '?'}${qs}` : base;
          let r: Resp;
          try {
            r = await call(f.url, e.method, path, {
              auth: asSa ? `Bearer ${f.sa.bearer}` : f.owner.auth,
              headers: { ...(e.headers?.(f) ?? {}), ...hs },
            });
          } catch (err) {
            if (err instanceof TypeError) return; // fetch refused the URL or a header client-side
            throw err;
          }
          checkAnswer(r, `${e.method} ${path} headers=${JSON.stringify(hs)}`);
        }),
        { numRuns: RUNS },
      );
    }
  });

  test('random and malformed paths and methods: 404/405 with an error body, never a 5xx', async () => {
    const seg = fc.oneof(
      fc.constantFrom(
        'v1',
        'service',
        'public',
        'secrets',
        'tokens',
        'apps',
        'environments',
        'service-accounts',
        'roles',
        'members',
        'access',
        'network-policies',
        'audit-logs',
        'health',
        'metrics',
        '%zz',
        '%',
        '..',
        '.',
        '%2e%2e',
        '%00',
        rid,
        'x'.repeat(300),
      ),
      fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map((s) => s.replace(/[#?\s/\\]/g, '')),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(seg, { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        async (segs, slash, method) => {
          const path = `/${segs.join('/')}${slash ? '/' : ''}`;
          let r: Resp;
          try {
            r = await call(f.url, method, path, {
              auth: f.owner.auth,
              body: ['GET', 'OPTIONS'].includes(method) ? undefined : {},
            });
          } catch (err) {
            if (err instanceof TypeError) return;
            throw err;
          }
          checkAnswer(r, `${method} ${path}`);
        },
      ),
      { numRuns: RUNS * 8 },
    );
    // §8.3: PATCH, HEAD and OPTIONS fail after authentication: 405 on the management views, 403 on /v1/secrets/.
    const wrong: string[] = [];
    const paths = [...new Set(ENDPOINTS.filter((x) => x.kind === 'v1').map((e) => e.path(f)))];
    for (const m of ['PATCH', 'OPTIONS', 'HEAD']) {
      for (const p of paths) {
        const r = await call(f.url, m, p, { auth: f.owner.auth });
        const want = p.startsWith('/v1/secrets/') ? 403 : 405;
        if (r.status !== want) wrong.push(`${m} ${p}: expected ${want}, got ${r.status}`);
        else if (m !== 'HEAD' && !isErrorBody(r)) wrong.push(`${m} ${p}: error body ${r.text.slice(0, 80)}`);
      }
    }
    expect(wrong).toEqual([]);
    // Unslashed E2E URLs are plain 404s, no redirect (§3.2); `/v1` answers without the slash too (issue 15).
    for (const p of ['/service/secrets', '/service/secrets/tokens']) {
      const r = await call(f.url, 'GET', p, { auth: f.owner.auth });
      expect([p, r.status]).toEqual([p, 404]);
    }
    for (const p of ['/v1/apps', `/v1/apps/${f.app.id}`]) {
      const r = await call(f.url, 'GET', p, { auth: f.owner.auth });
      expect([p, r.status]).toEqual([p, 200]);
    }
  });

  test('oversized bodies → 413 with an error body', async () => {
    const big = JSON.stringify({ secrets: [{ key: 'BIG', value: 'x'.repeat(3 * 1024 * 1024) }] });
    for (const e of ENDPOINTS.filter((x) => x.readsBody)) {
      const r = await call(f.url, e.method, e.path(f), {
        auth: f.owner.auth,
        raw: big,
        headers: { ...(e.headers?.(f) ?? {}), 'Content-Type': 'application/json' },
      });
      expect([label(e), r.status, isErrorBody(r)]).toEqual([label(e), 413, true]);
    }
    // Also unauthenticated: a stranger cannot make us buffer without bound.
    const anon = await call(f.url, 'POST', '/v1/apps/', {
      raw: big,
      headers: { 'Content-Type': 'application/json' },
    });
    expect([413, 401]).toContain(anon.status);
    expect((await f.owner.listSecrets(f.app.id, 'Development', '&key=BIG')).length).toBe(0);
  });

  test('extension endpoints reject unknown fields with 400', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .string({ minLength: 1, maxLength: 12 })
          .filter((k) => !['name', 'allowed_ips', 'is_global', '__proto__'].includes(k)),
        fc.jsonValue(),
        async (k, v) => {
          const create = await call(f.url, 'POST', '/v1/network-policies/', {
            auth: f.owner.auth,
            body: { name: 'p', allowed_ips: ['10.0.0.0/8'], [k]: v },
          });
          if (create.status !== 400 || !isErrorBody(create))
            throw new Error(`POST policies with '${k}': ${create.status} ${create.text.slice(0, 120)}`);
          const update = await call(f.url, 'PUT', `/v1/network-policies/${f.policyId}/`, {
            auth: f.owner.auth,
            body: { name: 'p2', [k]: v },
          });
          if (update.status !== 400 || !isErrorBody(update))
            throw new Error(`PUT policy with '${k}': ${update.status} ${update.text.slice(0, 120)}`);
        },
      ),
      { numRuns: RUNS },
    );
    const attach = await call(f.url, 'PUT', `/v1/network-policies/${f.policyId}/attachments/`, {
      auth: f.owner.auth,
      body: { account_type: 'service_account', account_id: f.sa.id, surprise: 1 },
    });
    expect(attach.status).toBe(400);
    const audit = await call(f.url, 'GET', '/v1/audit-logs/?surprise=1', { auth: f.owner.auth });
    expect(audit.status).toBe(400);
    // The fuzzed policy was never changed by a rejected request.
    const p = await f.owner.ok('GET', `/v1/network-policies/${f.policyId}/`, undefined, 200);
    expect(p.name).toBe('fuzz');
  });

  test('the server is still alive and consistent after all of it', async () => {
    const h = await call(f.url, 'GET', '/health/');
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({ status: 'alive' });
    const anchor = await f.owner.listSecrets(f.app.id, 'Development', '&key=FUZZ_ANCHOR');
    expect(anchor.map((s) => [s.id, s.value, s.version])).toEqual([[f.anchorId, 'anchor', 1]]);
    const viaSa = await call(
      f.url,
      'GET',
      `/v1/secrets/?app_id=${f.app.id}&env=Development&key=FUZZ_ANCHOR`,
      { auth: `Bearer ${f.sa.bearer}` },
    );
    expect(viaSa.status).toBe(200);
  });
});
