/**
 * Property tests for the export formats: any input renders or fails with ExportError, and every format reads back
 * exactly through an independent reader (our dotenv parser, a real /bin/sh and bash, JSON.parse, js-yaml,
 * RFC 4180 and TOML readers).
 */
import fc from 'fast-check';
import {
  DotenvParseError,
  EXPORT_FORMATS,
  ExportError,
  ExportSecret,
  parseDotenv,
  render,
} from '../../core/export';
import { parseCsv, parseTomlBasicTable, shellRoundTrip } from './export-helpers';

const yaml = require('js-yaml') as { load(text: string): unknown };

/** Any UTF-16 (lone surrogates included). */
const utf16 = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });
/** Well-formed Unicode, biased towards characters that need escaping somewhere. */
const nasty = fc.constantFrom(
  '"',
  "'",
  '\\',
  '$',
  '`',
  '\n',
  '\r',
  '\t',
  '#',
  '=',
  ',',
  ' ',
  '{',
  '}',
  ':',
  '-',
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\ufeff',
  '\uffff',
  'é',
  '日',
  '🔑',
  'A',
  'z',
  '0',
);
const text = (maxLength: number) =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: nasty, maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
  );
/** Outside YAML's c-printable set, or a YAML 1.1 line break / BOM that must not appear raw inside a document. */
const YAML_NOT_PRINTABLE =
  /[^\t\n\x20-\x7E\xA0-\u2027\u202A-\uD7FF\uE000-\uFEFE\uFF00-\uFFFD\u{10000}-\u{10FFFF}]/u;
const record = (list: ExportSecret[]) => Object.fromEntries(list.map((s) => [s.key, s.value]));

/** Unique keys (by `key`) drawn from `keyArb`, each with a value. */
function secretsOf(keyArb: fc.Arbitrary<string>, valueArb: fc.Arbitrary<string>, maxLength = 6) {
  return fc
    .uniqueArray(fc.tuple(keyArb, valueArb), { selector: ([k]) => k, maxLength })
    .map((pairs) => pairs.map(([key, value]) => ({ key, value })));
}

test('any input: render returns a string or throws ExportError', () => {
  const secret = fc.record(
    { key: utf16(8), value: utf16(20), comment: utf16(10), path: utf16(5) },
    { requiredKeys: ['key', 'value'] },
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...EXPORT_FORMATS),
      fc.array(secret, { maxLength: 4 }),
      fc.option(utf16(5), { nil: undefined }),
      fc.boolean(),
      (format, secrets, key, comments) => {
        try {
          expect(typeof render(format, secrets, { key, comments })).toBe('string');
        } catch (e) {
          expect(e).toBeInstanceOf(ExportError);
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('any input: parseDotenv returns entries or throws DotenvParseError', () => {
  const doc = fc.oneof(
    utf16(60),
    fc.string({
      unit: fc.constantFrom('A', '=', '"', "'", '\\', '#', ' ', '\n', '\r', 'export ', 'x'),
      maxLength: 40,
    }),
  );
  fc.assert(
    fc.property(doc, (input) => {
      try {
        for (const e of parseDotenv(input)) expect(e.key).toMatch(/^[A-Za-z0-9_.-]+$/);
      } catch (e) {
        expect(e).toBeInstanceOf(DotenvParseError);
      }
    }),
    { numRuns: 500 },
  );
});

test('dotenv: parseDotenv(render) gives back every value exactly, comments included', () => {
  const key = fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/);
  fc.assert(
    fc.property(secretsOf(key, text(30)), text(20), (secrets, comment) => {
      const withComments = secrets.map((s) => ({ ...s, comment }));
      const parsed = parseDotenv(render('dotenv', withComments, { comments: true }));
      expect(parsed.map(({ key: k, value }) => ({ key: k, value }))).toEqual(secrets);
    }),
    { numRuns: 300 },
  );
});

test('shell: a real /bin/sh (and bash) evaluating the output sees every value exactly', () => {
  // K_ prefix: avoid names the shell itself treats specially (PATH, IFS, bash's read-only PPID/UID, ...).
  const key = fc.stringMatching(/^[A-Za-z0-9_]{0,10}$/).map((s) => `K_${s}`);
  const value = text(40).map((s) => s.replace(/\0/g, '')); // environment variables cannot hold NUL
  let runs = 0;
  fc.assert(
    fc.property(secretsOf(key, value, 5), (secrets) => {
      const script = render('shell', secrets);
      const keys = secrets.map((s) => s.key);
      const expected = secrets.map((s) => s.value);
      expect(shellRoundTrip('sh', script, keys)).toEqual(expected);
      // bash starts far slower than dash here, so it checks every tenth case only.
      if (runs++ % 10 === 0) expect(shellRoundTrip('bash', script, keys)).toEqual(expected);
    }),
    { numRuns: 100 },
  );
});

describe('structured formats read back exactly', () => {
  const anyKey = text(12).filter((k) => k !== '');
  const secrets = secretsOf(anyKey, text(30));

  test('json', () => {
    fc.assert(
      fc.property(secrets, (list) => {
        const parsed = JSON.parse(render('json', list)) as Record<string, string>;
        expect(parsed).toEqual(record(list));
        expect(Object.keys(parsed)).toHaveLength(list.length);
      }),
      { numRuns: 300 },
    );
  });

  test('yaml (js-yaml)', () => {
    fc.assert(
      fc.property(secrets, text(15), (list, comment) => {
        const out = render(
          'yaml',
          list.map((s) => ({ ...s, comment })),
          { comments: true },
        );
        // js-yaml is lenient about the character set, so check YAML's printable set (and no raw line breaks other
        // than LF, no BOM) separately.
        expect(out).not.toMatch(YAML_NOT_PRINTABLE);
        // js-yaml builds a plain object: compare entries so a key like "__proto__" is checked too.
        const parsed = yaml.load(out) as Record<string, string>;
        expect(Object.entries(parsed).sort()).toEqual(list.map((s) => [s.key, s.value]).sort());
      }),
      { numRuns: 300 },
    );
  });

  test('toml', () => {
    fc.assert(
      fc.property(secrets, text(15), (list, comment) => {
        const out = render(
          'toml',
          list.map((s) => ({ ...s, comment })),
          { comments: true },
        );
        expect(Object.entries(parseTomlBasicTable(out)).sort()).toEqual(
          list.map((s) => [s.key, s.value]).sort(),
        );
      }),
      { numRuns: 300 },
    );
  });

  test('csv (RFC 4180), duplicates allowed', () => {
    const rows = fc.array(fc.record({ key: anyKey, value: text(30) }), { maxLength: 6 });
    fc.assert(
      fc.property(rows, (list) => {
        expect(parseCsv(render('csv', list))).toEqual([
          ['Key', 'Value'],
          ...list.map((s) => [s.key, s.value]),
        ]);
      }),
      { numRuns: 300 },
    );
  });

  test('raw', () => {
    fc.assert(
      fc.property(secrets, (list) => {
        fc.pre(list.length > 0);
        for (const s of list) expect(render('raw', list, { key: s.key })).toBe(s.value);
      }),
      { numRuns: 200 },
    );
  });
});
