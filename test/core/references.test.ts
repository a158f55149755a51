/** Secret references (phase-protocol.md §5): parsing per the Go SDK, extraction, and resolution. */
import { PhaseBridgeError } from '../../core/errors';
import {
  extractReferences,
  formatReference,
  hasReferences,
  LocalSecret,
  LookupContext,
  normalizeReferencePath,
  parseReference,
  ReferenceResolutionError,
  ReferenceResolver,
  ReferenceSyntaxError,
  ReferenceTarget,
  resolveReferences,
  resolveReferencesSync,
} from '../../core/references';

describe('parseReference: the §5.1 table', () => {
  test.each([
    ['KEY', { path: '/', key: 'KEY' }],
    ['staging.DEBUG', { env: 'staging', path: '/', key: 'DEBUG' }],
    ['production./frontend/SECRET_KEY', { env: 'production', path: '/frontend', key: 'SECRET_KEY' }],
    ['/backend/payments/STRIPE_KEY', { path: '/backend/payments', key: 'STRIPE_KEY' }],
    [
      'backend_api::production.SECRET_KEY',
      { app: 'backend_api', env: 'production', path: '/', key: 'SECRET_KEY' },
    ],
    [
      'backend_api::production./frontend/SECRET_KEY',
      { app: 'backend_api', env: 'production', path: '/frontend', key: 'SECRET_KEY' },
    ],
  ])('${%s}', (inner, expected) => {
    expect(parseReference(inner)).toEqual(expected);
    expect(parseReference(`\${${inner}}`)).toEqual(expected);
  });
});

describe('parseReference: Go SDK rules (§5.2)', () => {
  test('`::` splits once, the first `.` is the environment, the last `/` the key', () => {
    expect(parseReference('a::b::c.KEY')).toEqual({ app: 'a', env: 'b::c', path: '/', key: 'KEY' });
    expect(parseReference('dev.a.b.KEY')).toEqual({ env: 'dev', path: '/', key: 'a.b.KEY' });
    expect(parseReference('dev./a/b/c/KEY')).toEqual({ env: 'dev', path: '/a/b/c', key: 'KEY' });
    // Like Go: a dot anywhere makes everything before it the environment, even inside what looks like a path.
    expect(parseReference('/v1.2/KEY')).toEqual({ env: '/v1', path: '/2', key: 'KEY' });
  });

  test('paths are normalised: leading slash added, trailing slashes stripped', () => {
    expect(parseReference('prod.frontend/KEY')).toEqual({ env: 'prod', path: '/frontend', key: 'KEY' });
    expect(parseReference('/a/b//KEY')).toEqual({ path: '/a/b', key: 'KEY' });
    expect(parseReference('//KEY')).toEqual({ path: '/', key: 'KEY' });
    expect(parseReference('/KEY')).toEqual({ path: '/', key: 'KEY' });
    expect(normalizeReferencePath('')).toBe('/');
    expect(normalizeReferencePath('/')).toBe('/');
    expect(normalizeReferencePath('a/b/')).toBe('/a/b');
  });

  test.each([
    ['app::KEY', /cross-app references must name an environment/],
    ['app::/path/KEY', /cross-app references must name an environment/],
    ['app::.KEY', /environment name before '\.' is empty/],
    ['::prod.KEY', /app name before '::' is empty/],
    ['.KEY', /environment name before '\.' is empty/],
    ['prod.', /key is empty/],
    ['prod./path/', /key is empty/],
    ['', /empty/],
    ['a{b', /braces/],
  ])('%j is invalid', (inner, message) => {
    expect(() => parseReference(inner)).toThrow(ReferenceSyntaxError);
    expect(() => parseReference(inner)).toThrow(message);
    try {
      parseReference(inner);
    } catch (e) {
      expect(e).toBeInstanceOf(PhaseBridgeError);
      expect((e as PhaseBridgeError).code).toBe('reference_syntax');
    }
  });

  test('formatReference is the canonical inverse', () => {
    expect(formatReference({ path: '/', key: 'KEY' })).toBe('${KEY}');
    expect(formatReference({ env: 'staging', path: '/', key: 'DEBUG' })).toBe('${staging.DEBUG}');
    expect(formatReference({ app: 'api', env: 'prod', path: '/a/b/', key: 'K' })).toBe('${api::prod./a/b/K}');
    expect(formatReference({ path: 'x', key: 'K' })).toBe('${/x/K}');
  });
});

