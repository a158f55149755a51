/** Export formats: exact renderings, escaping, round trips through real parsers and a real shell. */
import { spawnSync } from 'node:child_process';
import { PhaseBridgeError } from '../../core/errors';
import {
  DotenvParseError,
  EXPORT_FORMATS,
  ExportError,
  ExportFormatSchema,
  ExportSecret,
  ExportSecretSchema,
  parseDotenv,
  render,
} from '../../core/export';
import { parseCsv, parseTomlBasicTable, shellRoundTrip } from './export-helpers';

const yaml = require('js-yaml') as { load(text: string): unknown };

/** Values that break naive exporters. */
const TRICKY: Array<[string, string]> = [
  ['EMPTY', ''],
  ['SPACES', '  padded  '],
  ['NEWLINES', 'line1\nline2\r\nline3\r'],
  ['DQUOTE', 'say "hi"'],
  ['SQUOTE', "it's"],
  ['DOLLAR', '$HOME ${HOME} $(id) `id` $$'],
  ['BACKSLASH', 'C:\\path\\ \\n not a newline \\'],
  ['UNICODE', 'héllo wörld — 日本語 🔑 \u00a0nbsp'],
  ['CONTROL', 'tab\there bell\u0007 esc\u001b del\u007f nel\u0085 ls\u2028 bom\ufeff'],
  ['HASH', 'value # not a comment'],
  ['EQUALS', 'a=b=c'],
  ['JSONISH', '{"a": [1, 2]}'],
  ['YAMLISH', '- item: yes\nno: ~'],
  ['REFERENCE', '${staging.DEBUG}'],
  ['MULTILINE_KEY', '-----BEGIN KEY-----\nMIIB\n-----END KEY-----\n'],
];
const trickySecrets: ExportSecret[] = TRICKY.map(([key, value]) => ({ key, value }));
const asRecord = (list: Array<{ key: string; value: string }>) =>
  Object.fromEntries(list.map((s) => [s.key, s.value]));

const basic: ExportSecret[] = [
  { key: 'DB_HOST', value: 'localhost', comment: 'the database', path: '/' },
  { key: 'GREETING', value: 'say "hi"\nto $USER' },
];

describe('formats: exact output', () => {
  test('dotenv', () => {
    expect(render('dotenv', basic)).toBe('DB_HOST="localhost"\nGREETING="say \\"hi\\"\\nto \\$USER"\n');
    expect(render('dotenv', basic, { comments: true })).toBe(
      '# the database\nDB_HOST="localhost"\nGREETING="say \\"hi\\"\\nto \\$USER"\n',
    );
    expect(render('dotenv', [{ key: 'B', value: 'a\\b\r' }])).toBe('B="a\\\\b\\r"\n');
    expect(render('dotenv', [])).toBe('');
  });

  test('shell', () => {
    expect(render('shell', basic)).toBe(`export DB_HOST='localhost'\nexport GREETING='say "hi"\nto $USER'\n`);
    expect(render('shell', [{ key: 'Q', value: "it's" }])).toBe(`export Q='it'\\''s'\n`);
    expect(render('shell', [{ key: 'E', value: '' }])).toBe(`export E=''\n`);
  });

  test('json keeps order, even for integer-like keys', () => {
    const out = render('json', [
      { key: 'Z', value: 'z' },
      { key: '10', value: 'ten' },
      { key: 'Q', value: 'say "hi"\n<&>' },
    ]);
    expect(out).toBe('{\n    "Z": "z",\n    "10": "ten",\n    "Q": "say \\"hi\\"\\n<&>"\n}\n');
    expect(render('json', [])).toBe('{}\n');
  });

  test('yaml', () => {
    expect(render('yaml', basic, { comments: true })).toBe(
      '# the database\nDB_HOST: "localhost"\nGREETING: "say \\"hi\\"\\nto $USER"\n',
    );
    // Keys YAML 1.1 would read as booleans or null, and non-identifier keys, are quoted.
    expect(
      render('yaml', [
        { key: 'ON', value: 'x' },
        { key: 'no', value: 'y' },
        { key: 'my key', value: '' },
      ]),
    ).toBe('"ON": "x"\n"no": "y"\n"my key": ""\n');
    expect(render('yaml', [{ key: 'C', value: '\u0000\u0007\t\u001b\u0085\u2028\u0001\u009f\ufeff' }])).toBe(
      'C: "\\0\\a\\t\\e\\N\\L\\x01\\x9F\\uFEFF"\n',
    );
    expect(render('yaml', [])).toBe('{}\n');
  });

  test('toml', () => {
    expect(render('toml', basic)).toBe('DB_HOST = "localhost"\nGREETING = "say \\"hi\\"\\nto $USER"\n');
    expect(render('toml', [{ key: 'a.b', value: '\u0000\u001f\u007f\t\\' }])).toBe(
      '"a.b" = "\\u0000\\u001F\\u007F\\t\\\\"\n',
    );
  });

  test('csv (RFC 4180: CRLF, quotes doubled, quoted when needed)', () => {
    expect(
      render('csv', [
        { key: 'A', value: 'plain' },
        { key: 'B', value: 'a,b' },
        { key: 'C', value: 'say "hi"' },
        { key: 'D', value: 'two\nlines' },
        { key: 'E', value: ' padded' },
        { key: 'F', value: '' },
      ]),
    ).toBe('Key,Value\r\nA,plain\r\nB,"a,b"\r\nC,"say ""hi"""\r\nD,"two\nlines"\r\nE," padded"\r\nF,\r\n');
  });

  test('raw', () => {
    expect(render('raw', [{ key: 'ONLY', value: 'v\n' }])).toBe('v\n');
    expect(render('raw', basic, { key: 'GREETING' })).toBe('say "hi"\nto $USER');
    expect(() => render('raw', basic)).toThrow(expect.objectContaining({ reason: 'raw_selection' }));
    expect(() => render('raw', basic, { key: 'db_host' })).toThrow(
      expect.objectContaining({ reason: 'missing_key' }),
    );
    const twice = [
      { key: 'K', value: 'a', path: '/' },
      { key: 'K', value: 'b', path: '/x' },
    ];
    expect(() => render('raw', twice, { key: 'K' })).toThrow(
      expect.objectContaining({ reason: 'ambiguous_key' }),
    );
  });
});

