/** Property tests for secret references: robustness on any input, and the resolver against a naive model. */
import fc from 'fast-check';
import {
  extractReferences,
  formatReference,
  LocalSecret,
  parseReference,
  ReferenceResolutionError,
  ReferenceResolver,
  ReferenceSyntaxError,
  SecretReference,
} from '../../core/references';

const RUNS = { numRuns: 300 };

/** Strings dense in the characters the syntax cares about, plus arbitrary Unicode and lone surrogates. */
const syntaxy = fc.oneof(
  fc.string({ unit: fc.constantFrom('$', '{', '}', ':', '.', '/', 'a', 'K', '_', ' ', '\n'), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
);

test('parseReference returns a well-formed reference or throws ReferenceSyntaxError', () => {
  fc.assert(
    fc.property(syntaxy, (input) => {
      let ref: SecretReference;
      try {
        ref = parseReference(input);
      } catch (e) {
        expect(e).toBeInstanceOf(ReferenceSyntaxError);
        return;
      }
      expect(ref.key.length).toBeGreaterThan(0);
      expect(ref.key).not.toContain('/');
      expect(ref.path.startsWith('/')).toBe(true);
      expect(ref.path === '/' || !ref.path.endsWith('/')).toBe(true);
      if (ref.app !== undefined) expect(ref.env).toBeDefined();
    }),
    RUNS,
  );
});

test('formatReference and parseReference are inverses on well-formed references', () => {
  const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
  const ref = fc.record(
    {
      app: name,
      env: name,
      path: fc.array(name, { maxLength: 4 }).map((segs) => `/${segs.join('/')}`),
      key: fc.stringMatching(/^[A-Z0-9_]{1,16}$/),
    },
    { requiredKeys: ['path', 'key'] },
  );
  fc.assert(
    fc.property(ref, (r) => {
      fc.pre(r.app === undefined || r.env !== undefined);
      const parsed = parseReference(formatReference(r));
      expect(parsed).toEqual({ ...r, path: r.path });
    }),
    RUNS,
  );
});

test('extractReferences never throws and reports consistent, ordered matches', () => {
  fc.assert(
    fc.property(syntaxy, syntaxy, (a, b) => {
      const value = `${a}\${${b}}${a}`;
      const matches = extractReferences(value);
      let last = 0;
      for (const m of matches) {
        expect(m.start).toBeGreaterThanOrEqual(last);
        expect(value.slice(m.start, m.end)).toBe(m.text);
        expect(m.text.startsWith('${') && m.text.endsWith('}') && !m.text.startsWith('${{')).toBe(true);
        if (m.valid) expect(m.reference).toEqual(parseReference(m.text));
        last = m.end;
      }
    }),
    RUNS,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The resolver against a deliberately naive model: no memoisation, no generator, one environment map.

const KEYS = ['A', 'B', 'C', 'D', 'E'];
const ENVS = ['dev', 'prod'];
const REF_PATTERN = /\$\{(?!\{)([^{}]+)\}/g;

const refText = fc.oneof(
  fc.constantFrom(...KEYS, 'MISSING').map((k) => `\${${k}}`),
  fc
    .tuple(fc.constantFrom('dev', 'DEV', 'prod', 'Prod', 'qa'), fc.constantFrom(...KEYS))
    .map(([e, k]) => `\${${e}.${k}}`),
  fc.constantFrom('${app::A}', '${.A}', '${{A}}', '${prod./sub/A}', '${/sub/B}'),
);
// References weighted heavily so that chains, cycles and depth overruns are common.
const valueArb = fc
  .array(
    fc.oneof(
      { arbitrary: refText, weight: 4 },
      { arbitrary: fc.string({ unit: fc.constantFrom('x', '$', '{', '}', ' '), maxLength: 3 }), weight: 1 },
    ),
    { maxLength: 3 },
  )
  .map((parts) => parts.join(''));
/** Every key exists in `dev` (so references usually hit and chains form), some also in `prod` and under `/sub`. */
const secretsArb = fc
  .tuple(
    fc.array(valueArb, { minLength: KEYS.length, maxLength: KEYS.length }),
    fc.array(fc.tuple(fc.constantFrom('prod', 'dev'), fc.constantFrom(...KEYS, 'sub/B'), valueArb), {
      maxLength: 5,
    }),
    fc.integer({ min: 1, max: 4 }),
    fc.boolean(),
  )
  .map(([devValues, extra, maxDepth, shuffle]) => {
    const seen = new Set<string>();
    const secrets: LocalSecret[] = [];
    const entries: Array<[string, string, string]> = [
      ...KEYS.map((k, i): [string, string, string] => ['dev', k, devValues[i]]),
      ...extra,
    ];
    for (const [env, key, value] of entries) {
      const [path, k] = key.includes('/') ? ['/sub', key.split('/')[1]] : ['/', key];
      if (seen.has(`${env}|${path}|${k}`)) continue;
      seen.add(`${env}|${path}|${k}`);
      secrets.push({ env, path, key: k, value });
    }
    if (shuffle) secrets.reverse();
    return { secrets, maxDepth };
  });

interface ModelResult {
  value: string;
  failed: boolean;
}

function modelResolve(
  secrets: LocalSecret[],
  maxDepth: number,
  value: string,
  env: string,
  visited: string[],
  depth: number,
): ModelResult {
  let failed = false;
  const value2 = value.replace(REF_PATTERN, (text: string, inner: string) => {
    let ref: SecretReference;
    try {
      ref = parseReference(inner);
    } catch {
      failed = true;
      return text;
    }
    const targetEnv = (ref.env ?? env).toLowerCase();
    const id = `${targetEnv}|${ref.path}|${ref.key}`;
    const found = secrets.find((s) => `${s.env.toLowerCase()}|${s.path ?? '/'}|${s.key}` === id);
    if (visited.includes(id) || depth > maxDepth || !found) {
      failed = true;
      return text;
    }
    const nested = modelResolve(secrets, maxDepth, found.value, found.env, [...visited, id], depth + 1);
    failed ||= nested.failed;
    return nested.value;
  });
  return { value: value2, failed };
}

test('lenient resolution equals the naive model; strict throws exactly when the model fails', async () => {
  await fc.assert(
    fc.asyncProperty(
      secretsArb,
      valueArb,
      fc.constantFrom(...ENVS),
      async ({ secrets, maxDepth }, value, env) => {
        const lenient = new ReferenceResolver({ secrets, maxDepth });
        const strict = new ReferenceResolver({ secrets, maxDepth, mode: 'strict' });
        const expected = modelResolve(secrets, maxDepth, value, env, [], 1);

        // A value that is not stored anywhere (no origin key).
        expect(lenient.resolveSync(value, { env })).toBe(expected.value);
        expect(await lenient.resolve(value, { env })).toBe(expected.value);
        if (expected.failed) {
          expect(() => strict.resolveSync(value, { env })).toThrow(ReferenceResolutionError);
        } else {
          expect(strict.resolveSync(value, { env })).toBe(expected.value);
        }

        // Every stored secret in its own scope (origin key counts as visited), in both orders: memoisation must
        // not make results depend on the order of resolution.
        const model = secrets.map(
          (s) =>
            modelResolve(
              secrets,
              maxDepth,
              s.value,
              s.env,
              [`${s.env.toLowerCase()}|${s.path ?? '/'}|${s.key}`],
              1,
            ).value,
        );
        expect(lenient.resolveAllSync().map((s) => s.value)).toEqual(model);
        const reversed = new ReferenceResolver({ secrets: [...secrets].reverse(), maxDepth });
        expect((await reversed.resolveAll()).map((s) => s.value)).toEqual([...model].reverse());
      },
    ),
    { numRuns: 400 },
  );
});

test('any value, any lookup behaviour: lenient never throws, strict throws only ReferenceResolutionError', async () => {
  const behaviour = fc.constantFrom('value', 'undefined', 'null', 'throw', 'reject', 'number', 'self');
  await fc.assert(
    fc.asyncProperty(syntaxy, behaviour, fc.boolean(), async (value, how, strictMode) => {
      const lookup = (t: { key: string }) => {
        switch (how) {
          case 'value':
            return `v-${t.key}`;
          case 'undefined':
            return undefined;
          case 'null':
            return null;
          case 'throw':
            throw new Error('lookup failed');
          case 'reject':
            return Promise.reject(new Error('lookup failed'));
          case 'number':
            return 7 as unknown as string;
          default:
            return `\${${t.key}}`;
        }
      };
      const resolver = new ReferenceResolver({ lookup, mode: strictMode ? 'strict' : 'lenient' });
      for (const run of [
        () => resolver.resolveSync(value, { env: 'dev' }),
        () => resolver.resolve(value, { env: 'dev' }),
      ]) {
        try {
          const out = await run();
          expect(typeof out).toBe('string');
          if (extractReferences(value).length === 0) expect(out).toBe(value);
        } catch (e) {
          expect(strictMode).toBe(true);
          expect(e).toBeInstanceOf(ReferenceResolutionError);
        }
      }
    }),
    RUNS,
  );
});