describe('extractReferences', () => {
  test('finds every reference with its position; `${{...}}` is not one', () => {
    const value = 'a ${KEY} b ${{ secrets.X }} c ${staging.DEBUG}${app::KEY}';
    const refs = extractReferences(value);
    expect(refs.map((r) => r.text)).toEqual(['${KEY}', '${staging.DEBUG}', '${app::KEY}']);
    for (const r of refs) expect(value.slice(r.start, r.end)).toBe(r.text);
    expect(refs[0]).toMatchObject({ valid: true, reference: { path: '/', key: 'KEY' } });
    expect(refs[1]).toMatchObject({ valid: true, reference: { env: 'staging', key: 'DEBUG' } });
    const bad = refs[2];
    expect(bad.valid).toBe(false);
    if (!bad.valid) expect(bad.error).toBeInstanceOf(ReferenceSyntaxError);
  });

  test('nothing to find', () => {
    expect(extractReferences('')).toEqual([]);
    expect(extractReferences('$KEY ${} {KEY} $ {KEY}')).toEqual([]);
    expect(extractReferences('${{KEY}}')).toEqual([]);
    expect(hasReferences('plain')).toBe(false);
    expect(hasReferences('x${A}')).toBe(true);
  });
});

const dev = (key: string, value: string, path = '/'): LocalSecret => ({
  env: 'Development',
  path,
  key,
  value,
});

describe('resolution against in-memory secrets', () => {
  const secrets: LocalSecret[] = [
    dev('HOST', 'db.local'),
    dev('PORT', '5432'),
    dev('URL', 'postgres://${HOST}:${PORT}/app'),
    dev('API_KEY', 'frontend-key', '/frontend'),
    { env: 'staging', key: 'DEBUG', value: 'true' },
    { env: 'Production', path: '/frontend/', key: 'SECRET_KEY', value: 'prod-fe' },
    { app: 'backend_api', env: 'production', key: 'SECRET_KEY', value: 'be-root' },
    { app: 'backend_api', env: 'production', path: '/frontend', key: 'SECRET_KEY', value: 'be-fe' },
    { app: 'Backend_API', env: 'production', key: 'CHAIN', value: '${SECRET_KEY}+${staging.DEBUG}' },
  ];
  const resolver = new ReferenceResolver({ app: 'my_app', secrets });
  const scope = { env: 'Development', path: '/', key: 'VALUE' };

  test.each([
    ['${HOST}', 'db.local'],
    ['${URL}', 'postgres://db.local:5432/app'],
    ['${staging.DEBUG}', 'true'],
    ['${STAGING.DEBUG}', 'true'],
    ['${production./frontend/SECRET_KEY}', 'prod-fe'],
    ['${/frontend/API_KEY}', 'frontend-key'],
    ['${backend_api::production.SECRET_KEY}', 'be-root'],
    ['${BACKEND_API::Production./frontend/SECRET_KEY}', 'be-fe'],
    ['${my_app::development.HOST}', 'db.local'],
    ['${{HOST}} ${HOST}', '${{HOST}} db.local'],
    ['', ''],
    ['no references', 'no references'],
  ])('%s', async (value, expected) => {
    expect(await resolver.resolve(value, scope)).toBe(expected);
    expect(resolver.resolveSync(value, scope)).toBe(expected);
  });

  test('keys are case-sensitive', () => {
    expect(resolver.resolveSync('${host}', scope)).toBe('${host}');
  });

  test('`${KEY}` means path `/` even from a value stored under another path', () => {
    expect(resolver.resolveSync('${HOST}|${API_KEY}', { env: 'Development', path: '/frontend' })).toBe(
      'db.local|${API_KEY}',
    );
  });

  test('a value from another app resolves its local references in that app', () => {
    // CHAIN lives in backend_api/production: its ${SECRET_KEY} is backend_api's, its ${staging.DEBUG} would be
    // backend_api's staging (absent here), not my_app's.
    expect(resolver.resolveSync('${backend_api::production.CHAIN}', scope)).toBe('be-root+${staging.DEBUG}');
  });

  test('the local secrets are indexed only when a value holds a reference', () => {
    let reads = 0;
    const secret = {
      env: 'dev',
      key: 'K',
      value: 'v',
      get path(): string {
        reads++;
        return '/';
      },
    };
    const r = new ReferenceResolver({ secrets: [secret] });
    expect(r.resolveSync('no reference here', { env: 'dev' })).toBe('no reference here');
    expect(reads).toBe(0);
    expect(r.resolveSync('${K}', { env: 'dev' })).toBe('v');
    const afterFirst = reads;
    expect(afterFirst).toBeGreaterThan(0);
    expect(r.resolveSync('${K}-${K}', { env: 'dev' })).toBe('v-v');
    expect(reads).toBe(afterFirst); // built once
  });

  test('the exact environment name wins over a case-insensitive match', () => {
    const r = new ReferenceResolver({
      secrets: [
        { env: 'dev', key: 'K', value: 'lower' },
        { env: 'Dev', key: 'K', value: 'upper' },
      ],
    });
    expect(r.resolveSync('${Dev.K}', { env: 'x' })).toBe('upper');
    expect(r.resolveSync('${dev.K}', { env: 'x' })).toBe('lower');
    expect(r.resolveSync('${DEV.K}', { env: 'x' })).toBe('lower');
  });

  test('resolveAll resolves every secret in its own scope, in order', async () => {
    const all = await resolver.resolveAll();
    expect(all.map((s) => s.key)).toEqual(secrets.map((s) => s.key));
    expect(all.find((s) => s.key === 'URL')?.value).toBe('postgres://db.local:5432/app');
    expect(all.find((s) => s.key === 'CHAIN')?.value).toBe('be-root+${staging.DEBUG}');
    expect(resolver.resolveAllSync()).toEqual(all);
  });
});