describe('tricky values survive every format', () => {
  test('dotenv -> parseDotenv', () => {
    expect(asRecord(parseDotenv(render('dotenv', trickySecrets)))).toEqual(asRecord(trickySecrets));
  });

  test('shell -> /bin/sh and bash', () => {
    const script = render('shell', trickySecrets);
    const keys = trickySecrets.map((s) => s.key);
    expect(shellRoundTrip('sh', script, keys)).toEqual(trickySecrets.map((s) => s.value));
    expect(shellRoundTrip('bash', script, keys)).toEqual(trickySecrets.map((s) => s.value));
  });

  test('json -> JSON.parse', () => {
    expect(JSON.parse(render('json', trickySecrets))).toEqual(asRecord(trickySecrets));
  });

  test('yaml -> js-yaml', () => {
    expect(yaml.load(render('yaml', trickySecrets))).toEqual(asRecord(trickySecrets));
    const reserved = ['ON', 'off', 'Yes', 'N', 'null', 'true', '123', 'a: b', '- x', '#c', 'é'].map(
      (key) => ({
        key,
        value: key,
      }),
    );
    expect(yaml.load(render('yaml', reserved))).toEqual(asRecord(reserved));
    const longKey = [{ key: 'K'.repeat(2000), value: 'long' }];
    expect(yaml.load(render('yaml', longKey))).toEqual(asRecord(longKey));
  });

  test('toml -> TOML basic-string reader', () => {
    expect(parseTomlBasicTable(render('toml', trickySecrets))).toEqual(asRecord(trickySecrets));
  });

  test('csv -> RFC 4180 reader', () => {
    const rows = parseCsv(render('csv', trickySecrets));
    expect(rows[0]).toEqual(['Key', 'Value']);
    expect(rows.slice(1)).toEqual(trickySecrets.map((s) => [s.key, s.value]));
  });
});

