/**
 * Property tests for the token parsers: random input and near-miss tokens only ever raise TokenFormatError, whose
 * message never echoes a token segment; valid tokens round-trip through format and parse.
 */
import * as fc from 'fast-check';
import { TokenFormatError } from '../../core/errors';
import {
  authorizationHeader,
  authTypeFor,
  formatPssToken,
  parseAuthorizationHeader,
  parseCredential,
  parsePssToken,
  type PssToken,
} from '../../core/token';

const RUNS = { numRuns: 300 };
const hex64 = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
const prefix = fc.constantFrom<PssToken['prefix']>('pss_user', 'pss_service');
const version = fc.integer({ min: 0, max: 999999 });

const validToken = fc.record({
  prefix,
  version,
  bearer: hex64,
  publicKey: hex64,
  keyShare: hex64,
  wrapKey: hex64,
});

/** Calls `fn` and returns the thrown error (or undefined); fails the property on anything but TokenFormatError. */
function onlyTokenErrors(fn: () => unknown): TokenFormatError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (!(e instanceof TokenFormatError)) throw new Error(`unexpected ${String(e)}`);
    return e;
  }
}

function expectNoSegments(err: TokenFormatError | undefined, segments: string[]): void {
  if (!err) return;
  const text = `${err.message} ${err.stack ?? ''} ${JSON.stringify(err)}`.toLowerCase();
  for (const s of segments) {
    // Any 16-character run of a segment would already be an echo.
    for (let i = 0; i + 16 <= s.length; i += 8) expect(text).not.toContain(s.slice(i, i + 16).toLowerCase());
  }
}

describe('random input', () => {
  test('parsePssToken and parseCredential throw only TokenFormatError for any value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 400 }), fc.anything()), (input) => {
        onlyTokenErrors(() => parsePssToken(input));
        onlyTokenErrors(() => parseCredential(input));
      }),
      RUNS,
    );
  });

  test('strings made of token alphabet pieces throw only TokenFormatError', () => {
    const piece = fc.oneof(
      fc.constantFrom(
        'pss_user',
        'pss_service',
        'pss_env',
        'v1',
        'v2',
        ':',
        ' ',
        'Bearer',
        'ServiceAccount',
        'User',
      ),
      hex64,
      fc.stringMatching(/^[0-9a-fA-F]{0,70}$/),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 9 }), (pieces) => {
        const s = pieces.join('');
        const e1 = onlyTokenErrors(() => parsePssToken(s));
        const e2 = onlyTokenErrors(() => parseCredential(s));
        const hexRuns = s.match(/[0-9a-fA-F]{64}/g) ?? [];
        expectNoSegments(e1, hexRuns);
        expectNoSegments(e2, hexRuns);
      }),
      RUNS,
    );
  });

  test('parseAuthorizationHeader never throws for strings or undefined and always returns a verdict', () => {
    fc.assert(
      fc.property(fc.option(fc.string({ unit: 'grapheme', maxLength: 300 }), { nil: undefined }), (h) => {
        const r = parseAuthorizationHeader(h);
        if (r.ok) {
          expect(['User', 'Service', 'ServiceAccount']).toContain(r.authType);
          expect(r.token).not.toBe('');
        } else expect(['missing', 'malformed', 'unknown_type']).toContain(r.reason);
      }),
      RUNS,
    );
  });
});