describe('replacement is positional', () => {
  test('a resolved value that looks like a later reference is not substituted again', () => {
    // prod.A resolves to the literal text ${B} (prod has no B); a string replace of ${B} would then clobber it.
    const r = new ReferenceResolver({
      secrets: [
        { env: 'prod', key: 'A', value: '${B}' },
        { env: 'dev', key: 'B', value: 'dev-b' },
      ],
    });
    expect(r.resolveSync('${prod.A}-${B}-${prod.A}', { env: 'dev' })).toBe('${B}-dev-b-${B}');
  });

  test('a value containing `$` patterns is inserted verbatim', () => {
    const r = new ReferenceResolver({ secrets: [{ env: 'dev', key: 'A', value: "$& $' $` $$ $1" }] });
    expect(r.resolveSync('[${A}]', { env: 'dev' })).toBe("[$& $' $` $$ $1]");
  });
});

describe('lenient vs strict', () => {
  const secrets: LocalSecret[] = [
    { env: 'dev', key: 'A', value: 'a=${B}' },
    { env: 'dev', key: 'B', value: 'b=${A}' },
    { env: 'dev', key: 'SELF', value: 'x${SELF}' },
    { env: 'dev', key: 'HOLE', value: 'h=${NOPE}' },
    { env: 'dev', key: 'OK', value: 'fine' },
  ];

  test('lenient: the reference closing a cycle stays verbatim', () => {
    const r = new ReferenceResolver({ secrets });
    expect(r.resolveSync('${A}', { env: 'dev' })).toBe('a=b=${A}');
    // The value of A itself, resolved in A's own scope; and a value referring to its own key.
    expect(r.resolveSync('a=${B}', { env: 'dev', key: 'A' })).toBe('a=b=${A}');
    expect(r.resolveSync('${A}', { env: 'dev', key: 'A' })).toBe('${A}');
    expect(r.resolveSync('${SELF}', { env: 'dev' })).toBe('x${SELF}');
    const all = r.resolveAllSync();
    expect(all.map((s) => s.value)).toEqual(['a=b=${A}', 'b=a=${B}', 'x${SELF}', 'h=${NOPE}', 'fine']);
  });

  test('lenient: broken references stay verbatim and are reported to onUnresolved', () => {
    const reported: ReferenceResolutionError[] = [];
    const r = new ReferenceResolver({ secrets, onUnresolved: (e) => reported.push(e) });
    expect(r.resolveSync('${OK} ${NOPE} ${app::KEY} ${HOLE} ${{X}}', { env: 'dev' })).toBe(
      'fine ${NOPE} ${app::KEY} h=${NOPE} ${{X}}',
    );
    expect(reported.map((e) => [e.reason, e.reference])).toEqual([
      ['missing', '${NOPE}'],
      ['invalid', '${app::KEY}'],
      ['missing', '${NOPE}'],
    ]);
    expect(reported[2].chain).toEqual(['${HOLE}', '${NOPE}']);
    expect(reported[2].message).toContain('via ${HOLE} -> ${NOPE}');
  });

  test('strict: missing', () => {
    const r = new ReferenceResolver({ secrets, mode: 'strict' });
    expect(r.resolveSync('${OK}', { env: 'dev' })).toBe('fine');
    let err: unknown;
    try {
      r.resolveSync('${OK} ${HOLE}', { env: 'dev' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReferenceResolutionError);
    expect(err).toBeInstanceOf(PhaseBridgeError);
    const e = err as ReferenceResolutionError;
    expect(e.reason).toBe('missing');
    expect(e.code).toBe('reference_missing');
    expect(e.reference).toBe('${NOPE}');
    expect(e.target).toEqual({ env: 'dev', path: '/', key: 'NOPE' });
    expect(e.message).toBe(
      'cannot resolve ${NOPE}: no secret NOPE at path / in environment dev (via ${HOLE} -> ${NOPE})',
    );
    expect(e.message).not.toContain('fine');
  });

  test('strict: cycle, invalid', async () => {
    const r = new ReferenceResolver({ secrets, mode: 'strict' });
    expect(() => r.resolveSync('${A}', { env: 'dev' })).toThrow(
      expect.objectContaining({ reason: 'cycle', reference: '${A}', chain: ['${A}', '${B}', '${A}'] }),
    );
    await expect(r.resolve('${SELF}', { env: 'dev', key: 'SELF' })).rejects.toMatchObject({
      reason: 'cycle',
      chain: ['${SELF}'],
    });
    expect(() => r.resolveSync('${app::KEY}', { env: 'dev' })).toThrow(
      expect.objectContaining({ reason: 'invalid', code: 'reference_invalid' }),
    );
  });

  test('depth limit', () => {
    const chain: LocalSecret[] = Array.from({ length: 30 }, (_, i) => ({
      env: 'dev',
      key: `K${i}`,
      value: i === 29 ? 'end' : `\${K${i + 1}}`,
    }));
    expect(new ReferenceResolver({ secrets: chain }).resolveSync('${K0}', { env: 'dev' })).toBe('${K25}');
    expect(new ReferenceResolver({ secrets: chain, maxDepth: 30 }).resolveSync('${K0}', { env: 'dev' })).toBe(
      'end',
    );
    expect(() =>
      new ReferenceResolver({ secrets: chain, mode: 'strict', maxDepth: 3 }).resolveSync('${K0}', {
        env: 'dev',
      }),
    ).toThrow(expect.objectContaining({ reason: 'depth', reference: '${K3}' }));
  });

  test('memoised expansions still respect the depth limit (results do not depend on order)', () => {
    const chain: LocalSecret[] = Array.from({ length: 6 }, (_, i) => ({
      env: 'dev',
      key: `K${i}`,
      value: i === 5 ? 'end' : `\${K${i + 1}}`,
    }));
    const r = new ReferenceResolver({ secrets: chain, maxDepth: 3 });
    expect(r.resolveSync('${K3}', { env: 'dev' })).toBe('end'); // K3 -> K4 -> K5: fits, memoised
    expect(r.resolveSync('${K1}', { env: 'dev' })).toBe('${K4}'); // K1 -> K2 -> K3 -> (K4 too deep)
    expect(new ReferenceResolver({ secrets: chain, maxDepth: 3 }).resolveSync('${K1}', { env: 'dev' })).toBe(
      '${K4}',
    );
  });

  test('exponential expansion is capped by maxLength and stays fast', () => {
    const bomb: LocalSecret[] = Array.from({ length: 25 }, (_, i) => ({
      env: 'dev',
      key: `B${i}`,
      value: i === 24 ? 'xxxxxxxxxx' : `\${B${i + 1}}\${B${i + 1}}`,
    }));
    const started = Date.now();
    const out = new ReferenceResolver({ secrets: bomb }).resolveSync('${B0}', { env: 'dev' });
    expect(out.length).toBeLessThanOrEqual(1024 * 1024 + 10);
    expect(out).toContain('${B');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(() =>
      new ReferenceResolver({ secrets: bomb, mode: 'strict', maxLength: 1000 }).resolveSync('${B0}', {
        env: 'dev',
      }),
    ).toThrow(expect.objectContaining({ reason: 'too_long' }));
  });
});

describe('lookup callback', () => {
  test('receives the fully-qualified target and context; results are cached per resolver', async () => {
    const calls: Array<[ReferenceTarget, LookupContext]> = [];
    const remote: Record<string, string> = {
      'shared|production|/|DB': 'db=${PASSWORD}',
      'shared|production|/|PASSWORD': 'pw',
      'my_app|staging|/api|TOKEN': 'tok',
    };
    const r = new ReferenceResolver({
      app: 'my_app',
      secrets: [{ env: 'dev', key: 'LOCAL', value: 'l' }],
      lookup: async (target, context) => {
        calls.push([target, context]);
        return remote[
          `${target.app?.toLowerCase()}|${target.env.toLowerCase()}|${target.path}|${target.key}`
        ];
      },
    });
    const scope = { env: 'dev', path: '/', key: 'X' };
    const value =
      '${LOCAL} ${SHARED::Production.DB} ${staging./api/TOKEN} ${shared::production.DB} ${MISSING}';
    expect(await r.resolve(value, scope)).toBe('l db=pw tok db=pw ${MISSING}');
    expect(calls.map(([t]) => t)).toEqual([
      { app: 'SHARED', env: 'Production', path: '/', key: 'DB' },
      // The nested reference inherits the app and environment of the value it was found in.
      { app: 'SHARED', env: 'Production', path: '/', key: 'PASSWORD' },
      { app: 'my_app', env: 'staging', path: '/api', key: 'TOKEN' },
      { app: 'my_app', env: 'dev', path: '/', key: 'MISSING' },
    ]);
    expect(calls[0][1]).toEqual({ reference: '${SHARED::Production.DB}', from: scope, depth: 1 });
    expect(calls[1][1]).toMatchObject({ reference: '${PASSWORD}', depth: 2 });
    // Cached: a second resolution asks nothing new.
    expect(await r.resolve('${shared::production.DB}', scope)).toBe('db=pw');
    expect(calls).toHaveLength(4);
  });

  test('one-shot helpers, sync and async', async () => {
    const lookup = (t: ReferenceTarget): string | undefined => (t.key === 'A' ? 'a' : undefined);
    expect(resolveReferencesSync('${A}${B}', { scope: { env: 'dev' }, lookup })).toBe('a${B}');
    expect(await resolveReferences('${A}${B}', { scope: { env: 'dev' }, lookup })).toBe('a${B}');
    await expect(
      resolveReferences('${B}', { scope: { env: 'dev' }, lookup, mode: 'strict' }),
    ).rejects.toBeInstanceOf(ReferenceResolutionError);
  });

  test('a throwing lookup is a lookup failure carrying the cause', async () => {
    const boom = new Error('network down');
    const opts = { scope: { env: 'dev' }, lookup: () => Promise.reject(boom) };
    expect(await resolveReferences('x${A}', opts)).toBe('x${A}');
    const err = await resolveReferences('x${A}', { ...opts, mode: 'strict' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReferenceResolutionError);
    expect(err).toMatchObject({ reason: 'lookup', cause: boom });
    expect((err as Error).message).toContain('network down');
    const syncThrow = () => {
      throw boom;
    };
    expect(() =>
      resolveReferencesSync('${A}', { scope: { env: 'dev' }, lookup: syncThrow, mode: 'strict' }),
    ).toThrow(expect.objectContaining({ reason: 'lookup' }));
  });

  test('the sync variant refuses an async lookup; a non-string result is a lookup failure', () => {
    const asyncLookup = async () => 'v';
    expect(resolveReferencesSync('${A}', { scope: { env: 'dev' }, lookup: asyncLookup })).toBe('${A}');
    expect(() =>
      resolveReferencesSync('${A}', { scope: { env: 'dev' }, lookup: asyncLookup, mode: 'strict' }),
    ).toThrow(/use the async resolve/);
    const weird = (() => 42) as unknown as () => string;
    expect(() =>
      resolveReferencesSync('${A}', { scope: { env: 'dev' }, lookup: weird, mode: 'strict' }),
    ).toThrow(/returned number/);
  });

  test('null means not found', () => {
    expect(resolveReferencesSync('${A}', { scope: { env: 'dev' }, lookup: () => null })).toBe('${A}');
  });
});