describe('rejections are typed and never echo values', () => {
  const expectExportError = (fn: () => unknown, reason: string) => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ExportError);
    expect(err).toBeInstanceOf(PhaseBridgeError);
    expect(err).toMatchObject({ reason, code: `export_${reason}` });
    expect((err as Error).message).not.toContain('s3cr3t');
    return err as ExportError;
  };

  test('shell: keys that are not shell identifiers', () => {
    for (const key of ['1ABC', 'MY-KEY', 'a.b', 'A B', 'É']) {
      const err = expectExportError(() => render('shell', [{ key, value: 's3cr3t' }]), 'invalid_key');
      expect(err.key).toBe(key);
      expect(err.message).toContain('shell variable name');
    }
  });

  test('shell: NUL bytes', () => {
    expectExportError(() => render('shell', [{ key: 'K', value: 's3cr3t\u0000' }]), 'invalid_value');
  });

  test('dotenv: keys a dotenv parser cannot read', () => {
    expectExportError(() => render('dotenv', [{ key: 'A B', value: 's3cr3t' }]), 'invalid_key');
    expectExportError(() => render('dotenv', [{ key: 'A=B', value: 's3cr3t' }]), 'invalid_key');
    // Dots, dashes and leading digits are fine in dotenv.
    expect(parseDotenv(render('dotenv', [{ key: '1a.b-c', value: 'v' }]))).toEqual([
      { key: '1a.b-c', value: 'v', line: 1 },
    ]);
  });

  test('empty keys, lone surrogates, duplicates', () => {
    for (const format of EXPORT_FORMATS) {
      expectExportError(() => render(format, [{ key: '', value: 's3cr3t' }]), 'invalid_key');
      expectExportError(() => render(format, [{ key: 'K', value: 's3cr3t\ud800' }]), 'invalid_value');
      expectExportError(() => render(format, [{ key: 'K\udc00', value: 's3cr3t' }]), 'invalid_key');
    }
    const dup = [
      { key: 'K', value: 's3cr3t', path: '/' },
      { key: 'K', value: 's3cr3t', path: '/api' },
    ];
    for (const format of ['dotenv', 'json', 'yaml', 'shell', 'toml'] as const) {
      const err = expectExportError(() => render(format, dup), 'duplicate_key');
      expect(err.message).toContain('paths / and /api');
    }
    expect(parseCsv(render('csv', dup))).toHaveLength(3);
  });

  test('unknown format', () => {
    expectExportError(() => render('xml' as never, basic), 'unknown_format');
  });
});

describe('parseDotenv', () => {
  test('comments, blank lines, export prefix, quoting styles, CRLF', () => {
    const text = [
      '\ufeff# a comment',
      '',
      '   ',
      'export A="x\\ny"',
      "B='single $quoted \\n'  # trailing comment",
      'C = unquoted value  # comment',
      'D=',
      'E="multi',
      'line"',
      'F=a#b',
      'G="\\a\\$\\\\"',
      'export=not a prefix',
      '  H  =  "spaced"  ',
    ].join('\r\n');
    expect(parseDotenv(text)).toEqual([
      { key: 'A', value: 'x\ny', line: 4 },
      { key: 'B', value: 'single $quoted \\n', line: 5 },
      { key: 'C', value: 'unquoted value', line: 6 },
      { key: 'D', value: '', line: 7 },
      { key: 'E', value: 'multi\r\nline', line: 8 },
      { key: 'F', value: 'a#b', line: 10 },
      { key: 'G', value: '\\a$\\', line: 11 },
      { key: 'export', value: 'not a prefix', line: 12 },
      { key: 'H', value: 'spaced', line: 13 },
    ]);
  });

  test.each([
    ['A="s3cr3t', 1, /unterminated double-quoted value for A/],
    ["\n\nB='s3cr3t", 3, /unterminated single-quoted value for B/],
    ['s3cr3t value', 1, /expected '=' after the key$/],
    ['=s3cr3t', 1, /expected a key/],
    ['A="x" s3cr3t', 1, /unexpected text after the closing quote/],
  ])('%j is rejected with its line number', (text, line, message) => {
    let err: unknown;
    try {
      parseDotenv(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DotenvParseError);
    expect(err).toMatchObject({ line, code: 'dotenv_syntax' });
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('s3cr3t');
  });
});

describe('schemas', () => {
  test('ExportFormatSchema', () => {
    expect(ExportFormatSchema.options).toEqual(['dotenv', 'json', 'yaml', 'shell', 'csv', 'toml', 'raw']);
    expect(ExportFormatSchema.parse('yaml')).toBe('yaml');
    expect(ExportFormatSchema.safeParse('xml').success).toBe(false);
  });

  test('ExportSecretSchema', () => {
    expect(ExportSecretSchema.parse({ key: 'K', value: '' })).toEqual({ key: 'K', value: '' });
    expect(ExportSecretSchema.safeParse({ key: '', value: 'v' }).success).toBe(false);
    expect(ExportSecretSchema.safeParse({ key: 'K', value: 1 }).success).toBe(false);
    expect(ExportSecretSchema.safeParse({ key: 'K', value: 'v', extra: true }).success).toBe(false);
  });
});

test('sanity: the shell helper really runs a shell', () => {
  const r = spawnSync('sh', ['-c', 'printf %s "$0"', 'ok'], { encoding: 'utf8' });
  expect(r.stdout).toBe('ok');
});