describe('near-miss tokens', () => {
  type Mutation = { name: string; apply(parts: string[]): string; part?: TokenFormatError['part'] };
  const segmentParts: Array<TokenFormatError['part']> = ['token', 'publicKey', 'keyShare', 'wrapKey'];

  const mutation = fc.oneof(
    // one non-hex character inside a key segment
    fc
      .record({
        seg: fc.integer({ min: 2, max: 5 }),
        pos: fc.integer({ min: 0, max: 63 }),
        ch: fc.constantFrom('g', 'z', ' ', ':', 'é', '-'),
      })
      .map(({ seg, pos, ch }): Mutation => ({
        name: `bad char in segment ${seg}`,
        part: ch === ':' ? 'shape' : segmentParts[seg - 2],
        apply: (p) => p.map((s, i) => (i === seg ? s.slice(0, pos) + ch + s.slice(pos + 1) : s)).join(':'),
      })),
    // a segment one character short or long
    fc
      .record({ seg: fc.integer({ min: 2, max: 5 }), longer: fc.boolean() })
      .map(({ seg, longer }): Mutation => ({
        name: `length of segment ${seg}`,
        part: segmentParts[seg - 2],
        apply: (p) => p.map((s, i) => (i === seg ? (longer ? s + 'a' : s.slice(1)) : s)).join(':'),
      })),
    fc.constantFrom<Mutation>(
      { name: 'prefix', part: 'prefix', apply: (p) => ['pss_admin', ...p.slice(1)].join(':') },
      { name: 'env token', part: 'prefix', apply: (p) => ['pss_env', ...p.slice(1)].join(':') },
      {
        name: 'uppercase prefix',
        part: 'prefix',
        apply: (p) => [p[0].toUpperCase(), ...p.slice(1)].join(':'),
      },
      { name: 'version', part: 'version', apply: (p) => [p[0], 'v', ...p.slice(2)].join(':') },
      { name: 'version letters', part: 'version', apply: (p) => [p[0], 'vx', ...p.slice(2)].join(':') },
      {
        name: 'version case',
        part: 'version',
        apply: (p) => [p[0], p[1].toUpperCase(), ...p.slice(2)].join(':'),
      },
      { name: 'missing segment', part: 'shape', apply: (p) => p.slice(0, 5).join(':') },
      { name: 'extra segment', part: 'shape', apply: (p) => [...p, p[5]].join(':') },
      { name: 'spaces for colons', part: 'shape', apply: (p) => p.join(' ') },
      { name: 'semicolons', part: 'shape', apply: (p) => p.join(';') },
    ),
  );

  test('each fails with TokenFormatError naming the broken part, without echoing any segment', () => {
    fc.assert(
      fc.property(validToken, mutation, (t, m) => {
        const good = formatPssToken(t);
        const parts = good.split(':');
        const bad = m.apply(parts);
        const secrets = parts.slice(2);
        const err = onlyTokenErrors(() => parsePssToken(bad));
        expect(err).toBeInstanceOf(TokenFormatError);
        if (m.part) expect(err!.part).toBe(m.part);
        expectNoSegments(err, secrets);
        const err2 = onlyTokenErrors(() => parseCredential(bad));
        expectNoSegments(err2, secrets);
        const err3 = onlyTokenErrors(() => authorizationHeader(bad));
        expectNoSegments(err3, secrets);
      }),
      RUNS,
    );
  });

  test('a bare REST token with a bad value fails without echoing it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('ServiceAccount', 'User', 'Service', 'Bearer ServiceAccount'),
        hex64,
        fc.integer({ min: 0, max: 63 }),
        (type, value, pos) => {
          const bad = `${type} ${value.slice(0, pos)}x${value.slice(pos + 1)}`;
          const err = onlyTokenErrors(() => parseCredential(bad));
          expect(err).toBeInstanceOf(TokenFormatError);
          expectNoSegments(err, [value]);
        },
      ),
      RUNS,
    );
  });
});

describe('valid tokens', () => {
  test('format → parse round-trips (lowercased hex), with the auth type every client derives', () => {
    fc.assert(
      fc.property(validToken, fc.constantFrom('', ' ', '\n', '\r\n', '\t'), (t, pad) => {
        const s = formatPssToken(t);
        const parsed = parsePssToken(pad + s + pad);
        const expected = {
          prefix: t.prefix,
          version: t.version,
          bearer: t.bearer.toLowerCase(),
          publicKey: t.publicKey.toLowerCase(),
          keyShare: t.keyShare.toLowerCase(),
          wrapKey: t.wrapKey.toLowerCase(),
          authType: t.prefix === 'pss_user' ? 'User' : t.version === 1 ? 'Service' : 'ServiceAccount',
        };
        expect(parsed).toEqual(expected);
        expect(authTypeFor(t.prefix, t.version)).toBe(expected.authType);
        expect(parsePssToken(formatPssToken(parsed))).toEqual(parsed);
        const cred = parseCredential(s);
        expect(cred.bearer).toBe(expected.bearer);
        const header = authorizationHeader(s);
        expect(header).toBe(`Bearer ${expected.authType} ${expected.bearer}`);
        expect(parseAuthorizationHeader(header)).toEqual({
          ok: true,
          authType: expected.authType,
          token: expected.bearer,
        });
      }),
      RUNS,
    );
  });

  test('REST API tokens round-trip through parseCredential and the header', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('User', 'Service', 'ServiceAccount'),
        hex64,
        fc.boolean(),
        (type, value, bearer) => {
          const cred = parseCredential(`${bearer ? 'Bearer ' : ''}${type} ${value}`);
          expect(cred).toEqual({ authType: type, bearer: value.toLowerCase() });
          expect(parseAuthorizationHeader(authorizationHeader(cred))).toEqual({
            ok: true,
            authType: type,
            token: value.toLowerCase(),
          });
        },
      ),
      RUNS,
    );
  });
});
